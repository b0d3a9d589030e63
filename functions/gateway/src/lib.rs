//! RouteIQ gateway: the OpenAI-compatible HTTP app. `main.rs` only parses the command line,
//! loads the config and serves; everything else lives here, grouped by role:
//!
//! - [`http`]: the client side — server, middleware, handlers, admin endpoints, auth, limits,
//!   what a request carries to the router (conversation keys, prompt features), the routing
//!   response headers, `POST /router/explain`;
//! - [`upstream`]: the provider side — dispatch (retries, fallbacks, cooldowns), providers,
//!   the HTTP client and its SSRF guard, streams;
//! - [`telemetry`]: logs, traces, metrics (Prometheus and CloudWatch EMF);
//! - the core shared by both: [`gateway`] (router, providers, settings), [`messages`]
//!   (Anthropic's Messages API as upstream operations), [`error`],
//!   [`app`] (the running config, reloads), [`ml`] (building and reloading the ML router),
//!   [`edge_hint`], [`experiment`] (A/B arms and their counters);
//! - start-up: [`startup`], [`lambda`], [`cli`] (the gateway's arguments), [`check`],
//!   [`settings`], [`s3`]. The `routeiq` CLI (`src/bin/routeiq.rs`, feature `tools`) adds the
//!   trainer's tools.

pub mod app;
pub mod check;
pub mod cli;
pub mod edge_hint;
pub mod error;
pub mod experiment;
pub mod gateway;
pub mod http;
pub mod keys;
pub mod lambda;
pub mod messages;
pub mod ml;
pub mod periodic;
pub mod responses;
pub mod s3;
pub mod settings;
pub mod startup;
pub mod telemetry;
pub mod upstream;

pub use error::GatewayError;
pub use gateway::Gateway;
