//! On-device product recognition with tract-onnx. Filled by the ML milestone.
//!
//! **Architecture Invariant:** nothing here downloads anything at run time.
