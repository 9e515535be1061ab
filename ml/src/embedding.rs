//! L2-normalised embeddings and their little-endian byte encoding (how the CRDT stores them).

/// Length of an EfficientNet-Lite0 pooled embedding.
pub const DIM: usize = 1280;

/// Why bytes could not be read back as an embedding.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmbeddingError {
    /// The byte length is not `4 * DIM`.
    #[error("embedding is {got} bytes, expected {expected}")]
    BadLength {
        /// Bytes received.
        got: usize,
        /// Bytes expected.
        expected: usize,
    },
    /// A component is NaN or infinite, or the vector is all zeros.
    #[error("embedding is not a finite non-zero vector")]
    NotFinite,
}

/// A unit-length embedding of one photo.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding(Vec<f32>);

impl Embedding {
    /// Normalises `raw` to unit length. Fails on a zero or non-finite vector.
    pub fn normalised(raw: &[f32]) -> Result<Embedding, EmbeddingError> {
        if raw.iter().any(|x| !x.is_finite()) {
            return Err(EmbeddingError::NotFinite);
        }
        let norm = raw.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm <= f32::MIN_POSITIVE {
            return Err(EmbeddingError::NotFinite);
        }
        Ok(Embedding(raw.iter().map(|x| x / norm).collect()))
    }

    /// The components.
    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }

    /// Cosine similarity with `other` (a dot product, both being unit length).
    pub fn cosine(&self, other: &Embedding) -> f32 {
        dot(&self.0, &other.0)
    }

    /// f32 little-endian bytes, `4 * len` of them.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        self.0.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    /// Reads f32 little-endian bytes of a `DIM`-long embedding and re-normalises them.
    pub fn from_le_bytes(bytes: &[u8]) -> Result<Embedding, EmbeddingError> {
        if bytes.len() != 4 * DIM {
            return Err(EmbeddingError::BadLength {
                got: bytes.len(),
                expected: 4 * DIM,
            });
        }
        let raw: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Embedding::normalised(&raw)
    }
}

/// Dot product of two equal-length slices (4 independent accumulators so it vectorises).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, ra) = a.as_chunks::<8>();
    let (cb, rb) = b.as_chunks::<8>();
    for (x, y) in ca.iter().zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_and_normalise() -> Result<(), EmbeddingError> {
        let raw: Vec<f32> = (0..DIM).map(|i| (i % 7) as f32 - 3.0).collect();
        let e = Embedding::normalised(&raw)?;
        let norm: f32 = e.as_slice().iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-5);
        let back = Embedding::from_le_bytes(&e.to_le_bytes())?;
        assert!((back.cosine(&e) - 1.0).abs() < 1e-5);
        Ok(())
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(
            Embedding::from_le_bytes(&[0; 12]),
            Err(EmbeddingError::BadLength { got: 12, .. })
        ));
        assert!(Embedding::normalised(&[0.0; 4]).is_err());
        assert!(Embedding::normalised(&[f32::NAN, 1.0]).is_err());
    }

    #[test]
    fn dot_matches_naive() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..37).map(|i| 3.0 - i as f32).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-2);
    }
}
