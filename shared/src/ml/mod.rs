//! ML routing: prompt embeddings and the routers that score models from them.
//!
//! The [`Embedder`] interface is implemented by the transformer (all-MiniLM-L6-v2 run by
//! tract, `transformer`, feature `onnx`: tract and tokenizers are too heavy for wasm) and
//! the static token-embedding table distilled from it ([`static_embed`], with the pure-Rust
//! [`wordpiece`] tokenizer, so it builds everywhere, wasm included; its distillation,
//! `distill`, needs the transformer and so the `onnx` feature). [`store`] fetches and
//! verifies model files. The routers themselves are plain math on `f32` vectors and build
//! everywhere.
//!
//! Routing: [`hashed`] is the model-free hashed n-gram embedder; [`artifact`] the router
//! file format, manifest and signature checks; [`predictor`] the strategies' math;
//! [`choice`] cost-aware ordering; [`centroid`] zero-config tiers and profiles; [`slot`]
//! hot reload; [`routing`] ties them into the `llmrouter-*` strategies the router runs;
//! [`request_type`] tells what kind of task a prompt is (the adaptive auto router).
//! `custom_onnx` (feature `onnx`) runs a user's own ONNX router for `llmrouter-custom`.

pub mod artifact;
pub mod centroid;
pub mod choice;
#[cfg(feature = "onnx")]
pub mod custom_onnx;
#[cfg(feature = "onnx")]
pub mod distill;
pub mod embed;
pub mod hashed;
pub mod predictor;
pub mod request_type;
pub mod routing;
pub mod slot;
pub mod static_embed;
pub mod store;
pub mod strategies;
#[cfg(feature = "onnx")]
pub mod transformer;
pub mod wordpiece;

pub use embed::{EmbedError, Embedder};
pub use hashed::HashedNgramEmbedder;
pub use static_embed::StaticEmbedder;
pub use store::{FsModelStore, ModelStore};
pub use strategies::MlStrategyName;
#[cfg(feature = "onnx")]
pub use transformer::TransformerEmbedder;
