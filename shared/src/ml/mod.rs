//! ML routing: prompt embeddings and the routers that score models from them.
//!
//! The [`Embedder`] interface is implemented by the transformer (all-MiniLM-L6-v2 run by
//! tract) and the static token-embedding table, both behind the `onnx` feature (tract and
//! tokenizers are too heavy for wasm); the routers themselves are plain math on `f32`
//! vectors and build everywhere.

pub mod embed;

pub use embed::{EmbedError, Embedder};
