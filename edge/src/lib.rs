//! The RouteIQ edge Worker: classify at the edge, route at the origin.
//!
//! A Cloudflare Worker (workers-rs) in front of the gateway. For each request it reads the
//! body once (bounded), classifies the prompt with [`routeiq::edge`] (the same code the
//! gateway links, compiled to wasm32), writes a signed `X-RouteIQ-Hint`, and forwards the
//! request, body unchanged, to `ROUTEIQ_ORIGIN_URL` + the original path and query; the
//! origin's response streams back untouched. Anything it cannot classify (not a chat or
//! completion body, malformed JSON, over [`MAX_CLASSIFY_BYTES`], no secret, no model) is
//! forwarded unclassified: the edge never turns a valid request into an error.
//!
//! This module is the plain logic (native unit tests); the `#[event(fetch)]` glue that
//! talks to the Workers runtime is in `glue.rs`, built for `wasm32` only. See `edge/README.md`.

use std::sync::atomic::{AtomicBool, Ordering};

use routeiq::edge::{self, ClientGeo, EdgeClassifier, EdgeConfig, EdgeHint, EdgeModel};

#[cfg(target_arch = "wasm32")]
mod glue;

pub use routeiq::edge::prompt::MAX_CLASSIFY_BYTES;

/// The model the Worker embeds: the tier classifier `routeiq train-edge` wrote
/// (`models/edge/edge-tier-v1.bin`, 64 KiB; its evaluation is `models/edge/eval.md`).
pub const MODEL_BYTES: &[u8] = include_bytes!("../../models/edge/edge-tier-v1.bin");

/// Var: where requests go, e.g. `https://gateway.example.com` (a path prefix is kept).
pub const VAR_ORIGIN_URL: &str = "ROUTEIQ_ORIGIN_URL";
/// Var: the model group or deployment to suggest per tier, `simple=gpt-4o-mini,complex=gpt-4o`.
pub const VAR_TIER_MODELS: &str = "ROUTEIQ_TIER_MODELS";
/// Var: the provider regions deployments exist in (comma list); empty means any.
pub const VAR_EDGE_REGIONS: &str = "ROUTEIQ_EDGE_REGIONS";
/// Var: the routing profile to suggest when the request names none.
pub const VAR_ROUTING_PROFILE: &str = "ROUTEIQ_ROUTING_PROFILE";
/// Secret: the HMAC key shared with the gateway (`ROUTEIQ_EDGE_HINT_SECRET` there).
pub const SECRET_HINT: &str = "ROUTEIQ_HINT_SECRET";

/// Whether a header is one of ours (`X-RouteIQ-Hint`, `X-RouteIQ-Hint-Signature`, or any
/// other `X-RouteIQ-Hint*`): a client's copy is never forwarded, only the Worker's own.
pub fn is_hint_header(name: &str) -> bool {
    const PREFIX: &str = "x-routeiq-hint";
    name.get(..PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(PREFIX))
}

/// Whether an incoming request header is copied to the origin request: all but the client's
/// hint headers and `Host` (the runtime sets the origin's).
pub fn forwards_header(name: &str) -> bool {
    !is_hint_header(name) && !name.eq_ignore_ascii_case("host")
}

/// The path and query of an absolute request URL (`/` when it has no path).
pub fn path_and_query(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = match after_scheme.find(['/', '?']) {
        Some(i) => &after_scheme[i..],
        None => "",
    };
    let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
    if rest.is_empty() { "/" } else { rest }
}

/// The URL a request is forwarded to: `origin` (its path is a prefix) followed by the
/// request's path and query. `origin` must be an `http(s)://` URL with no query or fragment.
pub fn origin_url(origin: &str, request_url: &str) -> Result<String, String> {
    let origin = origin.trim();
    let lower = origin.to_ascii_lowercase();
    let host_part = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or_else(|| format!("{VAR_ORIGIN_URL} must be an http(s):// URL, not '{origin}'"))?;
    if host_part.is_empty() || host_part.starts_with('/') {
        return Err(format!("{VAR_ORIGIN_URL} has no host: '{origin}'"));
    }
    if origin.contains(['?', '#']) {
        return Err(format!(
            "{VAR_ORIGIN_URL} must not have a query or fragment: '{origin}'"
        ));
    }
    let mut out = origin.trim_end_matches('/').to_string();
    let pq = path_and_query(request_url);
    if !pq.starts_with('/') {
        out.push('/');
    }
    out.push_str(pq);
    Ok(out)
}

/// How the Worker treats a request's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyPlan {
    /// No body to forward (GET, HEAD, or an empty body).
    NoBody,
    /// Read it whole (its length is known and at most [`MAX_CLASSIFY_BYTES`]), classify it,
    /// forward the same bytes.
    Buffer,
    /// Length unknown (chunked): read up to [`MAX_CLASSIFY_BYTES`] + 1 bytes; if it ended by
    /// then, as [`BodyPlan::Buffer`]; else forward the bytes read followed by the rest of the
    /// stream, unclassified.
    Bounded,
    /// Forward the body stream as it is, unread and unclassified (too big, or not a POST).
    PassThrough,
}

/// Decides the [`BodyPlan`] from the method, the `Content-Length` header and whether the
/// request has a body stream. Only POST bodies are classified.
pub fn body_plan(method: &str, content_length: Option<&str>, has_body: bool) -> BodyPlan {
    if method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD") || !has_body {
        return BodyPlan::NoBody;
    }
    if !method.eq_ignore_ascii_case("POST") {
        return BodyPlan::PassThrough;
    }
    match content_length.map(|v| v.trim().parse::<u64>()) {
        Some(Ok(0)) => BodyPlan::NoBody,
        Some(Ok(n)) if n <= MAX_CLASSIFY_BYTES as u64 => BodyPlan::Buffer,
        Some(Ok(_)) => BodyPlan::PassThrough,
        // Absent or unreadable: count the bytes ourselves.
        _ => BodyPlan::Bounded,
    }
}

/// A country or continent code as `cf` gives it: two ASCII letters. Cloudflare's `XX`
/// (unknown) and `T1` (Tor) are no location.
fn code2(v: Option<String>) -> Option<String> {
    let v = v?.trim().to_ascii_uppercase();
    (v.len() == 2 && v.bytes().all(|b| b.is_ascii_alphabetic()) && v != "XX").then_some(v)
}

fn coordinate(v: Option<String>, limit: f64) -> Option<f64> {
    let x: f64 = v?.trim().parse().ok()?;
    (x.is_finite() && x.abs() <= limit).then_some(x)
}

/// Where the client is, from the request's `cf` object: `get(field)` returns a field as a
/// string (`country`, `continent`, `latitude`, `longitude`, `colo`). Values that are absent or
/// malformed are left out, never an error.
pub fn geo_from_cf(get: impl Fn(&str) -> Option<String>) -> ClientGeo {
    let colo = get("colo")
        .map(|c| c.trim().to_ascii_uppercase())
        .filter(|c| (2..=8).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_alphanumeric()));
    let latitude = coordinate(get("latitude"), 90.0);
    let longitude = coordinate(get("longitude"), 180.0);
    let (latitude, longitude) = match (latitude, longitude) {
        (Some(a), Some(o)) => (Some(a), Some(o)),
        _ => (None, None),
    };
    ClientGeo {
        country: code2(get("country")).filter(|c| c != "T1"),
        continent: code2(get("continent")),
        latitude,
        longitude,
        colo,
    }
}

/// The Worker's vars, as read from its environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EdgeVars {
    pub tier_models: Option<String>,
    pub regions: Option<String>,
    pub profile: Option<String>,
}

/// The classifier for a model file and `vars`; an error says why there is none (a corrupt
/// model, a bad var), and the Worker then forwards unclassified.
pub fn classifier(model_bytes: &[u8], vars: &EdgeVars) -> Result<EdgeClassifier, String> {
    if model_bytes.is_empty() {
        return Err(
            "this Worker was built without an edge model (models/edge/edge-tier-v1.bin)".into(),
        );
    }
    let model = EdgeModel::from_bytes(model_bytes).map_err(|e| format!("edge model: {e}"))?;
    let config = EdgeConfig::from_vars(
        vars.tier_models.as_deref(),
        vars.regions.as_deref(),
        vars.profile.as_deref(),
    )?;
    Ok(EdgeClassifier::new(model, config))
}

/// The two headers the Worker adds: `(X-RouteIQ-Hint, X-RouteIQ-Hint-Signature)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHint {
    pub hint: String,
    pub signature: String,
}

/// Classifies `body` and signs the hint at `unix_secs`; `None` when the body is not a
/// request the classifier reads (forward it unclassified).
pub fn signed_hint(
    classifier: &EdgeClassifier,
    secret: &[u8],
    body: &[u8],
    geo: &ClientGeo,
    unix_secs: u64,
) -> Option<SignedHint> {
    let hint = classifier.classify(body, geo)?;
    Some(sign_hint(&hint, secret, body, unix_secs))
}

/// Encodes and signs a hint for `body`.
pub fn sign_hint(hint: &EdgeHint, secret: &[u8], body: &[u8], unix_secs: u64) -> SignedHint {
    let hint = hint.encode();
    let signature = edge::sign::sign(secret, &hint, unix_secs, body);
    SignedHint { hint, signature }
}

/// A one-shot latch for "log this once per isolate".
pub struct Once(AtomicBool);

impl Once {
    pub const fn new() -> Self {
        Once(AtomicBool::new(false))
    }

    /// `true` the first time only.
    pub fn first(&self) -> bool {
        !self.0.swap(true, Ordering::Relaxed)
    }
}

impl Default for Once {
    fn default() -> Self {
        Self::new()
    }
}

/// Request bodies for the benches (`edge/bench.sh`, `cargo bench -p routeiq-edge`), from a
/// one-line chat to the largest body the Worker classifies: `(name, body)`.
#[cfg(feature = "bench")]
pub fn bench_bodies() -> Vec<(&'static str, String)> {
    use std::fmt::Write as _;
    let chat = |messages: serde_json::Value, extra: serde_json::Value| {
        let mut v = serde_json::json!({"model": "gpt-4o-mini", "messages": messages});
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        v.to_string()
    };
    let user = |t: &str| serde_json::json!([{"role": "user", "content": t}]);
    let code = "Refactor this Rust function so it does not allocate, and explain the borrow \
        checker error:\n```rust\nfn longest(words: &[String]) -> String {\n    let mut best = String::new();\n    \
        for w in words { if w.len() > best.len() { best = w.clone(); } }\n    best\n}\n```\n"
        .repeat(3);
    let mut paragraph = String::new();
    for i in 0..40 {
        let _ = write!(
            paragraph,
            "Sentence {i} of a long briefing about quarterly revenue, churn and the integral of demand over time. "
        );
    }
    let mut turns = Vec::new();
    for i in 0..20 {
        let role = if i % 2 == 0 { "user" } else { "assistant" };
        turns.push(serde_json::json!({"role": role, "content": paragraph}));
    }
    turns.push(serde_json::json!({"role": "user", "content": "Now summarise all of it step by step and prove the totals add up."}));
    let tools = serde_json::json!({"tools": (0..8).map(|i| serde_json::json!({
        "type": "function",
        "function": {"name": format!("tool_{i}"), "description": "Looks something up in an internal system by id and returns JSON.",
            "parameters": {"type": "object", "properties": {"id": {"type": "string"}, "limit": {"type": "integer"}}, "required": ["id"]}}
    })).collect::<Vec<_>>()});
    // The largest body classified: many turns, just under MAX_CLASSIFY_BYTES.
    let mut big_turns = Vec::new();
    let mut size = 0;
    while size + paragraph.len() + 64 < MAX_CLASSIFY_BYTES - 4096 {
        big_turns.push(serde_json::json!({"role": "user", "content": paragraph}));
        size += paragraph.len() + 32;
    }
    big_turns.push(serde_json::json!({"role": "user", "content": "Which quarter was best?"}));
    vec![
        (
            "short chat",
            chat(
                user("What is the capital of France?"),
                serde_json::json!({}),
            ),
        ),
        ("code", chat(user(&code), serde_json::json!({}))),
        (
            "8 tools",
            chat(user("Find order 1234 and tell me when it ships."), tools),
        ),
        (
            "21 turns",
            chat(
                serde_json::Value::Array(turns),
                serde_json::json!({"stream": true}),
            ),
        ),
        (
            "1 MiB (the limit)",
            chat(serde_json::Value::Array(big_turns), serde_json::json!({})),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use routeiq::edge::model::{CLASSES, FloatWeights};
    use routeiq::edge::signals::N_FEATURES;
    use routeiq::edge::{EdgeHint, HINT_HEADER, SIGNATURE_HEADER};

    fn tiny_model() -> Vec<u8> {
        FloatWeights {
            buckets: 64,
            bias: [1.0, 0.0, 0.0, 0.0],
            signal_w: vec![[0.0; CLASSES]; N_FEATURES],
            ngram_w: vec![[0.0; CLASSES]; 64],
        }
        .to_bytes()
    }

    #[test]
    fn hint_headers_are_recognised_in_any_case() {
        for h in [
            HINT_HEADER,
            SIGNATURE_HEADER,
            "X-RouteIQ-Hint",
            "X-ROUTEIQ-HINT-SIGNATURE",
            "x-routeiq-hint-anything",
        ] {
            assert!(is_hint_header(h), "{h}");
            assert!(!forwards_header(h), "{h}");
        }
        for h in [
            "x-routeiq-hin",
            "x-routeiq-model",
            "authorization",
            "content-type",
            "x-request-id",
            "traceparent",
            "",
            "é",
        ] {
            assert!(!is_hint_header(h), "{h}");
        }
        assert!(forwards_header("authorization"));
        assert!(!forwards_header("Host"));
    }

    #[test]
    fn forwards_to_origin_with_path_and_query() {
        let cases = [
            (
                "http://127.0.0.1:4000",
                "https://edge.example/v1/chat/completions",
                "http://127.0.0.1:4000/v1/chat/completions",
            ),
            (
                "http://127.0.0.1:4000/",
                "https://edge.example/v1/models?x=1&y=%20",
                "http://127.0.0.1:4000/v1/models?x=1&y=%20",
            ),
            (
                "https://gw.example.com/prod",
                "https://edge.example/health/liveliness",
                "https://gw.example.com/prod/health/liveliness",
            ),
            (
                "https://gw.example.com/prod/",
                "https://edge.example",
                "https://gw.example.com/prod/",
            ),
            (
                "https://gw.example.com",
                "https://edge.example?q=1",
                "https://gw.example.com/?q=1",
            ),
            (
                "https://gw.example.com",
                "https://edge.example/a#frag",
                "https://gw.example.com/a",
            ),
        ];
        for (origin, url, want) in cases {
            assert_eq!(origin_url(origin, url).unwrap(), want, "{origin} + {url}");
        }
        for bad in [
            "",
            "gw.example.com",
            "ftp://x",
            "https://",
            "https:///x",
            "https://gw?x=1",
            "https://gw#f",
        ] {
            let e = origin_url(bad, "https://edge/v1/models").unwrap_err();
            assert!(e.contains(VAR_ORIGIN_URL), "{bad}: {e}");
        }
        assert_eq!(path_and_query("https://e/x/y?z"), "/x/y?z");
        assert_eq!(path_and_query("https://e"), "/");
    }

    #[test]
    fn body_plans() {
        use BodyPlan::*;
        let max = MAX_CLASSIFY_BYTES.to_string();
        let over = (MAX_CLASSIFY_BYTES + 1).to_string();
        let cases = [
            ("GET", None, false, NoBody),
            ("HEAD", Some("10"), true, NoBody),
            ("POST", None, false, NoBody),
            ("POST", Some("0"), true, NoBody),
            ("POST", Some("120"), true, Buffer),
            ("post", Some(max.as_str()), true, Buffer),
            ("POST", Some(over.as_str()), true, PassThrough),
            ("POST", None, true, Bounded),
            ("POST", Some("lots"), true, Bounded),
            ("PUT", Some("10"), true, PassThrough),
            ("DELETE", None, true, PassThrough),
            ("OPTIONS", None, false, NoBody),
        ];
        for (m, cl, has, want) in cases {
            assert_eq!(body_plan(m, cl, has), want, "{m} {cl:?} {has}");
        }
    }

    #[test]
    fn geo_from_cf_data() {
        let cf = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let g = geo_from_cf(cf(&[
            ("country", "de"),
            ("continent", "EU"),
            ("latitude", "50.11"),
            ("longitude", "8.68"),
            ("colo", "fra"),
        ]));
        assert_eq!(g.country.as_deref(), Some("DE"));
        assert_eq!(g.continent.as_deref(), Some("EU"));
        assert_eq!((g.latitude, g.longitude), (Some(50.11), Some(8.68)));
        assert_eq!(g.colo.as_deref(), Some("FRA"));
        assert_eq!(
            edge::nearest_region(&g, &[]).as_deref(),
            Some("eu-central-1")
        );
        // Malformed or placeholder values are dropped, not errors.
        let g = geo_from_cf(cf(&[
            ("country", "XX"),
            ("continent", "Europe"),
            ("latitude", "95"),
            ("longitude", "8"),
            ("colo", "F R A"),
        ]));
        assert_eq!(g, ClientGeo::default());
        let g = geo_from_cf(cf(&[
            ("country", "T1"),
            ("latitude", "NaN"),
            ("longitude", "1"),
        ]));
        assert_eq!(g, ClientGeo::default());
        assert_eq!(geo_from_cf(|_| None), ClientGeo::default());
    }

    #[test]
    fn classifier_needs_a_model_and_valid_vars() {
        let e = classifier(b"junk", &EdgeVars::default()).unwrap_err();
        assert!(e.contains("edge model"), "{e}");
        let bad = EdgeVars {
            tier_models: Some("hard=x".into()),
            ..EdgeVars::default()
        };
        let e = classifier(&tiny_model(), &bad).unwrap_err();
        assert!(e.contains(VAR_TIER_MODELS), "{e}");
        assert!(classifier(&tiny_model(), &EdgeVars::default()).is_ok());
    }

    #[test]
    fn signs_what_it_classified_and_skips_what_it_cannot_read() {
        let vars = EdgeVars {
            tier_models: Some("simple=chat-small,complex=chat-big".into()),
            regions: Some("us-east-1,eu-west-1".into()),
            profile: Some("eco".into()),
        };
        let c = classifier(&tiny_model(), &vars).unwrap();
        let geo = geo_from_cf(|k| (k == "country").then(|| "IE".to_string()));
        let body = br#"{"model":"chat","messages":[{"role":"user","content":"hello"}]}"#;
        let s = signed_hint(&c, b"secret", body, &geo, 1_700_000_000).unwrap();
        let h = EdgeHint::parse(&s.hint).unwrap();
        assert_eq!(h.model.as_deref(), Some("chat-small"));
        assert_eq!(h.region.as_deref(), Some("eu-west-1"));
        assert_eq!(h.profile.map(|p| p.as_str()), Some("eco"));
        assert!(
            s.signature.starts_with("t=1700000000;s="),
            "{}",
            s.signature
        );
        assert_eq!(
            edge::sign::verify(
                b"secret",
                &s.hint,
                Some(&s.signature),
                body,
                1_700_000_010,
                edge::sign::DEFAULT_MAX_AGE
            ),
            Ok(())
        );
        // Bound to the body and the key.
        assert!(
            edge::sign::verify(
                b"secret",
                &s.hint,
                Some(&s.signature),
                b"{}",
                1_700_000_010,
                edge::sign::DEFAULT_MAX_AGE
            )
            .is_err()
        );
        assert!(
            edge::sign::verify(
                b"other",
                &s.hint,
                Some(&s.signature),
                body,
                1_700_000_010,
                edge::sign::DEFAULT_MAX_AGE
            )
            .is_err()
        );
        for unreadable in [&b"{not json"[..], b"", b"[]", br#"{"input":"embed me"}"#] {
            assert_eq!(signed_hint(&c, b"secret", unreadable, &geo, 1), None);
        }
    }

    #[test]
    fn the_embedded_model_loads_and_classifies() {
        let c = classifier(MODEL_BYTES, &EdgeVars::default()).expect("embedded model");
        assert_eq!(c.model().buckets(), 16_384);
        for text in [
            "hi",
            "Write a Rust function that parses an RFC 3339 timestamp without chrono.",
            "Prove that there are infinitely many primes, step by step.",
        ] {
            let body =
                serde_json::json!({"model": "m", "messages": [{"role": "user", "content": text}]});
            let hint = c
                .classify(body.to_string().as_bytes(), &ClientGeo::default())
                .expect("a chat body is classified");
            assert!((0.0..=1.0).contains(&hint.confidence), "{hint:?}");
        }
    }

    #[test]
    fn once_latch() {
        let o = Once::new();
        assert!(o.first());
        assert!(!o.first());
    }
}
