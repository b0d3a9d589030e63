//! Routing state shared between gateway processes, over each shared backend: DynamoDB (moto's
//! server) and Redis (the `redis-server` `tests/run.sh` starts, reached through LiteLLM's
//! `router_settings.redis_*` keys; dedicated servers for the tests that kill it), and what
//! happens when the backend cannot be reached.
//!
//! - `dynamodb::*`, `redis::*`: the same tests on each backend (rpm budgets and cooldowns
//!   shared by two processes; an unreachable backend degrades readiness and keeps routing).
//! - `redis_killed_mid_run_degrades_then_recovers`: Redis goes away under running gateways and
//!   comes back on the same port.
//! - `redis_over_tls_with_password_and_database`: `rediss://` (certificates made with
//!   `openssl`), the password from `redis_password`, the database from the URL.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use routeiq_testkit::{
    Behavior, GatewayProcess, MockUpstream, RedisServer, TempDir, closed_port_url, redis_state_env,
    shared_redis_url,
};
use serde_json::Value;

use crate::{bin, chat_body, get, header, post, render};

const USAGE: &str = r#"
model_list:
  - model_name: u
    litellm_params: {model: openai/one, api_base: "{MOCK}", api_key: k, rpm: 2}
    model_info: {id: one}
  - model_name: u
    litellm_params: {model: openai/two, api_base: "{MOCK}", api_key: k, rpm: 2}
    model_info: {id: two}
router_settings:
  routing_strategy: usage-based-routing-v2
"#;

const POOL: &str = r#"
model_list:
  - model_name: u
    litellm_params: {model: openai/one, api_base: "{MOCK}", api_key: k}
    model_info: {id: one}
  - model_name: u
    litellm_params: {model: openai/two, api_base: "{MOCK}", api_key: k}
    model_info: {id: two}
router_settings:
  cooldown_time: 60
"#;

fn minute() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 60)
}

/// A shared state backend, and how gateways are pointed at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    DynamoDb,
    Redis,
}

/// What a gateway needs to share state under a prefix: environment, and lines appended to
/// the config's `router_settings`.
struct Shared {
    env: Vec<(String, String)>,
    router_settings: String,
}

impl Backend {
    /// The name readiness reports (`state_backend`).
    fn name(self) -> &'static str {
        match self {
            Backend::DynamoDb => "dynamodb",
            Backend::Redis => "redis",
        }
    }

    /// The run's shared backend under `prefix`. Redis through the config keys a LiteLLM
    /// config has (`redis_host`, `redis_port`).
    fn shared(self, prefix: &str) -> Shared {
        match self {
            Backend::DynamoDb => Shared {
                env: routeiq_testkit::dynamodb_state_env(prefix),
                router_settings: String::new(),
            },
            Backend::Redis => {
                let url = shared_redis_url();
                let (host, port) = url
                    .trim_start_matches("redis://")
                    .rsplit_once(':')
                    .expect("ROUTEIQ_TEST_REDIS_URL is redis://host:port");
                Shared {
                    env: vec![("ROUTEIQ_STATE_PREFIX".into(), format!("{prefix}:"))],
                    router_settings: format!("  redis_host: {host}\n  redis_port: {port}\n"),
                }
            }
        }
    }

    /// A backend that refuses connections (environment only).
    fn unreachable(self) -> Shared {
        let closed = closed_port_url();
        match self {
            Backend::DynamoDb => {
                let mut env = routeiq_testkit::dynamodb_state_env("unreachable");
                env.push(("AWS_ENDPOINT_URL_DYNAMODB".into(), closed));
                Shared {
                    env,
                    router_settings: String::new(),
                }
            }
            Backend::Redis => Shared {
                env: redis_state_env(&closed.replace("http://", "redis://"), "unreachable"),
                router_settings: String::new(),
            },
        }
    }
}

async fn gateway(template: &str, mock: &MockUpstream, shared: &Shared) -> GatewayProcess {
    let config = format!("{}{}", render(template, mock), shared.router_settings);
    let env: Vec<(&str, &str)> = shared
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    GatewayProcess::start(bin(), &config, &env)
        .await
        .unwrap_or_else(|e| panic!("gateway did not start: {e:#}"))
}

async fn readiness(gw: &GatewayProcess) -> Value {
    let resp = get(gw, "/health/readiness").await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

async fn rpm_limits_hold_across_two_gateway_processes(backend: Backend) {
    let mock = MockUpstream::start().await;
    // A run that straddles a minute boundary sees fresh counters halfway: try again then.
    for _attempt in 0..3 {
        let shared = backend.shared(&format!("rpm-{}-{}", std::process::id(), minute()));
        let a = gateway(USAGE, &mock, &shared).await;
        let b = gateway(USAGE, &mock, &shared).await;
        let start = minute();
        let mut used: HashMap<String, usize> = HashMap::new();
        // Four requests alternating between the two processes fill both deployments' rpm.
        for gw in [&a, &b, &a, &b] {
            let resp = post(gw, "/v1/chat/completions", &chat_body("u", "hi")).await;
            assert_eq!(resp.status(), 200);
            *used
                .entry(header(&resp, "x-routeiq-model").to_string())
                .or_default() += 1;
        }
        // A fifth request, to either process, finds both limits used up by the other too.
        let fifth_a = post(&a, "/v1/chat/completions", &chat_body("u", "hi")).await;
        let fifth_b = post(&b, "/v1/chat/completions", &chat_body("u", "hi")).await;
        if minute() != start {
            continue;
        }
        assert_eq!(used.get("one"), Some(&2), "{used:?}");
        assert_eq!(used.get("two"), Some(&2), "{used:?}");
        assert_eq!(fifth_a.status(), 429);
        assert_eq!(fifth_b.status(), 429);
        let ready = readiness(&a).await;
        assert_eq!(ready["state_backend"], backend.name());
        assert_eq!(ready["state"]["status"], "healthy");
        return;
    }
    panic!("three attempts straddled a minute boundary");
}

async fn cooldowns_hold_across_two_gateway_processes(backend: Backend) {
    let mock = MockUpstream::start().await;
    let shared = backend.shared(&format!("cooldown-{}-{}", std::process::id(), minute()));
    let a = gateway(POOL, &mock, &shared).await;
    let b = gateway(POOL, &mock, &shared).await;
    // Deployment `one` answers its next request with a 429 (Retry-After: 60): process a
    // cools it down and the request moves on to `two`.
    mock.fail_times("one", 1, Behavior::rate_limited(Some(60)));
    for _ in 0..40 {
        if mock.hits("one") > 0 {
            break;
        }
        let resp = post(&a, "/v1/chat/completions", &chat_body("u", "hi")).await;
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(mock.hits("one"), 1, "a never picked deployment one");
    // Process b never saw the 429, yet routes around `one`.
    for _ in 0..8 {
        let resp = post(&b, "/v1/chat/completions", &chat_body("u", "hi")).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "x-routeiq-model"), "two");
    }
    assert_eq!(mock.hits("one"), 1);
    assert_eq!(readiness(&b).await["state_backend"], backend.name());
}

async fn unreachable_backend_degrades_but_keeps_routing(backend: Backend) {
    let mock = MockUpstream::start().await;
    let gw = gateway(USAGE, &mock, &backend.unreachable()).await;
    for _ in 0..3 {
        let resp = post(&gw, "/v1/chat/completions", &chat_body("u", "hi")).await;
        assert_eq!(resp.status(), 200);
    }
    let ready = readiness(&gw).await;
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["state"]["status"], "degraded");
    assert_eq!(ready["state_backend"], backend.name());
    assert!(gw.logs().contains("state backend failing"), "{}", gw.logs());
}

/// The same tests on each backend.
macro_rules! on_backend {
    ($module:ident, $backend:expr) => {
        mod $module {
            use super::Backend;

            #[tokio::test]
            async fn rpm_limits_hold_across_two_gateway_processes() {
                super::rpm_limits_hold_across_two_gateway_processes($backend).await;
            }

            #[tokio::test]
            async fn cooldowns_hold_across_two_gateway_processes() {
                super::cooldowns_hold_across_two_gateway_processes($backend).await;
            }

            #[tokio::test]
            async fn unreachable_backend_degrades_but_keeps_routing() {
                super::unreachable_backend_degrades_but_keeps_routing($backend).await;
            }
        }
    };
}

on_backend!(dynamodb, Backend::DynamoDb);
on_backend!(redis, Backend::Redis);

/// Sends requests to every gateway (all must be answered) until `done` holds for each one's
/// readiness, for at most `limit`.
async fn route_until(
    gws: &[&GatewayProcess],
    limit: Duration,
    what: &str,
    done: impl Fn(&Value) -> bool,
) {
    let deadline = Instant::now() + limit;
    loop {
        let mut all = true;
        for gw in gws {
            let resp = post(gw, "/v1/chat/completions", &chat_body("u", "hi")).await;
            assert_eq!(resp.status(), 200, "routing must go on: {what}");
            all &= done(&readiness(gw).await);
        }
        if all {
            return;
        }
        assert!(Instant::now() < deadline, "not {what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn redis_killed_mid_run_degrades_then_recovers() {
    let mut redis = RedisServer::start(&[]);
    let mock = MockUpstream::start().await;
    let shared = Shared {
        env: vec![("ROUTEIQ_STATE_PREFIX".into(), "killed:".into())],
        router_settings: format!("  redis_url: {}\n", redis.url()),
    };
    let a = gateway(POOL, &mock, &shared).await;
    let b = gateway(POOL, &mock, &shared).await;
    let healthy = |r: &Value| r["status"] == "healthy" && r["state"]["status"] == "healthy";
    let degraded = |r: &Value| r["status"] == "degraded" && r["state"]["status"] == "degraded";
    route_until(&[&a, &b], Duration::from_secs(10), "healthy", healthy).await;

    redis.kill();
    route_until(&[&a, &b], Duration::from_secs(10), "degraded", degraded).await;
    assert!(a.logs().contains("state backend failing"), "{}", a.logs());

    // Back on the same port, empty: each gateway finds it again by itself.
    redis.restart();
    route_until(&[&a, &b], Duration::from_secs(30), "recovered", healthy).await;
    assert!(a.logs().contains("state backend recovered"), "{}", a.logs());
    // And the state is shared again: a cooldown written by a is honoured by b.
    mock.fail_times("one", 1, Behavior::rate_limited(Some(60)));
    let hits = mock.hits("one");
    for _ in 0..40 {
        if mock.hits("one") > hits {
            break;
        }
        assert_eq!(
            post(&a, "/v1/chat/completions", &chat_body("u", "hi"))
                .await
                .status(),
            200
        );
    }
    let cooled = mock.hits("one");
    assert_eq!(cooled, hits + 1, "a never picked deployment one");
    for _ in 0..8 {
        let resp = post(&b, "/v1/chat/completions", &chat_body("u", "hi")).await;
        assert_eq!(header(&resp, "x-routeiq-model"), "two");
    }
    assert_eq!(mock.hits("one"), cooled);
}

/// Runs `openssl` in `dir`.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("openssl (Debian's openssl package): {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn redis_over_tls_with_password_and_database() {
    // A CA of the test's own, a certificate for localhost signed by it, and another CA.
    let dir = TempDir::new("redis-tls");
    let d = dir.path();
    let req = [
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
    ];
    openssl(
        d,
        &[
            &req[..],
            &["-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=ca"],
        ]
        .concat(),
    );
    openssl(
        d,
        &[
            &req[..],
            &[
                "-keyout",
                "other.key",
                "-out",
                "other.pem",
                "-subj",
                "/CN=other",
            ],
        ]
        .concat(),
    );
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "srv.key",
            "-out",
            "srv.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(d.join("ext.cnf"), "subjectAltName=DNS:localhost\n").unwrap();
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "srv.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    let redis = RedisServer::start_tls(
        &d.join("srv.pem"),
        &d.join("srv.key"),
        &["--requirepass", "tls-secret-pw"],
    );
    let mock = MockUpstream::start().await;
    let with_ca = |ca: &str| Shared {
        env: vec![("SSL_CERT_FILE".into(), d.join(ca).display().to_string())],
        router_settings: format!(
            "  redis_url: rediss://localhost:{}/2\n  redis_password: tls-secret-pw\n",
            redis.port()
        ),
    };
    let gw = gateway(USAGE, &mock, &with_ca("ca.pem")).await;
    for _ in 0..2 {
        let resp = post(&gw, "/v1/chat/completions", &chat_body("u", "hi")).await;
        assert_eq!(resp.status(), 200);
    }
    let ready = readiness(&gw).await;
    assert_eq!(
        ready["state"]["status"],
        "healthy",
        "{ready}\n{}",
        gw.logs()
    );
    assert_eq!(ready["state_backend"], "redis");
    let endpoint = format!("rediss://localhost:{}/2", redis.port());
    assert!(gw.logs().contains(&endpoint), "{}", gw.logs());
    assert!(!gw.logs().contains("tls-secret-pw"));
    // The state is in database 2 of that server.
    let keys = std::process::Command::new("redis-cli")
        .args(["--tls", "--cacert", &d.join("ca.pem").display().to_string()])
        .args([
            "-h",
            "localhost",
            "-p",
            &redis.port().to_string(),
            "-n",
            "2",
        ])
        .args(["--no-auth-warning", "-a", "tls-secret-pw", "--scan"])
        .output()
        .expect("redis-cli");
    let keys = String::from_utf8_lossy(&keys.stdout);
    assert!(keys.contains("routeiq:rpm:"), "{keys}");

    // A gateway that does not trust the server's CA does not talk to it.
    let untrusting = gateway(USAGE, &mock, &with_ca("other.pem")).await;
    let resp = post(&untrusting, "/v1/chat/completions", &chat_body("u", "hi")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(readiness(&untrusting).await["state"]["status"], "degraded");
}
