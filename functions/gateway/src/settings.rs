//! Operational settings from the environment (`ROUTEIQ_*`, `ADMIN_API_KEYS`, the SSRF guard's
//! allow-lists): everything that is about running the gateway rather than routing, read once
//! at start-up. Every bad value is reported with the variable's name.

use std::time::Duration;

use routeiq::config::SecretString;
use routeiq::ml::routing::MlEnv;
use routeiq::router::CircuitBreakerSettings;

use crate::upstream::guard::OutboundPolicy;

/// Default bound on `messages` in a chat request (`ROUTEIQ_MAX_MESSAGES`).
pub const DEFAULT_MAX_MESSAGES: usize = 2048;
/// Default bound on JSON nesting in a request body (`ROUTEIQ_MAX_JSON_DEPTH`).
pub const DEFAULT_MAX_JSON_DEPTH: usize = 64;
/// Default time SIGTERM waits for in-flight requests (`ROUTEIQ_DRAIN_TIMEOUT_SECONDS`).
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time a client has to send a request head (`ROUTEIQ_HEADER_READ_TIMEOUT_SECONDS`).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default longest pause inside a request body (`ROUTEIQ_BODY_IDLE_TIMEOUT_SECONDS`).
pub const DEFAULT_BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default cap on open client connections per process (`ROUTEIQ_MAX_CONNECTIONS`).
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Default longest line of an upstream event stream (`ROUTEIQ_MAX_SSE_LINE_BYTES`).
pub const DEFAULT_MAX_SSE_LINE_BYTES: usize = 1024 * 1024;
/// Default time a stored Responses API answer is kept (`ROUTEIQ_RESPONSES_TTL_SECONDS`):
/// 30 days, as OpenAI keeps them.
pub const DEFAULT_RESPONSES_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// What the HTTP server allows a client connection (slow and idle clients).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time to receive a request head (request line and headers), from the connection's
    /// start or the end of its previous response: it also bounds keep-alive idle time.
    pub header_read_timeout: Duration,
    /// Longest pause between the bytes of a request body (then 408).
    pub body_idle_timeout: Duration,
    /// Open client connections per process; past it new ones wait to be accepted.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_idle_timeout: DEFAULT_BODY_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Bounds on what one request may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Most `messages` a chat request may carry.
    pub max_messages: usize,
    /// Deepest nesting of JSON arrays and objects a body may have.
    pub max_json_depth: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_messages: DEFAULT_MAX_MESSAGES,
            max_json_depth: DEFAULT_MAX_JSON_DEPTH,
        }
    }
}

/// The gateway's operational settings.
#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    /// Keys accepted on the admin endpoints (`ADMIN_API_KEYS`; the master key counts too).
    pub admin_keys: Vec<SecretString>,
    /// Requests served at once before new ones are shed with 503 (`None`: unbounded).
    pub max_concurrent_requests: Option<usize>,
    /// How long a SIGTERM waits for in-flight requests and streams.
    pub drain_timeout: Duration,
    /// Per-deployment circuit breakers.
    pub circuit_breakers: CircuitBreakerSettings,
    pub limits: RequestLimits,
    /// Slow and idle client connections.
    pub connections: ConnectionLimits,
    /// Longest line of an upstream event stream before the call fails as a bad answer.
    pub max_sse_line_bytes: usize,
    /// The SSRF guard's policy for outbound connections.
    pub outbound: OutboundPolicy,
    /// Running in AWS Lambda (`AWS_LAMBDA_RUNTIME_API` set): metrics are also written as
    /// CloudWatch Embedded Metric Format log lines.
    pub lambda: bool,
    /// The ML strategies' switches (`ROUTEIQ_CENTROID_ROUTING`, `ROUTEIQ_CONFIDENCE_THRESHOLD`,
    /// `ROUTEIQ_ROUTING_PROFILE`, `LLMROUTER_ENFORCE_SIGNED_MODELS`,
    /// `LLMROUTER_MODEL_PUBLIC_KEYS`, `ROUTEIQ_MODEL_DIR`).
    pub ml: MlEnv,
    /// Serving threads (`--num_workers` / `NUM_WORKERS`; set by the server at start-up): the
    /// upstream client keeps one connection pool per thread.
    pub server_threads: usize,
    /// `CONFIG_HOT_RELOAD`: watch the config's source (an S3 object's ETag, a file's size and
    /// modification time) every `config_sync_interval` and reload when it changes.
    pub config_hot_reload: bool,
    /// `CONFIG_SYNC_INTERVAL` (seconds, default 60).
    pub config_sync_interval: Duration,
    /// How long stored Responses API answers are kept in the state store, for
    /// `previous_response_id` and `GET /v1/responses/{id}` (`ROUTEIQ_RESPONSES_TTL_SECONDS`).
    pub responses_ttl: Duration,
    /// How long key, team and user records are cached per process
    /// (`ROUTEIQ_KEY_CACHE_TTL_SECONDS`, default 5).
    pub key_cache_ttl: Duration,
    /// How often batched spend is written to the key store (`ROUTEIQ_SPEND_FLUSH_MS`,
    /// default 200; `0`: at the end of each request; in Lambda the default is `0`).
    pub spend_flush: Duration,
    /// `ROUTEIQ_KEYS_BACKEND`: `memory` (one process), `dynamodb`, `postgres`, `off`; unset:
    /// chosen from the config and environment (`startup::keys_backend`).
    pub keys_backend: Option<String>,
}

/// Default `CONFIG_SYNC_INTERVAL`.
pub const DEFAULT_CONFIG_SYNC_INTERVAL: Duration = Duration::from_secs(60);

impl Default for RuntimeSettings {
    fn default() -> Self {
        RuntimeSettings {
            admin_keys: Vec::new(),
            max_concurrent_requests: None,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            circuit_breakers: CircuitBreakerSettings::default(),
            limits: RequestLimits::default(),
            connections: ConnectionLimits::default(),
            max_sse_line_bytes: DEFAULT_MAX_SSE_LINE_BYTES,
            outbound: OutboundPolicy::default(),
            lambda: false,
            ml: MlEnv::default(),
            server_threads: 1,
            config_hot_reload: false,
            config_sync_interval: DEFAULT_CONFIG_SYNC_INTERVAL,
            responses_ttl: DEFAULT_RESPONSES_TTL,
            key_cache_ttl: crate::keys::access::DEFAULT_CACHE_TTL,
            spend_flush: crate::keys::spend::DEFAULT_FLUSH,
            keys_backend: None,
        }
    }
}

/// A bad environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvProblem {
    pub var: String,
    pub message: String,
}

impl std::fmt::Display for EnvProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.var, self.message)
    }
}

/// Every problem found in the environment.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid environment: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct EnvError(pub Vec<EnvProblem>);

struct Reader<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<EnvProblem>,
}

impl Reader<'_> {
    fn get(&self, var: &str) -> Option<String> {
        (self.env)(var).filter(|v| !v.trim().is_empty())
    }

    fn number<T: std::str::FromStr>(&mut self, var: &str, what: &str) -> Option<T> {
        let raw = self.get(var)?;
        match raw.trim().parse::<T>() {
            Ok(v) => Some(v),
            Err(_) => {
                self.problems.push(EnvProblem {
                    var: var.to_string(),
                    message: format!("'{}' is not {what}", raw.trim()),
                });
                None
            }
        }
    }

    /// A number of seconds from 0 to one year.
    fn seconds(&mut self, var: &str) -> Option<Duration> {
        let secs: f64 = self.number(var, "a number of seconds")?;
        match Duration::try_from_secs_f64(secs) {
            Ok(d) if d <= routeiq::config::MAX_DURATION => Some(d),
            _ => {
                self.problems.push(EnvProblem {
                    var: var.to_string(),
                    message: format!(
                        "{secs} is not a number of seconds from 0 to {} (one year)",
                        routeiq::config::MAX_DURATION.as_secs()
                    ),
                });
                None
            }
        }
    }

    /// A number of seconds above 0 (and at most one year).
    fn positive_seconds(&mut self, var: &str) -> Option<Duration> {
        let d = self.seconds(var)?;
        if d.is_zero() {
            self.problems.push(EnvProblem {
                var: var.to_string(),
                message: "must be above 0 seconds".to_string(),
            });
            return None;
        }
        Some(d)
    }

    fn flag(&mut self, var: &str) -> Option<bool> {
        let raw = self.get(var)?;
        let flag = parse_flag(&raw);
        if flag.is_none() {
            self.problems.push(EnvProblem {
                var: var.to_string(),
                message: format!(
                    "'{}' is not a boolean (true/false)",
                    raw.trim().to_ascii_lowercase()
                ),
            });
        }
        flag
    }

    /// `ROUTEIQ_<suffix>`, else the `LLMROUTER_<suffix>` spelling; the name read, and its value.
    /// The first of `names` that is set, with its name (the names of one setting, in order
    /// of precedence).
    fn first_of(&self, names: &[&str]) -> Option<(String, String)> {
        names
            .iter()
            .find_map(|var| self.get(var).map(|v| (var.to_string(), v)))
    }
}

/// The SSRF guard's variables: RouteIQ's names, then the seed's (`LLMROUTER_SSRF_*`,
/// `LLMROUTER_ALLOW_PRIVATE_IPS`, `LLMROUTER_OUTBOUND_*`), the first set wins.
const SSRF_ALLOW_PRIVATE: [&str; 4] = [
    "ROUTEIQ_SSRF_ALLOW_PRIVATE",
    "LLMROUTER_SSRF_ALLOW_PRIVATE",
    "LLMROUTER_ALLOW_PRIVATE_IPS",
    "LLMROUTER_OUTBOUND_ALLOW_PRIVATE",
];
const SSRF_HOST_ALLOWLIST: [&str; 4] = [
    "ROUTEIQ_SSRF_HOST_ALLOWLIST",
    "LLMROUTER_SSRF_HOST_ALLOWLIST",
    "LLMROUTER_SSRF_ALLOWLIST_HOSTS",
    "LLMROUTER_OUTBOUND_HOST_ALLOWLIST",
];
const SSRF_CIDR_ALLOWLIST: [&str; 4] = [
    "ROUTEIQ_SSRF_CIDR_ALLOWLIST",
    "LLMROUTER_SSRF_CIDR_ALLOWLIST",
    "LLMROUTER_SSRF_ALLOWLIST_CIDRS",
    "LLMROUTER_OUTBOUND_CIDR_ALLOWLIST",
];
const SSRF_URL_ALLOWLIST: [&str; 3] = [
    "ROUTEIQ_SSRF_URL_ALLOWLIST",
    "LLMROUTER_SSRF_URL_ALLOWLIST",
    "LLMROUTER_OUTBOUND_URL_ALLOWLIST",
];

/// A boolean environment value: `true`/`1`/`yes`/`on` or `false`/`0`/`no`/`off`, any case.
pub(crate) fn parse_flag(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn list(raw: &str) -> impl Iterator<Item = &str> {
    raw.split(',').map(str::trim).filter(|s| !s.is_empty())
}

impl RuntimeSettings {
    /// Reads the settings from `env`; reports every bad variable at once.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<RuntimeSettings, EnvError> {
        let mut r = Reader {
            env,
            problems: Vec::new(),
        };
        let defaults = RuntimeSettings::default();
        let admin_keys = r
            .get("ADMIN_API_KEYS")
            .map(|raw| list(&raw).map(SecretString::new).collect())
            .unwrap_or_default();
        let max_concurrent_requests = r
            .number::<usize>(
                "ROUTEIQ_MAX_CONCURRENT_REQUESTS",
                "a non-negative whole number",
            )
            .filter(|n| *n > 0);
        let drain_timeout = r
            .seconds("ROUTEIQ_DRAIN_TIMEOUT_SECONDS")
            .unwrap_or(defaults.drain_timeout);
        let cb = defaults.circuit_breakers;
        let circuit_breakers = CircuitBreakerSettings {
            failure_threshold: r
                .number(
                    "ROUTEIQ_CB_FAILURE_THRESHOLD",
                    "a non-negative whole number",
                )
                .unwrap_or(cb.failure_threshold),
            success_threshold: r
                .number(
                    "ROUTEIQ_CB_SUCCESS_THRESHOLD",
                    "a non-negative whole number",
                )
                .unwrap_or(cb.success_threshold),
            open_timeout: r
                .seconds("ROUTEIQ_CB_TIMEOUT_SECONDS")
                .unwrap_or(cb.open_timeout),
            window: r.seconds("ROUTEIQ_CB_WINDOW_SECONDS").unwrap_or(cb.window),
        };
        let limits = RequestLimits {
            max_messages: r
                .number("ROUTEIQ_MAX_MESSAGES", "a positive whole number")
                .filter(|n: &usize| *n > 0)
                .unwrap_or(DEFAULT_MAX_MESSAGES),
            max_json_depth: r
                .number("ROUTEIQ_MAX_JSON_DEPTH", "a positive whole number")
                .filter(|n: &usize| *n > 0)
                .unwrap_or(DEFAULT_MAX_JSON_DEPTH),
        };
        let connections = ConnectionLimits {
            header_read_timeout: r
                .positive_seconds("ROUTEIQ_HEADER_READ_TIMEOUT_SECONDS")
                .unwrap_or(DEFAULT_HEADER_READ_TIMEOUT),
            body_idle_timeout: r
                .positive_seconds("ROUTEIQ_BODY_IDLE_TIMEOUT_SECONDS")
                .unwrap_or(DEFAULT_BODY_IDLE_TIMEOUT),
            max_connections: r
                .number("ROUTEIQ_MAX_CONNECTIONS", "a positive whole number")
                .filter(|n: &usize| *n > 0)
                .unwrap_or(DEFAULT_MAX_CONNECTIONS),
        };
        let max_sse_line_bytes = r
            .number("ROUTEIQ_MAX_SSE_LINE_BYTES", "a positive whole number")
            .filter(|n: &usize| *n > 0)
            .unwrap_or(DEFAULT_MAX_SSE_LINE_BYTES);
        let mut outbound = OutboundPolicy::default();
        if let Some((var, _)) = r.first_of(&SSRF_ALLOW_PRIVATE) {
            outbound.allow_private = r.flag(&var).unwrap_or(false);
        }
        if let Some((_, raw)) = r.first_of(&SSRF_HOST_ALLOWLIST) {
            outbound.host_allowlist = list(&raw).map(|h| h.to_ascii_lowercase()).collect();
        }
        // A URL allow-list (the seed's `LLMROUTER_OUTBOUND_URL_ALLOWLIST`) allows the hosts of
        // its URLs.
        if let Some((var, raw)) = r.first_of(&SSRF_URL_ALLOWLIST) {
            for item in list(&raw) {
                match item.parse::<http::Uri>().ok().and_then(|u| {
                    matches!(u.scheme_str(), Some("http" | "https"))
                        .then(|| u.host().map(str::to_ascii_lowercase))
                        .flatten()
                }) {
                    Some(host) => outbound.host_allowlist.push(host),
                    None => r.problems.push(EnvProblem {
                        var: var.clone(),
                        message: format!("'{item}' is not an http:// or https:// URL"),
                    }),
                }
            }
        }
        if let Some((var, raw)) = r.first_of(&SSRF_CIDR_ALLOWLIST) {
            for item in list(&raw) {
                match crate::upstream::guard::parse_cidr(item) {
                    Some(net) => outbound.cidr_allowlist.push(net),
                    None => r.problems.push(EnvProblem {
                        var: var.clone(),
                        message: format!("'{item}' is not a CIDR (e.g. 10.0.0.0/8) or an IP"),
                    }),
                }
            }
        }
        let lambda = r.get("AWS_LAMBDA_RUNTIME_API").is_some();
        let ml = MlEnv::from_env(env).unwrap_or_else(|problems| {
            r.problems.extend(problems.into_iter().map(|p| EnvProblem {
                var: p.path,
                message: p.message,
            }));
            MlEnv::default()
        });
        let config_hot_reload = r.flag("CONFIG_HOT_RELOAD").unwrap_or(false);
        let config_sync_interval = r
            .positive_seconds("CONFIG_SYNC_INTERVAL")
            .unwrap_or(DEFAULT_CONFIG_SYNC_INTERVAL);
        let responses_ttl = r
            .positive_seconds("ROUTEIQ_RESPONSES_TTL_SECONDS")
            .unwrap_or(DEFAULT_RESPONSES_TTL);
        let key_cache_ttl = r
            .seconds("ROUTEIQ_KEY_CACHE_TTL_SECONDS")
            .unwrap_or(crate::keys::access::DEFAULT_CACHE_TTL);
        let spend_flush = r
            .number::<u64>("ROUTEIQ_SPEND_FLUSH_MS", "a whole number of milliseconds")
            .map(Duration::from_millis)
            .unwrap_or(if lambda {
                Duration::ZERO
            } else {
                crate::keys::spend::DEFAULT_FLUSH
            });
        let keys_backend = r
            .get("ROUTEIQ_KEYS_BACKEND")
            .map(|v| v.trim().to_ascii_lowercase());
        if let Some(b) = &keys_backend
            && !matches!(b.as_str(), "memory" | "dynamodb" | "postgres" | "off")
        {
            r.problems.push(EnvProblem {
                var: "ROUTEIQ_KEYS_BACKEND".into(),
                message: format!("'{b}' is not one of memory, dynamodb, postgres, off"),
            });
        }
        if !r.problems.is_empty() {
            return Err(EnvError(r.problems));
        }
        Ok(RuntimeSettings {
            admin_keys,
            max_concurrent_requests,
            drain_timeout,
            circuit_breakers,
            limits,
            connections,
            max_sse_line_bytes,
            outbound,
            lambda,
            ml,
            server_threads: 1,
            config_hot_reload,
            config_sync_interval,
            responses_ttl,
            key_cache_ttl,
            spend_flush,
            keys_backend,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn defaults_without_variables() {
        let s = RuntimeSettings::from_env(&env(&[])).unwrap();
        assert_eq!(s.drain_timeout, Duration::from_secs(30));
        assert_eq!(s.circuit_breakers, CircuitBreakerSettings::default());
        assert_eq!(s.limits, RequestLimits::default());
        assert!(s.max_concurrent_requests.is_none());
        assert!(!s.outbound.allow_private);
        assert!(!s.lambda);
        assert_eq!(s.responses_ttl, DEFAULT_RESPONSES_TTL);
    }

    #[test]
    fn reads_every_variable() {
        let s = RuntimeSettings::from_env(&env(&[
            ("ADMIN_API_KEYS", "sk-admin-1, sk-admin-2,"),
            ("ROUTEIQ_MAX_CONCURRENT_REQUESTS", "64"),
            ("ROUTEIQ_DRAIN_TIMEOUT_SECONDS", "2.5"),
            ("ROUTEIQ_CB_FAILURE_THRESHOLD", "3"),
            ("ROUTEIQ_CB_SUCCESS_THRESHOLD", "1"),
            ("ROUTEIQ_CB_TIMEOUT_SECONDS", "10"),
            ("ROUTEIQ_CB_WINDOW_SECONDS", "20"),
            ("ROUTEIQ_MAX_MESSAGES", "10"),
            ("ROUTEIQ_MAX_JSON_DEPTH", "8"),
            ("LLMROUTER_SSRF_ALLOW_PRIVATE", "true"),
            ("ROUTEIQ_SSRF_HOST_ALLOWLIST", "Metadata.internal"),
            ("LLMROUTER_SSRF_CIDR_ALLOWLIST", "10.0.0.0/8,192.168.1.7"),
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
            ("ROUTEIQ_RESPONSES_TTL_SECONDS", "3600"),
        ]))
        .unwrap();
        assert_eq!(s.admin_keys.len(), 2);
        assert_eq!(s.admin_keys[1].expose(), "sk-admin-2");
        assert_eq!(s.max_concurrent_requests, Some(64));
        assert_eq!(s.drain_timeout, Duration::from_millis(2500));
        assert_eq!(s.circuit_breakers.failure_threshold, 3);
        assert_eq!(s.circuit_breakers.success_threshold, 1);
        assert_eq!(s.circuit_breakers.open_timeout, Duration::from_secs(10));
        assert_eq!(s.circuit_breakers.window, Duration::from_secs(20));
        assert_eq!(s.limits.max_messages, 10);
        assert_eq!(s.limits.max_json_depth, 8);
        assert!(s.outbound.allow_private);
        assert_eq!(s.outbound.host_allowlist, vec!["metadata.internal"]);
        assert_eq!(s.outbound.cidr_allowlist.len(), 2);
        assert!(s.lambda);
        assert_eq!(s.responses_ttl, Duration::from_secs(3600));
    }

    #[test]
    fn the_seeds_ssrf_variable_names_work() {
        let s = RuntimeSettings::from_env(&env(&[
            ("LLMROUTER_ALLOW_PRIVATE_IPS", "true"),
            ("LLMROUTER_SSRF_ALLOWLIST_HOSTS", "vllm.internal"),
            ("LLMROUTER_SSRF_ALLOWLIST_CIDRS", "10.1.0.0/16"),
            (
                "LLMROUTER_OUTBOUND_URL_ALLOWLIST",
                "http://Ollama.Local:11434/v1, https://tgi.internal",
            ),
        ]))
        .unwrap();
        assert!(s.outbound.allow_private);
        assert_eq!(
            s.outbound.host_allowlist,
            ["vllm.internal", "ollama.local", "tgi.internal"]
        );
        assert_eq!(s.outbound.cidr_allowlist.len(), 1);
        let s = RuntimeSettings::from_env(&env(&[
            ("LLMROUTER_OUTBOUND_ALLOW_PRIVATE", "false"),
            ("LLMROUTER_OUTBOUND_HOST_ALLOWLIST", "a.internal"),
            ("LLMROUTER_OUTBOUND_CIDR_ALLOWLIST", "192.168.0.0/24"),
        ]))
        .unwrap();
        assert!(!s.outbound.allow_private);
        assert_eq!(s.outbound.host_allowlist, ["a.internal"]);
        assert_eq!(s.outbound.cidr_allowlist.len(), 1);
        let err = RuntimeSettings::from_env(&env(&[(
            "LLMROUTER_OUTBOUND_URL_ALLOWLIST",
            "ftp://x, not a url",
        )]))
        .unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
    }

    #[test]
    fn every_bad_value_is_reported_by_name() {
        let err = RuntimeSettings::from_env(&env(&[
            ("ROUTEIQ_CB_FAILURE_THRESHOLD", "many"),
            ("ROUTEIQ_DRAIN_TIMEOUT_SECONDS", "-1"),
            ("ROUTEIQ_SSRF_CIDR_ALLOWLIST", "10.0.0.0/33"),
            ("ROUTEIQ_SSRF_ALLOW_PRIVATE", "maybe"),
            ("ROUTEIQ_RESPONSES_TTL_SECONDS", "0"),
        ]))
        .unwrap_err();
        let vars: Vec<&str> = err.0.iter().map(|p| p.var.as_str()).collect();
        assert_eq!(vars.len(), 5, "{err}");
        for v in [
            "ROUTEIQ_CB_FAILURE_THRESHOLD",
            "ROUTEIQ_DRAIN_TIMEOUT_SECONDS",
            "ROUTEIQ_SSRF_CIDR_ALLOWLIST",
            "ROUTEIQ_SSRF_ALLOW_PRIVATE",
            "ROUTEIQ_RESPONSES_TTL_SECONDS",
        ] {
            assert!(vars.contains(&v), "{err}");
        }
    }
}
