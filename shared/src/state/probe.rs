//! Test support: an in-memory store that runs a hook before every call, to count calls or
//! to fail them (a backend that goes down).

use std::time::Duration;

use async_trait::async_trait;

use super::{InMemoryStateStore, PutCondition, StateStore, Versioned};
use crate::Error;

/// What a call does to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    Read,
    Write,
}

/// `inner`, with `before` run first on every call; an error from it is the call's error.
pub(crate) struct ProbeStore<F> {
    pub inner: InMemoryStateStore,
    pub before: F,
}

#[async_trait]
impl<F: Fn(Call) -> Result<(), Error> + Send + Sync> StateStore for ProbeStore<F> {
    fn backend(&self) -> &'static str {
        "probe"
    }
    async fn incr(&self, key: &str, delta: i64, ttl: Duration) -> Result<i64, Error> {
        (self.before)(Call::Write)?;
        self.inner.incr(key, delta, ttl).await
    }
    async fn get_counters(&self, keys: &[String]) -> Result<Vec<i64>, Error> {
        (self.before)(Call::Read)?;
        self.inner.get_counters(keys).await
    }
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Versioned>>, Error> {
        (self.before)(Call::Read)?;
        self.inner.get_many(keys).await
    }
    async fn put(
        &self,
        key: &str,
        value: String,
        ttl: Option<Duration>,
        cond: PutCondition,
    ) -> Result<bool, Error> {
        (self.before)(Call::Write)?;
        self.inner.put(key, value, ttl, cond).await
    }
    async fn delete(&self, key: &str) -> Result<(), Error> {
        (self.before)(Call::Write)?;
        self.inner.delete(key).await
    }
}
