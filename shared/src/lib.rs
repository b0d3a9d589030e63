//! RouteIQ's routing core, shared by the gateway function and the edge Worker.
//!
//! With default features this crate is plain Rust with no async runtime, no network and no
//! clock of its own, so it builds for `wasm32-unknown-unknown`: the caller passes time
//! (through [`state::Clock`]) and randomness (a `fastrand::Rng`).

pub mod anthropic;
pub mod config;
pub mod edge;
pub mod error;
pub mod ml;
pub mod openai;
pub mod pricing;
pub mod provider;
pub mod responses;
pub mod router;
pub mod state;
pub mod translate;

pub use error::Error;
