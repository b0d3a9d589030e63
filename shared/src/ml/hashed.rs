//! The hashed n-gram embedder (`hashed-ngram`): a featurizer with no model file.
//!
//! Text is lower-cased and split into words (runs of alphanumeric characters; every other
//! non-space character is a word of its own, so `{`, `=` or `$` count). Features are the
//! character 3- to 5-grams of each word padded with a space on both sides, and the word
//! unigrams and bigrams. Each feature is hashed (64-bit FNV-1a with a per-kind seed) into one
//! of `dim` buckets with a sign taken from the hash (the "hashing trick" with signed buckets,
//! so collisions cancel on average instead of piling up). The bucket sums are
//! square-root damped (`sign(x)·√|x|`, so a repeated n-gram does not dominate) and the vector
//! is L2-normalised.
//!
//! It needs no vocabulary and no weights, costs a few microseconds for a short prompt,
//! and builds everywhere (wasm included): the edge Worker and zero-config centroid routing
//! use it, and routers can be trained on it (the trainer's `--embedder hashed-ngram`).
//! The embedding space is fully described by its id, `hashed-ngram-v1-<dim>`, so a router
//! artifact trained on it can always be served: [`HashedNgramEmbedder::from_id`] rebuilds it.
//!
//! Only the first [`MAX_CHARS`] characters of a prompt are read, which bounds the cost of a
//! pathological prompt; routing signal lives in the start of a prompt anyway.

use super::embed::{EmbedError, Embedder, l2_normalize};

/// Characters of a prompt the embedder reads at most.
pub const MAX_CHARS: usize = 8192;
/// The default dimension.
pub const DEFAULT_DIM: usize = 256;
/// Id prefix; the dimension follows.
pub const ID_PREFIX: &str = "hashed-ngram-v1-";

const CHAR_NGRAMS: std::ops::RangeInclusive<usize> = 3..=5;
const SEED_CHAR: u64 = 0x9e37_79b9_7f4a_7c15;
const SEED_WORD: u64 = 0xc2b2_ae3d_27d4_eb4f;
const SEED_BIGRAM: u64 = 0x1656_67b1_9e37_79f9;

/// The hashed character/word n-gram embedder. See the module docs.
#[derive(Debug, Clone)]
pub struct HashedNgramEmbedder {
    dim: usize,
    id: String,
}

impl Default for HashedNgramEmbedder {
    /// The embedder with [`DEFAULT_DIM`] buckets.
    fn default() -> Self {
        HashedNgramEmbedder {
            dim: DEFAULT_DIM,
            id: format!("{ID_PREFIX}{DEFAULT_DIM}"),
        }
    }
}

impl HashedNgramEmbedder {
    /// An embedder with `dim` buckets (at least 8).
    pub fn new(dim: usize) -> Result<Self, EmbedError> {
        if !(8..=1 << 20).contains(&dim) {
            return Err(EmbedError::Load {
                path: format!("{ID_PREFIX}{dim}"),
                message: "the hashed-ngram dimension must be between 8 and 1048576".into(),
            });
        }
        Ok(HashedNgramEmbedder {
            dim,
            id: format!("{ID_PREFIX}{dim}"),
        })
    }

    /// The embedder an id such as `hashed-ngram-v1-256` names, if it names one.
    pub fn from_id(id: &str) -> Option<Self> {
        let dim = id.strip_prefix(ID_PREFIX)?.parse().ok()?;
        Self::new(dim).ok()
    }

    fn add(&self, acc: &mut [f32], seed: u64, parts: &[&str]) {
        let mut h = seed ^ 0xcbf2_9ce4_8422_2325;
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                h = fnv_byte(h, 0x1f);
            }
            for b in p.bytes() {
                h = fnv_byte(h, b);
            }
        }
        // FNV's low bits mix poorly for short inputs: finish with a 64-bit avalanche.
        let h = mix64(h);
        let bucket = ((h >> 1) % self.dim as u64) as usize;
        acc[bucket] += if h & 1 == 0 { 1.0 } else { -1.0 };
    }
}

fn fnv_byte(h: u64, b: u8) -> u64 {
    (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
}

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Splits lower-cased text into words: alphanumeric runs, and each other visible character.
fn words(text: &str, out: &mut Vec<String>) {
    let mut cur = String::new();
    for c in text.chars().take(MAX_CHARS) {
        if c.is_alphanumeric() {
            cur.extend(c.to_lowercase());
        } else {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            if !c.is_whitespace() {
                out.push(c.to_string());
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
}

impl Embedder for HashedNgramEmbedder {
    fn id(&self) -> &str {
        &self.id
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn embed(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        let mut acc = vec![0f32; self.dim];
        let mut ws = Vec::new();
        words(text, &mut ws);
        let mut padded = String::new();
        let mut bounds: Vec<usize> = Vec::new();
        for (i, w) in ws.iter().enumerate() {
            self.add(&mut acc, SEED_WORD, &[w]);
            if i > 0 {
                self.add(&mut acc, SEED_BIGRAM, &[&ws[i - 1], w]);
            }
            if w.chars().count() == 1 && !w.chars().all(char::is_alphanumeric) {
                continue; // punctuation: the word feature above is enough
            }
            padded.clear();
            padded.push(' ');
            padded.push_str(w);
            padded.push(' ');
            bounds.clear();
            bounds.extend(padded.char_indices().map(|(i, _)| i));
            bounds.push(padded.len());
            let n_chars = bounds.len() - 1;
            for n in CHAR_NGRAMS {
                if n > n_chars {
                    break;
                }
                for start in 0..=n_chars - n {
                    self.add(
                        &mut acc,
                        SEED_CHAR,
                        &[&padded[bounds[start]..bounds[start + n]]],
                    );
                }
            }
        }
        for x in acc.iter_mut() {
            *x = x.signum() * x.abs().sqrt();
        }
        l2_normalize(&mut acc);
        Ok(acc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::embed::cosine;

    #[test]
    fn deterministic_normalised_and_similarity_preserving() {
        let e = HashedNgramEmbedder::new(256).unwrap();
        assert_eq!(e.id(), "hashed-ngram-v1-256");
        let a = e
            .embed("Write a Python function that reverses a list")
            .unwrap();
        let a2 = e
            .embed("write a python function that reverses a list")
            .unwrap();
        let b = e
            .embed("Write a Python function that sorts a list")
            .unwrap();
        let c = e.embed("Who won the 1998 football world cup?").unwrap();
        assert_eq!(a.len(), 256);
        assert!((a.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-4);
        assert_eq!(a, a2, "case-insensitive and deterministic");
        assert!(cosine(&a, &b) > cosine(&a, &c) + 0.2);
        assert_eq!(e.embed("").unwrap(), vec![0.0; 256]);
        // Non-ASCII text hashes without panicking on char boundaries.
        let u = e
            .embed("Überprüfe die Gleichung: x² + 2x = 0 — 数学")
            .unwrap();
        assert!((u.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-4);
    }

    #[test]
    fn id_round_trip() {
        let e = HashedNgramEmbedder::from_id("hashed-ngram-v1-64").unwrap();
        assert_eq!(e.dim(), 64);
        assert!(HashedNgramEmbedder::from_id("hashed-ngram-v1-x").is_none());
        assert!(HashedNgramEmbedder::from_id("static-minilm-pca128").is_none());
        assert!(HashedNgramEmbedder::new(4).is_err());
    }
}
