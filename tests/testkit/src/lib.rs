//! Test support for RouteIQ.
//!
//! - [`mock`]: an in-process mock of the upstream LLM APIs (OpenAI, Azure OpenAI, Anthropic) with
//!   scriptable failures; also the `mock-upstream` binary for benchmarks.
//! - [`gateway`]: runs the `routeiq-gateway` binary as a child process.
//! - [`sse`]: reads Server-Sent Events from responses, and OpenAI-style chunk streams
//!   ([`ChunkStream`]).
//! - [`redis`]: the run's Redis and dedicated `redis-server` processes for the state tests.
//! - [`postgres`]: the run's PostgreSQL (LiteLLM's schema) for the key-store tests, and a relay
//!   to cut it.
//! - [`client`]: a reqwest client for talking to both.

// Test support: its helpers fail the test that uses them loudly, by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod fixtures;
pub mod gateway;
pub mod mock;
pub mod postgres;
pub mod redis;
pub mod sse;

use std::time::Duration;

pub use fixtures::{
    TEST_JWT_EC_PEM, TEST_JWT_RSA_2_PEM, TEST_SERVICE_ACCOUNT_PEM, TempDir, dynamodb_state_env,
    litellm_placeholder, s3_put, sign_jwt, test_jwk, test_service_account_json, unix_now,
};
pub use gateway::GatewayProcess;
pub use mock::{
    Behavior, MOCK_ACCESS_TOKEN, MockOptions, MockUpstream, RecordedRequest, closed_port_url,
};
pub use postgres::{TcpRelay, postgres_test_ca, shared_postgres_url};
pub use redis::{RedisServer, redis_state_env, shared_redis_url};
pub use sse::{ChunkStream, SseEvent, SseOutcome, parse_sse, read_sse, sse_events};

/// Installs rustls' `ring` crypto provider as the process default (needed before building any
/// reqwest client; harmless when already installed).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A reqwest client for tests: no proxy (so 127.0.0.1 is reached directly), a 5 s connect
/// timeout and no overall timeout (streams may be long; use `RequestBuilder::timeout`).
///
/// # Panics
/// If the client cannot be built (no TLS backend), which would be a build problem.
pub fn client() -> reqwest::Client {
    install_crypto_provider();
    match reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(5))
        .build()
    {
        Ok(c) => c,
        Err(e) => panic!("building the reqwest client: {e}"),
    }
}
