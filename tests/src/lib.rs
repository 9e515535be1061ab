//! Cross-crate integration and simulation tests live in `tests/`; this library holds
//! what they share with the fuzz targets.
//!
//! - [`member_fuzz`]: the structure-aware trust harness (forged changes from members).

pub mod member_fuzz;
