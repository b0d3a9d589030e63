//! Router math: from a prompt embedding to a predicted quality per model.
//!
//! Everything here is plain `f32` arithmetic on weights decoded once at load
//! ([`LoadedRouter::from_bytes`]); a prediction allocates a few small vectors and never
//! fails on well-formed input (dimensions are checked at load and per call).

use std::sync::Arc;

use super::artifact::{
    ArtifactError, DenseParams, EmbedderSpec, HybridMode, ModelSpec, RouterArtifact, RouterParams,
    Verification, VerifyPolicy, verify,
};
use super::strategies::MlStrategyName;

/// A user-supplied scorer (`llmrouter-custom`): an embedding in, one score per model out
/// (in the artifact's model order), read as predicted qualities. Called concurrently from
/// every request; the ONNX implementation is `custom_onnx::OnnxScorer` (feature `onnx`).
pub trait ExternalScorer: Send + Sync {
    fn scores(&self, embedding: &[f32]) -> Result<Vec<f32>, String>;
}

/// Loads the scorer a `custom_onnx` artifact names: `(path of the model file, its bytes,
/// the embedding dimension, the number of models)`; the bytes' sha256 has been checked
/// against the artifact, and the loader checks the graph against the dimension and model
/// count. [`default_scorer_loader`] gives the one of this build.
pub type ScorerLoader =
    dyn Fn(&str, &[u8], usize, usize) -> Result<Arc<dyn ExternalScorer>, String> + Send + Sync;

/// The largest custom router model file loaded (64 MiB): a scorer over an embedding is
/// small, and the file is read into memory.
pub const MAX_CUSTOM_MODEL_BYTES: u64 = 64 * 1024 * 1024;

/// The custom-router loader of this build: the ONNX scorer with the `onnx` feature, none
/// without (an `llmrouter-custom` artifact then fails to load with a clear message).
pub fn default_scorer_loader() -> Option<Arc<ScorerLoader>> {
    #[cfg(feature = "onnx")]
    {
        Some(super::custom_onnx::loader())
    }
    #[cfg(not(feature = "onnx"))]
    {
        None
    }
}

/// Dot product written for auto-vectorisation (independent accumulators).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let chunks = n / 8;
    for i in 0..chunks {
        let (x, y) = (&a[i * 8..i * 8 + 8], &b[i * 8..i * 8 + 8]);
        for j in 0..8 {
            acc[j] += x[j] * y[j];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for i in chunks * 8..n {
        s += a[i] * b[i];
    }
    s
}

/// Logistic function.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// A dense layer `y = W·x + b`, `W` row-major `out × in`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
    pub inputs: usize,
}

impl Dense {
    fn from_params(p: &DenseParams, name: &str, inputs: usize) -> Result<Dense, String> {
        let (weights, out, cols) = p.weights.matrix(name, None, Some(inputs))?;
        if p.bias.len() != out {
            return Err(format!("{name}: {} biases for {out} outputs", p.bias.len()));
        }
        Ok(Dense {
            weights,
            bias: p.bias.clone(),
            inputs: cols,
        })
    }

    pub fn outputs(&self) -> usize {
        self.bias.len()
    }

    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        self.weights
            .chunks(self.inputs.max(1))
            .zip(&self.bias)
            .map(|(row, b)| dot(row, x) + b)
            .collect()
    }
}

/// ReLU hidden layers then a linear output layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Net {
    pub hidden: Vec<Dense>,
    pub output: Dense,
}

impl Net {
    fn from_params(
        hidden: &[DenseParams],
        output: &DenseParams,
        inputs: usize,
        outputs: usize,
    ) -> Result<Net, String> {
        let mut layers = Vec::with_capacity(hidden.len());
        let mut width = inputs;
        for (i, h) in hidden.iter().enumerate() {
            let d = Dense::from_params(h, &format!("hidden[{i}]"), width)?;
            width = d.outputs();
            layers.push(d);
        }
        let output = Dense::from_params(output, "output", width)?;
        if output.outputs() != outputs {
            return Err(format!(
                "output layer has {} outputs, expected {outputs}",
                output.outputs()
            ));
        }
        Ok(Net {
            hidden: layers,
            output,
        })
    }

    /// The output layer's pre-activations.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        let mut h = x.to_vec();
        for layer in &self.hidden {
            h = layer.forward(&h);
            h.iter_mut().for_each(|v| *v = v.max(0.0));
        }
        self.output.forward(&h)
    }
}

/// The decoded weights of one strategy.
pub enum Predictor {
    Knn {
        k: usize,
        weighted: bool,
        dim: usize,
        embeddings: Vec<f32>,
        scores: Vec<f32>,
    },
    Svm {
        weights: Vec<f32>,
        bias: Vec<f32>,
        platt_a: Vec<f32>,
        platt_b: Vec<f32>,
    },
    Mlp(Net),
    Mf {
        hidden: usize,
        projection: Vec<f32>,
        model_vectors: Vec<f32>,
        weight: Vec<f32>,
        bias: Vec<f32>,
    },
    Elo {
        ratings: Vec<f32>,
    },
    Hybrid {
        small: usize,
        large: usize,
        mode: HybridMode,
        threshold: f32,
        margin: f32,
        net: Net,
    },
    Size,
    Custom(Arc<dyn ExternalScorer>),
}

impl std::fmt::Debug for Predictor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Predictor::Knn { .. } => "Predictor::Knn",
            Predictor::Svm { .. } => "Predictor::Svm",
            Predictor::Mlp(_) => "Predictor::Mlp",
            Predictor::Mf { .. } => "Predictor::Mf",
            Predictor::Elo { .. } => "Predictor::Elo",
            Predictor::Hybrid { .. } => "Predictor::Hybrid",
            Predictor::Size => "Predictor::Size",
            Predictor::Custom(_) => "Predictor::Custom",
        })
    }
}

/// The hybrid router's call between its two models.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct HybridCall {
    /// Whether the small model is chosen.
    pub small: bool,
    /// Deterministic: the predicted gap; probabilistic: P(small is good enough).
    pub value: f32,
    pub threshold: f32,
}

/// A prediction for one prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Predicted quality (0..1) per model, in the artifact's model order; `None` where the
    /// strategy does not predict it.
    pub quality: Vec<Option<f64>>,
    pub hybrid: Option<HybridCall>,
}

impl Predictor {
    /// Decodes `params` for `dim`-dimensional embeddings and `models` outputs.
    pub fn from_params(
        params: &RouterParams,
        dim: usize,
        models: usize,
        custom: Option<Arc<dyn ExternalScorer>>,
    ) -> Result<Predictor, String> {
        let vec_len = |name: &str, v: &[f32], n: usize| {
            if v.len() != n {
                Err(format!("{name} has {} values, expected {n}", v.len()))
            } else if v.iter().any(|x| !x.is_finite()) {
                Err(format!("{name} contains NaN or infinite values"))
            } else {
                Ok(())
            }
        };
        Ok(match params {
            RouterParams::Knn {
                k,
                weighted,
                embeddings,
                scores,
            } => {
                let (embeddings, n, _) = embeddings.matrix("embeddings", None, Some(dim))?;
                let (scores, _, _) = scores.matrix("scores", Some(n), Some(models))?;
                if *k == 0 || n == 0 {
                    return Err("knn needs k ≥ 1 and at least one training prompt".into());
                }
                Predictor::Knn {
                    k: (*k).min(n),
                    weighted: *weighted,
                    dim,
                    embeddings,
                    scores,
                }
            }
            RouterParams::Svm {
                weights,
                bias,
                platt_a,
                platt_b,
            } => {
                let (weights, _, _) = weights.matrix("weights", Some(models), Some(dim))?;
                vec_len("bias", bias, models)?;
                vec_len("platt_a", platt_a, models)?;
                vec_len("platt_b", platt_b, models)?;
                Predictor::Svm {
                    weights,
                    bias: bias.clone(),
                    platt_a: platt_a.clone(),
                    platt_b: platt_b.clone(),
                }
            }
            RouterParams::Mlp { hidden, output } => {
                Predictor::Mlp(Net::from_params(hidden, output, dim, models)?)
            }
            RouterParams::Mf {
                projection,
                model_vectors,
                weight,
                bias,
            } => {
                let (projection, h, _) = projection.matrix("projection", None, Some(dim))?;
                let (model_vectors, _, _) =
                    model_vectors.matrix("model_vectors", Some(models), Some(h))?;
                vec_len("weight", weight, h)?;
                vec_len("bias", bias, models)?;
                Predictor::Mf {
                    hidden: h,
                    projection,
                    model_vectors,
                    weight: weight.clone(),
                    bias: bias.clone(),
                }
            }
            RouterParams::Elo { ratings } => {
                vec_len("ratings", ratings, models)?;
                Predictor::Elo {
                    ratings: ratings.clone(),
                }
            }
            RouterParams::Hybrid {
                small,
                large,
                mode,
                threshold,
                margin,
                hidden,
                output,
            } => {
                if *small >= models || *large >= models || small == large {
                    return Err(format!(
                        "hybrid small/large indices {small}/{large} are not two of the {models} models"
                    ));
                }
                Predictor::Hybrid {
                    small: *small,
                    large: *large,
                    mode: *mode,
                    threshold: *threshold,
                    margin: *margin,
                    net: Net::from_params(hidden, output, dim, 1)?,
                }
            }
            RouterParams::Size => Predictor::Size,
            RouterParams::CustomOnnx { .. } => Predictor::Custom(custom.ok_or_else(|| {
                "llmrouter-custom needs ONNX support (build the gateway with the `onnx` feature)"
                    .to_string()
            })?),
        })
    }

    /// Predicts for one embedding. `models` is the artifact's model list; `threshold`
    /// overrides the hybrid threshold.
    pub fn predict(
        &self,
        embedding: &[f32],
        models: &[ModelSpec],
        threshold: Option<f32>,
    ) -> Result<Prediction, String> {
        let m = models.len();
        let quality = |v: Vec<f32>| v.into_iter().map(|q| Some(f64::from(q))).collect();
        Ok(match self {
            Predictor::Knn {
                k,
                weighted,
                dim,
                embeddings,
                scores,
            } => {
                let mut sims: Vec<(f32, u32)> = embeddings
                    .chunks(*dim)
                    .enumerate()
                    .map(|(i, row)| (dot(row, embedding), i as u32))
                    .collect();
                let k = (*k).min(sims.len());
                if k < sims.len() {
                    sims.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0));
                }
                let mut acc = vec![0f32; m];
                let mut total = 0f32;
                for &(s, i) in &sims[..k] {
                    let w = if *weighted { s.max(0.0) + 1e-3 } else { 1.0 };
                    let row = &scores[i as usize * m..(i as usize + 1) * m];
                    acc.iter_mut().zip(row).for_each(|(a, r)| *a += w * r);
                    total += w;
                }
                acc.iter_mut().for_each(|a| *a /= total.max(1e-6));
                Prediction {
                    quality: quality(acc),
                    hybrid: None,
                }
            }
            Predictor::Svm {
                weights,
                bias,
                platt_a,
                platt_b,
            } => {
                let q = weights
                    .chunks(embedding.len().max(1))
                    .enumerate()
                    .map(|(j, row)| {
                        sigmoid(platt_a[j] * (dot(row, embedding) + bias[j]) + platt_b[j])
                    })
                    .collect();
                Prediction {
                    quality: quality(q),
                    hybrid: None,
                }
            }
            Predictor::Mlp(net) => Prediction {
                quality: quality(net.forward(embedding).into_iter().map(sigmoid).collect()),
                hybrid: None,
            },
            Predictor::Mf {
                hidden,
                projection,
                model_vectors,
                weight,
                bias,
            } => {
                let p: Vec<f32> = projection
                    .chunks(embedding.len().max(1))
                    .map(|row| dot(row, embedding))
                    .collect();
                let wp: Vec<f32> = p.iter().zip(weight).map(|(a, b)| a * b).collect();
                let q = model_vectors
                    .chunks(*hidden)
                    .zip(bias)
                    .map(|(v, b)| sigmoid(dot(v, &wp) + b))
                    .collect();
                Prediction {
                    quality: quality(q),
                    hybrid: None,
                }
            }
            Predictor::Elo { ratings } => Prediction {
                quality: quality(elo_expected_scores(ratings)),
                hybrid: None,
            },
            Predictor::Hybrid {
                small,
                large,
                mode,
                threshold: default_threshold,
                margin: _,
                net,
            } => {
                let out = net.forward(embedding).first().copied().unwrap_or(0.0);
                let threshold = threshold.unwrap_or(*default_threshold);
                let q_large = models[*large].mean_quality;
                let q_small_mean = models[*small].mean_quality;
                let (use_small, value, q_small) = match mode {
                    HybridMode::Deterministic => (
                        out <= threshold,
                        out,
                        q_large.map(|q| (q - f64::from(out)).clamp(0.0, 1.0)),
                    ),
                    HybridMode::Probabilistic => {
                        let p = sigmoid(out);
                        (p >= threshold, p, q_small_mean)
                    }
                };
                let mut q = vec![None; m];
                q[*large] = q_large;
                q[*small] = q_small;
                Prediction {
                    quality: q,
                    hybrid: Some(HybridCall {
                        small: use_small,
                        value,
                        threshold,
                    }),
                }
            }
            Predictor::Size => Prediction {
                quality: models.iter().map(|s| s.mean_quality).collect(),
                hybrid: None,
            },
            Predictor::Custom(scorer) => {
                let s = scorer.scores(embedding)?;
                if s.len() != m {
                    return Err(format!(
                        "the custom router returned {} scores for {m} models",
                        s.len()
                    ));
                }
                Prediction {
                    quality: quality(s),
                    hybrid: None,
                }
            }
        })
    }
}

/// Each model's expected score against the others under Elo ratings (mean over
/// opponents of `1 / (1 + 10^((R_j − R_i)/400))`).
pub fn elo_expected_scores(ratings: &[f32]) -> Vec<f32> {
    let n = ratings.len();
    if n < 2 {
        return vec![0.5; n];
    }
    ratings
        .iter()
        .enumerate()
        .map(|(i, ri)| {
            ratings
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, rj)| 1.0 / (1.0 + 10f32.powf((rj - ri) / 400.0)))
                .sum::<f32>()
                / (n - 1) as f32
        })
        .collect()
}

/// A verified, decoded router, ready to predict. Immutable: a reload builds a new one.
#[derive(Debug)]
pub struct LoadedRouter {
    pub strategy: MlStrategyName,
    pub version: String,
    pub embedder: EmbedderSpec,
    pub models: Vec<ModelSpec>,
    pub verification: Verification,
    /// Where it was loaded from.
    pub source: String,
    predictor: Predictor,
}

impl LoadedRouter {
    /// Verifies `artifact` (named `name` in the manifest `manifest`) under `policy`, parses
    /// and decodes it. `expected` is the configured strategy: an artifact of another
    /// strategy is refused. `load_custom` builds the scorer of a `custom_onnx` artifact.
    pub fn from_bytes(
        source: &str,
        name: &str,
        artifact: &[u8],
        manifest: Option<&[u8]>,
        policy: &VerifyPolicy,
        expected: Option<MlStrategyName>,
        load_custom: Option<&ScorerLoader>,
    ) -> Result<LoadedRouter, ArtifactError> {
        let verification = verify(source, name, artifact, manifest, policy)?;
        let parsed = RouterArtifact::from_bytes(source, artifact)?;
        Self::from_artifact(source, parsed, verification, expected, load_custom)
    }

    /// Builds from an already parsed artifact (the trainer's evaluator uses this).
    pub fn from_artifact(
        source: &str,
        art: RouterArtifact,
        verification: Verification,
        expected: Option<MlStrategyName>,
        load_custom: Option<&ScorerLoader>,
    ) -> Result<LoadedRouter, ArtifactError> {
        let invalid = |message: String| ArtifactError::Invalid {
            path: source.to_string(),
            message,
        };
        let strategy =
            MlStrategyName::parse(&art.strategy).map_err(|e| invalid(format!("strategy: {e}")))?;
        if let Some(want) = expected {
            // smallest/largest share a weightless format: either artifact serves both.
            let compatible = want == strategy
                || (matches!(want, MlStrategyName::Smallest | MlStrategyName::Largest)
                    && matches!(strategy, MlStrategyName::Smallest | MlStrategyName::Largest));
            if !compatible {
                return Err(invalid(format!(
                    "it is a '{}' router, but the configured strategy is '{}'",
                    strategy.as_str(),
                    want.as_str()
                )));
            }
        }
        if art.models.is_empty() {
            return Err(invalid("it lists no models".into()));
        }
        let custom = match (&art.params, load_custom) {
            (RouterParams::CustomOnnx { file, sha256 }, Some(load)) => {
                let path = sibling_path(source, file);
                let read_error = |message: String| ArtifactError::Read {
                    path: path.clone(),
                    message,
                };
                let size = std::fs::metadata(&path)
                    .map_err(|e| read_error(e.to_string()))?
                    .len();
                if size > MAX_CUSTOM_MODEL_BYTES {
                    return Err(read_error(format!(
                        "{size} bytes; a custom router model may have at most \
                         {MAX_CUSTOM_MODEL_BYTES}"
                    )));
                }
                let bytes = std::fs::read(&path).map_err(|e| read_error(e.to_string()))?;
                let sum = super::artifact::sha256_hex(&bytes);
                if sha256.trim().is_empty() || !sum.eq_ignore_ascii_case(sha256.trim()) {
                    return Err(invalid(format!(
                        "custom_onnx file '{path}' has sha256 {sum}, the artifact says \
                         {sha256:?}: refusing a model that is not the one it names"
                    )));
                }
                Some(load(&path, &bytes, art.embedder.dim, art.models.len()).map_err(invalid)?)
            }
            _ => None,
        };
        let predictor =
            Predictor::from_params(&art.params, art.embedder.dim, art.models.len(), custom)
                .map_err(invalid)?;
        Ok(LoadedRouter {
            strategy,
            version: art.version,
            embedder: art.embedder,
            models: art.models,
            verification,
            source: source.to_string(),
            predictor,
        })
    }

    pub fn predictor(&self) -> &Predictor {
        &self.predictor
    }

    /// Predicts for one embedding (checked against the router's dimension).
    pub fn predict(&self, embedding: &[f32], threshold: Option<f32>) -> Result<Prediction, String> {
        if embedding.len() != self.embedder.dim {
            return Err(format!(
                "embedding has {} dimensions, the router expects {} ({})",
                embedding.len(),
                self.embedder.dim,
                self.embedder.id
            ));
        }
        self.predictor.predict(embedding, &self.models, threshold)
    }

    /// Index of a model by name: exact, then case-insensitive, then on the part after the
    /// last `/` of either side.
    pub fn model_index(&self, name: &str) -> Option<usize> {
        model_index(&self.models, name)
    }
}

/// See [`LoadedRouter::model_index`].
pub fn model_index(models: &[ModelSpec], name: &str) -> Option<usize> {
    let tail = |s: &str| s.rsplit('/').next().unwrap_or(s).to_ascii_lowercase();
    models
        .iter()
        .position(|m| m.name == name)
        .or_else(|| {
            models
                .iter()
                .position(|m| m.name.eq_ignore_ascii_case(name))
        })
        .or_else(|| models.iter().position(|m| tail(&m.name) == tail(name)))
}

/// `file` resolved against the directory of `source`.
pub fn sibling_path(source: &str, file: &str) -> String {
    let p = std::path::Path::new(file);
    if p.is_absolute() {
        return file.to_string();
    }
    match std::path::Path::new(source).parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(p).display().to_string(),
        _ => file.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::artifact::Tensor;

    fn specs(n: usize) -> Vec<ModelSpec> {
        (0..n)
            .map(|i| ModelSpec {
                name: format!("m{i}"),
                size_b: Some((i + 1) as f64),
                input_price: None,
                output_price: None,
                mean_quality: Some(0.5),
            })
            .collect()
    }

    #[test]
    fn knn_averages_the_nearest_prompts() {
        // Two clusters on the unit circle: near x-axis model 0 is right, near y-axis model 1.
        let emb = [1.0, 0.0, 0.99, 0.14, 0.0, 1.0, 0.14, 0.99];
        let scores = [1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0];
        let p = Predictor::from_params(
            &RouterParams::Knn {
                k: 2,
                weighted: false,
                embeddings: Tensor::f32(vec![4, 2], &emb),
                scores: Tensor::f32(vec![4, 2], &scores),
            },
            2,
            2,
            None,
        )
        .unwrap();
        let q = p.predict(&[0.95, 0.3], &specs(2), None).unwrap().quality;
        assert_eq!(q, vec![Some(1.0), Some(0.0)]);
        let q = p.predict(&[0.2, 0.98], &specs(2), None).unwrap().quality;
        assert_eq!(q, vec![Some(0.0), Some(1.0)]);
    }

    #[test]
    fn elo_expected_scores_follow_ratings() {
        let s = elo_expected_scores(&[1000.0, 1200.0, 1100.0]);
        assert!(s[1] > s[2] && s[2] > s[0]);
        // Equal ratings: everyone expects 0.5.
        assert_eq!(elo_expected_scores(&[1000.0, 1000.0]), vec![0.5, 0.5]);
    }

    #[test]
    fn shape_errors_are_reported() {
        let e = Predictor::from_params(
            &RouterParams::Svm {
                weights: Tensor::f32(vec![2, 3], &[0.0; 6]),
                bias: vec![0.0; 2],
                platt_a: vec![1.0; 2],
                platt_b: vec![0.0; 2],
            },
            4,
            2,
            None,
        )
        .unwrap_err();
        assert!(e.contains("expected [2, 4]"), "{e}");
        let e = Predictor::from_params(
            &RouterParams::CustomOnnx {
                file: "r.onnx".into(),
                sha256: String::new(),
            },
            4,
            2,
            None,
        )
        .unwrap_err();
        assert!(e.contains("onnx"), "{e}");
    }

    #[test]
    fn model_names_match_loosely() {
        let mut m = specs(2);
        m[1].name = "meta/llama3-70b-instruct".into();
        assert_eq!(model_index(&m, "m0"), Some(0));
        assert_eq!(model_index(&m, "M0"), Some(0));
        assert_eq!(model_index(&m, "together_ai/Llama3-70B-Instruct"), Some(1));
        assert_eq!(model_index(&m, "gpt-4o"), None);
    }
}
