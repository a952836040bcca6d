//! Quantized dot products with AVX2 + FMA + F16C.
//!
//! The integer core is the same for every format: weights unpacked to one
//! byte per weight, `vpmaddubsw` (u8 x i8 -> pairs summed in i16) then
//! `vpmaddwd` (pairs summed in i32), giving 8 lanes of exact partial sums
//! per 32 weights; the block scale is applied with one FMA. Signed weights
//! go through the sign trick (`|w|` times `x * sign(w)`), since `vpmaddubsw`
//! wants its first operand unsigned.
//!
//! i16 overflow check for `vpmaddubsw` (two products per lane): Q4_1 and
//! Q4_K 2*15*127 = 3,810; Q5_K 2*31*127; Q6_K 2*63*127 = 16,002; the sign
//! trick on Q8_0 2*128*127 = 32,512 < 32,767 (activations never hold
//! -128, see `quantize_q8_0`).

use core::arch::x86_64::*;

use crate::f16::F16;
use crate::quant::{
    unpack_scales_mins_k4, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ6K, BlockQ8K, BlockQ8_0,
    BlockQ8_1,
};

// Helpers are `#[inline(always)]` without `target_feature`: they are only
// called from the `target_feature` kernels below, into which they inline, so
// their intrinsics compile with AVX2 enabled.

/// One half to f32 with F16C.
///
/// # Safety
///
/// Call only where AVX2, FMA and F16C are enabled (from this module's
/// `target_feature` kernels).
#[inline(always)]
pub(super) unsafe fn f16_to_f32(h: F16) -> f32 {
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(h.to_bits()))))
}

/// Sum of the 8 lanes.
///
/// # Safety
///
/// Call only where AVX2, FMA and F16C are enabled (from this module's
/// `target_feature` kernels).
#[inline(always)]
pub(super) unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// 32 bytes from a reference to 32 bytes.
///
/// # Safety
///
/// `T` must be one byte wide (checked in debug builds).
/// Call only where AVX2, FMA and F16C are enabled (from this module's
/// `target_feature` kernels).
#[inline(always)]
pub(super) unsafe fn load32<T>(p: &[T; 32]) -> __m256i {
    debug_assert_eq!(core::mem::size_of::<T>(), 1);
    // SAFETY: `p` is 32 one-byte elements; unaligned load.
    _mm256_loadu_si256(p.as_ptr().cast())
}

/// 16 packed nibble bytes -> 32 bytes: low nibbles in bytes 0..16, high
/// nibbles in bytes 16..32 (GGML's order for 32-weight blocks).
///
/// The 16 bytes are broadcast to both 128-bit lanes by the load itself, and
/// one variable shift moves the high lane's nibbles down (1 uop on Zen 2+
/// and Skylake+, cheaper than a shift plus a lane insert).
///
/// # Safety
///
/// Call only where AVX2, FMA and F16C are enabled (from this module's
/// `target_feature` kernels).
#[inline(always)]
pub(super) unsafe fn nibbles(p: &[u8; 16]) -> __m256i {
    // SAFETY: 16 readable bytes; unaligned load.
    let b = _mm256_broadcastsi128_si256(_mm_loadu_si128(p.as_ptr().cast()));
    let shifted = _mm256_srlv_epi32(b, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4));
    _mm256_and_si256(shifted, _mm256_set1_epi8(0x0f))
}

/// Exact `Σ x_i y_i` of 32 signed bytes, as 8 i32 lanes (sign trick).
///
/// # Safety
///
/// Call only where AVX2, FMA and F16C are enabled (from this module's
/// `target_feature` kernels).
#[inline(always)]
pub(super) unsafe fn dot_i8(x: __m256i, y: __m256i) -> __m256i {
    let ax = _mm256_sign_epi8(x, x);
    let sy = _mm256_sign_epi8(y, x);
    _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), _mm256_set1_epi16(1))
}

/// Exact `Σ x_i y_i` of 32 unsigned (< 128) by 32 signed bytes, as 8 i32 lanes.
///
/// # Safety
///
/// Call only where AVX2, FMA and F16C are enabled (from this module's
/// `target_feature` kernels).
#[inline(always)]
pub(super) unsafe fn dot_u8(x: __m256i, y: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), _mm256_set1_epi16(1))
}

/// Byte `i` = 0xff iff bit `i` of `bits` is set.
///
/// # Safety
///
/// Call only where AVX2, FMA and F16C are enabled (from this module's
/// `target_feature` kernels).
#[inline(always)]
pub(super) unsafe fn bytes_from_bits(bits: u32) -> __m256i {
    let v = _mm256_set1_epi32(bits as i32);
    // Byte i takes byte i / 8 of the word (within each 128-bit lane; the
    // word is in both lanes).
    let spread = _mm256_setr_epi8(
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, //
        2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3,
    );
    let bytes = _mm256_shuffle_epi8(v, spread);
    let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit)
}

/// Q4_0 weights as signed bytes in -8..8.
///
/// # Safety
///
/// Call only where AVX2, FMA and F16C are enabled (from this module's
/// `target_feature` kernels).
#[inline(always)]
pub(super) unsafe fn q4_0_bytes(b: &BlockQ4_0) -> __m256i {
    _mm256_sub_epi8(nibbles(&b.qs), _mm256_set1_epi8(8))
}

/// Q5_0 weights as signed bytes in -16..16: `(nibble | bit << 4) - 16`,
/// which is `nibble` when the bit is set and `nibble | 0xf0` otherwise.
///
/// # Safety
///
/// Call only where AVX2, FMA and F16C are enabled (from this module's
/// `target_feature` kernels).
#[inline(always)]
pub(super) unsafe fn q5_0_bytes(b: &BlockQ5_0) -> __m256i {
    let hi = bytes_from_bits(u32::from_le_bytes(b.qh));
    let fill = _mm256_andnot_si256(hi, _mm256_set1_epi8(0xf0u8 as i8));
    _mm256_or_si256(nibbles(&b.qs), fill)
}

/// # Safety
///
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn dot_q4_0_q8_0(x: &[BlockQ4_0], y: &[BlockQ8_0]) -> f32 {
    assert_eq!(x.len(), y.len(), "dot product of {} by {} blocks", x.len(), y.len());
    let mut out = [0.0f32];
    super::gemv::rows_q4_0::<1>(x, y, &mut out);
    out[0]
}

/// # Safety
///
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn dot_q4_1_q8_1(x: &[BlockQ4_1], y: &[BlockQ8_1]) -> f32 {
    assert_eq!(x.len(), y.len(), "dot product of {} by {} blocks", x.len(), y.len());
    let mut out = [0.0f32];
    super::gemv::rows_q4_1::<1>(x, y, &mut out);
    out[0]
}

/// # Safety
///
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn dot_q5_0_q8_0(x: &[BlockQ5_0], y: &[BlockQ8_0]) -> f32 {
    assert_eq!(x.len(), y.len(), "dot product of {} by {} blocks", x.len(), y.len());
    let mut out = [0.0f32];
    super::gemv::rows_q5_0::<1>(x, y, &mut out);
    out[0]
}

/// # Safety
///
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn dot_q8_0_q8_0(x: &[BlockQ8_0], y: &[BlockQ8_0]) -> f32 {
    assert_eq!(x.len(), y.len(), "dot product of {} by {} blocks", x.len(), y.len());
    let mut out = [0.0f32];
    super::gemv::rows_q8_0::<1>(x, y, &mut out);
    out[0]
}

/// The 16 bsums of a Q8_K block.
///
/// # Safety
///
/// Call only where AVX2, FMA and F16C are enabled (from this module's
/// `target_feature` kernels).
#[inline(always)]
unsafe fn bsums(by: &BlockQ8K) -> __m256i {
    // SAFETY: 16 i16 = 32 readable bytes; unaligned load.
    _mm256_loadu_si256(by.bsums.as_ptr().cast())
}

/// `m[j] * (bsums[2j] + bsums[2j+1])` for the 8 sub-blocks, as i32 lanes.
///
/// # Safety
///
/// Call only where AVX2, FMA and F16C are enabled (from this module's
/// `target_feature` kernels).
#[inline(always)]
unsafe fn k4_min_terms(m: &[u8; 8], by: &BlockQ8K) -> __m256i {
    let m16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(i64::from_le_bytes(*m)));
    let dup = _mm256_set_m128i(_mm_unpackhi_epi16(m16, m16), _mm_unpacklo_epi16(m16, m16));
    _mm256_madd_epi16(bsums(by), dup)
}

/// The integer sum `Σ_j sc[j] Σ q x` of a Q4_K (`HIGH = false`) or Q5_K
/// super-block, 8 i32 lanes.
///
/// # Safety
///
/// Call only where AVX2, FMA and F16C are enabled (from this module's
/// `target_feature` kernels).
#[inline(always)]
unsafe fn k4_scaled_sums(sc: &[u8; 8], qs: &[u8; 128], qh: Option<&[u8; 32]>, by: &BlockQ8K) -> __m256i {
    let low4 = _mm256_set1_epi8(0x0f);
    let one = _mm256_set1_epi8(1);
    let mut hbits = match qh {
        Some(qh) => load32(qh),
        None => _mm256_setzero_si256(),
    };
    let mut sumi = _mm256_setzero_si256();
    for c in 0..4 {
        // SAFETY: chunk c of qs is bytes 32c..32c+32 < 128; unaligned load.
        let q = _mm256_loadu_si256(qs.as_ptr().add(32 * c).cast());
        let mut lo = _mm256_and_si256(q, low4);
        let mut hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
        if qh.is_some() {
            // Bit 2c of each qh byte is the fifth bit of the low nibble's
            // weight, bit 2c+1 that of the high nibble's. 16-bit shifts leak
            // bits across bytes, but only bit 0 of each byte is kept.
            let h_lo = _mm256_and_si256(hbits, one);
            let h_hi = _mm256_and_si256(_mm256_srli_epi16(hbits, 1), one);
            lo = _mm256_or_si256(lo, _mm256_slli_epi16(h_lo, 4));
            hi = _mm256_or_si256(hi, _mm256_slli_epi16(h_hi, 4));
            hbits = _mm256_srli_epi16(hbits, 2);
        }
        // SAFETY: activation bytes 64c..64c+64 < 256; unaligned loads.
        let y_lo = _mm256_loadu_si256(by.qs.as_ptr().add(64 * c).cast());
        let y_hi = _mm256_loadu_si256(by.qs.as_ptr().add(64 * c + 32).cast());
        let p_lo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, y_lo), _mm256_set1_epi16(i16::from(sc[2 * c])));
        let p_hi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, y_hi), _mm256_set1_epi16(i16::from(sc[2 * c + 1])));
        sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p_lo, p_hi));
    }
    sumi
}

/// # Safety
///
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn dot_q4k_q8k(x: &[BlockQ4K], y: &[BlockQ8K]) -> f32 {
    assert_eq!(x.len(), y.len(), "dot product of {} by {} blocks", x.len(), y.len());
    let mut acc = _mm256_setzero_ps();
    let mut acc_m = _mm256_setzero_ps();
    for (bx, by) in x.iter().zip(y) {
        let (sc, m) = unpack_scales_mins_k4(&bx.scales);
        let d = by.d * f16_to_f32(bx.d);
        let dmin = by.d * f16_to_f32(bx.dmin);
        let sumi = k4_scaled_sums(&sc, &bx.qs, None, by);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
        let mins = k4_min_terms(&m, by);
        acc_m = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(mins), acc_m);
    }
    hsum(_mm256_sub_ps(acc, acc_m))
}

/// # Safety
///
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn dot_q5k_q8k(x: &[BlockQ5K], y: &[BlockQ8K]) -> f32 {
    assert_eq!(x.len(), y.len(), "dot product of {} by {} blocks", x.len(), y.len());
    let mut acc = _mm256_setzero_ps();
    let mut acc_m = _mm256_setzero_ps();
    for (bx, by) in x.iter().zip(y) {
        let (sc, m) = unpack_scales_mins_k4(&bx.scales);
        let d = by.d * f16_to_f32(bx.d);
        let dmin = by.d * f16_to_f32(bx.dmin);
        let sumi = k4_scaled_sums(&sc, &bx.qs, Some(&bx.qh), by);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
        let mins = k4_min_terms(&m, by);
        acc_m = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(mins), acc_m);
    }
    hsum(_mm256_sub_ps(acc, acc_m))
}

/// Shuffle control for Q6_K quad `k` (weights `32k..32k+32` of a half): the
/// low 128-bit lane of the `vpmaddubsw` result covers group `2k`, the high
/// lane group `2k+1`, so pick those two i16 scales out of the 8 that are
/// broadcast to both lanes.
///
/// # Safety
///
/// Call only where AVX2, FMA and F16C are enabled (from this module's
/// `target_feature` kernels).
#[inline(always)]
unsafe fn q6k_scale_pick(k: i8) -> __m256i {
    let a = (4 * k) as u8 as u16;
    let b = (4 * k + 2) as u8 as u16;
    let lo = (a | ((a + 1) << 8)) as i16;
    let hi = (b | ((b + 1) << 8)) as i16;
    _mm256_set_m128i(_mm_set1_epi16(hi), _mm_set1_epi16(lo))
}

/// # Safety
///
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn dot_q6k_q8k(x: &[BlockQ6K], y: &[BlockQ8K]) -> f32 {
    assert_eq!(x.len(), y.len(), "dot product of {} by {} blocks", x.len(), y.len());
    let low4 = _mm256_set1_epi8(0x0f);
    let picks = [q6k_scale_pick(0), q6k_scale_pick(1), q6k_scale_pick(2), q6k_scale_pick(3)];
    let mut acc = _mm256_setzero_ps();
    for (bx, by) in x.iter().zip(y) {
        let d = by.d * f16_to_f32(bx.d);
        // Σ_g sc[g] * 32 * bsums[g]: the offset of 32 in every quant.
        // SAFETY: 16 scale bytes; unaligned load.
        let sc_all = _mm256_cvtepi8_epi16(_mm_loadu_si128(bx.scales.as_ptr().cast()));
        let offset = _mm256_madd_epi16(sc_all, bsums(by));
        let mut sumi = _mm256_setzero_si256();
        for h in 0..2 {
            // SAFETY: scales 8h..8h+8, ql 64h..64h+64, qh 32h..32h+32 and
            // activations 128h..128h+128 are in bounds; unaligned loads.
            let sc8 = _mm_cvtepi8_epi16(_mm_loadl_epi64(bx.scales.as_ptr().add(8 * h).cast()));
            let sc8 = _mm256_broadcastsi128_si256(sc8);
            let ql0 = _mm256_loadu_si256(bx.ql.as_ptr().add(64 * h).cast());
            let ql1 = _mm256_loadu_si256(bx.ql.as_ptr().add(64 * h + 32).cast());
            let qh = _mm256_loadu_si256(bx.qh.as_ptr().add(32 * h).cast());
            // The top two bits of quad k are bits 2k..2k+2 of qh, moved to
            // bits 4..6 (16-bit shifts leak across bytes only into bits the
            // masks drop).
            let bits45 = _mm256_set1_epi8(0x30);
            let h0 = _mm256_and_si256(_mm256_slli_epi16(qh, 4), bits45);
            let h1 = _mm256_and_si256(_mm256_slli_epi16(qh, 2), bits45);
            let h2 = _mm256_and_si256(qh, bits45);
            let h3 = _mm256_and_si256(_mm256_srli_epi16(qh, 2), bits45);
            let q = [
                _mm256_or_si256(_mm256_and_si256(ql0, low4), h0),
                _mm256_or_si256(_mm256_and_si256(ql1, low4), h1),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4), h2),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4), h3),
            ];
            for k in 0..4 {
                let yk = _mm256_loadu_si256(by.qs.as_ptr().add(128 * h + 32 * k).cast());
                let p = _mm256_maddubs_epi16(q[k], yk);
                let s = _mm256_shuffle_epi8(sc8, picks[k]);
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, s));
            }
        }
        sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(offset, 5));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum(acc)
}
