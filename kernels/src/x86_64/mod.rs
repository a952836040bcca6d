//! x86-64 kernels. One set today, [`avx2`] (AVX2 + FMA + F16C: Haswell and
//! later, Zen and later), chosen at run time by [`crate::dispatch`].

pub mod avx2;
