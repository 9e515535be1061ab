//! Cross-crate integration and simulation tests live in `tests/`; this library is empty.
