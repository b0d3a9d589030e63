//! `llmrouter-custom`: a user's own ONNX router, run by tract.
//!
//! The contract: one `float` input, the prompt embedding, of shape `[1, dim]` (`[dim]`, or
//! `[batch, dim]` with a symbolic batch, which is fixed to 1), and one `float` output with
//! one score per model of the artifact, in its `models` order (`[1, models]` or
//! `[models]`). Scores are read as predicted qualities (0..1 ranks best with the cost
//! policy; any finite value works when only the order matters).
//!
//! Everything is checked at load, before a request sees the scorer: the file size
//! ([`MAX_CUSTOM_MODEL_BYTES`]), the graph (one input, one output, float types, shapes
//! against the artifact's `dim` and model count, no external data, only operators tract
//! can run), then one run on a zero vector. The graph is optimised once
//! (`into_optimized` + `into_runnable`); the plan is immutable and `Send + Sync`, and each
//! [`ExternalScorer::scores`] call runs it with its own state, so one scorer serves every
//! request concurrently. A panic inside tract (a malformed graph it did not reject) is
//! caught and turned into an error.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use tract_onnx::pb::tensor_proto::DataLocation;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid as _;

use super::predictor::{ExternalScorer, MAX_CUSTOM_MODEL_BYTES, ScorerLoader};

/// Why a custom ONNX router could not be loaded or run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScorerError {
    #[error("custom router model '{path}' is {bytes} bytes; the limit is {limit} bytes")]
    TooLarge {
        path: String,
        bytes: u64,
        limit: u64,
    },
    #[error("custom router model '{path}' cannot be loaded: {message}")]
    Load { path: String, message: String },
    #[error("custom router model '{path}' failed: {message}")]
    Inference { path: String, message: String },
}

/// A custom router's ONNX graph, optimised and ready to score embeddings.
pub struct OnnxScorer {
    path: String,
    dim: usize,
    models: usize,
    /// The input's rank: 1 (`[dim]`) or 2 (`[1, dim]`).
    input_rank: usize,
    /// The optimised plan (an `Arc` inside: shared, immutable, `Send + Sync`).
    plan: Arc<TypedRunnableModel>,
}

impl std::fmt::Debug for OnnxScorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxScorer")
            .field("path", &self.path)
            .field("dim", &self.dim)
            .field("models", &self.models)
            .finish_non_exhaustive()
    }
}

/// Runs `f`, turning a panic into an error message.
fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(format!("tract panicked: {what}"))
    })
}

impl OnnxScorer {
    /// Loads the ONNX graph in `bytes` (from `path`, used in messages) as a scorer of
    /// `dim`-dimensional embeddings into `models` scores. See the module docs for what is
    /// checked.
    pub fn from_bytes(
        path: &str,
        bytes: &[u8],
        dim: usize,
        models: usize,
    ) -> Result<OnnxScorer, ScorerError> {
        if bytes.len() as u64 > MAX_CUSTOM_MODEL_BYTES {
            return Err(ScorerError::TooLarge {
                path: path.to_string(),
                bytes: bytes.len() as u64,
                limit: MAX_CUSTOM_MODEL_BYTES,
            });
        }
        let load = |message: String| ScorerError::Load {
            path: path.to_string(),
            message,
        };
        if dim == 0 || models == 0 {
            return Err(load(format!(
                "the artifact gives {dim} embedding dimensions and {models} models"
            )));
        }
        let (plan, input_rank) = guarded(|| build(bytes, dim, models)).map_err(load)?;
        let scorer = OnnxScorer {
            path: path.to_string(),
            dim,
            models,
            input_rank,
            plan,
        };
        // One run, so shape problems only visible at run time surface now.
        let probe = scorer.run(&vec![0f32; dim]).map_err(load)?;
        if probe.len() != models {
            return Err(load(format!(
                "it returns {} scores, the artifact lists {models} models",
                probe.len()
            )));
        }
        tracing::debug!(path, dim, models, "custom router model loaded");
        Ok(scorer)
    }

    /// The embedding dimension it takes.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The number of scores it returns.
    pub fn models(&self) -> usize {
        self.models
    }

    fn run(&self, embedding: &[f32]) -> Result<Vec<f32>, String> {
        if embedding.len() != self.dim {
            return Err(format!(
                "embedding has {} dimensions, the model takes {}",
                embedding.len(),
                self.dim
            ));
        }
        guarded(|| {
            let input = if self.input_rank == 1 {
                Tensor::from_shape(&[self.dim], embedding)
            } else {
                Tensor::from_shape(&[1, self.dim], embedding)
            }
            .map_err(|e| format!("{e:#}"))?;
            let outputs = self
                .plan
                .run(tvec![input.into()])
                .map_err(|e| format!("{e:#}"))?;
            let out = outputs
                .first()
                .ok_or_else(|| "the model produced no output".to_string())?;
            let view = out
                .to_plain_array_view::<f32>()
                .map_err(|e| format!("output: {e:#}"))?;
            let shape = view.shape().to_vec();
            if shape.iter().product::<usize>() != self.models
                || !(shape.len() == 1 || (shape.len() == 2 && shape[0] == 1))
            {
                return Err(format!(
                    "output shape {shape:?}, expected [1, {m}] or [{m}]",
                    m = self.models
                ));
            }
            Ok(view.iter().copied().collect())
        })
    }
}

impl ExternalScorer for OnnxScorer {
    fn scores(&self, embedding: &[f32]) -> Result<Vec<f32>, String> {
        let scores = self.run(embedding).map_err(|message| {
            ScorerError::Inference {
                path: self.path.clone(),
                message,
            }
            .to_string()
        })?;
        if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
            return Err(ScorerError::Inference {
                path: self.path.clone(),
                message: format!("score {i} is {}", scores[i]),
            }
            .to_string());
        }
        Ok(scores)
    }
}

/// The loader the router uses for `custom_onnx` artifacts: [`OnnxScorer::from_bytes`].
pub fn loader() -> Arc<ScorerLoader> {
    Arc::new(|path: &str, bytes: &[u8], dim: usize, models: usize| {
        OnnxScorer::from_bytes(path, bytes, dim, models)
            .map(|s| Arc::new(s) as Arc<dyn ExternalScorer>)
            .map_err(|e| e.to_string())
    })
}

/// A declared dimension's value when it is a fixed number (`None`: symbolic or unknown).
fn fixed(d: Option<&Option<TDim>>) -> Option<usize> {
    d.and_then(Option::as_ref)
        .and_then(TDim::as_i64)
        .and_then(|v| usize::try_from(v).ok())
}

/// Parses, checks and optimises the graph; returns the plan and the input's rank.
fn build(
    bytes: &[u8],
    dim: usize,
    models: usize,
) -> Result<(Arc<TypedRunnableModel>, usize), String> {
    let onnx = tract_onnx::onnx()
        .with_ignore_output_shapes(true)
        .with_ignore_value_info(true);
    let proto = onnx
        .proto_model_for_read(&mut &bytes[..])
        .map_err(|e| format!("not an ONNX model: {e:#}"))?;
    let graph = proto
        .graph
        .as_ref()
        .ok_or_else(|| "the ONNX model has no graph".to_string())?;
    if let Some(t) = graph
        .initializer
        .iter()
        .find(|t| t.data_location == Some(DataLocation::External as i32))
    {
        return Err(format!(
            "initializer '{}' is stored in an external data file; export the model as one \
             self-contained .onnx file",
            t.name
        ));
    }
    // No model directory: nothing outside the verified bytes is ever read.
    let parsed = onnx
        .parse(&proto, None)
        .map_err(|e| format!("cannot parse the graph: {e:#}"))?;
    if !parsed.unresolved_inputs.is_empty() {
        return Err(format!("unresolved inputs {:?}", parsed.unresolved_inputs));
    }
    let mut model = parsed.model;

    let inputs = model
        .input_outlets()
        .map_err(|e| format!("{e:#}"))?
        .to_vec();
    let [input] = inputs[..] else {
        let names: Vec<&str> = inputs
            .iter()
            .map(|o| model.node(o.node).name.as_str())
            .collect();
        return Err(format!(
            "a custom router takes one input (the embedding), this model has {}: {names:?}",
            inputs.len()
        ));
    };
    let input_name = model.node(input.node).name.clone();
    let fact = model.input_fact(0).map_err(|e| format!("{e:#}"))?.clone();
    if let Some(dt) = fact.datum_type.concretize() {
        if dt != f32::datum_type() {
            return Err(format!(
                "input '{input_name}' is {dt:?}; the embedding input must be float (f32)"
            ));
        }
    }
    let dims: Vec<Option<TDim>> = fact.shape.dims().map(|d| d.concretize()).collect();
    let rank = match (fact.shape.is_open(), dims.len()) {
        // Rank not declared: take the documented [1, dim].
        (true, 0) => 2,
        (_, 1) | (_, 2) => dims.len(),
        (_, n) => {
            return Err(format!(
                "input '{input_name}' has rank {n}; expected [1, {dim}] or [{dim}]"
            ));
        }
    };
    if let Some(last) = fixed(dims.last()) {
        if last != dim {
            return Err(format!(
                "input '{input_name}' takes {last}-dimensional embeddings, the artifact's \
                 embedder has {dim}"
            ));
        }
    }
    if rank == 2 {
        if let Some(batch) = fixed(dims.first()) {
            if batch != 1 {
                return Err(format!(
                    "input '{input_name}' has a fixed batch of {batch}; expected [1, {dim}] \
                     (or a symbolic batch)"
                ));
            }
        }
    }
    let shape: TVec<usize> = if rank == 1 { tvec![dim] } else { tvec![1, dim] };
    model
        .set_input_fact(0, InferenceFact::dt_shape(f32::datum_type(), shape))
        .map_err(|e| format!("{e:#}"))?;

    let outputs = model.output_outlets().map_err(|e| format!("{e:#}"))?.len();
    if outputs != 1 {
        return Err(format!(
            "a custom router has one output (the scores), this model has {outputs}"
        ));
    }
    if let Some(dt) = model
        .output_fact(0)
        .map_err(|e| format!("{e:#}"))?
        .datum_type
        .concretize()
    {
        if dt != f32::datum_type() {
            return Err(format!(
                "the output is {dt:?}; the scores must be float (f32)"
            ));
        }
    }

    let typed = model
        .into_typed()
        .map_err(|e| format!("tract cannot run this graph: {e:#}"))?;
    let out = typed.output_fact(0).map_err(|e| format!("{e:#}"))?;
    if out.datum_type != f32::datum_type() {
        return Err(format!(
            "the output is {:?}; the scores must be float (f32)",
            out.datum_type
        ));
    }
    if let Some(shape) = out.shape.as_concrete() {
        let ok = shape.iter().product::<usize>() == models
            && (shape.len() == 1 || (shape.len() == 2 && shape[0] == 1));
        if !ok {
            return Err(format!(
                "the output has shape {shape:?}; the artifact lists {models} models, so it \
                 must be [1, {models}] or [{models}] (one score per model)"
            ));
        }
    }
    let plan = typed
        .into_optimized()
        .and_then(|m| m.into_runnable())
        .map_err(|e| format!("tract cannot run this graph: {e:#}"))?;
    Ok((plan, rank))
}
