//! Router artifacts: the file format of a trained router, its manifest, and verification.
//!
//! # Format (`routeiq-router`, format version 1)
//!
//! A router is one JSON file (UTF-8, no code, nothing executable: pickle and other
//! code-carrying formats are never read):
//!
//! ```json
//! {"format": "routeiq-router", "format_version": 1,
//!  "strategy": "llmrouter-knn", "version": "20250101T000000Z-3f2a9c1d",
//!  "embedder": {"id": "hashed-ngram-v1-256", "dim": 256},
//!  "models": [{"name": "qwen2.5-7b-instruct", "size_b": 7.0,
//!              "input_price": 0.2, "output_price": 0.2, "mean_quality": 0.52}, …],
//!  "params": {"kind": "knn", "k": 40, …},
//!  "training": {…free-form provenance and metrics…}}
//! ```
//!
//! `models` lists the models the router scores, in the order of its outputs; prices are USD
//! per million tokens. `params` holds the strategy's weights; matrices are [`Tensor`]s
//! (shape, dtype `f32` or row-quantised `i8`, little-endian bytes in base64). The embedder id
//! must match the embedder the gateway runs: a router never scores vectors from another space.
//!
//! # Manifest and signatures
//!
//! The directory holding artifacts has a `manifest.json` in the format of
//! [`super::store::Manifest`] (`{"format": 1, "files": {"knn.json": {"sha256", "bytes"}}}`),
//! plus, for signed artifacts, `"signatures": {"knn.json": {"algorithm": "ed25519",
//! "public_key": <hex>, "signature": <hex>}}`. The signed message is
//! `routeiq-router-artifact-v1\n` followed by the artifact's lowercase hex sha256, so a
//! signature binds the exact bytes. Loading checks size and sha256 against the manifest
//! (a mismatch is always refused); with [`VerifyPolicy::enforce_signed`]
//! (`LLMROUTER_ENFORCE_SIGNED_MODELS=true`) an artifact must also carry a valid signature by
//! one of the trusted keys, and one without a manifest is refused.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::store::{Manifest, ManifestEntry};

/// `format` of a router artifact.
pub const FORMAT: &str = "routeiq-router";
/// The artifact format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Prefix of the message an artifact signature signs (then the hex sha256).
pub const SIGNATURE_CONTEXT: &str = "routeiq-router-artifact-v1\n";

/// Why an artifact could not be loaded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ArtifactError {
    #[error("router artifact '{path}' cannot be read: {message}")]
    Read { path: String, message: String },
    #[error("router artifact '{path}' is not a valid routeiq-router file: {message}")]
    Parse { path: String, message: String },
    #[error("router artifact '{path}' is inconsistent: {message}")]
    Invalid { path: String, message: String },
    #[error("router artifact '{path}' does not match its manifest: {message}")]
    Mismatch { path: String, message: String },
    #[error("router artifact '{path}' refused: {message}")]
    Unsigned { path: String, message: String },
    #[error("router artifact '{path}' has a bad signature: {message}")]
    BadSignature { path: String, message: String },
    #[error("router artifact '{path}': {message}")]
    Unsupported { path: String, message: String },
}

/// A matrix or vector of weights: `shape`, element type, and the little-endian bytes in
/// base64. `dtype = "i8"` stores one `f32` scale per row (`value = i8 × scale[row]`), which
/// quarters the size of embedding tables at a precision loss far below routing noise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub dtype: DType,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scale: Vec<f32>,
    pub data: String,
}

/// Element type of a [`Tensor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    F32,
    I8,
}

impl Tensor {
    /// An `f32` tensor.
    pub fn f32(shape: Vec<usize>, values: &[f32]) -> Tensor {
        let mut bytes = Vec::with_capacity(values.len() * 4);
        for v in values {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        Tensor {
            shape,
            dtype: DType::F32,
            scale: Vec::new(),
            data: B64.encode(bytes),
        }
    }

    /// A `rows × cols` matrix quantised to `i8` with one scale per row.
    pub fn i8_rows(rows: usize, cols: usize, values: &[f32]) -> Tensor {
        let mut scale = Vec::with_capacity(rows);
        let mut bytes = Vec::with_capacity(rows * cols);
        for row in values.chunks(cols.max(1)).take(rows) {
            let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
            let s = if max > 0.0 { max / 127.0 } else { 1.0 };
            scale.push(s);
            bytes.extend(
                row.iter()
                    .map(|v| (v / s).round().clamp(-127.0, 127.0) as i8 as u8),
            );
        }
        Tensor {
            shape: vec![rows, cols],
            dtype: DType::I8,
            scale,
            data: B64.encode(bytes),
        }
    }

    /// Number of elements the shape says.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decodes to `f32`, checking the byte length against the shape.
    pub fn to_f32(&self) -> Result<Vec<f32>, String> {
        let bytes = B64
            .decode(self.data.as_bytes())
            .map_err(|e| format!("tensor data is not base64: {e}"))?;
        let n = self.len();
        match self.dtype {
            DType::F32 => {
                if bytes.len() != n * 4 {
                    return Err(format!(
                        "f32 tensor of shape {:?} needs {} bytes, has {}",
                        self.shape,
                        n * 4,
                        bytes.len()
                    ));
                }
                Ok(bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect())
            }
            DType::I8 => {
                let rows = self.shape.first().copied().unwrap_or(0);
                if bytes.len() != n || self.scale.len() != rows || rows == 0 {
                    return Err(format!(
                        "i8 tensor of shape {:?} needs {n} bytes and {rows} scales, has {} and {}",
                        self.shape,
                        bytes.len(),
                        self.scale.len()
                    ));
                }
                let cols = n / rows;
                Ok(bytes
                    .chunks(cols.max(1))
                    .zip(&self.scale)
                    .flat_map(|(row, s)| row.iter().map(move |b| f32::from(*b as i8) * s))
                    .collect())
            }
        }
    }

    /// Decodes a matrix, checking it is `rows × cols` (`None` = any).
    pub fn matrix(
        &self,
        name: &str,
        rows: Option<usize>,
        cols: Option<usize>,
    ) -> Result<(Vec<f32>, usize, usize), String> {
        let [r, c] = self.shape[..] else {
            return Err(format!(
                "{name}: expected a matrix, shape is {:?}",
                self.shape
            ));
        };
        if rows.is_some_and(|want| want != r) || cols.is_some_and(|want| want != c) {
            return Err(format!(
                "{name}: shape {:?}, expected [{}, {}]",
                self.shape,
                rows.map_or("*".to_string(), |v| v.to_string()),
                cols.map_or("*".to_string(), |v| v.to_string())
            ));
        }
        let v = self.to_f32().map_err(|e| format!("{name}: {e}"))?;
        if v.iter().any(|x| !x.is_finite()) {
            return Err(format!("{name}: contains NaN or infinite values"));
        }
        Ok((v, r, c))
    }
}

/// The embedding space a router was trained in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct EmbedderSpec {
    /// [`super::Embedder::id`], e.g. `hashed-ngram-v1-256`, `static-minilm-pca128`.
    pub id: String,
    pub dim: usize,
    /// The first dimensions of the embedding of [`PROBE_TEXT`] at training time: an embedder
    /// with the same id but other weights (a re-distilled table) is caught at load.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probe: Vec<f32>,
}

/// The text whose embedding fingerprints an embedder ([`EmbedderSpec::probe`]).
pub const PROBE_TEXT: &str = "RouteIQ embedding probe: route each prompt to the right model.";
const PROBE_DIMS: usize = 8;

/// The probe of an embedder (see [`EmbedderSpec::probe`]); empty if it cannot embed.
pub fn embedding_probe(e: &dyn super::Embedder) -> Vec<f32> {
    e.embed(PROBE_TEXT)
        .map(|v| v.into_iter().take(PROBE_DIMS).collect())
        .unwrap_or_default()
}

/// Whether a recorded probe matches an embedder's (an empty recorded probe always does).
pub fn probe_matches(recorded: &[f32], current: &[f32]) -> bool {
    recorded.is_empty()
        || (recorded.len() == current.len()
            && recorded
                .iter()
                .zip(current)
                .all(|(a, b)| (a - b).abs() < 1e-3))
}

/// A model the router scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    pub name: String,
    /// Parameters in billions, when known (`llmrouter-smallest`/`-largest`, `hybrid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_b: Option<f64>,
    /// USD per million input tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_price: Option<f64>,
    /// USD per million output tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_price: Option<f64>,
    /// Mean quality on the training data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_quality: Option<f64>,
}

/// A dense layer: `weights` is `out × in`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DenseParams {
    pub weights: Tensor,
    pub bias: Vec<f32>,
}

/// How `llmrouter-hybrid` decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HybridMode {
    /// The net predicts the quality gap `q(large) − q(small)`; small when gap ≤ threshold.
    #[default]
    Deterministic,
    /// The net predicts P(q(small) ≥ q(large) − margin); small when P ≥ threshold.
    Probabilistic,
}

/// The weights of each strategy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RouterParams {
    /// `embeddings`: `n × dim` training prompts; `scores`: `n × models` their qualities.
    Knn {
        k: usize,
        /// Weight neighbours by similarity instead of a plain mean.
        #[serde(default)]
        weighted: bool,
        embeddings: Tensor,
        scores: Tensor,
    },
    /// One linear SVM per model (`weights`: `models × dim`), margins mapped to a probability
    /// with Platt scaling: `q = σ(a·margin + b)`.
    Svm {
        weights: Tensor,
        bias: Vec<f32>,
        platt_a: Vec<f32>,
        platt_b: Vec<f32>,
    },
    /// ReLU hidden layers, sigmoid outputs (one per model).
    Mlp {
        hidden: Vec<DenseParams>,
        output: DenseParams,
    },
    /// `q(m, x) = σ(wᵀ(v_m ⊙ P·x) + b_m)`: `projection` `h × dim`, `model_vectors`
    /// `models × h`, `weight` `h`, `bias` `models`.
    Mf {
        projection: Tensor,
        model_vectors: Tensor,
        weight: Vec<f32>,
        bias: Vec<f32>,
    },
    /// Elo ratings, one per model.
    Elo { ratings: Vec<f32> },
    /// A small net over the prompt embedding deciding between `models[small]` and
    /// `models[large]`.
    Hybrid {
        small: usize,
        large: usize,
        mode: HybridMode,
        threshold: f32,
        /// Probabilistic mode: the tolerated quality loss the net was trained for.
        #[serde(default)]
        margin: f32,
        hidden: Vec<DenseParams>,
        output: DenseParams,
    },
    /// `llmrouter-smallest` / `llmrouter-largest`: no weights, models ordered by `size_b`.
    Size,
    /// `llmrouter-custom`: a user's ONNX model (embedding `1 × dim` in, `1 × models` scores
    /// out) in `file`, relative to the artifact, with its sha256.
    CustomOnnx { file: String, sha256: String },
}

/// A router artifact (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouterArtifact {
    pub format: String,
    pub format_version: u32,
    /// The strategy name, e.g. `llmrouter-knn`.
    pub strategy: String,
    /// Version of this trained router (the trainer writes a timestamp and content hash).
    pub version: String,
    pub embedder: EmbedderSpec,
    pub models: Vec<ModelSpec>,
    pub params: RouterParams,
    /// Provenance and training metrics; not read by the router.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub training: serde_json::Value,
}

impl RouterArtifact {
    /// Parses artifact bytes (format and version checked; weights are checked when the
    /// router is built from it).
    pub fn from_bytes(path: &str, bytes: &[u8]) -> Result<RouterArtifact, ArtifactError> {
        // Read the header first so a newer format gets a clear message, not a field error.
        #[derive(Deserialize)]
        struct Header {
            format: Option<String>,
            format_version: Option<u32>,
        }
        let parse = |message: String| ArtifactError::Parse {
            path: path.to_string(),
            message,
        };
        let header: Header = serde_json::from_slice(bytes).map_err(|e| parse(e.to_string()))?;
        if header.format.as_deref() != Some(FORMAT) {
            return Err(parse(format!(
                "\"format\" is {:?}, expected \"{FORMAT}\"",
                header.format
            )));
        }
        if header.format_version != Some(FORMAT_VERSION) {
            return Err(parse(format!(
                "format_version {:?}; this build reads version {FORMAT_VERSION}",
                header.format_version
            )));
        }
        let mut de = serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize(&mut de).map_err(|e| parse(e.to_string()))
    }

    /// Serialises the artifact (compact JSON).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.len() % 2 != 0 || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// An artifact signature as stored in the manifest's `signatures` map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureEntry {
    /// Always `ed25519`.
    pub algorithm: String,
    /// The signer's public key, hex (32 bytes).
    pub public_key: String,
    /// The signature, hex (64 bytes).
    pub signature: String,
}

/// Parses a hex (64 characters) ed25519 public key.
pub fn parse_public_key(hex_key: &str) -> Result<VerifyingKey, String> {
    let bytes = unhex(hex_key).ok_or_else(|| "public key is not hex".to_string())?;
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "an ed25519 public key is 32 bytes (64 hex characters)".to_string())?;
    VerifyingKey::from_bytes(&arr).map_err(|e| format!("invalid ed25519 public key: {e}"))
}

/// Parses a hex (64 characters) ed25519 secret key seed.
pub fn parse_signing_key(hex_seed: &str) -> Result<SigningKey, String> {
    let bytes = unhex(hex_seed).ok_or_else(|| "signing key is not hex".to_string())?;
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "an ed25519 signing key is a 32-byte seed (64 hex characters)".to_string())?;
    Ok(SigningKey::from_bytes(&arr))
}

/// Hex of a public key.
pub fn public_key_hex(key: &VerifyingKey) -> String {
    hex(key.as_bytes())
}

fn signed_message(sha256: &str) -> Vec<u8> {
    format!("{SIGNATURE_CONTEXT}{sha256}").into_bytes()
}

/// Signs an artifact's bytes.
pub fn sign(key: &SigningKey, artifact: &[u8]) -> SignatureEntry {
    let sig = key.sign(&signed_message(&sha256_hex(artifact)));
    SignatureEntry {
        algorithm: "ed25519".into(),
        public_key: public_key_hex(&key.verifying_key()),
        signature: hex(&sig.to_bytes()),
    }
}

/// What loading demands of an artifact's manifest and signature.
#[derive(Debug, Clone, Default)]
pub struct VerifyPolicy {
    /// Refuse artifacts without a manifest or without a valid signature by a trusted key
    /// (`LLMROUTER_ENFORCE_SIGNED_MODELS=true`).
    pub enforce_signed: bool,
    /// Keys whose signatures are trusted (`LLMROUTER_MODEL_PUBLIC_KEYS`,
    /// `routing_strategy_args.public_keys`).
    pub trusted_keys: Vec<VerifyingKey>,
}

impl VerifyPolicy {
    /// The policy from environment values: `LLMROUTER_ENFORCE_SIGNED_MODELS` (`true`/`1`) and
    /// `LLMROUTER_MODEL_PUBLIC_KEYS` (comma-separated hex keys), plus `extra_keys`.
    pub fn from_env(
        env: &dyn Fn(&str) -> Option<String>,
        extra_keys: &[String],
    ) -> Result<VerifyPolicy, String> {
        let enforce_signed = env("LLMROUTER_ENFORCE_SIGNED_MODELS").is_some_and(|v| {
            matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes")
        });
        let mut trusted_keys = Vec::new();
        let from_env = env("LLMROUTER_MODEL_PUBLIC_KEYS").unwrap_or_default();
        for k in from_env
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .chain(extra_keys.iter().map(|s| s.trim()))
        {
            trusted_keys.push(parse_public_key(k)?);
        }
        Ok(VerifyPolicy {
            enforce_signed,
            trusted_keys,
        })
    }
}

/// What verification established about an artifact.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verification {
    pub sha256: String,
    /// A manifest listed the file and its sum matched.
    pub manifest_checked: bool,
    /// Hex public key of a trusted signer whose signature verified.
    pub signed_by: Option<String>,
    /// Something the operator should know (unsigned, untrusted signer); logged by the caller.
    pub warnings: Vec<String>,
}

/// Checks `artifact` (file name `name` inside the manifest's directory) against `manifest`
/// (the bytes of the directory's `manifest.json`, if there is one) under `policy`.
pub fn verify(
    path: &str,
    name: &str,
    artifact: &[u8],
    manifest: Option<&[u8]>,
    policy: &VerifyPolicy,
) -> Result<Verification, ArtifactError> {
    let sha256 = sha256_hex(artifact);
    let mut out = Verification {
        sha256: sha256.clone(),
        ..Verification::default()
    };
    let Some(manifest) = manifest else {
        if policy.enforce_signed {
            return Err(ArtifactError::Unsigned {
                path: path.to_string(),
                message: "LLMROUTER_ENFORCE_SIGNED_MODELS is set and there is no manifest.json \
                          next to the artifact"
                    .into(),
            });
        }
        out.warnings
            .push("no manifest.json next to the artifact: integrity not checked".into());
        return Ok(out);
    };
    let manifest = Manifest::from_json(path, manifest).map_err(|e| ArtifactError::Mismatch {
        path: path.to_string(),
        message: e.to_string(),
    })?;
    let entry = manifest
        .files
        .get(name)
        .ok_or_else(|| ArtifactError::Mismatch {
            path: path.to_string(),
            message: format!("manifest.json does not list '{name}'"),
        })?;
    if entry.bytes != artifact.len() as u64 || !entry.sha256.eq_ignore_ascii_case(&sha256) {
        return Err(ArtifactError::Mismatch {
            path: path.to_string(),
            message: format!(
                "file has {} bytes and sha256 {sha256}; manifest says {} bytes and sha256 {}",
                artifact.len(),
                entry.bytes,
                entry.sha256
            ),
        });
    }
    out.manifest_checked = true;

    let sig_entry: Option<SignatureEntry> = manifest
        .extra
        .get("signatures")
        .and_then(|s| s.get(name))
        .map(|v| serde_json::from_value(v.clone()))
        .transpose()
        .map_err(|e| ArtifactError::BadSignature {
            path: path.to_string(),
            message: format!("signature entry: {e}"),
        })?;
    let Some(sig_entry) = sig_entry else {
        if policy.enforce_signed {
            return Err(ArtifactError::Unsigned {
                path: path.to_string(),
                message: "LLMROUTER_ENFORCE_SIGNED_MODELS is set and the manifest has no \
                          signature for it (sign with `routeiq train --signing-key`)"
                    .into(),
            });
        }
        out.warnings.push("artifact is not signed".into());
        return Ok(out);
    };
    let bad = |message: String| ArtifactError::BadSignature {
        path: path.to_string(),
        message,
    };
    if sig_entry.algorithm != "ed25519" {
        return Err(bad(format!(
            "algorithm '{}' (only ed25519 is supported)",
            sig_entry.algorithm
        )));
    }
    let key = parse_public_key(&sig_entry.public_key).map_err(bad)?;
    let sig_bytes: [u8; 64] = unhex(&sig_entry.signature)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad("signature is not 64 hex-encoded bytes".into()))?;
    key.verify(&signed_message(&sha256), &Signature::from_bytes(&sig_bytes))
        .map_err(|_| bad("the signature does not verify against the file's sha256".into()))?;
    let trusted = policy.trusted_keys.iter().any(|k| k == &key);
    if trusted {
        out.signed_by = Some(sig_entry.public_key.to_ascii_lowercase());
    } else if policy.enforce_signed {
        return Err(ArtifactError::Unsigned {
            path: path.to_string(),
            message: if policy.trusted_keys.is_empty() {
                "LLMROUTER_ENFORCE_SIGNED_MODELS is set but no trusted key is configured \
                 (LLMROUTER_MODEL_PUBLIC_KEYS or routing_strategy_args.public_keys)"
                    .into()
            } else {
                format!(
                    "signed by {}, which is not a trusted key",
                    sig_entry.public_key
                )
            },
        });
    } else {
        out.warnings.push(format!(
            "signed by {}, which is not among the trusted keys",
            sig_entry.public_key
        ));
    }
    Ok(out)
}

/// Adds or replaces `name` in a directory manifest (`existing`: its current bytes), with
/// its size, sha256, router metadata, and a signature when `key` is given. Returns the new
/// manifest JSON.
pub fn update_manifest(
    existing: Option<&[u8]>,
    name: &str,
    artifact: &[u8],
    info: serde_json::Value,
    key: Option<&SigningKey>,
) -> Result<Vec<u8>, String> {
    let mut manifest = match existing {
        Some(bytes) => Manifest::from_json("manifest.json", bytes).map_err(|e| e.to_string())?,
        None => Manifest {
            format: 1,
            id: "routeiq-routers".into(),
            files: BTreeMap::new(),
            extra: serde_json::Map::new(),
        },
    };
    manifest.files.insert(
        name.to_string(),
        ManifestEntry {
            sha256: sha256_hex(artifact),
            bytes: artifact.len() as u64,
        },
    );
    let mut set = |section: &str, value: Option<serde_json::Value>| {
        let map = manifest
            .extra
            .entry(section.to_string())
            .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
        if let Some(obj) = map.as_object_mut() {
            match value {
                Some(v) => obj.insert(name.to_string(), v),
                None => obj.remove(name),
            };
        }
    };
    set("routers", Some(info));
    let sig = key.map(|k| serde_json::to_value(sign(k, artifact)).unwrap_or_default());
    set("signatures", sig);
    serde_json::to_vec_pretty(&manifest).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn tensor_round_trips() {
        let v = [0.5f32, -1.0, 2.25, 0.0, 3.0, -0.125];
        let t = Tensor::f32(vec![2, 3], &v);
        assert_eq!(t.to_f32().unwrap(), v);
        let q = Tensor::i8_rows(2, 3, &v);
        let back = q.to_f32().unwrap();
        for (a, b) in v.iter().zip(&back) {
            assert!((a - b).abs() < 0.02, "{a} vs {b}");
        }
        let mut broken = t.clone();
        broken.shape = vec![3, 3];
        assert!(broken.to_f32().is_err());
        assert!(t.matrix("w", Some(2), Some(4)).is_err());
    }

    fn policy(enforce: bool, keys: &[&SigningKey]) -> VerifyPolicy {
        VerifyPolicy {
            enforce_signed: enforce,
            trusted_keys: keys.iter().map(|k| k.verifying_key()).collect(),
        }
    }

    #[test]
    fn signed_artifact_verifies_and_tampering_is_refused() {
        let k = key(7);
        let art = br#"{"format":"routeiq-router"}"#;
        let m = update_manifest(None, "knn.json", art, serde_json::json!({}), Some(&k)).unwrap();
        let v = verify("p", "knn.json", art, Some(&m), &policy(true, &[&k])).unwrap();
        assert_eq!(v.signed_by, Some(public_key_hex(&k.verifying_key())));

        // One byte changed: the sha256 no longer matches the manifest.
        let tampered = br#"{"format":"routeiq-routeR"}"#;
        let e = verify("p", "knn.json", tampered, Some(&m), &policy(false, &[])).unwrap_err();
        assert!(matches!(e, ArtifactError::Mismatch { .. }), "{e}");

        // The manifest's sum updated by an attacker without the key: the signature fails.
        let forged =
            update_manifest(Some(&m), "knn.json", tampered, serde_json::json!({}), None).unwrap();
        let mut forged: serde_json::Value = serde_json::from_slice(&forged).unwrap();
        let orig: serde_json::Value = serde_json::from_slice(&m).unwrap();
        forged["signatures"] = orig["signatures"].clone();
        let forged = serde_json::to_vec(&forged).unwrap();
        let e = verify(
            "p",
            "knn.json",
            tampered,
            Some(&forged),
            &policy(false, &[]),
        )
        .unwrap_err();
        assert!(matches!(e, ArtifactError::BadSignature { .. }), "{e}");

        // Signed by someone else: refused when enforced, a warning otherwise.
        let other = key(9);
        let e = verify("p", "knn.json", art, Some(&m), &policy(true, &[&other])).unwrap_err();
        assert!(e.to_string().contains("not a trusted key"), "{e}");
        let v = verify("p", "knn.json", art, Some(&m), &policy(false, &[&other])).unwrap();
        assert!(v.signed_by.is_none() && !v.warnings.is_empty());
    }

    #[test]
    fn enforcement_refuses_unsigned_and_unlisted() {
        let art = b"{}";
        let unsigned = update_manifest(None, "a.json", art, serde_json::json!({}), None).unwrap();
        let k = key(1);
        let e = verify("p", "a.json", art, Some(&unsigned), &policy(true, &[&k])).unwrap_err();
        assert!(
            e.to_string().contains("LLMROUTER_ENFORCE_SIGNED_MODELS"),
            "{e}"
        );
        let e = verify("p", "a.json", art, None, &policy(true, &[&k])).unwrap_err();
        assert!(matches!(e, ArtifactError::Unsigned { .. }));
        let e = verify("p", "b.json", art, Some(&unsigned), &policy(false, &[])).unwrap_err();
        assert!(e.to_string().contains("does not list"), "{e}");
        let v = verify("p", "a.json", art, None, &policy(false, &[])).unwrap();
        assert!(!v.manifest_checked && !v.warnings.is_empty());
        // Signed but no trusted key configured while enforcing: a clear message.
        let signed = update_manifest(None, "a.json", art, serde_json::json!({}), Some(&k)).unwrap();
        let e = verify("p", "a.json", art, Some(&signed), &policy(true, &[])).unwrap_err();
        assert!(e.to_string().contains("no trusted key"), "{e}");
    }

    #[test]
    fn policy_from_env() {
        let k = key(3);
        let hex_key = public_key_hex(&k.verifying_key());
        let env = |n: &str| match n {
            "LLMROUTER_ENFORCE_SIGNED_MODELS" => Some("TRUE".to_string()),
            "LLMROUTER_MODEL_PUBLIC_KEYS" => Some(format!(" {hex_key} ,")),
            _ => None,
        };
        let p = VerifyPolicy::from_env(&env, &[]).unwrap();
        assert!(p.enforce_signed);
        assert_eq!(p.trusted_keys, vec![k.verifying_key()]);
        assert!(VerifyPolicy::from_env(&env, &["zz".into()]).is_err());
    }

    #[test]
    fn artifact_header_errors_are_clear() {
        let e = RouterArtifact::from_bytes("x", br#"{"format":"pickle"}"#).unwrap_err();
        assert!(e.to_string().contains("expected \"routeiq-router\""), "{e}");
        let e =
            RouterArtifact::from_bytes("x", br#"{"format":"routeiq-router","format_version":9}"#)
                .unwrap_err();
        assert!(e.to_string().contains("reads version 1"), "{e}");
        assert!(RouterArtifact::from_bytes("x", b"\x80\x04pickle").is_err());
    }
}
