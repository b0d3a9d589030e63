//! RouteIQ gateway: the OpenAI-compatible HTTP app. `main.rs` only parses the command line,
//! loads the config and serves; everything else lives here.

pub mod auth;
pub mod cli;
pub mod dispatch;
pub mod error;
pub mod gateway;
pub mod handlers;
pub mod providers;
pub mod server;
pub mod startup;
pub mod stream;

pub use error::GatewayError;
pub use gateway::Gateway;
