//! IEEE 754 half precision (`binary16`), as stored in GGUF block headers.
//!
//! Where it sits: every 32- or 256-weight block carries one or two f16 scales;
//! kernels turn them into f32 once per block. [`F16`] is a byte pair, not a
//! `u16`, so that the block structs built from it have alignment 1 and can be
//! viewed in place in any byte buffer (an mmapped GGUF file, a `Vec<u8>`
//! fetched by the browser) — see [`crate::quant::cast_blocks`].
//!
//! The conversions are written out here rather than taken from the `half`
//! crate: they are twenty lines, branch-light, usable in `const`-free
//! `no_std` code, and tested exhaustively against the definition (all 65,536
//! half values round-trip; f32 -> f16 picks the nearest half, ties to even).
//! The vectorized kernels use the CPU's own conversion (F16C on x86-64) and are
//! checked against these.

/// An IEEE 754 binary16 value stored as two little-endian bytes.
///
/// Alignment 1: see the module documentation.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct F16(pub [u8; 2]);

const _: () = assert!(core::mem::size_of::<F16>() == 2 && core::mem::align_of::<F16>() == 1);

impl F16 {
    /// Positive zero.
    pub const ZERO: F16 = F16([0, 0]);

    /// The value with these bits.
    #[inline(always)]
    pub const fn from_bits(bits: u16) -> F16 {
        F16(bits.to_le_bytes())
    }

    /// The raw bits.
    #[inline(always)]
    pub const fn to_bits(self) -> u16 {
        u16::from_le_bytes(self.0)
    }

    /// The nearest half to `x` (ties to even; overflow gives ±infinity; NaN
    /// stays NaN).
    #[inline]
    pub fn from_f32(x: f32) -> F16 {
        F16::from_bits(f32_to_f16_bits(x))
    }

    /// The exact f32 value of this half.
    #[inline(always)]
    pub fn to_f32(self) -> f32 {
        f16_bits_to_f32(self.to_bits())
    }
}

impl core::fmt::Debug for F16 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "F16({})", self.to_f32())
    }
}

impl From<F16> for f32 {
    #[inline(always)]
    fn from(h: F16) -> f32 {
        h.to_f32()
    }
}

/// Converts half bits to f32, exactly.
///
/// Shifting the exponent and mantissa bits of a half into place in an f32
/// gives the right value scaled by 2^-112 — for normal *and* subnormal halves,
/// since an f32 subnormal with those bits is exactly representable — so one
/// multiplication by 2^112 rebiases both. Only infinities and NaNs (exponent
/// 31) need a fix-up.
#[inline(always)]
pub fn f16_bits_to_f32(h: u16) -> f32 {
    let h = u32::from(h);
    let sign = (h & 0x8000) << 16;
    let em = (h & 0x7fff) << 13;
    let magnitude = if em >= 0x0f80_0000 {
        // Exponent 31: infinity or NaN (the payload is kept).
        em | 0x7f80_0000
    } else {
        // 2^112 has biased exponent 112 + 127 = 239 = 0xef.
        (f32::from_bits(em) * f32::from_bits(0x7780_0000)).to_bits()
    };
    f32::from_bits(magnitude | sign)
}

/// Converts an f32 to the bits of the nearest half, ties to even.
#[inline]
pub fn f32_to_f16_bits(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let abs = bits & 0x7fff_ffff;
    if abs >= 0x7f80_0000 {
        // Infinity, or NaN: keep the top of the payload and force it quiet so
        // that a NaN never turns into an infinity.
        let nan = if abs > 0x7f80_0000 { 0x0200 | ((abs >> 13) & 0x3ff) as u16 } else { 0 };
        return sign | 0x7c00 | nan;
    }
    if abs >= 0x477f_f000 {
        // At or above 65520 = halfway between the largest half (65504) and
        // 2^16: rounds to infinity.
        return sign | 0x7c00;
    }
    if abs < 0x3880_0000 {
        // Below 2^-14, the smallest normal half: the result is m * 2^-24 with
        // m = round(x * 2^24). Adding 0.5, whose ulp is 2^-24, lets the FPU do
        // the rounding (ties to even); m = 1024 is the smallest normal half,
        // which the bit pattern then encodes correctly.
        let sum = f32::from_bits(abs) + 0.5;
        return sign | (sum.to_bits() - 0x3f00_0000) as u16;
    }
    // Normal: rebias the exponent (127 -> 15, i.e. subtract 112 << 23), then
    // drop 13 mantissa bits rounding to nearest, ties to even. A carry out of
    // the mantissa correctly bumps the exponent.
    let v = abs - 0x3800_0000;
    let round = 0x0fff + ((v >> 13) & 1);
    sign | ((v + round) >> 13) as u16
}
