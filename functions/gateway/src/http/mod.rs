//! The client side of the gateway: the HTTP server (connection limits, drain), the
//! per-request middleware (trace ids, shedding, one log line per request), the API handlers
//! and what they check of a request, and the admin endpoints.

pub mod access;
pub mod admin;
pub mod auth;
pub mod client_params;
pub mod explain;
pub mod handlers;
pub mod headers;
pub mod limits;
pub mod management;
pub mod messages;
pub mod observe;
pub mod prompt;
pub mod request_keys;
pub mod response_headers;
pub mod responses;
pub mod server;
