//! Matrix-vector products with AVX2: the row loop runs inside the
//! `target_feature` function so that the dot product kernels inline into it.

use super::dot;
use crate::dispatch::check_gemv;
use crate::quant::{BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ6K, BlockQ8K, BlockQ8_0, BlockQ8_1};

macro_rules! gemv_by_rows {
    ($name:ident, $w:ty, $a:ty, $dot:path) => {
        /// `out[r] = dot(row r of w, x)`.
        ///
        /// # Safety
        ///
        /// The CPU must support AVX2, FMA and F16C.
        #[target_feature(enable = "avx2,fma,f16c")]
        pub(crate) unsafe fn $name(w: &[$w], x: &[$a], out: &mut [f32]) {
            check_gemv(w.len(), x.len(), out.len());
            if x.is_empty() {
                out.fill(0.0);
                return;
            }
            for (row, o) in w.chunks_exact(x.len()).zip(out.iter_mut()) {
                *o = $dot(row, x);
            }
        }
    };
}

gemv_by_rows!(gemv_q4_0, BlockQ4_0, BlockQ8_0, dot::dot_q4_0_q8_0);
gemv_by_rows!(gemv_q4_1, BlockQ4_1, BlockQ8_1, dot::dot_q4_1_q8_1);
gemv_by_rows!(gemv_q5_0, BlockQ5_0, BlockQ8_0, dot::dot_q5_0_q8_0);
gemv_by_rows!(gemv_q8_0, BlockQ8_0, BlockQ8_0, dot::dot_q8_0_q8_0);
gemv_by_rows!(gemv_q4k, BlockQ4K, BlockQ8K, dot::dot_q4k_q8k);
gemv_by_rows!(gemv_q5k, BlockQ5K, BlockQ8K, dot::dot_q5k_q8k);
gemv_by_rows!(gemv_q6k, BlockQ6K, BlockQ8K, dot::dot_q6k_q8k);
