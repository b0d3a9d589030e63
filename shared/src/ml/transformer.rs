//! The transformer embedder: a BERT-style sentence encoder (all-MiniLM-L6-v2) run by tract.
//!
//! The ONNX graph maps `input_ids`, `attention_mask` and optionally `token_type_ids` (int64,
//! `[batch, sequence]`) to `last_hidden_state` (`[batch, sequence, dim]`); this module adds
//! what sentence-transformers adds: mean pooling over the attention mask and L2
//! normalisation. Tokenisation is Hugging Face `tokenizers` over the model's
//! `tokenizer.json`, forced to no padding and truncation at [`MAX_TOKENS`] (the shipped file
//! of all-MiniLM-L6-v2 pads and truncates at 128; the model was trained for 256).
//!
//! Loading parses and optimises the graph (`into_optimized`), about 0.3 s for MiniLM: do it
//! once per process, off the async runtime, as is inference (a few to a hundred ms).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::prelude::*;

use super::embed::{EmbedError, Embedder, l2_normalize};
use super::store::{ModelStore, fetch_verified};

/// Tokens per sequence (special tokens included) the transformer reads at most.
pub const MAX_TOKENS: usize = 256;

/// Sequences per forward pass in [`TransformerEmbedder::embed_token_ids`].
const BATCH: usize = 32;

/// Which tensor each graph input takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    Ids,
    Mask,
    TypeIds,
}

/// all-MiniLM-L6-v2 (or another BERT-style encoder) with mean pooling and L2 normalisation.
pub struct TransformerEmbedder {
    id: String,
    dim: usize,
    tokenizer: tokenizers::Tokenizer,
    model: Arc<TypedRunnableModel>,
    inputs: Vec<Input>,
    max_tokens: usize,
    pad_id: u32,
}

impl std::fmt::Debug for TransformerEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransformerEmbedder")
            .field("id", &self.id)
            .field("dim", &self.dim)
            .field("inputs", &self.inputs)
            .field("max_tokens", &self.max_tokens)
            .finish_non_exhaustive()
    }
}

fn load_error(path: &Path, message: impl std::fmt::Display) -> EmbedError {
    EmbedError::Load {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

fn inference_error(e: impl std::fmt::Display) -> EmbedError {
    EmbedError::Inference(format!("{e:#}"))
}

impl TransformerEmbedder {
    /// Loads `model.onnx` and `tokenizer.json` from a model directory (no manifest check; see
    /// [`TransformerEmbedder::from_store`]).
    pub fn load(model_dir: impl AsRef<Path>) -> Result<Self, EmbedError> {
        let dir = model_dir.as_ref();
        Self::load_files(dir.join("model.onnx"), dir.join("tokenizer.json"))
    }

    /// Fetches `model.onnx` and `tokenizer.json` of the model directory `dir_uri` from
    /// `store`, checks them against the directory's `manifest.json`, and loads them.
    pub fn from_store(store: &dyn ModelStore, dir_uri: &str) -> Result<Self, EmbedError> {
        let model =
            fetch_verified(store, dir_uri, &["model.onnx", "tokenizer.json"]).map_err(|e| {
                EmbedError::Load {
                    path: dir_uri.to_owned(),
                    message: e.to_string(),
                }
            })?;
        let path = |name: &str| {
            model
                .path(name)
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(name))
        };
        let mut embedder = Self::load_files(path("model.onnx"), path("tokenizer.json"))?;
        if !model.manifest.id.is_empty() {
            embedder.id = model.manifest.id.clone();
        }
        Ok(embedder)
    }

    /// Loads an ONNX file and a `tokenizer.json`.
    ///
    /// The id is the ONNX metadata `routeiq.model` (else the file stem, or the directory name
    /// for a `model.onnx`), lowercased without an `all-` prefix, plus `-int8w` when the
    /// weights are stored as int8 (e.g. `minilm-l6-v2-int8w`). [`TransformerEmbedder::from_store`]
    /// takes the manifest's id instead.
    pub fn load_files(
        onnx_path: impl AsRef<Path>,
        tokenizer_path: impl AsRef<Path>,
    ) -> Result<Self, EmbedError> {
        let onnx_path = onnx_path.as_ref();
        let tokenizer_path = tokenizer_path.as_ref();

        let mut tokenizer = tokenizers::Tokenizer::from_file(tokenizer_path)
            .map_err(|e| load_error(tokenizer_path, e))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| load_error(tokenizer_path, e))?;
        let pad_id = tokenizer.token_to_id("[PAD]").unwrap_or(0);

        let onnx = tract_onnx::onnx().with_ignore_output_shapes(true);
        let proto = onnx
            .proto_model_for_path(onnx_path)
            .map_err(|e| load_error(onnx_path, format!("{e:#}")))?;
        let graph = proto
            .graph
            .as_ref()
            .ok_or_else(|| load_error(onnx_path, "no graph"))?;
        let int8 = graph
            .initializer
            .iter()
            .any(|t| t.data_type == DataType::Int8 as i32);
        let base = proto
            .metadata_props
            .iter()
            .find(|p| p.key == "routeiq.model")
            .map(|p| p.value.clone())
            .or_else(|| {
                // `<id>/model.onnx` is named by its directory.
                let stem = onnx_path.file_stem()?.to_string_lossy().into_owned();
                if stem == "model" {
                    onnx_path
                        .parent()?
                        .file_name()
                        .map(|d| d.to_string_lossy().into_owned())
                } else {
                    Some(stem)
                }
            })
            .unwrap_or_else(|| "transformer".into());
        let base = base.to_lowercase();
        let base = base.strip_prefix("all-").unwrap_or(&base);
        let id = if int8 {
            format!("{base}-int8w")
        } else {
            base.to_owned()
        };

        let dir = onnx_path.parent().and_then(Path::to_str);
        let parsed = onnx
            .parse(&proto, dir)
            .map_err(|e| load_error(onnx_path, format!("{e:#}")))?;
        if !parsed.unresolved_inputs.is_empty() {
            return Err(load_error(
                onnx_path,
                format!("unresolved inputs {:?}", parsed.unresolved_inputs),
            ));
        }
        let model = parsed.model;

        let mut inputs = Vec::new();
        for outlet in model
            .input_outlets()
            .map_err(|e| load_error(onnx_path, e))?
        {
            let name = model.node(outlet.node).name.as_str();
            inputs.push(match name {
                "input_ids" => Input::Ids,
                "attention_mask" => Input::Mask,
                "token_type_ids" => Input::TypeIds,
                other => {
                    return Err(load_error(
                        onnx_path,
                        format!("unexpected graph input '{other}'"),
                    ));
                }
            });
        }
        if !inputs.contains(&Input::Ids) || !inputs.contains(&Input::Mask) {
            return Err(load_error(
                onnx_path,
                "the graph needs the inputs input_ids and attention_mask",
            ));
        }
        let model = model
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(|e| load_error(onnx_path, format!("{e:#}")))?;

        let mut embedder = Self {
            id,
            dim: 0,
            tokenizer,
            model,
            inputs,
            max_tokens: MAX_TOKENS,
            pad_id,
        };
        // The output width is symbolic-free in practice but read it from a run to be sure.
        let probe = embedder
            .run_batch(&[vec![pad_id]])
            .map_err(|e| load_error(onnx_path, e))?;
        embedder.dim = probe.first().map_or(0, Vec::len);
        if embedder.dim == 0 {
            return Err(load_error(
                onnx_path,
                "the model produced an empty embedding",
            ));
        }
        Ok(embedder)
    }

    /// Overrides the embedding-space id.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// Truncates sequences at `max_tokens` tokens (special tokens included) instead of
    /// [`MAX_TOKENS`].
    pub fn with_max_tokens(mut self, max_tokens: usize) -> Result<Self, EmbedError> {
        self.tokenizer
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: max_tokens,
                ..Default::default()
            }))
            .map_err(|e| EmbedError::Tokenize(e.to_string()))?;
        self.max_tokens = max_tokens;
        Ok(self)
    }

    /// Token ids of `text` (with `[CLS]`/`[SEP]`, truncated at [`MAX_TOKENS`]).
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, EmbedError> {
        let enc = self
            .tokenizer
            .encode_fast(text, true)
            .map_err(|e| EmbedError::Tokenize(e.to_string()))?;
        let ids = enc.get_ids();
        Ok(ids[..ids.len().min(self.max_tokens)].to_vec())
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &tokenizers::Tokenizer {
        &self.tokenizer
    }

    /// Embeddings of already tokenised sequences (special tokens included, as given), in
    /// padded batches; each mean-pooled over its own tokens and L2-normalised.
    pub fn embed_token_ids(&self, sequences: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut order: Vec<usize> = (0..sequences.len()).collect();
        // Similar lengths share a batch, so little is padded.
        order.sort_by_key(|&i| sequences[i].len());
        let mut out = vec![Vec::new(); sequences.len()];
        for chunk in order.chunks(BATCH) {
            let batch: Vec<Vec<u32>> = chunk.iter().map(|&i| sequences[i].clone()).collect();
            for (&i, e) in chunk.iter().zip(self.run_batch(&batch)?) {
                out[i] = e;
            }
        }
        Ok(out)
    }

    /// One forward pass over `batch` (padded to its longest sequence) + pooling.
    fn run_batch(&self, batch: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let b = batch.len();
        let s = batch.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let mut ids = vec![i64::from(self.pad_id); b * s];
        let mut mask = vec![0i64; b * s];
        for (row, seq) in batch.iter().enumerate() {
            for (col, &id) in seq.iter().enumerate() {
                ids[row * s + col] = i64::from(id);
                mask[row * s + col] = 1;
            }
        }
        let types = vec![0i64; b * s];
        let tensor = |data: &[i64]| Tensor::from_shape(&[b, s], data).map_err(inference_error);
        let mut feeds: TVec<TValue> = tvec![];
        for input in &self.inputs {
            feeds.push(
                match input {
                    Input::Ids => tensor(&ids)?,
                    Input::Mask => tensor(&mask)?,
                    Input::TypeIds => tensor(&types)?,
                }
                .into(),
            );
        }
        let outputs = self.model.run(feeds).map_err(inference_error)?;
        let states = outputs
            .first()
            .ok_or_else(|| inference_error("the model has no output"))?;
        let view = states
            .to_plain_array_view::<f32>()
            .map_err(inference_error)?;
        let shape = view.shape().to_vec();
        if shape.len() != 3 || shape[0] != b || shape[1] != s {
            return Err(inference_error(format!(
                "output shape {shape:?}, expected [{b}, {s}, dim]"
            )));
        }
        let d = shape[2];
        let owned;
        let data: &[f32] = match view.as_slice() {
            Some(slice) => slice,
            None => {
                owned = view.iter().copied().collect::<Vec<f32>>();
                &owned
            }
        };
        let mut result = Vec::with_capacity(b);
        for row in 0..b {
            let mut acc = vec![0f32; d];
            let mut n = 0usize;
            for col in 0..s {
                if mask[row * s + col] == 1 {
                    let at = (row * s + col) * d;
                    acc.iter_mut()
                        .zip(&data[at..at + d])
                        .for_each(|(a, x)| *a += x);
                    n += 1;
                }
            }
            if n > 0 {
                let inv = 1.0 / n as f32;
                acc.iter_mut().for_each(|a| *a *= inv);
            }
            l2_normalize(&mut acc);
            result.push(acc);
        }
        Ok(result)
    }
}

impl Embedder for TransformerEmbedder {
    fn id(&self) -> &str {
        &self.id
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn embed(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        let ids = self.tokenize(text)?;
        let mut out = self.run_batch(&[ids])?;
        out.pop().ok_or_else(|| inference_error("no output row"))
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let ids = texts
            .iter()
            .map(|t| self.tokenize(t))
            .collect::<Result<Vec<_>, _>>()?;
        self.embed_token_ids(&ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::embed::cosine;

    fn tiny(name: &str) -> TransformerEmbedder {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny");
        // The tiny tokenizer.json truncates at 8 (the loader's default is 256).
        TransformerEmbedder::load_files(dir.join(name), dir.join("tokenizer.json"))
            .unwrap()
            .with_max_tokens(8)
            .unwrap()
    }

    fn expected() -> serde_json::Value {
        serde_json::from_str(include_str!("../../tests/data/tiny/expected.json")).unwrap()
    }

    fn floats(v: &serde_json::Value) -> Vec<f32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    }

    #[test]
    fn tiny_graphs_pool_over_the_mask_and_normalise() {
        let want = expected();
        for (file, key, id) in [
            ("int8.onnx", "int8", "tiny-int8w"),
            ("fp32.onnx", "fp32", "tiny"),
        ] {
            let e = tiny(file);
            assert_eq!(e.id(), id);
            assert_eq!(e.dim(), 4);
            let cases = want["cases"].as_array().unwrap();
            let texts: Vec<&str> = cases.iter().map(|c| c["text"].as_str().unwrap()).collect();
            // One at a time, and in one padded batch (padding must not leak into the mean).
            let batch = e.embed_batch(&texts).unwrap();
            for (case, batched) in cases.iter().zip(&batch) {
                let ids: Vec<u32> = case["ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap() as u32)
                    .collect();
                let text = case["text"].as_str().unwrap();
                assert_eq!(e.tokenize(text).unwrap(), ids, "{text:?}");
                let got = e.embed(text).unwrap();
                let reference = floats(&case[key]);
                assert!(
                    cosine(&got, &reference) > 0.99999,
                    "{file} {text:?}: {got:?} vs {reference:?}"
                );
                assert!(
                    cosine(batched, &reference) > 0.99999,
                    "{file} batched {text:?}"
                );
                let norm: f32 = got.iter().map(|x| x * x).sum::<f32>().sqrt();
                assert!((norm - 1.0).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn truncates_and_reports_missing_files() {
        let e = tiny("fp32.onnx");
        assert_eq!(
            e.tokenize("hello world hello world hello world hello world")
                .unwrap()
                .len(),
            8
        );
        let err = TransformerEmbedder::load_files(
            "/nonexistent/model.onnx",
            "/nonexistent/tokenizer.json",
        )
        .unwrap_err();
        assert!(matches!(err, EmbedError::Load { .. }), "{err}");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny");
        assert!(
            TransformerEmbedder::load_files(dir.join("tokenizer.json"), dir.join("tokenizer.json"))
                .is_err()
        );
        assert_eq!(e.with_id("custom").id(), "custom");
    }

    #[test]
    fn embedders_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<TransformerEmbedder>();
    }
}
