//! `routeiq-trainer`: trains and evaluates RouteIQ's ML routers, in Rust, from routing data
//! (LLMRouter's `{question, scores}` + `default_llm.json`, RouteLLM's response CSVs).
//!
//! - [`data`]: loading and splitting datasets; costs.
//! - [`cache`]: embedding prompts with the same Rust embedders the gateway runs, with an
//!   on-disk cache and a progress bar.
//! - [`nn`], [`train`]: the training of every `llmrouter-*` strategy into a
//!   `routeiq-router` artifact (see `routeiq::ml::artifact`).
//! - [`eval`], [`plot`]: quality/cost curves, AIQ, APGR, the markdown table and the PNG.
//! - [`edge`]: `routeiq train-edge`, the edge Worker's tier classifier.
//! - [`cli`]: `routeiq train`, `routeiq eval` and `routeiq keygen` (the `routeiq` binary of
//!   the gateway crate calls these).

pub mod cache;
pub mod cli;
pub mod data;
pub mod edge;
pub mod eval;
pub mod nn;
pub mod plot;
pub mod train;

/// Why training or evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("data: {0}")]
    Data(String),
    #[error("embedding: {0}")]
    Embed(String),
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    Config(String),
    #[error("router artifact: {0}")]
    Artifact(String),
}
