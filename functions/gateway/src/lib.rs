//! RouteIQ gateway: the OpenAI-compatible HTTP app. `main.rs` only parses the command line,
//! loads the config and serves; everything else lives here.

pub mod admin;
pub mod app;
pub mod auth;
pub mod check;
pub mod cli;
pub mod client;
pub mod client_params;
pub mod dispatch;
pub mod edge_hint;
pub mod emf;
pub mod error;
pub mod experiment;
pub mod gateway;
pub mod handlers;
pub mod lambda;
pub mod limits;
pub mod logfmt;
pub mod metrics;
pub mod ml;
pub mod observe;
pub mod outbound;
pub mod periodic;
pub mod providers;
pub mod s3;
pub mod server;
pub mod settings;
pub mod startup;
pub mod stream;
pub mod telemetry;

pub use error::GatewayError;
pub use gateway::Gateway;
