//! The few-shot gallery: L2-normalised reference embeddings, each labelled with a SKU,
//! searched by cosine similarity (brute force: 10,000 references are a few milliseconds).

use crate::embedding::{DIM, Embedding, dot};
use crate::model::ModelHash;

/// Cosine score below which the best match is reported as unknown.
///
/// Calibrated on the evaluation in `tests/fewshot.rs` (held-out augmented views of 12
/// enrolled objects against 5 never-enrolled ones): the lowest correct best score was
/// 0.63 and the highest never-enrolled best score 0.39; 0.50 sits between them. Shop
/// products that look alike (two flavours of one brand) score closer than these photos,
/// so a store may raise it.
pub const DEFAULT_THRESHOLD: f32 = 0.50;

/// Why a reference could not be added.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GalleryError {
    /// The reference was computed by a different model than the gallery's.
    #[error("reference made by model {got}, gallery uses {expected}")]
    WrongModel {
        /// The reference's model.
        got: ModelHash,
        /// The gallery's model.
        expected: ModelHash,
    },
    /// The embedding has the wrong length.
    #[error("embedding has {0} dimensions, expected {DIM}")]
    WrongDim(usize),
}

/// One scored SKU.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Match {
    /// The product.
    pub sku: String,
    /// Best cosine similarity among the SKU's references.
    pub score: f32,
}

/// The answer to "what is this photo?".
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Recognition {
    /// Up to `k` SKUs, best first, one entry per SKU.
    pub matches: Vec<Match>,
    /// Whether the best score reaches the threshold.
    pub known: bool,
}

/// References of one model, stored contiguously for a fast scan.
#[derive(Debug, Clone)]
pub struct Gallery {
    model: ModelHash,
    threshold: f32,
    ids: Vec<String>,
    /// Per reference, an index into `sku_names`.
    sku_of: Vec<usize>,
    sku_names: Vec<String>,
    sku_index: std::collections::HashMap<String, usize>,
    data: Vec<f32>,
}

impl Gallery {
    /// An empty gallery for embeddings of `model`, with [`DEFAULT_THRESHOLD`].
    pub fn new(model: ModelHash) -> Gallery {
        Gallery {
            model,
            threshold: DEFAULT_THRESHOLD,
            ids: Vec::new(),
            sku_of: Vec::new(),
            sku_names: Vec::new(),
            sku_index: std::collections::HashMap::new(),
            data: Vec::new(),
        }
    }

    /// Uses `threshold` instead of the default.
    pub fn with_threshold(mut self, threshold: f32) -> Gallery {
        self.threshold = threshold;
        self
    }

    /// The model whose embeddings this gallery holds.
    pub fn model(&self) -> ModelHash {
        self.model
    }

    /// The known/unknown threshold.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// Number of references.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no references.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Adds reference `id` for `sku`. References of another model are refused.
    pub fn add(
        &mut self,
        id: &str,
        sku: &str,
        model: ModelHash,
        embedding: &Embedding,
    ) -> Result<(), GalleryError> {
        if model != self.model {
            return Err(GalleryError::WrongModel {
                got: model,
                expected: self.model,
            });
        }
        if embedding.as_slice().len() != DIM {
            return Err(GalleryError::WrongDim(embedding.as_slice().len()));
        }
        let next = self.sku_names.len();
        let index = *self.sku_index.entry(sku.to_owned()).or_insert(next);
        if index == next {
            self.sku_names.push(sku.to_owned());
        }
        self.ids.push(id.to_owned());
        self.sku_of.push(index);
        self.data.extend_from_slice(embedding.as_slice());
        Ok(())
    }

    /// The best `k` SKUs for `query` (one entry per SKU, its best reference) and whether
    /// the best reaches the threshold.
    pub fn recognize(&self, query: &Embedding, k: usize) -> Recognition {
        let q = query.as_slice();
        // Best score per SKU, then the top k of those.
        let mut per_sku = vec![f32::NEG_INFINITY; self.sku_names.len()];
        if q.len() == DIM {
            for (row, &sku) in self.data.chunks_exact(DIM).zip(&self.sku_of) {
                let score = dot(q, row);
                if score > per_sku[sku] {
                    per_sku[sku] = score;
                }
            }
        }
        let mut ranked: Vec<(usize, f32)> = per_sku
            .into_iter()
            .enumerate()
            .filter(|(_, s)| s.is_finite())
            .collect();
        let k = k.max(1);
        if ranked.len() > k {
            ranked.select_nth_unstable_by(k - 1, |a, b| b.1.total_cmp(&a.1));
            ranked.truncate(k);
        }
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let best: Vec<Match> = ranked
            .into_iter()
            .map(|(i, score)| Match {
                sku: self.sku_names[i].clone(),
                score,
            })
            .collect();
        let known = best.first().is_some_and(|m| m.score >= self.threshold);
        Recognition {
            matches: best,
            known,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(i: usize) -> Embedding {
        let mut v = vec![0.0; DIM];
        v[i] = 1.0;
        v[(i + 1) % DIM] = 0.2;
        match Embedding::normalised(&v) {
            Ok(e) => e,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn top_k_is_per_sku_and_thresholded() -> Result<(), GalleryError> {
        let m = ModelHash([1; 32]);
        let mut g = Gallery::new(m);
        g.add("r1", "A", m, &unit(0))?;
        g.add("r2", "A", m, &unit(1))?;
        g.add("r3", "B", m, &unit(5))?;
        let r = g.recognize(&unit(0), 5);
        assert_eq!(r.matches.len(), 2, "one entry per SKU");
        assert_eq!(r.matches[0].sku, "A");
        assert!((r.matches[0].score - 1.0).abs() < 1e-5);
        assert!(r.known);
        let r = g.recognize(&unit(100), 1);
        assert_eq!(r.matches.len(), 1);
        assert!(!r.known, "orthogonal query is unknown");
        Ok(())
    }

    #[test]
    fn refuses_other_models() {
        let mut g = Gallery::new(ModelHash([1; 32]));
        assert!(matches!(
            g.add("r", "A", ModelHash([2; 32]), &unit(0)),
            Err(GalleryError::WrongModel { .. })
        ));
        assert!(g.is_empty());
        let r = g.recognize(&unit(0), 3);
        assert!(r.matches.is_empty());
        assert!(!r.known);
    }
}
