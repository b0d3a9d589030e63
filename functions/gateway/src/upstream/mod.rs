//! The provider side of the gateway: dispatch (the order of attempts, retries, cooldowns,
//! fallbacks), the providers' wire formats, the pooled HTTP client with its SSRF guard, and
//! relaying streams.

pub mod client;
pub mod dispatch;
pub mod guard;
pub mod providers;
pub mod stream;
