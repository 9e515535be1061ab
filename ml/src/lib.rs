//! On-device product recognition with tract-onnx.
//!
//! **Architecture Invariant:** nothing here downloads anything at run time. The model is a
//! file committed under `ml/models/` (see `ml/models/PROVENANCE.md`), identified by its
//! blake3 hash; a node refuses a model file whose hash is not the one it expects.
//!
//! The pipeline:
//! 1. [`preprocess`]: decode JPEG/PNG bytes, apply the EXIF orientation, centre-crop,
//!    resize to 224×224, RGB in `[0, 1]`, NCHW. The model graph itself applies the
//!    TF-Lite scaling `(x*255-127)/128`, so this crate never does.
//! 2. [`model::Model`]: one optimised tract plan, loaded once and reused, producing the
//!    1280-d pooled embedding (L2-normalised here) and the ImageNet logits.
//! 3. [`gallery::Gallery`]: the store's few-shot references (a few photos per SKU),
//!    cosine top-k with a calibrated threshold below which the answer is "unknown".
//!
//! [`augment`] holds the photo augmentations used by the evaluation, the benchmark and
//! enrolment from a single photo.

pub mod augment;
pub mod embedding;
pub mod gallery;
pub mod model;
pub mod preprocess;

pub use embedding::{DIM, Embedding, EmbeddingError};
pub use gallery::{DEFAULT_THRESHOLD, Gallery, GalleryError, Match, Recognition};
pub use model::{
    BUNDLED_MODEL_BLAKE3, InferError, LoadError, Model, ModelHash, bundled_model_path,
};
pub use preprocess::{DecodeError, INPUT_SIZE, decode, to_input};
