//! A monotonic clock that works on every target: `std::time::Instant` on
//! native, the browser's `performance.now()` in wasm32 (where the standard
//! library's clock panics).

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use std::time::Instant;
#[cfg(target_arch = "wasm32")]
pub(crate) use web_time::Instant;
