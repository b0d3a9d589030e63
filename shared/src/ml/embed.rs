//! The embedding interface shared by every embedder and router.

/// Why an embedding could not be computed or an embedder not loaded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EmbedError {
    #[error("embedding model '{path}' could not be loaded: {message}")]
    Load { path: String, message: String },
    #[error("tokenizer failed: {0}")]
    Tokenize(String),
    #[error("inference failed: {0}")]
    Inference(String),
}

/// Turns a prompt into a fixed-size, L2-normalised vector.
pub trait Embedder: Send + Sync {
    /// Stable identifier of the embedding space (e.g. `minilm-l6-v2`, `static-minilm-pca128`):
    /// router artifacts record it and refuse to load against another space.
    fn id(&self) -> &str;

    /// Vector length.
    fn dim(&self) -> usize;

    /// The embedding of `text`, L2-normalised (a zero vector only for text with no tokens).
    fn embed(&self, text: &str) -> Result<Vec<f32>, EmbedError>;

    /// Embeddings of several texts; implementations may batch.
    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        texts.iter().map(|t| self.embed(t)).collect()
    }
}

/// L2-normalises `v` in place (leaves a zero vector as it is).
pub fn l2_normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Cosine similarity of two vectors (dot product when both are normalised).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_and_cosine() {
        let mut v = vec![3.0, 4.0];
        l2_normalize(&mut v);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        assert!((cosine(&[1.0, 0.0], &[0.0, 1.0])).abs() < 1e-6);
        assert!((cosine(&[1.0, 1.0], &[2.0, 2.0]) - 1.0).abs() < 1e-6);
        let mut z = vec![0.0, 0.0];
        l2_normalize(&mut z);
        assert_eq!(z, vec![0.0, 0.0]);
        assert_eq!(cosine(&z, &[1.0, 0.0]), 0.0);
    }
}
