//! Constrained generation: prompt -> prefill -> masked decode loop -> result.
