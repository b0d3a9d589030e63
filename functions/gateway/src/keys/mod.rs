//! The control plane: virtual keys, teams, users, budgets, spend and per-key rate limits, in
//! LiteLLM's shapes.
//!
//! - `model.rs`: the records (keys, teams, users, spend-log rows), key hashing, periods;
//! - `store.rs`: the [`KeyStore`] trait; `memory.rs`, `dynamodb.rs`, `postgres.rs` (LiteLLM's
//!   own tables) its implementations;
//! - `access.rs`: the request path ([`ControlPlane`]: who, may it, can it now, what it cost);
//! - `jwt.rs`: JWTs as credentials ([`JwtAuth`]: key sets, algorithms, claims);
//! - `spend.rs`: charges and spend-log rows batched into the store;
//! - `error.rs`: why a request was refused ([`AccessError`]).
//!
//! The admin API over it is `http/management.rs`.

pub mod access;
pub mod dynamodb;
pub mod error;
pub mod jwt;
pub mod memory;
pub mod model;
pub mod postgres;
pub mod spend;
pub mod store;

pub use access::{Admission, ControlPlane, ControlSettings, JwtGrant, Outcome, Principal};
pub use error::AccessError;
pub use jwt::{JwtAuth, JwtIdentity};
pub use store::{KeyStore, KeyStoreError};
