//! The EfficientNet-Lite0 model: one optimised tract plan, loaded once, identified by the
//! blake3 hash of its ONNX file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tract_onnx::prelude::*;

use crate::embedding::{DIM, Embedding, EmbeddingError};
use crate::preprocess::{DecodeError, INPUT_SIZE, decode, to_input};

/// blake3 of `ml/models/efficientnet_lite0.onnx`, the model this build ships.
pub const BUNDLED_MODEL_BLAKE3: &str =
    "e39544cd16e5ae28a892ece4aa907b9cfafa0777996089c69cfa57f0f171f7ea";

/// Number of ImageNet classes in the logits.
pub const CLASSES: usize = 1000;

/// The path of the committed model inside the source tree (tests, benches, dev nodes):
/// the tree this process runs in (its working directory or one above it), else the one
/// this crate was built from. Clones share one target directory (`.cargo/config.toml`),
/// and a build made in another clone that is gone since would name that clone's file.
pub fn bundled_model_path() -> PathBuf {
    const IN_TREE: &str = "ml/models/efficientnet_lite0.onnx";
    std::env::current_dir()
        .ok()
        .and_then(|cwd| {
            cwd.ancestors()
                .map(|dir| dir.join(IN_TREE))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(IN_TREE)
        })
}

/// A model version: the blake3 hash of the ONNX file, shown as 64 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ModelHash(pub [u8; 32]);

impl ModelHash {
    /// The hash of model file bytes.
    pub fn of(bytes: &[u8]) -> ModelHash {
        ModelHash(*blake3::hash(bytes).as_bytes())
    }

    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Option<ModelHash> {
        blake3::Hash::from_hex(s)
            .ok()
            .map(|h| ModelHash(*h.as_bytes()))
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }
}

impl fmt::Display for ModelHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Why a model could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error("reading model {path}: {source}")]
    Io {
        /// The model path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not the model the caller expects.
    #[error("model hash {got} does not match the expected {expected}; refusing it")]
    HashMismatch {
        /// Hash of the file.
        got: ModelHash,
        /// Hash the store (or build) names.
        expected: ModelHash,
    },
    /// tract could not parse, type or optimise the graph.
    #[error("model is not a runnable EfficientNet ONNX graph: {0}")]
    Tract(String),
}

/// Why inference failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InferError {
    /// The photo could not be decoded or preprocessed.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// tract failed while running the plan.
    #[error("running the model: {0}")]
    Run(String),
    /// The outputs do not have the expected shape.
    #[error("model output {name} has {got} values, expected {expected}")]
    OutputShape {
        /// Output name.
        name: &'static str,
        /// Values produced.
        got: usize,
        /// Values expected.
        expected: usize,
    },
    /// The embedding was degenerate.
    #[error(transparent)]
    Embedding(#[from] EmbeddingError),
}

/// What the model says about one photo.
#[derive(Debug, Clone)]
pub struct Output {
    /// L2-normalised pooled features.
    pub embedding: Embedding,
    /// ImageNet logits (1000 classes).
    pub logits: Vec<f32>,
}

impl Output {
    /// The ImageNet class with the highest logit.
    pub fn top1(&self) -> usize {
        let mut best = 0;
        for (i, &v) in self.logits.iter().enumerate() {
            if v > self.logits[best] {
                best = i;
            }
        }
        best
    }
}

/// A loaded model. Cheap to clone (the plan is shared) and usable from many threads.
#[derive(Clone)]
pub struct Model {
    plan: Arc<TypedRunnableModel>,
    hash: ModelHash,
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

impl Model {
    /// Loads and optimises the model at `path`. With `expected`, refuses a file whose
    /// blake3 hash differs (before parsing it).
    pub fn load(path: &Path, expected: Option<ModelHash>) -> Result<Model, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
            path: path.to_owned(),
            source,
        })?;
        Model::from_bytes(&bytes, expected)
    }

    /// Loads the model from ONNX bytes; see [`Model::load`].
    pub fn from_bytes(bytes: &[u8], expected: Option<ModelHash>) -> Result<Model, LoadError> {
        let hash = ModelHash::of(bytes);
        if let Some(expected) = expected
            && expected != hash
        {
            return Err(LoadError::HashMismatch {
                got: hash,
                expected,
            });
        }
        let side = INPUT_SIZE as usize;
        let plan = tract_onnx::onnx()
            .model_for_read(&mut std::io::Cursor::new(bytes))
            .and_then(|m| m.with_input_fact(0, f32::fact([1, 3, side, side]).into()))
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| LoadError::Tract(format!("{e:#}")))?;
        Ok(Model { plan, hash })
    }

    /// The model version.
    pub fn hash(&self) -> ModelHash {
        self.hash
    }

    /// Runs the model on a preprocessed `[1, 3, 224, 224]` input.
    pub fn run(&self, input: Tensor) -> Result<Output, InferError> {
        let outputs = self
            .plan
            .run(tvec!(input.into()))
            .map_err(|e| InferError::Run(format!("{e:#}")))?;
        let view =
            |i: usize, name: &'static str, expected: usize| -> Result<Vec<f32>, InferError> {
                let t = outputs.get(i).ok_or(InferError::OutputShape {
                    name,
                    got: 0,
                    expected,
                })?;
                let v = t
                    .to_plain_array_view::<f32>()
                    .map_err(|e| InferError::Run(format!("{e:#}")))?;
                if v.len() != expected {
                    return Err(InferError::OutputShape {
                        name,
                        got: v.len(),
                        expected,
                    });
                }
                Ok(v.iter().copied().collect())
            };
        let embedding = Embedding::normalised(&view(0, "embedding", DIM)?)?;
        let logits = view(1, "logits", CLASSES)?;
        Ok(Output { embedding, logits })
    }

    /// Decodes, preprocesses and runs one photo (JPEG or PNG bytes).
    pub fn run_bytes(&self, bytes: &[u8]) -> Result<Output, InferError> {
        self.run(to_input(&decode(bytes)?)?)
    }

    /// The embedding of one photo (JPEG or PNG bytes).
    pub fn embed(&self, bytes: &[u8]) -> Result<Embedding, InferError> {
        Ok(self.run_bytes(bytes)?.embedding)
    }

    /// The embedding of an already decoded image.
    pub fn embed_image(&self, image: &image::RgbImage) -> Result<Embedding, InferError> {
        Ok(self.run(to_input(image)?)?.embedding)
    }
}
