//! Hardening: what the gateway does with absurd settings, hostile or vanishing clients and
//! broken upstreams — durations too large for a timer, `Retry-After`s longer than a deployment's
//! timeout, clients that give up mid-request, slowloris connections, bodies that lie about
//! their length, trailing garbage, client-side credentials, answers that never end or are not
//! what they claim — and that every request is still accounted for exactly once (metrics,
//! access log, in-flight gauge) with the process's memory flat.
//!
//! Settings these tests rely on: `ROUTEIQ_HEADER_READ_TIMEOUT_SECONDS`,
//! `ROUTEIQ_BODY_IDLE_TIMEOUT_SECONDS`, `ROUTEIQ_MAX_CONNECTIONS`, `ROUTEIQ_MAX_SSE_LINE_BYTES`
//! (environment) and `general_settings.max_response_size_mb` (config).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use routeiq_testkit::mock::openai_error;
use routeiq_testkit::{Behavior, GatewayProcess, MockOptions, MockUpstream};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{
    BASIC, bin, chat_body, error_of, header, metric_value, metrics_text, render, routeiq_bin,
};

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

/// Where the routing state lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Memory,
    DynamoDb,
}

/// The gateway environment for `state` (a fresh key prefix per call on DynamoDB), plus `extra`.
fn state_env(state: State, tag: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = match state {
        State::Memory => Vec::new(),
        State::DynamoDb => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            routeiq_testkit::dynamodb_state_env(&format!(
                "hardening-{tag}-{}-{nanos}",
                std::process::id()
            ))
        }
    };
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

/// A gateway on `template` (rendered against `mock`) with `env`.
async fn gateway(template: &str, mock: &MockUpstream, env: &[(String, String)]) -> GatewayProcess {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    GatewayProcess::start(bin(), &render(template, mock), &env)
        .await
        .unwrap_or_else(|e| panic!("gateway did not start: {e:#}"))
}

/// A mock and a gateway on `template` with `env`.
async fn start_env(template: &str, env: &[(&str, &str)]) -> (MockUpstream, GatewayProcess) {
    let mock = MockUpstream::start().await;
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let gw = gateway(template, &mock, &env).await;
    (mock, gw)
}

/// `POST /v1/chat/completions` with a client timeout; the response and how long it took to
/// its head. Fails the test if none arrives in time.
async fn chat_timed(
    gw: &GatewayProcess,
    body: &Value,
    timeout: Duration,
) -> (reqwest::Response, Duration) {
    let started = Instant::now();
    let resp = routeiq_testkit::client()
        .post(format!("{}/v1/chat/completions", gw.base_url()))
        .timeout(timeout)
        .json(body)
        .send()
        .await;
    let took = started.elapsed();
    match resp {
        Ok(r) => (r, took),
        Err(e) => panic!("no answer within {timeout:?} (after {took:?}): {e:#}"),
    }
}

/// `POST /v1/chat/completions` with a 10 s client timeout.
async fn chat(gw: &GatewayProcess, body: &Value) -> reqwest::Response {
    chat_timed(gw, body, Duration::from_secs(10)).await.0
}

/// `POST /v1/chat/completions` with a raw body (any bytes, sent as JSON).
async fn post_raw(gw: &GatewayProcess, body: String) -> reqwest::Response {
    routeiq_testkit::client()
        .post(format!("{}/v1/chat/completions", gw.base_url()))
        .header("content-type", "application/json")
        .timeout(Duration::from_secs(10))
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST with a raw body: {e:#}"))
}

/// A chat body that asks for a stream.
fn stream_body(model: &str, text: &str) -> Value {
    json!({"model": model, "stream": true, "messages": [{"role": "user", "content": text}]})
}

/// The `retry-after` header as whole seconds; an error naming what was there otherwise.
fn retry_after_seconds(resp: &reqwest::Response) -> Result<u64, String> {
    let raw = resp
        .headers()
        .get("retry-after")
        .ok_or_else(|| format!("no retry-after header: {:?}", resp.headers()))?;
    let text = raw
        .to_str()
        .map_err(|_| format!("retry-after is not text: {raw:?}"))?;
    text.trim()
        .parse::<u64>()
        .map_err(|_| format!("retry-after '{text}' is not a whole number of seconds"))
}

/// The error message of an OpenAI-shaped error response (checks the shape).
async fn error_message(resp: reqwest::Response) -> String {
    let err = error_of(resp).await;
    err["message"].as_str().unwrap_or_default().to_string()
}

/// Sum of every sample of metric `name` whose label set contains `label` (e.g.
/// `status="499"`; `None`: every sample).
fn metric_sum(text: &str, name: &str, label: Option<&str>) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(r) => {
                    let (labels, value) = r.split_once('}')?;
                    (labels, value)
                }
                None if rest.starts_with(' ') => ("", rest),
                None => return None, // another metric with this prefix
            };
            if label.is_some_and(|want| !labels.split(',').any(|l| l == want)) {
                return None;
            }
            value.trim().parse::<f64>().ok()
        })
        .sum()
}

/// The access-log lines (JSON logs, target `routeiq::request`, message `request`).
fn request_lines(logs: &str) -> Vec<Value> {
    logs.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == "routeiq::request" && v["message"] == "request")
        .collect()
}

/// Polls (every 100 ms, at most `limit`) until `done` holds for the gateway's metrics text and
/// logs; returns the last metrics text and logs either way.
async fn settle(
    gw: &GatewayProcess,
    limit: Duration,
    done: impl Fn(&str, &str) -> bool,
) -> (String, String) {
    let deadline = Instant::now() + limit;
    loop {
        let text = metrics_text(gw).await;
        let logs = gw.logs();
        if done(&text, &logs) || Instant::now() >= deadline {
            return (text, logs);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The gateway's resident set size, from `/proc/<pid>/status` (0 if unreadable).
fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn gw_addr(gw: &GatewayProcess) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], gw.port()))
}

async fn connect(gw: &GatewayProcess) -> TcpStream {
    TcpStream::connect(gw_addr(gw))
        .await
        .unwrap_or_else(|e| panic!("connecting to the gateway: {e}"))
}

/// A request head for `POST {path}` with these extra header lines (each ending in `\r\n`).
fn head(path: &str, extra: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n{extra}\r\n"
    )
}

/// What a raw connection got back.
#[derive(Default)]
struct RawReply {
    bytes: Vec<u8>,
    /// When the first byte arrived (since the start given to [`read_reply`]).
    first_byte: Option<Duration>,
    /// When the peer closed (read returned 0 or an error).
    closed: Option<Duration>,
    /// Whether a whole response (head and body) arrived.
    complete: bool,
}

impl std::fmt::Debug for RawReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawReply")
            .field("text", &self.text())
            .field("first_byte", &self.first_byte)
            .field("closed", &self.closed)
            .field("complete", &self.complete)
            .finish()
    }
}

impl RawReply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// The status code of the response's status line, if one arrived.
    fn status(&self) -> Option<u16> {
        let text = self.text();
        let line = text.lines().next()?;
        let mut parts = line.split(' ');
        parts.next().filter(|v| v.starts_with("HTTP/1."))?;
        parts.next()?.parse().ok()
    }

    /// The body after the head (raw: chunk framing included).
    fn body(&self) -> String {
        let text = self.text();
        text.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default()
    }
}

/// Whether `bytes` hold a whole HTTP/1.1 response: head, then `content-length` bytes or the
/// final chunk (without either, the body runs to the close).
fn response_complete(bytes: &[u8]) -> bool {
    let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
    let body = &bytes[end + 4..];
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    match length {
        Some(n) => body.len() >= n,
        None if head.contains("transfer-encoding: chunked") => body.ends_with(b"0\r\n\r\n"),
        None => false,
    }
}

/// Reads until the peer closes, a whole response arrived, or `limit` after `since` passed.
async fn read_reply<R: AsyncRead + Unpin>(r: &mut R, since: Instant, limit: Duration) -> RawReply {
    let mut reply = RawReply::default();
    let deadline = tokio::time::Instant::from_std(since + limit);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match tokio::time::timeout_at(deadline, r.read(&mut buf)).await {
            Err(_) => return reply,
            Ok(Ok(0)) | Ok(Err(_)) => {
                reply.closed = Some(since.elapsed());
                return reply;
            }
            Ok(Ok(n)) => {
                reply.first_byte.get_or_insert_with(|| since.elapsed());
                reply.bytes.extend_from_slice(&buf[..n]);
                if response_complete(&reply.bytes) {
                    reply.complete = true;
                    return reply;
                }
            }
        }
    }
}

/// Opens a connection and sends `bytes` one at a time, `every` apart (then holds it open),
/// until the server closes it; how long that took, or an error when it is still open after
/// `limit`.
async fn trickle_until_closed(
    addr: SocketAddr,
    bytes: Vec<u8>,
    every: Duration,
    limit: Duration,
) -> Result<Duration, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut rd, mut wr) = stream.into_split();
    let started = Instant::now();
    let writer = async move {
        for b in bytes {
            if wr.write_all(&[b]).await.is_err() {
                return; // the server closed it
            }
            tokio::time::sleep(every).await;
        }
        // Everything sent: hold the connection open (`wr` stays alive).
        std::future::pending::<()>().await;
    };
    let reader = async move {
        let mut buf = [0u8; 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {} // e.g. a 408 before the close
            }
        }
    };
    tokio::select! {
        () = reader => Ok(started.elapsed()),
        () = writer => Ok(started.elapsed()),
        () = tokio::time::sleep(limit) => Err(format!("still open after {limit:?}")),
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Durations too large for a timer
// ---------------------------------------------------------------------------------------------

/// A one-deployment config; `lp` and `rs` are extra `litellm_params` / `router_settings` lines.
fn one_deployment_config(api_base: &str, lp: &str, rs: &str) -> String {
    let mut yaml = format!(
        "model_list:\n  - model_name: gpt\n    litellm_params:\n      model: openai/gpt-x\n      \
         api_base: \"{api_base}\"\n      api_key: sk-x\n"
    );
    if !lp.is_empty() {
        yaml.push_str(&format!("      {lp}\n"));
    }
    yaml.push_str("router_settings:\n  num_retries: 0\n");
    if !rs.is_empty() {
        yaml.push_str(&format!("  {rs}\n"));
    }
    yaml
}

/// `(litellm_params line, router_settings line, the path the error must name)`.
const OUT_OF_RANGE: &[(&str, &str, &str)] = &[
    ("timeout: 1e20", "", "model_list[0].litellm_params.timeout"),
    (
        "stream_timeout: 1e20",
        "",
        "model_list[0].litellm_params.stream_timeout",
    ),
    ("", "cooldown_time: 1e20", "router_settings.cooldown_time"),
    ("", "retry_after: 1e20", "router_settings.retry_after"),
    ("timeout: -1", "", "model_list[0].litellm_params.timeout"),
    ("timeout: .inf", "", "model_list[0].litellm_params.timeout"),
];

/// `routeiq check --config FILE`: exit code and stdout + stderr.
fn run_check(config: &std::path::Path) -> (i32, String) {
    let out = std::process::Command::new(routeiq_bin())
        .arg("check")
        .arg("--config")
        .arg(config)
        .env_remove("OPENAI_API_KEY")
        .output()
        .unwrap_or_else(|e| panic!("running routeiq check: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test]
async fn check_rejects_durations_out_of_range_naming_the_path() {
    let dir = routeiq_testkit::TempDir::new("hardening-check");
    let mut failures = Vec::new();
    for (i, (lp, rs, path)) in OUT_OF_RANGE.iter().enumerate() {
        let file = dir.path().join(format!("case-{i}.yaml"));
        let yaml = one_deployment_config("http://127.0.0.1:9/v1", lp, rs);
        std::fs::write(&file, &yaml).expect("writing the config");
        let (code, out) = run_check(&file);
        if code == 0 || !out.contains(path) {
            failures.push(format!(
                "'{lp}{rs}': exit {code}, expected non-zero naming {path}; output:\n{out}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn gateway_refuses_to_start_on_durations_out_of_range() {
    // All at once: a gateway that (wrongly) starts is only given up on after 20 s.
    let runs = OUT_OF_RANGE.iter().map(|(lp, rs, path)| async move {
        let yaml = one_deployment_config("http://127.0.0.1:9/v1", lp, rs);
        let outcome = GatewayProcess::start_expect_failure(bin(), &yaml, &[]).await;
        (lp, rs, path, outcome)
    });
    let mut failures = Vec::new();
    for (lp, rs, path, outcome) in futures::future::join_all(runs).await {
        match outcome {
            Ok((code, stderr)) if code != 0 && stderr.contains(path) => {}
            Ok((code, stderr)) => failures.push(format!(
                "'{lp}{rs}': exit {code}, expected non-zero naming {path}; stderr:\n{stderr}"
            )),
            Err(e) => failures.push(format!("'{lp}{rs}': {e:#}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn one_year_timeout_is_accepted_and_served() {
    let mock = MockUpstream::start().await;
    let yaml = one_deployment_config(&mock.openai_base(), "timeout: 31536000", "");
    let dir = routeiq_testkit::TempDir::new("hardening-year");
    let file = dir.path().join("year.yaml");
    std::fs::write(&file, &yaml).expect("writing the config");
    let (code, out) = run_check(&file);
    assert_eq!(code, 0, "{out}");

    let gw = GatewayProcess::start(bin(), &yaml, &[])
        .await
        .unwrap_or_else(|e| panic!("gateway did not start: {e:#}"));
    let (resp, _) = chat_timed(&gw, &chat_body("gpt", "hi"), Duration::from_secs(10)).await;
    assert_eq!(resp.status(), 200);
    let (resp, _) = chat_timed(&gw, &stream_body("gpt", "hi"), Duration::from_secs(10)).await;
    assert_eq!(resp.status(), 200);
    let outcome = routeiq_testkit::read_sse(resp).await;
    assert!(outcome.ends_with_done(), "{:?}", outcome.data());
}

/// Group `primary` (p1, scripted by the tests) and `other` (o1, healthy).
const TWO_GROUPS: &str = r#"
model_list:
  - model_name: primary
    litellm_params: {model: openai/p1, api_base: "{MOCK}", api_key: sk-x}
    model_info: {id: p1}
  - model_name: other
    litellm_params: {model: openai/o1, api_base: "{MOCK}", api_key: sk-x}
    model_info: {id: o1}
"#;

#[tokio::test]
async fn absurd_upstream_retry_after_is_a_prompt_429_and_serving_goes_on() {
    let (mock, mut gw) = start_env(TWO_GROUPS, &[]).await;
    mock.script(
        "p1",
        vec![Behavior::raw_with_headers(
            429,
            "application/json",
            &openai_error(
                "Rate limit reached",
                "requests",
                Some("rate_limit_exceeded"),
            )
            .to_string(),
            &[("retry-after", "99999999999999999999")],
        )],
    );
    let (resp, took) = chat_timed(&gw, &chat_body("primary", "hi"), Duration::from_secs(10)).await;
    assert_eq!(resp.status(), 429, "{:?}", resp.headers());
    assert!(took < Duration::from_secs(5), "429 took {took:?}");
    let secs = retry_after_seconds(&resp).unwrap_or_else(|e| panic!("{e}"));
    assert!(secs >= 1, "retry-after {secs}");

    // The gateway is still up and serving (another group: `primary` may rightly cool down).
    let (resp, _) = chat_timed(&gw, &chat_body("other", "hi"), Duration::from_secs(10)).await;
    assert_eq!(resp.status(), 200);
    assert!(gw.is_running(), "{}", gw.logs());
    assert!(!gw.logs().contains("panicked"), "{}", gw.logs());
}

// ---------------------------------------------------------------------------------------------
// 2. Retry-After longer than the deployment's timeout
// ---------------------------------------------------------------------------------------------

const RETRY_AFTER_FALLBACK: &str = r#"
model_list:
  - model_name: primary
    litellm_params: {model: openai/p1, api_base: "{MOCK}", api_key: sk-x, timeout: 2}
    model_info: {id: p1}
  - model_name: backup
    litellm_params: {model: openai/b1, api_base: "{MOCK}", api_key: sk-x}
    model_info: {id: b1}
router_settings:
  fallbacks: [{primary: [backup]}]
"#;

async fn long_retry_after_goes_to_the_fallback(state: State) {
    let mock = MockUpstream::start().await;
    let gw = gateway(
        RETRY_AFTER_FALLBACK,
        &mock,
        &state_env(state, "ra-fallback", &[]),
    )
    .await;
    mock.script("p1", vec![Behavior::rate_limited(Some(30))]);
    let (resp, took) = chat_timed(&gw, &chat_body("primary", "hi"), Duration::from_secs(10)).await;
    assert_eq!(resp.status(), 200, "{:?}", resp.headers());
    assert!(
        took < Duration::from_secs(5),
        "fallback answered after {took:?}"
    );
    assert_eq!(header(&resp, "x-routeiq-fallback"), "true");
    assert_eq!(header(&resp, "x-routeiq-model"), "b1");
    assert!(mock.hits("p1") >= 1);
}

#[tokio::test]
async fn retry_after_beyond_the_timeout_falls_back_at_once_in_memory() {
    long_retry_after_goes_to_the_fallback(State::Memory).await;
}

#[tokio::test]
async fn retry_after_beyond_the_timeout_falls_back_at_once_on_dynamodb() {
    long_retry_after_goes_to_the_fallback(State::DynamoDb).await;
}

#[tokio::test]
async fn retry_after_beyond_the_timeout_without_fallback_is_a_prompt_429() {
    let template = r#"
model_list:
  - model_name: p30
    litellm_params: {model: openai/p30, api_base: "{MOCK}", api_key: sk-x, timeout: 2}
    model_info: {id: p30}
  - model_name: p100
    litellm_params: {model: openai/p100, api_base: "{MOCK}", api_key: sk-x, timeout: 2}
    model_info: {id: p100}
"#;
    let (mock, gw) = start_env(template, &[]).await;
    mock.script("p30", vec![Behavior::rate_limited(Some(30))]);
    mock.script("p100", vec![Behavior::rate_limited(Some(100))]);

    let (resp, took) = chat_timed(&gw, &chat_body("p30", "hi"), Duration::from_secs(10)).await;
    assert_eq!(resp.status(), 429);
    assert!(took < Duration::from_secs(5), "429 took {took:?}");
    let secs = retry_after_seconds(&resp).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        (25..=30).contains(&secs),
        "retry-after {secs}, want 25..=30"
    );
    assert_eq!(error_of(resp).await["type"], "rate_limit_error");

    let (resp, took) = chat_timed(&gw, &chat_body("p100", "hi"), Duration::from_secs(10)).await;
    assert_eq!(resp.status(), 429);
    assert!(took < Duration::from_secs(5), "429 took {took:?}");
    let secs = retry_after_seconds(&resp).unwrap_or_else(|e| panic!("{e}"));
    assert!(secs >= 95, "retry-after {secs}, want >= 95");
}

/// Deployment `pa` (almost always first: weight 1000) and `pb` in one group; `cooldown_time: 1`
/// so that only the upstream's `retry-after` can keep `pa` out for longer.
const COOLING_PAIR: &str = r#"
model_list:
  - model_name: pair
    litellm_params: {model: openai/pa, api_base: "{MOCK}", api_key: sk-x, weight: 1000}
    model_info: {id: pa}
  - model_name: pair
    litellm_params: {model: openai/pb, api_base: "{MOCK}", api_key: sk-x, weight: 1}
    model_info: {id: pb}
router_settings:
  routing_strategy: simple-shuffle
  cooldown_time: 1
"#;

async fn rate_limited_deployment_cools_for_its_retry_after(state: State) {
    let mock = MockUpstream::start().await;
    let gw = gateway(COOLING_PAIR, &mock, &state_env(state, "ra-cool", &[])).await;
    mock.script("pa", vec![Behavior::rate_limited(Some(30))]);
    // Ten requests over ~3 s: longer than cooldown_time, well within the retry-after.
    for i in 0..10 {
        let (resp, took) = chat_timed(&gw, &chat_body("pair", "hi"), Duration::from_secs(10)).await;
        assert_eq!(resp.status(), 200, "request {i}");
        assert!(took < Duration::from_secs(5), "request {i} took {took:?}");
        assert_eq!(header(&resp, "x-routeiq-model"), "pb", "request {i}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        mock.hits("pa"),
        1,
        "pa must be called once, then cool down for its retry-after (30 s)"
    );
    assert_eq!(mock.hits("pb"), 10);
}

#[tokio::test]
async fn rate_limited_deployment_cools_for_its_retry_after_in_memory() {
    rate_limited_deployment_cools_for_its_retry_after(State::Memory).await;
}

#[tokio::test]
async fn rate_limited_deployment_cools_for_its_retry_after_on_dynamodb() {
    rate_limited_deployment_cools_for_its_retry_after(State::DynamoDb).await;
}

#[tokio::test]
async fn short_retry_after_is_waited_for_then_served() {
    let template = r#"
model_list:
  - model_name: solo
    litellm_params: {model: openai/solo, api_base: "{MOCK}", api_key: sk-x}
    model_info: {id: solo}
"#;
    let (mock, gw) = start_env(template, &[]).await;
    mock.script(
        "solo",
        Behavior::fail_times(1, Behavior::rate_limited(Some(1))),
    );
    let (resp, took) = chat_timed(&gw, &chat_body("solo", "hi"), Duration::from_secs(10)).await;
    assert_eq!(resp.status(), 200, "{:?}", resp.headers());
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "answered after {took:?}; want the 1 s retry-after waited for"
    );
    assert_eq!(mock.hits("solo"), 2);
}

// ---------------------------------------------------------------------------------------------
// 3. Errors that should be retried later carry Retry-After
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn rate_limits_and_unavailability_without_retry_after_still_say_when() {
    let template = r#"
model_list:
  - model_name: rl
    litellm_params: {model: openai/rl, api_base: "{MOCK}", api_key: sk-x}
    model_info: {id: rl}
  - model_name: un
    litellm_params: {model: openai/un, api_base: "{MOCK}", api_key: sk-x}
    model_info: {id: un}
router_settings:
  num_retries: 0
"#;
    let (mock, gw) = start_env(template, &[]).await;
    mock.script("rl", vec![Behavior::rate_limited(None)]);
    mock.script("un", vec![Behavior::unavailable()]);

    let (resp, _) = chat_timed(&gw, &chat_body("rl", "hi"), Duration::from_secs(10)).await;
    assert_eq!(resp.status(), 429);
    let secs = retry_after_seconds(&resp).unwrap_or_else(|e| panic!("429: {e}"));
    assert!(secs >= 1, "retry-after {secs}");

    let (resp, _) = chat_timed(&gw, &chat_body("un", "hi"), Duration::from_secs(10)).await;
    assert_eq!(resp.status(), 503);
    let secs = retry_after_seconds(&resp).unwrap_or_else(|e| panic!("503: {e}"));
    assert!(secs >= 1, "retry-after {secs}");
}

// ---------------------------------------------------------------------------------------------
// 4. Clients that give up
// ---------------------------------------------------------------------------------------------

const SLOW: &str = r#"
model_list:
  - model_name: slow
    litellm_params: {model: openai/slow, api_base: "{MOCK}", api_key: sk-x}
    model_info: {id: slow}
  - model_name: trickle
    litellm_params: {model: openai/trickle, api_base: "{MOCK}", api_key: sk-x}
    model_info: {id: trickle}
router_settings:
  num_retries: 0
"#;

async fn clients_that_give_up_are_499s(state: State) {
    let mock = MockUpstream::start().await;
    let env = state_env(state, "gone", &[("JSON_LOGS", "true")]);
    let gw = gateway(SLOW, &mock, &env).await;
    mock.script("slow", vec![Behavior::Delay(3000)]);
    mock.script(
        "trickle",
        vec![Behavior::Trickle {
            chunk_delay_ms: 300,
        }],
    );
    let client = routeiq_testkit::client();
    let url = format!("{}/v1/chat/completions", gw.base_url());

    // Four clients give up after 300 ms on a 3 s answer.
    let gave_up = futures::future::join_all((0..4).map(|i| {
        let req = client
            .post(&url)
            .header("x-request-id", format!("gone-{i}"))
            .timeout(Duration::from_millis(300))
            .json(&chat_body("slow", "hi"));
        async move { req.send().await }
    }))
    .await;
    for (i, r) in gave_up.iter().enumerate() {
        assert!(
            r.as_ref().is_err_and(reqwest::Error::is_timeout),
            "request {i} should have timed out at the client: {r:?}"
        );
    }
    let (text, logs) = settle(&gw, Duration::from_secs(4), |text, logs| {
        metric_value(text, "routeiq_in_flight_requests") == Some(0.0)
            && metric_sum(text, "routeiq_requests_total", Some(r#"status="499""#)) == 4.0
            && request_lines(logs).len() >= 4
    })
    .await;
    assert_eq!(
        metric_value(&text, "routeiq_in_flight_requests"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        metric_sum(&text, "routeiq_requests_total", Some(r#"status="499""#)),
        4.0,
        "{text}"
    );
    let lines = request_lines(&logs);
    assert_eq!(lines.len(), 4, "one access-log line per request:\n{logs}");
    for i in 0..4 {
        let id = format!("gone-{i}");
        let mine: Vec<&Value> = lines.iter().filter(|l| l["trace_id"] == id).collect();
        assert_eq!(mine.len(), 1, "{id}:\n{logs}");
        assert_eq!(mine[0]["status"], 499, "{}", mine[0]);
    }

    // A stream whose client reads the first chunk and goes away.
    let mut resp = client
        .post(&url)
        .header("x-request-id", "gone-stream")
        .timeout(Duration::from_secs(10))
        .json(&stream_body("trickle", "hi"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("stream request: {e:#}"));
    assert_eq!(resp.status(), 200);
    let first = resp.chunk().await;
    assert!(
        matches!(first, Ok(Some(ref c)) if !c.is_empty()),
        "first chunk: {first:?}"
    );
    drop(resp);
    let (text, logs) = settle(&gw, Duration::from_secs(4), |text, logs| {
        metric_value(text, "routeiq_in_flight_requests") == Some(0.0)
            && request_lines(logs)
                .iter()
                .any(|l| l["trace_id"] == "gone-stream")
    })
    .await;
    assert_eq!(
        metric_value(&text, "routeiq_in_flight_requests"),
        Some(0.0),
        "{text}"
    );
    let lines = request_lines(&logs);
    assert_eq!(lines.len(), 5, "one access-log line per request:\n{logs}");
    let line = lines
        .iter()
        .find(|l| l["trace_id"] == "gone-stream")
        .unwrap_or_else(|| panic!("no line for the dropped stream:\n{logs}"));
    assert_eq!(line["status"], 499, "{line}");
    assert_eq!(
        metric_sum(&text, "routeiq_requests_total", Some(r#"status="499""#)),
        5.0,
        "{text}"
    );
}

#[tokio::test]
async fn clients_that_give_up_are_499s_and_leave_nothing_in_flight_in_memory() {
    clients_that_give_up_are_499s(State::Memory).await;
}

#[tokio::test]
async fn clients_that_give_up_are_499s_and_leave_nothing_in_flight_on_dynamodb() {
    clients_that_give_up_are_499s(State::DynamoDb).await;
}

// ---------------------------------------------------------------------------------------------
// 5. Slowloris and the connection cap
// ---------------------------------------------------------------------------------------------

const SHORT_TIMEOUTS: &[(&str, &str)] = &[
    ("ROUTEIQ_HEADER_READ_TIMEOUT_SECONDS", "1"),
    ("ROUTEIQ_BODY_IDLE_TIMEOUT_SECONDS", "1"),
];

/// The server must have closed a stalled connection by then.
const CLOSE_WITHIN: Duration = Duration::from_secs(4);
/// How long the tests wait for that before calling it still open.
const GIVE_UP_AFTER: Duration = Duration::from_secs(6);

#[tokio::test]
async fn slow_request_heads_are_closed_by_the_header_timeout() {
    let (_mock, gw) = start_env(BASIC, SHORT_TIMEOUTS).await;
    let addr = gw_addr(&gw);
    let full_head = head("/v1/chat/completions", "content-length: 2\r\n").into_bytes();
    // Twenty clients send a head one byte every 300 ms; one sends half a request line.
    let runs: Vec<_> = (0..20)
        .map(|_| {
            tokio::spawn(trickle_until_closed(
                addr,
                full_head.clone(),
                Duration::from_millis(300),
                GIVE_UP_AFTER,
            ))
        })
        .collect();
    // The half request line goes out at once, then silence.
    let half = tokio::spawn(async move {
        let mut s = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let started = Instant::now();
        s.write_all(b"POST /v1/chat")
            .await
            .map_err(|e| format!("write: {e}"))?;
        let reply = read_reply(&mut s, started, GIVE_UP_AFTER).await;
        reply
            .closed
            .ok_or_else(|| format!("still open after {GIVE_UP_AFTER:?}: {reply:?}"))
    });
    let mut failures = Vec::new();
    for (i, run) in runs.into_iter().enumerate() {
        match run.await {
            Ok(Ok(took)) if took <= CLOSE_WITHIN => {}
            Ok(Ok(took)) => failures.push(format!("connection {i} closed after {took:?}")),
            Ok(Err(e)) => failures.push(format!("connection {i}: {e}")),
            Err(e) => failures.push(format!("connection {i}: task failed: {e}")),
        }
    }
    match half.await {
        Ok(Ok(took)) if took <= CLOSE_WITHIN => {}
        Ok(Ok(took)) => failures.push(format!("half request line closed after {took:?}")),
        Ok(Err(e)) => failures.push(format!("half request line: {e}")),
        Err(e) => failures.push(format!("half request line: task failed: {e}")),
    }
    assert!(
        failures.is_empty(),
        "slow heads must be closed within {CLOSE_WITHIN:?}:\n{}",
        failures.join("\n")
    );
    // The gateway still serves.
    assert_eq!(chat(&gw, &chat_body("gpt", "hi")).await.status(), 200);
}

#[tokio::test]
async fn stalled_request_bodies_get_408_or_a_close() {
    let (mock, gw) = start_env(BASIC, SHORT_TIMEOUTS).await;
    let runs = (0..5).map(|_| {
        let gw = &gw;
        async move {
            let mut s = connect(gw).await;
            let started = Instant::now();
            let mut bytes = head("/v1/chat/completions", "content-length: 200\r\n").into_bytes();
            bytes.extend_from_slice(br#"{"model":""#); // 10 of the 200 bytes
            s.write_all(&bytes)
                .await
                .unwrap_or_else(|e| panic!("write: {e}"));
            read_reply(&mut s, started, GIVE_UP_AFTER).await
        }
    });
    let mut failures = Vec::new();
    for (i, reply) in futures::future::join_all(runs)
        .await
        .into_iter()
        .enumerate()
    {
        match (reply.status(), reply.first_byte, reply.closed) {
            (Some(408), Some(at), _) if at <= CLOSE_WITHIN => {
                let body = reply.body();
                if reply.complete && !(body.contains("\"error\"") && body.contains("\"message\"")) {
                    failures.push(format!(
                        "connection {i}: 408 without an OpenAI-shaped error: {reply:?}"
                    ));
                }
            }
            (None, None, Some(at)) if at <= CLOSE_WITHIN => {}
            _ => failures.push(format!(
                "connection {i}: want a 408 or a close within {CLOSE_WITHIN:?}; got {reply:?}"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(mock.hits("/v1/chat/completions"), 0);
}

#[tokio::test]
async fn connections_past_the_cap_wait_for_a_free_slot() {
    let (_mock, gw) = start_env(
        BASIC,
        &[
            ("ROUTEIQ_MAX_CONNECTIONS", "4"),
            ("ROUTEIQ_HEADER_READ_TIMEOUT_SECONDS", "2"),
        ],
    )
    .await;
    // Let the harness's health-check connection go.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(connect(&gw).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;

    let mut fifth = connect(&gw).await;
    let started = Instant::now();
    let body = chat_body("gpt", "hi").to_string();
    let request = format!(
        "{}{body}",
        head(
            "/v1/chat/completions",
            &format!("content-length: {}\r\nconnection: close\r\n", body.len())
        )
    );
    fifth
        .write_all(request.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    let early = read_reply(&mut fifth, started, Duration::from_secs(1)).await;
    assert!(
        early.bytes.is_empty() && early.closed.is_none(),
        "the 5th connection was served (or closed) while 4 were open: {early:?}"
    );
    let reply = read_reply(&mut fifth, started, Duration::from_secs(6)).await;
    assert_eq!(
        reply.status(),
        Some(200),
        "the 5th connection must be served once the idle ones are closed: {reply:?}"
    );
    // The idle connections were closed by the header timeout.
    for (i, s) in idle.iter_mut().enumerate() {
        let r = read_reply(s, Instant::now(), Duration::from_millis(500)).await;
        assert!(r.closed.is_some(), "idle connection {i} still open: {r:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// 6. Bodies that lie about their length or framing
// ---------------------------------------------------------------------------------------------

fn one_mb_limit() -> String {
    format!("{BASIC}general_settings:\n  max_request_size_mb: 1\n")
}

#[tokio::test]
async fn short_and_misframed_bodies_are_400_not_413() {
    let (mock, gw) = start_env(&one_mb_limit(), &[]).await;

    // content-length 100, 10 bytes, then the client stops sending.
    let mut s = connect(&gw).await;
    let started = Instant::now();
    let mut bytes = head(
        "/v1/chat/completions",
        "content-length: 100\r\nconnection: close\r\n",
    )
    .into_bytes();
    bytes.extend_from_slice(br#"{"model":""#);
    s.write_all(&bytes)
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    s.shutdown()
        .await
        .unwrap_or_else(|e| panic!("shutdown: {e}"));
    let reply = read_reply(&mut s, started, Duration::from_secs(5)).await;
    assert_eq!(
        reply.status(),
        Some(400),
        "a body shorter than its content-length: {reply:?}"
    );
    assert!(reply.body().contains("\"error\""), "{reply:?}");

    // `transfer-encoding: chunked` over a body that is not chunked.
    let mut s = connect(&gw).await;
    let started = Instant::now();
    let body = chat_body("gpt", "hi").to_string();
    let request = format!(
        "{}{body}",
        head(
            "/v1/chat/completions",
            "transfer-encoding: chunked\r\nconnection: close\r\n"
        )
    );
    s.write_all(request.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    s.shutdown()
        .await
        .unwrap_or_else(|e| panic!("shutdown: {e}"));
    let reply = read_reply(&mut s, started, Duration::from_secs(5)).await;
    match reply.status() {
        Some(400) => {}
        None if reply.closed.is_some() && reply.bytes.is_empty() => {}
        other => panic!(
            "a misframed chunked body must be a 400 or a close (never 413 or 200): status {other:?}, {reply:?}"
        ),
    }
    assert_eq!(mock.hits("/v1/chat/completions"), 0);
    // Still serving.
    assert_eq!(chat(&gw, &chat_body("gpt", "hi")).await.status(), 200);
}

#[tokio::test]
async fn a_body_over_max_request_size_is_still_413() {
    let (mock, gw) = start_env(&one_mb_limit(), &[]).await;
    let big = "x".repeat(2 * 1024 * 1024);
    let resp = chat(&gw, &chat_body("gpt", &big)).await;
    assert_eq!(resp.status(), 413);
    let message = error_message(resp).await;
    assert!(message.contains("max_request_size_mb"), "{message}");
    assert_eq!(mock.hits("/v1/chat/completions"), 0);
}

// ---------------------------------------------------------------------------------------------
// 7. Trailing garbage
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn trailing_garbage_after_the_body_is_400_whitespace_is_fine() {
    let (mock, gw) = start_env(BASIC, &[]).await;
    let valid = chat_body("gpt", "hi").to_string();
    let resp = post_raw(&gw, format!(r#"{valid}{{"model":"x"}} garbage"#)).await;
    assert_eq!(resp.status(), 400);
    let message = error_message(resp).await;
    assert!(
        message.to_ascii_lowercase().contains("trailing"),
        "the message should name the trailing characters: {message}"
    );
    assert_eq!(mock.hits("/v1/chat/completions"), 0);

    let resp = post_raw(&gw, format!("{valid}\n\n  \t\r\n")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(mock.hits("/v1/chat/completions"), 1);
}

// ---------------------------------------------------------------------------------------------
// 8. Wrong methods
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn wrong_methods_are_405_with_allow_and_an_openai_error() {
    let (mock, gw) = start_env(BASIC, &[]).await;
    let client = routeiq_testkit::client();
    for path in ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"] {
        let url = format!("{}{path}", gw.base_url());
        for method in [
            reqwest::Method::GET,
            reqwest::Method::HEAD,
            reqwest::Method::OPTIONS,
        ] {
            let resp = client
                .request(method.clone(), &url)
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{method} {path}: {e:#}"));
            assert_eq!(resp.status(), 405, "{method} {path}");
            let allow = resp
                .headers()
                .get("allow")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("{method} {path}: no Allow: {:?}", resp.headers()));
            assert!(allow.contains("POST"), "{method} {path}: Allow: {allow}");
            if method == reqwest::Method::GET {
                let err = error_of(resp).await;
                assert!(
                    !err["message"].as_str().unwrap_or_default().is_empty(),
                    "{err}"
                );
            }
        }
    }
    assert!(mock.requests().is_empty());
}

// ---------------------------------------------------------------------------------------------
// 9. Client-side credentials, endpoints, extra_body and extra_headers
// ---------------------------------------------------------------------------------------------

fn chat_with(key: &str, value: Value) -> Value {
    let mut body = chat_body("gpt", "hi");
    body[key] = value;
    body
}

#[tokio::test]
async fn client_side_credentials_and_endpoints_are_refused() {
    let (mock, gw) = start_env(BASIC, &[]).await;
    for (key, value) in [
        ("api_key", "sk-from-the-client"),
        ("aws_bedrock_runtime_endpoint", "http://127.0.0.1:9"),
        ("api_base", "http://127.0.0.1:9/v1"),
        ("aws_secret_access_key", "secret-from-the-client"),
    ] {
        let before = mock.hits("/v1/chat/completions");
        let resp = chat(&gw, &chat_with(key, json!(value))).await;
        assert_eq!(resp.status(), 400, "{key}");
        let err = error_of(resp).await;
        assert_eq!(err["param"], key, "{err}");
        assert_eq!(
            mock.hits("/v1/chat/completions"),
            before,
            "{key}: nothing may reach the upstream"
        );
    }
}

#[tokio::test]
async fn extra_body_is_merged_into_the_upstream_body_and_checked() {
    let (mock, gw) = start_env(BASIC, &[]).await;
    let resp = chat(&gw, &chat_with("extra_body", json!({"custom_flag": true}))).await;
    assert_eq!(resp.status(), 200);
    let upstream = mock.last_request().expect("the upstream got the request");
    assert_eq!(upstream.body["custom_flag"], true, "{}", upstream.body);
    assert!(
        upstream.body.get("extra_body").is_none(),
        "{}",
        upstream.body
    );

    let before = mock.hits("/v1/chat/completions");
    for bad in [json!({"api_base": "http://127.0.0.1:9/v1"}), json!(5)] {
        let resp = chat(&gw, &chat_with("extra_body", bad.clone())).await;
        assert_eq!(resp.status(), 400, "extra_body: {bad}");
        error_of(resp).await;
    }
    assert_eq!(mock.hits("/v1/chat/completions"), before);
}

#[tokio::test]
async fn extra_headers_become_upstream_headers_and_are_checked() {
    let (mock, gw) = start_env(BASIC, &[]).await;
    let resp = chat(&gw, &chat_with("extra_headers", json!({"x-custom": "1"}))).await;
    assert_eq!(resp.status(), 200);
    let upstream = mock.last_request().expect("the upstream got the request");
    assert_eq!(
        upstream.header("x-custom"),
        Some("1"),
        "{:?}",
        upstream.headers
    );
    assert!(
        upstream.body.get("extra_headers").is_none(),
        "{}",
        upstream.body
    );

    let before = mock.hits("/v1/chat/completions");
    let resp = chat(
        &gw,
        &chat_with("extra_headers", json!({"authorization": "Bearer x"})),
    )
    .await;
    assert_eq!(resp.status(), 400);
    error_of(resp).await;
    assert_eq!(mock.hits("/v1/chat/completions"), before);
}

// ---------------------------------------------------------------------------------------------
// 10. Answers without end
// ---------------------------------------------------------------------------------------------

const ONE_UPSTREAM: &str = r#"
model_list:
  - model_name: gpt
    litellm_params: {model: openai/up, api_base: "{MOCK}", api_key: sk-x, stream_timeout: 60}
    model_info: {id: up}
router_settings:
  num_retries: 0
"#;

#[tokio::test]
async fn an_oversize_upstream_answer_is_a_prompt_502_naming_the_limit() {
    let template = format!("{ONE_UPSTREAM}general_settings:\n  max_response_size_mb: 1\n");
    let (mock, gw) = start_env(&template, &[]).await;
    mock.script(
        "up",
        vec![
            Behavior::Huge {
                content_bytes: 2 * 1024 * 1024,
            },
            Behavior::Ok,
        ],
    );
    let (resp, took) = chat_timed(&gw, &chat_body("gpt", "hi"), Duration::from_secs(10)).await;
    assert_eq!(resp.status(), 502);
    assert!(took < Duration::from_secs(5), "502 took {took:?}");
    let message = error_message(resp).await;
    assert!(message.contains("max_response_size_mb"), "{message}");

    let (resp, _) = chat_timed(&gw, &chat_body("gpt", "hi"), Duration::from_secs(10)).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn an_oversize_stream_ends_with_an_error_naming_the_limit() {
    let template = format!("{ONE_UPSTREAM}general_settings:\n  max_response_size_mb: 1\n");
    let (mock, gw) = start_env(&template, &[]).await;
    mock.script(
        "up",
        vec![Behavior::Huge {
            content_bytes: 3 * 1024 * 1024,
        }],
    );
    let (resp, took) = chat_timed(&gw, &stream_body("gpt", "hi"), Duration::from_secs(20)).await;
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let (status, text) = (resp.status(), resp.text().await.unwrap());
    if status == 200 {
        // Relayed until the limit, then a final error event: never a `[DONE]`.
        let s = routeiq_testkit::ChunkStream::parse(&text);
        assert!(!s.done, "an oversize stream must not end cleanly");
        let last = s.chunks.last().cloned().unwrap_or_default();
        let error = last["error"]["message"].as_str().unwrap_or_default();
        assert!(error.contains("max_response_size_mb"), "{last}");
        assert!(
            s.content().len() < 1024 * 1024 + 64 * 1024,
            "{} bytes of content relayed past a 1 MB limit",
            s.content().len()
        );
    } else {
        assert_eq!(status, 502, "{text}");
        assert!(text.contains("max_response_size_mb"), "{text}");
    }
}

#[tokio::test]
async fn an_endless_sse_line_is_a_prompt_502_naming_the_line_limit() {
    let (mock, gw) = start_env(ONE_UPSTREAM, &[("ROUTEIQ_MAX_SSE_LINE_BYTES", "65536")]).await;
    mock.script("up", vec![Behavior::endless_line()]);
    let (resp, took) = chat_timed(&gw, &stream_body("gpt", "hi"), Duration::from_secs(10)).await;
    assert_eq!(resp.status(), 502, "{:?}", resp.headers());
    assert!(took < Duration::from_secs(5), "502 took {took:?}");
    let message = error_message(resp).await;
    let lower = message.to_ascii_lowercase();
    assert!(
        lower.contains("max_sse_line_bytes")
            || lower.contains("65536")
            || (lower.contains("line") && (lower.contains("sse") || lower.contains("event"))),
        "the message should name the SSE line limit: {message}"
    );
}

// ---------------------------------------------------------------------------------------------
// 11. Answers that are not what they claim
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_upstream_200_carrying_an_error_reports_the_upstream_message() {
    let (mock, gw) = start_env(ONE_UPSTREAM, &[]).await;
    mock.script(
        "up",
        vec![Behavior::raw(
            200,
            "application/json",
            r#"{"error": {"message": "upstream overloaded, try later", "type": "server_error"}}"#,
        )],
    );
    let (resp, _) = chat_timed(&gw, &chat_body("gpt", "hi"), Duration::from_secs(10)).await;
    let status = resp.status();
    assert!(status.is_server_error(), "{status}");
    let message = error_message(resp).await;
    assert!(
        message.contains("upstream overloaded, try later"),
        "{message}"
    );
    assert!(!message.contains("missing field"), "{message}");
}

#[tokio::test]
async fn an_html_answer_to_a_stream_is_502_naming_the_content_type() {
    let (mock, gw) = start_env(ONE_UPSTREAM, &[]).await;
    mock.script(
        "up",
        vec![Behavior::raw(
            200,
            "text/html",
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
        )],
    );
    let (resp, _) = chat_timed(&gw, &stream_body("gpt", "hi"), Duration::from_secs(10)).await;
    assert_eq!(resp.status(), 502, "{:?}", resp.headers());
    let message = error_message(resp).await;
    assert!(message.contains("text/html"), "{message}");
    assert!(!message.contains("connection failed"), "{message}");
}

// ---------------------------------------------------------------------------------------------
// 12. Soak: every request accounted for, memory flat
// ---------------------------------------------------------------------------------------------

/// Requests per soak batch; `ROUTEIQ_SOAK_REQUESTS` runs a longer soak by hand (the suite
/// keeps the default, bounded one).
fn soak_requests() -> usize {
    std::env::var("ROUTEIQ_SOAK_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n: &usize| *n > 0)
        .unwrap_or(2_000)
}
const SOAK_CONCURRENCY: usize = 32;
/// Allowed RSS growth over the second batch.
const SOAK_MAX_RSS_GROWTH_KB: u64 = 20 * 1024;

/// `fast` answers at once, `slow` trickles (clients give up on it), `faulty` cycles through
/// upstream faults. No retries, cooldowns or circuits: every fault reaches its client.
const SOAK: &str = r#"
model_list:
  - model_name: fast
    litellm_params: {model: openai/fast, api_base: "{MOCK}", api_key: sk-x}
    model_info: {id: fast}
  - model_name: slow
    litellm_params: {model: openai/slow, api_base: "{MOCK}", api_key: sk-x}
    model_info: {id: slow}
  - model_name: faulty
    litellm_params: {model: openai/faulty, api_base: "{MOCK}", api_key: sk-x}
    model_info: {id: faulty}
router_settings:
  num_retries: 0
  disable_cooldowns: true
"#;

/// The faults, in the `x-mock-behavior` header syntax.
const SOAK_FAULTS: &[&str] = &["rate-limit", "status:500", "reset", "cut:2", "delay:300"];

/// What one soak request was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SoakKind {
    /// The client gives up: it sends the request and leaves 50–200 ms later, or drops a
    /// stream after its first chunk.
    GiveUp,
    /// The upstream fails in one of [`SOAK_FAULTS`].
    Fault,
    Normal,
}

fn soak_kind(i: usize) -> SoakKind {
    match (i / 2) % 5 {
        0 => SoakKind::GiveUp,
        1 => SoakKind::Fault,
        _ => SoakKind::Normal,
    }
}

/// Sends a whole request on a new connection, waits `after`, and goes away without reading
/// the answer: a client timeout that cannot fire before the request is out.
async fn give_up_after(addr: SocketAddr, body: &Value, after: Duration) -> Result<(), String> {
    let mut s = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let body = body.to_string();
    let request = format!(
        "{}{body}",
        head(
            "/v1/chat/completions",
            &format!("content-length: {}\r\n", body.len())
        )
    );
    s.write_all(request.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    tokio::time::sleep(after).await;
    Ok(())
}

/// Sends soak request `i`; `Err` describes a request that could not be sent, or a normal
/// request that did not succeed.
async fn soak_one(
    client: &reqwest::Client,
    addr: SocketAddr,
    url: &str,
    i: usize,
) -> Result<(), String> {
    let stream = i % 2 == 1;
    let kind = soak_kind(i);
    let model = match kind {
        SoakKind::GiveUp => "slow",
        SoakKind::Fault => "faulty",
        SoakKind::Normal => "fast",
    };
    let body = json!({"model": model, "stream": stream,
        "messages": [{"role": "user", "content": format!("soak {i}")}]});
    if kind == SoakKind::GiveUp && !stream {
        let after = Duration::from_millis(50 + (i as u64 * 37) % 151);
        return give_up_after(addr, &body, after)
            .await
            .map_err(|e| format!("request {i}: {e}"));
    }
    let sent = client
        .post(url)
        .timeout(Duration::from_secs(15))
        .json(&body)
        .send()
        .await;
    match kind {
        SoakKind::GiveUp => {
            let mut resp = sent.map_err(|e| format!("stream {i}: {e:#}"))?;
            let _ = resp.chunk().await; // the first chunk, then away
            Ok(())
        }
        SoakKind::Fault => {
            // Any answer will do (an error, or a stream cut short); the gateway must answer.
            let resp = sent.map_err(|e| format!("faulty {i}: {e:#}"))?;
            let _ = resp.bytes().await;
            Ok(())
        }
        SoakKind::Normal if !stream => {
            let resp = sent.map_err(|e| format!("request {i}: {e:#}"))?;
            let status = resp.status();
            let v: Value = resp
                .json()
                .await
                .map_err(|e| format!("request {i}: {status}: {e:#}"))?;
            match v["choices"][0]["message"]["content"].as_str() {
                Some(c) if status == 200 && !c.is_empty() => Ok(()),
                _ => Err(format!("request {i}: {status}: {v}")),
            }
        }
        SoakKind::Normal => {
            let resp = sent.map_err(|e| format!("stream {i}: {e:#}"))?;
            let status = resp.status();
            let outcome = routeiq_testkit::read_sse(resp).await;
            if status == 200 && outcome.ends_with_done() {
                Ok(())
            } else {
                Err(format!("stream {i}: {status}: {:?}", outcome.data()))
            }
        }
    }
}

/// Runs requests `from..to`; what went wrong (see [`soak_one`]).
async fn soak_batch(gw: &GatewayProcess, from: usize, to: usize) -> Vec<String> {
    let client = routeiq_testkit::client();
    let addr = gw_addr(gw);
    let url = format!("{}/v1/chat/completions", gw.base_url());
    futures::stream::iter(from..to)
        .map(|i| {
            let client = client.clone();
            let url = url.clone();
            async move { soak_one(&client, addr, &url, i).await }
        })
        .buffer_unordered(SOAK_CONCURRENCY)
        .filter_map(|r| async move { r.err() })
        .collect()
        .await
}

/// Waits for the gateway to settle after `sent` requests, then checks the accounting.
async fn soak_accounting(gw: &GatewayProcess, sent: usize) {
    let (text, logs) = settle(gw, Duration::from_secs(5), |text, logs| {
        metric_value(text, "routeiq_in_flight_requests") == Some(0.0)
            && metric_sum(text, "routeiq_requests_total", None) == sent as f64
            && request_lines(logs).len() == sent
    })
    .await;
    let in_flight = metric_value(&text, "routeiq_in_flight_requests");
    let counted = metric_sum(&text, "routeiq_requests_total", None);
    let logged = request_lines(&logs).len();
    let statuses = text
        .lines()
        .filter(|l| l.starts_with("routeiq_requests_total{"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        in_flight,
        Some(0.0),
        "after {sent} requests; counted {counted}, logged {logged}"
    );
    assert_eq!(
        counted, sent as f64,
        "requests_total after {sent}:\n{statuses}"
    );
    assert_eq!(logged, sent, "access-log lines after {sent} requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_with_give_ups_and_faults_accounts_for_every_request_and_memory_stays_flat() {
    let requests = soak_requests();
    let mock = MockUpstream::start_with(MockOptions {
        record: false,
        ..MockOptions::default()
    })
    .await
    .unwrap_or_else(|e| panic!("mock: {e:#}"));
    mock.script(
        "slow",
        vec![Behavior::Trickle {
            chunk_delay_ms: 100,
        }],
    );
    let faults: Vec<Behavior> = SOAK_FAULTS
        .iter()
        .map(|f| f.parse().unwrap_or_else(|e| panic!("{f}: {e}")))
        .collect();
    let mut script: Vec<Behavior> = faults.iter().cycle().take(requests).cloned().collect();
    script.push(Behavior::Ok);
    mock.script("faulty", script);
    let gw = gateway(
        SOAK,
        &mock,
        &[
            ("JSON_LOGS".to_string(), "true".to_string()),
            ("ROUTEIQ_CB_FAILURE_THRESHOLD".to_string(), "0".to_string()),
        ],
    )
    .await;

    let started = Instant::now();
    let failed = soak_batch(&gw, 0, requests).await;
    assert!(
        failed.is_empty(),
        "{} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    soak_accounting(&gw, requests).await;
    let before = rss_kb(gw.pid());

    let failed = soak_batch(&gw, requests, 2 * requests).await;
    assert!(
        failed.is_empty(),
        "{} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    soak_accounting(&gw, 2 * requests).await;
    let after = rss_kb(gw.pid());
    eprintln!(
        "soak: {} requests in {:.1}s; faulty upstream calls {}; gateway RSS {before} kB -> {after} kB",
        2 * requests,
        started.elapsed().as_secs_f64(),
        mock.hits("faulty")
    );
    assert!(before > 0, "cannot read /proc/{}/status", gw.pid());
    assert!(
        after <= before + SOAK_MAX_RSS_GROWTH_KB,
        "gateway memory grew from {before} kB to {after} kB over the second batch"
    );
}
