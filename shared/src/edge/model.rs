//! The edge model: a linear classifier over hashed n-grams and the cheap signals, scoring
//! the four tiers.
//!
//! Features: the prompt (see [`super::prompt`]) is lower-cased and split into words (runs
//! of alphanumerics; any other non-space character is a word of its own); the word
//! unigrams, word bigrams and character trigrams of each space-padded word are hashed
//! (FNV-1a, a seed per kind) into `buckets` (a power of two) with a sign bit, square-root
//! damped and L2-normalised; the [`Signals`] scores are appended as dense features.
//!
//! Scores: `logit[c] = bias[c] + scale[c] · Σ_b x_b · w8[b][c] + Σ_s f_s · ws[s][c]` with
//! int8 n-gram weights (one scale per class) and f32 signal weights; probabilities are the
//! softmax. 16,384 buckets × 4 tiers is 64 KiB of weights.
//!
//! File format (`RQEDGE01`, little-endian): magic `RQEDGE\0\x01`, then `u32` buckets,
//! `u32` signal features, `u32` classes; per class `f32` bias then `f32` scale; the signal
//! weights `f32[signals][classes]`; the n-gram weights `i8[buckets][classes]`; last the
//! SHA-256 of everything before it. Classes are [`Tier::ALL`] in order.

// Per-class loops over fixed-size arrays read best with an index.
#![allow(clippy::needless_range_loop)]

use sha2::{Digest, Sha256};

use super::signals::{N_FEATURES, Signals};
use crate::ml::centroid::Tier;

const MAGIC: &[u8; 8] = b"RQEDGE\0\x01";
const SEED_WORD: u64 = 0x51_7cc1_b727_220a;
const SEED_BIGRAM: u64 = 0x2545_f491_4f6c_dd1d;
const SEED_CHAR: u64 = 0x9e37_79b9_7f4a_7c15;
/// The classes, in file order.
pub const CLASSES: usize = 4;

/// Why a model file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("not an edge model file (bad magic)")]
    Magic,
    #[error("edge model file is truncated or has trailing bytes")]
    Size,
    #[error("edge model checksum mismatch: the file is corrupt or was altered")]
    Checksum,
    #[error("edge model shape unsupported: {0}")]
    Shape(String),
}

fn fnv(seed: u64, parts: &[&str]) -> u64 {
    let mut h = seed ^ 0xcbf2_9ce4_8422_2325;
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h = (h ^ 0x1f).wrapping_mul(0x100_0000_01b3);
        }
        for b in p.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    // Final avalanche so low bits (the bucket) depend on every input byte.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// Sparse hashed n-gram features of `text`: `(bucket, value)` pairs, buckets ascending and
/// unique, L2-normalised. `buckets` must be a power of two.
pub fn ngram_features(text: &str, buckets: usize) -> Vec<(u32, f32)> {
    let lower = text.to_lowercase();
    let mut words: Vec<&str> = Vec::new();
    let mut start = None;
    for (i, c) in lower.char_indices() {
        if c.is_alphanumeric() {
            start.get_or_insert(i);
            continue;
        }
        if let Some(s) = start.take() {
            words.push(&lower[s..i]);
        }
        if !c.is_whitespace() {
            words.push(&lower[i..i + c.len_utf8()]);
        }
    }
    if let Some(s) = start {
        words.push(&lower[s..]);
    }
    let mask = (buckets - 1) as u64;
    let mut raw: Vec<(u32, f32)> = Vec::with_capacity(words.len() * 6);
    let mut push = |h: u64| {
        let sign = if h & (1 << 63) == 0 { 1.0 } else { -1.0 };
        raw.push(((h & mask) as u32, sign));
    };
    let mut padded = String::new();
    for (i, w) in words.iter().enumerate() {
        push(fnv(SEED_WORD, &[w]));
        if i > 0 {
            push(fnv(SEED_BIGRAM, &[words[i - 1], w]));
        }
        if w.chars().count() >= 2 {
            padded.clear();
            padded.push(' ');
            padded.push_str(w);
            padded.push(' ');
            let idx: Vec<usize> = padded
                .char_indices()
                .map(|(i, _)| i)
                .chain([padded.len()])
                .collect();
            for win in idx.windows(4) {
                push(fnv(SEED_CHAR, &[&padded[win[0]..win[3]]]));
            }
        }
    }
    raw.sort_unstable_by_key(|(b, _)| *b);
    let mut out: Vec<(u32, f32)> = Vec::with_capacity(raw.len());
    for (b, v) in raw {
        match out.last_mut() {
            Some((lb, lv)) if *lb == b => *lv += v,
            _ => out.push((b, v)),
        }
    }
    out.retain(|(_, v)| *v != 0.0);
    let mut norm = 0.0f32;
    for (_, v) in &mut out {
        *v = v.signum() * v.abs().sqrt();
        norm += *v * *v;
    }
    if norm > 0.0 {
        let inv = norm.sqrt().recip();
        for (_, v) in &mut out {
            *v *= inv;
        }
    }
    out
}

/// A loaded edge model. See the module docs.
#[derive(Debug, Clone)]
pub struct EdgeModel {
    buckets: usize,
    bias: [f32; CLASSES],
    scale: [f32; CLASSES],
    signal_w: Vec<[f32; CLASSES]>,
    ngram_w: Vec<[i8; CLASSES]>,
    sha256: String,
}

/// Float weights, as the trainer fits them.
#[derive(Debug, Clone)]
pub struct FloatWeights {
    pub buckets: usize,
    pub bias: [f32; CLASSES],
    pub signal_w: Vec<[f32; CLASSES]>,
    pub ngram_w: Vec<[f32; CLASSES]>,
}

impl FloatWeights {
    /// Scores with float weights (what the trainer optimises).
    pub fn logits(&self, ngrams: &[(u32, f32)], signals: &[f32; N_FEATURES]) -> [f32; CLASSES] {
        let mut z = self.bias;
        for (b, x) in ngrams {
            let w = &self.ngram_w[*b as usize];
            for c in 0..CLASSES {
                z[c] += x * w[c];
            }
        }
        for (s, f) in signals.iter().enumerate() {
            for c in 0..CLASSES {
                z[c] += f * self.signal_w[s][c];
            }
        }
        z
    }

    /// The model file: n-gram weights quantised to int8 per class.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut scale = [0f32; CLASSES];
        for w in &self.ngram_w {
            for c in 0..CLASSES {
                scale[c] = scale[c].max(w[c].abs());
            }
        }
        for s in &mut scale {
            *s = if *s > 0.0 { *s / 127.0 } else { 1.0 };
        }
        let mut out = Vec::with_capacity(64 + self.buckets * CLASSES);
        out.extend_from_slice(MAGIC);
        for n in [self.buckets, N_FEATURES, CLASSES] {
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        for c in 0..CLASSES {
            out.extend_from_slice(&self.bias[c].to_le_bytes());
            out.extend_from_slice(&scale[c].to_le_bytes());
        }
        for w in &self.signal_w {
            for x in w {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        for w in &self.ngram_w {
            for c in 0..CLASSES {
                let q = (w[c] / scale[c]).round().clamp(-127.0, 127.0) as i8;
                out.push(q as u8);
            }
        }
        let digest = Sha256::digest(&out);
        out.extend_from_slice(&digest);
        out
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl EdgeModel {
    /// Reads and verifies a model file (see the module docs).
    pub fn from_bytes(bytes: &[u8]) -> Result<EdgeModel, ModelError> {
        if bytes.len() < 8 + 12 + 32 || &bytes[..8] != MAGIC {
            return Err(ModelError::Magic);
        }
        let (body, digest) = bytes.split_at(bytes.len() - 32);
        if Sha256::digest(body).as_slice() != digest {
            return Err(ModelError::Checksum);
        }
        let u32_at = |o: usize| {
            let mut a = [0u8; 4];
            a.copy_from_slice(&body[o..o + 4]);
            u32::from_le_bytes(a) as usize
        };
        let f32_at = |o: usize| {
            let mut a = [0u8; 4];
            a.copy_from_slice(&body[o..o + 4]);
            f32::from_le_bytes(a)
        };
        let (buckets, signals, classes) = (u32_at(8), u32_at(12), u32_at(16));
        if !buckets.is_power_of_two() || !(64..=1 << 20).contains(&buckets) {
            return Err(ModelError::Shape(format!(
                "{buckets} buckets (a power of two, 64..=1048576)"
            )));
        }
        if signals != N_FEATURES || classes != CLASSES {
            return Err(ModelError::Shape(format!(
                "{signals} signal features and {classes} classes (this build reads {N_FEATURES} and {CLASSES})"
            )));
        }
        let header = 20 + CLASSES * 8 + N_FEATURES * CLASSES * 4;
        if body.len() != header + buckets * CLASSES {
            return Err(ModelError::Size);
        }
        let mut bias = [0f32; CLASSES];
        let mut scale = [0f32; CLASSES];
        for c in 0..CLASSES {
            bias[c] = f32_at(20 + c * 8);
            scale[c] = f32_at(24 + c * 8);
        }
        let mut signal_w = vec![[0f32; CLASSES]; N_FEATURES];
        let base = 20 + CLASSES * 8;
        for (s, w) in signal_w.iter_mut().enumerate() {
            for (c, x) in w.iter_mut().enumerate() {
                *x = f32_at(base + (s * CLASSES + c) * 4);
            }
        }
        let ngram_w = body[header..]
            .chunks_exact(CLASSES)
            .map(|ch| {
                let mut w = [0i8; CLASSES];
                for (c, b) in ch.iter().enumerate() {
                    w[c] = *b as i8;
                }
                w
            })
            .collect();
        if bias.iter().chain(&scale).any(|x| !x.is_finite())
            || signal_w.iter().flatten().any(|x| !x.is_finite())
        {
            return Err(ModelError::Shape("non-finite weights".into()));
        }
        Ok(EdgeModel {
            buckets,
            bias,
            scale,
            signal_w,
            ngram_w,
            sha256: hex(digest),
        })
    }

    pub fn buckets(&self) -> usize {
        self.buckets
    }

    /// The SHA-256 the file carries (its identity, for logs and hints).
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Tier probabilities, in [`Tier::ALL`] order.
    pub fn predict(&self, text: &str, signals: &Signals) -> [f32; CLASSES] {
        let ngrams = ngram_features(text, self.buckets);
        let mut acc = [0f32; CLASSES];
        for (b, x) in &ngrams {
            let w = &self.ngram_w[*b as usize];
            for c in 0..CLASSES {
                acc[c] += x * f32::from(w[c]);
            }
        }
        let mut z = [0f32; CLASSES];
        let f = signals.features();
        for c in 0..CLASSES {
            z[c] = self.bias[c] + self.scale[c] * acc[c];
            for (s, fs) in f.iter().enumerate() {
                z[c] += fs * self.signal_w[s][c];
            }
        }
        softmax(z)
    }
}

/// Softmax of logits.
pub fn softmax(z: [f32; CLASSES]) -> [f32; CLASSES] {
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut p = z.map(|x| (x - max).exp());
    let sum: f32 = p.iter().sum();
    for x in &mut p {
        *x /= sum;
    }
    p
}

/// The most likely tier and its probability.
pub fn argmax(p: &[f32; CLASSES]) -> (Tier, f32) {
    let mut best = 0;
    for c in 1..CLASSES {
        if p[c] > p[best] {
            best = c;
        }
    }
    (Tier::ALL[best], p[best])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights(buckets: usize) -> FloatWeights {
        let mut rng = fastrand::Rng::with_seed(7);
        FloatWeights {
            buckets,
            bias: [0.1, 0.0, -0.1, -0.2],
            signal_w: (0..N_FEATURES)
                .map(|_| [0; CLASSES].map(|_| rng.f32() - 0.5))
                .collect(),
            ngram_w: (0..buckets)
                .map(|_| [0; CLASSES].map(|_| rng.f32() * 2.0 - 1.0))
                .collect(),
        }
    }

    #[test]
    fn features_are_sparse_sorted_and_normalised() {
        let f = ngram_features("Hello, hello world! fn main() {}", 1024);
        assert!(f.windows(2).all(|w| w[0].0 < w[1].0));
        let norm: f32 = f.iter().map(|(_, v)| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-4, "{norm}");
        assert!(ngram_features("", 1024).is_empty());
        assert_eq!(
            ngram_features("Same TEXT", 1024),
            ngram_features("same text", 1024)
        );
    }

    #[test]
    fn file_round_trip_matches_float_scores() {
        let w = weights(256);
        let model = EdgeModel::from_bytes(&w.to_bytes()).unwrap();
        assert_eq!(model.buckets(), 256);
        let text = "Prove that the square root of two is irrational.";
        let view = super::super::prompt::PromptView {
            text: text.into(),
            total_chars: text.len(),
            messages: 1,
            user_turns: 1,
            ..Default::default()
        };
        let signals = Signals::of(&view);
        let float = softmax(w.logits(&ngram_features(text, 256), &signals.features()));
        let quant = model.predict(text, &signals);
        for c in 0..CLASSES {
            assert!((float[c] - quant[c]).abs() < 0.02, "{float:?} vs {quant:?}");
        }
        let sum: f32 = quant.iter().sum();
        assert!((sum - 1.0).abs() < 1e-5);
    }

    #[test]
    fn tampered_or_truncated_files_are_refused() {
        let bytes = weights(64).to_bytes();
        let mut t = bytes.clone();
        let mid = t.len() / 2;
        t[mid] ^= 1;
        assert_eq!(EdgeModel::from_bytes(&t).unwrap_err(), ModelError::Checksum);
        assert_eq!(
            EdgeModel::from_bytes(&bytes[..bytes.len() - 1]).unwrap_err(),
            ModelError::Checksum
        );
        assert_eq!(
            EdgeModel::from_bytes(b"nonsense").unwrap_err(),
            ModelError::Magic
        );
        let mut w = weights(64);
        w.buckets = 100;
        w.ngram_w.truncate(100);
        assert!(matches!(
            EdgeModel::from_bytes(&w.to_bytes()),
            Err(ModelError::Shape(_))
        ));
    }
}
