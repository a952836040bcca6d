//! GGML quantization blocks, byte for byte as GGUF stores them.
//!
//! Where it sits: a GGUF tensor of a quantized type is an array of blocks, a
//! matrix row being `cols / WEIGHTS` consecutive blocks. The model loader
//! views those bytes as `&[Block…]` with [`cast_blocks`] (no copy, no
//! alignment requirement: every weight block here has alignment 1), and the
//! kernels read them. Activations are quantized on the fly to the 8-bit
//! format the weight type pairs with ([`QuantType::activation`]).
//!
//! Bit budgets (bytes per block / weights per block = bits per weight):
//!
//! | block | weights | bytes | bpw | weight value |
//! |---|---:|---:|---:|---|
//! | [`BlockQ4_0`] | 32 | 18 | 4.5 | `d * (q - 8)`, q in 0..16 |
//! | [`BlockQ4_1`] | 32 | 20 | 5.0 | `d * q + m`, q in 0..16 |
//! | [`BlockQ5_0`] | 32 | 22 | 5.5 | `d * (q - 16)`, q in 0..32 |
//! | [`BlockQ8_0`] | 32 | 34 | 8.5 | `d * q`, q in -128..128 |
//! | [`BlockQ8_1`] | 32 | 36 | 9.0 | `d * q`; `s = d * Σq` (activations) |
//! | [`BlockQ4K`] | 256 | 144 | 4.5 | `d*sc[j] * q - dmin*m[j]`, 8 sub-blocks of 32, 6-bit sc/m |
//! | [`BlockQ5K`] | 256 | 176 | 5.5 | as Q4_K with a fifth bit, q in 0..32 |
//! | [`BlockQ6K`] | 256 | 210 | 6.5625 | `d*sc[j] * (q - 32)`, 16 sub-blocks of 16, i8 sc |
//! | [`BlockQ8K`] | 256 | 292 | 9.125 | `d * q`, f32 d, 16 partial sums (activations) |
//!
//! Nibble order (Q4_0, Q4_1, Q5_0, and each 64-weight chunk of Q4_K/Q5_K):
//! byte `j` holds weight `j` in its low nibble and weight `j + 16` (`j + 32`
//! for K-quants) in its high nibble. The details of each format are on its
//! struct; `docs/kernels.md` draws them.

use crate::f16::F16;

/// Weights per block of the 32-weight formats (Q4_0, Q4_1, Q5_0, Q8_0, Q8_1).
pub const QK: usize = 32;
/// Weights per super-block of the K-quant formats.
pub const QK_K: usize = 256;

/// Q4_0: 32 weights `d * (q - 8)` with 4-bit `q`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct BlockQ4_0 {
    /// Scale.
    pub d: F16,
    /// Byte `j`: weight `j` in bits 0..4, weight `j + 16` in bits 4..8.
    pub qs: [u8; QK / 2],
}

/// Q4_1: 32 weights `d * q + m` with 4-bit `q`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct BlockQ4_1 {
    /// Scale.
    pub d: F16,
    /// Offset (the block minimum).
    pub m: F16,
    /// Byte `j`: weight `j` in bits 0..4, weight `j + 16` in bits 4..8.
    pub qs: [u8; QK / 2],
}

/// Q5_0: 32 weights `d * (q - 16)` with 5-bit `q`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct BlockQ5_0 {
    /// Scale.
    pub d: F16,
    /// Little-endian u32: bit `j` is the fifth bit of weight `j`.
    pub qh: [u8; 4],
    /// Low four bits, packed as in [`BlockQ4_0`].
    pub qs: [u8; QK / 2],
}

/// Q8_0: 32 weights `d * q` with `q: i8`. Also the activation format paired
/// with Q4_0, Q5_0 and Q8_0 weights.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct BlockQ8_0 {
    /// Scale.
    pub d: F16,
    /// Quants in weight order.
    pub qs: [i8; QK],
}

/// Q8_1: 32 values `d * q` plus `s = d * Σ q`, the activation format paired
/// with Q4_1 weights (the sum turns `Σ (d_w q_w + m) d_x q_x` into one
/// integer dot product plus `m * s`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct BlockQ8_1 {
    /// Scale.
    pub d: F16,
    /// `d * Σ qs`, rounded to f16.
    pub s: F16,
    /// Quants in order.
    pub qs: [i8; QK],
}

/// Q4_K: 256 weights in 8 sub-blocks of 32; weight `i` of sub-block `j` is
/// `d * sc[j] * q - dmin * m[j]` with 4-bit `q` and 6-bit `sc[j]`, `m[j]`.
///
/// `scales` packs the sixteen 6-bit numbers into 12 bytes
/// ([`unpack_scales_mins_k4`]). `qs` holds four 64-weight chunks of 32 bytes:
/// chunk `c` byte `l` has weight `64c + l` (sub-block `2c`) in its low nibble
/// and weight `64c + 32 + l` (sub-block `2c + 1`) in its high nibble.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct BlockQ4K {
    /// Super-block scale of the sub-block scales.
    pub d: F16,
    /// Super-block scale of the sub-block minimums.
    pub dmin: F16,
    /// Packed 6-bit scales and minimums.
    pub scales: [u8; 12],
    /// 4-bit quants.
    pub qs: [u8; QK_K / 2],
}

/// Q5_K: as [`BlockQ4K`] with a fifth bit per weight: bit `2c` of `qh[l]` is
/// the fifth bit of weight `64c + l`, bit `2c + 1` that of weight
/// `64c + 32 + l`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct BlockQ5K {
    /// Super-block scale of the sub-block scales.
    pub d: F16,
    /// Super-block scale of the sub-block minimums.
    pub dmin: F16,
    /// Packed 6-bit scales and minimums.
    pub scales: [u8; 12],
    /// Fifth bits.
    pub qh: [u8; QK_K / 8],
    /// Low four bits, packed as in [`BlockQ4K`].
    pub qs: [u8; QK_K / 2],
}

/// Q6_K: 256 weights `d * scales[g] * (q - 32)` with 6-bit `q`, in 16 groups
/// of 16 (`g = i / 16`).
///
/// Two 128-weight halves `h`; within half `h`, for `l` in `0..32` the byte
/// `ql[64h + l]` holds the low four bits of weights `128h + l` (low nibble) and
/// `128h + 64 + l` (high nibble), `ql[64h + 32 + l]` those of `128h + 32 + l`
/// and `128h + 96 + l`, and `qh[32h + l]` the top two bits of these four
/// weights in bit pairs 0-1, 2-3, 4-5, 6-7 respectively.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct BlockQ6K {
    /// Low four bits.
    pub ql: [u8; QK_K / 2],
    /// High two bits.
    pub qh: [u8; QK_K / 4],
    /// Scale of each group of 16.
    pub scales: [i8; QK_K / 16],
    /// Super-block scale.
    pub d: F16,
}

/// Q8_K: 256 activations `d * q`, the format paired with K-quant weights.
/// Never stored in files, so its header is a plain f32; `bsums` are the sums
/// of each group of 16 quants (they carry the K-quant minimums and Q6_K's
/// offset of 32 through the dot product).
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ8K {
    /// Scale.
    pub d: f32,
    /// Quants, in -127..=127.
    pub qs: [i8; QK_K],
    /// `bsums[g] = Σ qs[16g..16g + 16]`.
    pub bsums: [i16; QK_K / 16],
}

impl Default for BlockQ4K {
    fn default() -> Self {
        BlockQ4K { d: F16::ZERO, dmin: F16::ZERO, scales: [0; 12], qs: [0; QK_K / 2] }
    }
}

impl Default for BlockQ5K {
    fn default() -> Self {
        BlockQ5K { d: F16::ZERO, dmin: F16::ZERO, scales: [0; 12], qh: [0; QK_K / 8], qs: [0; QK_K / 2] }
    }
}

impl Default for BlockQ6K {
    fn default() -> Self {
        BlockQ6K { ql: [0; QK_K / 2], qh: [0; QK_K / 4], scales: [0; QK_K / 16], d: F16::ZERO }
    }
}

impl Default for BlockQ8K {
    fn default() -> Self {
        BlockQ8K { d: 0.0, qs: [0; QK_K], bsums: [0; QK_K / 16] }
    }
}

// Sizes are GGML's (`ggml-common.h` static asserts); alignment 1 for every
// block that appears in files, so `cast_blocks` accepts any byte offset.
const _: () = {
    use core::mem::{align_of, size_of};
    assert!(size_of::<BlockQ4_0>() == 2 + QK / 2 && align_of::<BlockQ4_0>() == 1);
    assert!(size_of::<BlockQ4_1>() == 4 + QK / 2 && align_of::<BlockQ4_1>() == 1);
    assert!(size_of::<BlockQ5_0>() == 2 + 4 + QK / 2 && align_of::<BlockQ5_0>() == 1);
    assert!(size_of::<BlockQ8_0>() == 2 + QK && align_of::<BlockQ8_0>() == 1);
    assert!(size_of::<BlockQ8_1>() == 4 + QK && align_of::<BlockQ8_1>() == 1);
    assert!(size_of::<BlockQ4K>() == 4 + 12 + QK_K / 2 && align_of::<BlockQ4K>() == 1);
    assert!(size_of::<BlockQ5K>() == 4 + 12 + QK_K / 8 + QK_K / 2);
    assert!(align_of::<BlockQ5K>() == 1);
    assert!(size_of::<BlockQ6K>() == 2 + QK_K / 16 + 3 * QK_K / 4 && align_of::<BlockQ6K>() == 1);
    assert!(size_of::<BlockQ8K>() == 4 + QK_K + 2 * QK_K / 16);
};

/// Unpacks the 12-byte scales field of Q4_K/Q5_K into eight 6-bit scales and
/// eight 6-bit minimums.
///
/// Layout: for `j < 4`, `scales[j]` holds `sc[j]` in bits 0..6 and
/// `scales[j + 4]` holds `m[j]`; their top two bits hold the high bits of
/// `sc[j + 4]` and `m[j + 4]`, whose low four bits are the nibbles of
/// `scales[j + 8]` (sc low, m high).
#[inline(always)]
pub fn unpack_scales_mins_k4(s: &[u8; 12]) -> ([u8; 8], [u8; 8]) {
    let mut sc = [0u8; 8];
    let mut m = [0u8; 8];
    for j in 0..4 {
        sc[j] = s[j] & 63;
        m[j] = s[j + 4] & 63;
        sc[j + 4] = (s[j + 8] & 0x0f) | ((s[j] >> 6) << 4);
        m[j + 4] = (s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4);
    }
    (sc, m)
}

/// Packs eight 6-bit scales and minimums into the Q4_K/Q5_K scales field (the
/// inverse of [`unpack_scales_mins_k4`]; values are masked to 6 bits).
pub fn pack_scales_mins_k4(sc: &[u8; 8], m: &[u8; 8]) -> [u8; 12] {
    let mut s = [0u8; 12];
    for j in 0..4 {
        s[j] = (sc[j] & 63) | ((sc[j + 4] >> 4) << 6);
        s[j + 4] = (m[j] & 63) | ((m[j + 4] >> 4) << 6);
        s[j + 8] = (sc[j + 4] & 0x0f) | ((m[j + 4] & 0x0f) << 4);
    }
    s
}

/// A weight format this crate computes with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QuantType {
    /// [`BlockQ4_0`].
    Q4_0,
    /// [`BlockQ4_1`].
    Q4_1,
    /// [`BlockQ5_0`].
    Q5_0,
    /// [`BlockQ8_0`].
    Q8_0,
    /// [`BlockQ4K`].
    Q4K,
    /// [`BlockQ5K`].
    Q5K,
    /// [`BlockQ6K`].
    Q6K,
}

impl QuantType {
    /// Every supported type.
    pub const ALL: [QuantType; 7] = [
        QuantType::Q4_0,
        QuantType::Q4_1,
        QuantType::Q5_0,
        QuantType::Q8_0,
        QuantType::Q4K,
        QuantType::Q5K,
        QuantType::Q6K,
    ];

    /// The type with this `ggml_type` number (as found in GGUF tensor infos),
    /// if supported.
    pub fn from_ggml_id(id: u32) -> Option<QuantType> {
        Some(match id {
            2 => QuantType::Q4_0,
            3 => QuantType::Q4_1,
            6 => QuantType::Q5_0,
            8 => QuantType::Q8_0,
            12 => QuantType::Q4K,
            13 => QuantType::Q5K,
            14 => QuantType::Q6K,
            _ => return None,
        })
    }

    /// The `ggml_type` number.
    pub fn ggml_id(self) -> u32 {
        match self {
            QuantType::Q4_0 => 2,
            QuantType::Q4_1 => 3,
            QuantType::Q5_0 => 6,
            QuantType::Q8_0 => 8,
            QuantType::Q4K => 12,
            QuantType::Q5K => 13,
            QuantType::Q6K => 14,
        }
    }

    /// GGML's name for the type (`"q4_K"`, …).
    pub fn name(self) -> &'static str {
        match self {
            QuantType::Q4_0 => "q4_0",
            QuantType::Q4_1 => "q4_1",
            QuantType::Q5_0 => "q5_0",
            QuantType::Q8_0 => "q8_0",
            QuantType::Q4K => "q4_K",
            QuantType::Q5K => "q5_K",
            QuantType::Q6K => "q6_K",
        }
    }

    /// Weights per block.
    pub fn block_weights(self) -> usize {
        match self {
            QuantType::Q4_0 | QuantType::Q4_1 | QuantType::Q5_0 | QuantType::Q8_0 => QK,
            QuantType::Q4K | QuantType::Q5K | QuantType::Q6K => QK_K,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        use core::mem::size_of;
        match self {
            QuantType::Q4_0 => size_of::<BlockQ4_0>(),
            QuantType::Q4_1 => size_of::<BlockQ4_1>(),
            QuantType::Q5_0 => size_of::<BlockQ5_0>(),
            QuantType::Q8_0 => size_of::<BlockQ8_0>(),
            QuantType::Q4K => size_of::<BlockQ4K>(),
            QuantType::Q5K => size_of::<BlockQ5K>(),
            QuantType::Q6K => size_of::<BlockQ6K>(),
        }
    }

    /// Bytes of one row of `cols` weights, or `None` when `cols` is not a
    /// multiple of the block size (or the size overflows).
    pub fn row_bytes(self, cols: usize) -> Option<usize> {
        if cols % self.block_weights() != 0 {
            return None;
        }
        (cols / self.block_weights()).checked_mul(self.block_bytes())
    }

    /// The activation format this weight type is multiplied with.
    pub fn activation(self) -> ActivationType {
        match self {
            QuantType::Q4_0 | QuantType::Q5_0 | QuantType::Q8_0 => ActivationType::Q8_0,
            QuantType::Q4_1 => ActivationType::Q8_1,
            QuantType::Q4K | QuantType::Q5K | QuantType::Q6K => ActivationType::Q8K,
        }
    }
}

impl core::fmt::Display for QuantType {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// The 8-bit format an activation vector is quantized to before a dot
/// product with quantized weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActivationType {
    /// [`BlockQ8_0`] (for Q4_0, Q5_0, Q8_0 weights).
    Q8_0,
    /// [`BlockQ8_1`] (for Q4_1 weights).
    Q8_1,
    /// [`BlockQ8K`] (for K-quant weights).
    Q8K,
}

impl ActivationType {
    /// Values per block.
    pub fn block_len(self) -> usize {
        match self {
            ActivationType::Q8_0 | ActivationType::Q8_1 => QK,
            ActivationType::Q8K => QK_K,
        }
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A block type that can be viewed in place in a byte buffer.
///
/// # Safety
///
/// Implementors are `#[repr(C)]`, have alignment 1, no padding, and every bit
/// pattern is a valid value (they are made of `u8`, `i8` and [`F16`] only).
/// The trait is sealed: only the block types of this module implement it.
pub unsafe trait Block: sealed::Sealed + Copy + 'static {
    /// Weights per block.
    const WEIGHTS: usize;
    /// The format.
    const TYPE: QuantType;
}

macro_rules! impl_block {
    ($t:ty, $n:expr, $q:expr) => {
        impl sealed::Sealed for $t {}
        // SAFETY: $t is repr(C), made only of u8/i8/F16 fields (alignment 1,
        // no padding: checked by the size asserts above), so any byte pattern
        // at any address is a valid value.
        unsafe impl Block for $t {
            const WEIGHTS: usize = $n;
            const TYPE: QuantType = $q;
        }
    };
}

impl_block!(BlockQ4_0, QK, QuantType::Q4_0);
impl_block!(BlockQ4_1, QK, QuantType::Q4_1);
impl_block!(BlockQ5_0, QK, QuantType::Q5_0);
impl_block!(BlockQ8_0, QK, QuantType::Q8_0);
impl_block!(BlockQ4K, QK_K, QuantType::Q4K);
impl_block!(BlockQ5K, QK_K, QuantType::Q5K);
impl_block!(BlockQ6K, QK_K, QuantType::Q6K);

/// Views a byte buffer as blocks, without copying.
///
/// Returns `None` when `bytes.len()` is not a multiple of the block size.
/// Any address works (blocks have alignment 1), so this is the way to compute
/// on tensors inside an mmapped GGUF file.
pub fn cast_blocks<B: Block>(bytes: &[u8]) -> Option<&[B]> {
    let size = core::mem::size_of::<B>();
    if bytes.len() % size != 0 {
        return None;
    }
    // SAFETY: `B: Block` guarantees alignment 1, no padding and that every
    // byte pattern is a valid `B`; the length is an exact multiple of
    // `size_of::<B>()`, so the new slice covers exactly the same bytes, with
    // the same lifetime and (shared) mutability.
    Some(unsafe { core::slice::from_raw_parts(bytes.as_ptr().cast::<B>(), bytes.len() / size) })
}

/// Views blocks as their bytes (the inverse of [`cast_blocks`]), for writing
/// quantized tensors out.
pub fn blocks_as_bytes<B: Block>(blocks: &[B]) -> &[u8] {
    // SAFETY: `B: Block` has no padding, so every byte of the slice is
    // initialized; u8 has alignment 1 and the length is the byte size.
    unsafe { core::slice::from_raw_parts(blocks.as_ptr().cast::<u8>(), core::mem::size_of_val(blocks)) }
}
