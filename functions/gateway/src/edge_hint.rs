//! The gateway's side of edge hints: settings, verification, and the status header.
//!
//! Settings (config first, then the environment):
//!
//! | `router_settings.routing_strategy_args` | environment | default |
//! | --- | --- | --- |
//! | `edge_hint`: `ignore` \| `advisory` \| `trust` | `ROUTEIQ_EDGE_HINT` | `ignore` |
//! | `edge_hint_secret` (`os.environ/NAME` works) | `ROUTEIQ_EDGE_HINT_SECRET` | none |
//! | `edge_hint_max_age` (seconds) | `ROUTEIQ_EDGE_HINT_MAX_AGE_SECONDS` | 300 |
//! | `edge_hint_min_confidence` (advisory) | `ROUTEIQ_EDGE_HINT_MIN_CONFIDENCE` | 0.6 |
//!
//! `advisory` and `trust` need the secret; without it the gateway refuses to start (a
//! mode that can never verify a hint is a misconfiguration, not a default).
//!
//! Every request carrying `X-RouteIQ-Hint` is checked against the raw body: a missing,
//! malformed, mismatching, expired or future-dated signature, or an unreadable hint, is
//! ignored and counted (`routeiq_edge_hints_total{outcome}`), and the request routes as if
//! no hint had come. The response says what happened in `x-routeiq-hint-status`: `used`,
//! `advisory`, or `ignored:<reason>`; no header when no hint was sent.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use routeiq::config::{Config, ConfigProblem, SecretString};
use routeiq::edge::{EdgeHint, HINT_HEADER, SIGNATURE_HEADER, sign};
use routeiq::router::hint::{EdgeHintMode, HintOutcome, HintUse};
use serde_json::Value;

/// The response header saying what became of a hint.
/// The response header saying what happened to the hint.
pub const STATUS_HEADER: &str = crate::http::headers::HINT_STATUS;
const DEFAULT_MIN_CONFIDENCE: f32 = 0.6;

/// Resolved `edge_hint` settings.
#[derive(Debug, Clone)]
pub struct EdgeHintSettings {
    pub mode: EdgeHintMode,
    pub secret: Option<SecretString>,
    /// How old a signed hint may be.
    pub max_age: Duration,
    pub min_confidence: f32,
}

impl Default for EdgeHintSettings {
    fn default() -> Self {
        EdgeHintSettings {
            mode: EdgeHintMode::Ignore,
            secret: None,
            max_age: sign::DEFAULT_MAX_AGE,
            min_confidence: DEFAULT_MIN_CONFIDENCE,
        }
    }
}

const ARGS: &str = "router_settings.routing_strategy_args";

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl EdgeHintSettings {
    /// Reads the settings (see the module docs); an error names the config path or variable.
    pub fn resolve(
        config: &Config,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<EdgeHintSettings, ConfigProblem> {
        let args = &config.router_settings.routing_strategy_args.extra;
        let get = |key: &str, var: &str| -> Result<Option<(String, String)>, ConfigProblem> {
            match args.get(key) {
                Some(Value::Null) | None => Ok(env(var)
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| (var.to_string(), v))),
                Some(v) => text(v)
                    .map(|t| Some((format!("{ARGS}.{key}"), t)))
                    .ok_or_else(|| {
                        ConfigProblem::new(format!("{ARGS}.{key}"), "must be a string or a number")
                    }),
            }
        };
        let mut s = EdgeHintSettings::default();
        if let Some((path, v)) = get("edge_hint", "ROUTEIQ_EDGE_HINT")? {
            s.mode = EdgeHintMode::parse(&v).map_err(|e| ConfigProblem::new(path, e))?;
        }
        if let Some((path, v)) = get("edge_hint_max_age", "ROUTEIQ_EDGE_HINT_MAX_AGE_SECONDS")? {
            s.max_age = v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=86_400).contains(n))
                .map(Duration::from_secs)
                .ok_or_else(|| {
                    ConfigProblem::new(
                        path,
                        format!("'{v}' is not a number of seconds in 1..=86400"),
                    )
                })?;
        }
        if let Some((path, v)) = get(
            "edge_hint_min_confidence",
            "ROUTEIQ_EDGE_HINT_MIN_CONFIDENCE",
        )? {
            s.min_confidence = v
                .trim()
                .parse::<f32>()
                .ok()
                .filter(|c| (0.0..=1.0).contains(c))
                .ok_or_else(|| {
                    ConfigProblem::new(path, format!("'{v}' is not a confidence in 0..=1"))
                })?;
        }
        if let Some((_, v)) = get("edge_hint_secret", "ROUTEIQ_EDGE_HINT_SECRET")? {
            s.secret = Some(SecretString::new(v));
        }
        if s.mode != EdgeHintMode::Ignore {
            match &s.secret {
                None => {
                    return Err(ConfigProblem::new(
                        format!("{ARGS}.edge_hint"),
                        format!(
                            "edge_hint is '{}' but no secret is set (ROUTEIQ_EDGE_HINT_SECRET or {ARGS}.edge_hint_secret): hints could never be verified",
                            s.mode.as_str()
                        ),
                    ));
                }
                Some(k) if k.expose().len() < 16 => {
                    return Err(ConfigProblem::new(
                        format!("{ARGS}.edge_hint_secret"),
                        "the edge hint secret must be at least 16 bytes (32 random bytes recommended)",
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(s)
    }
}

/// What the check of a request's hint found.
#[derive(Debug, Clone)]
pub enum HintCheck {
    /// No hint header.
    Absent,
    /// A hint that must not be used; the reason is the status label.
    Ignored(&'static str),
    /// Verified, to route with.
    Valid(Arc<HintUse>),
}

impl HintCheck {
    /// The verified hint, if there is one.
    pub fn hint(&self) -> Option<Arc<HintUse>> {
        match self {
            HintCheck::Valid(h) => Some(h.clone()),
            _ => None,
        }
    }
}

/// The hint and signature headers of a request, taken before its body is read.
pub fn headers_of(headers: &HeaderMap) -> (Option<HeaderValue>, Option<HeaderValue>) {
    (
        headers.get(HINT_HEADER).cloned(),
        headers.get(SIGNATURE_HEADER).cloned(),
    )
}

/// Checks a request's hint (`hint`, `signature`: its header values) against its raw body
/// at `now_unix` (Unix seconds).
pub fn check(
    settings: &EdgeHintSettings,
    (hint, signature): (Option<&HeaderValue>, Option<&HeaderValue>),
    body: &[u8],
    now_unix: u64,
) -> HintCheck {
    let Some(raw) = hint else {
        return HintCheck::Absent;
    };
    if settings.mode == EdgeHintMode::Ignore {
        return HintCheck::Ignored("mode");
    }
    let Some(secret) = &settings.secret else {
        return HintCheck::Ignored("no-secret");
    };
    let Ok(raw) = raw.to_str() else {
        return HintCheck::Ignored("malformed");
    };
    let signature = match signature.map(|v| v.to_str()) {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(_)) => return HintCheck::Ignored("malformed-signature"),
    };
    if let Err(e) = sign::verify(
        secret.expose().as_bytes(),
        raw,
        signature,
        body,
        now_unix,
        settings.max_age,
    ) {
        return HintCheck::Ignored(e.label());
    }
    match EdgeHint::parse(raw) {
        Ok(hint) => HintCheck::Valid(Arc::new(HintUse {
            hint,
            mode: settings.mode,
            min_confidence: settings.min_confidence,
        })),
        Err(_) => HintCheck::Ignored("malformed"),
    }
}

/// The hint and signature header values of a request.
pub type HintHeaders = (Option<HeaderValue>, Option<HeaderValue>);

/// Checks a request's hint with the gateway's settings and clock, counting the outcome
/// and logging why a hint was ignored.
pub fn check_request(
    gw: &crate::gateway::Gateway,
    headers: &HintHeaders,
    body: &[u8],
) -> HintCheck {
    if headers.0.is_none() {
        return HintCheck::Absent;
    }
    let now_unix = gw.services.clock.now_ms() / 1000;
    let c = check(
        &gw.edge_hint,
        (headers.0.as_ref(), headers.1.as_ref()),
        body,
        now_unix,
    );
    match &c {
        HintCheck::Absent => {}
        HintCheck::Ignored(reason) => {
            gw.services.metrics.observe_edge_hint(reason);
            tracing::warn!(reason, "edge hint ignored");
        }
        HintCheck::Valid(h) => {
            gw.services.metrics.observe_edge_hint("valid");
            tracing::debug!(
                tier = h.hint.tier.as_str(),
                confidence = h.hint.confidence,
                region = h.hint.region.as_deref(),
                colo = h.hint.colo.as_deref(),
                "edge hint verified"
            );
        }
    }
    c
}

/// Sets `x-routeiq-hint-status` on a response: what the router did with a verified hint
/// (`outcome`), or why it was ignored; nothing when no hint came.
pub fn set_status(headers: &mut HeaderMap, check: &HintCheck, outcome: Option<HintOutcome>) {
    let value = match check {
        HintCheck::Absent => return,
        HintCheck::Ignored(reason) => format!("ignored:{reason}"),
        HintCheck::Valid(_) => outcome
            .unwrap_or(HintOutcome::Advisory)
            .as_str()
            .to_string(),
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(axum::http::HeaderName::from_static(STATUS_HEADER), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn settings(mode: EdgeHintMode) -> EdgeHintSettings {
        EdgeHintSettings {
            mode,
            secret: Some(SecretString::new(SECRET)),
            ..EdgeHintSettings::default()
        }
    }

    fn headers(hint: &str, sig: Option<String>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HINT_HEADER, HeaderValue::from_str(hint).unwrap());
        if let Some(s) = sig {
            h.insert(SIGNATURE_HEADER, HeaderValue::from_str(&s).unwrap());
        }
        h
    }

    fn label(c: &HintCheck) -> String {
        match c {
            HintCheck::Absent => "absent".into(),
            HintCheck::Ignored(r) => (*r).into(),
            HintCheck::Valid(h) => format!("valid:{}", h.hint.tier.as_str()),
        }
    }

    #[test]
    fn verifies_and_refuses() {
        let body = br#"{"model":"m"}"#;
        let hint = "v1;tier=complex;conf=0.9";
        let good = sign::sign(SECRET.as_bytes(), hint, 1_000, body);
        let s = settings(EdgeHintMode::Trust);
        let cases = [
            (
                headers(hint, Some(good.clone())),
                &body[..],
                1_010,
                "valid:complex",
            ),
            (
                headers(hint, Some(good.clone())),
                b"{}",
                1_010,
                "bad-signature",
            ),
            (headers(hint, None), body, 1_010, "missing-signature"),
            (
                headers(hint, Some("t=1;s=x".into())),
                body,
                1_010,
                "malformed-signature",
            ),
            (headers(hint, Some(good.clone())), body, 2_000, "expired"),
            (headers(hint, Some(good.clone())), body, 100, "future"),
            (
                headers(
                    "v9;tier=x",
                    Some(sign::sign(SECRET.as_bytes(), "v9;tier=x", 1_000, body)),
                ),
                body,
                1_000,
                "malformed",
            ),
            (HeaderMap::new(), body, 1_000, "absent"),
        ];
        for (h, b, now, want) in cases {
            let (hv, sv) = headers_of(&h);
            assert_eq!(label(&check(&s, (hv.as_ref(), sv.as_ref()), b, now)), want);
        }
        let ignore = settings(EdgeHintMode::Ignore);
        let (hv, sv) = headers_of(&headers(hint, Some(good)));
        assert_eq!(
            label(&check(&ignore, (hv.as_ref(), sv.as_ref()), body, 1_000)),
            "mode"
        );
    }

    #[test]
    fn settings_from_config_and_env() {
        let cfg = |yaml: &str| {
            routeiq::config::load_str_with_env(yaml, &|_| None)
                .unwrap()
                .config
        };
        let none = |_: &str| None;
        let c = cfg("model_list: []\n");
        assert_eq!(
            EdgeHintSettings::resolve(&c, &none).unwrap().mode,
            EdgeHintMode::Ignore
        );
        let env = |k: &str| match k {
            "ROUTEIQ_EDGE_HINT" => Some("advisory".to_string()),
            "ROUTEIQ_EDGE_HINT_SECRET" => Some(SECRET.to_string()),
            "ROUTEIQ_EDGE_HINT_MIN_CONFIDENCE" => Some("0.8".to_string()),
            _ => None,
        };
        let s = EdgeHintSettings::resolve(&c, &env).unwrap();
        assert_eq!(s.mode, EdgeHintMode::Advisory);
        assert_eq!(s.min_confidence, 0.8);
        // Config wins over the environment; errors name the path.
        let c = cfg("router_settings:\n  routing_strategy_args: {edge_hint: trust}\n");
        assert_eq!(
            EdgeHintSettings::resolve(&c, &env).unwrap().mode,
            EdgeHintMode::Trust
        );
        let ConfigProblem { path, message: msg } =
            EdgeHintSettings::resolve(&c, &none).unwrap_err();
        assert_eq!(path, "router_settings.routing_strategy_args.edge_hint");
        assert!(msg.contains("no secret"), "{msg}");
        let c = cfg("router_settings:\n  routing_strategy_args: {edge_hint: always}\n");
        let ConfigProblem { path, message: msg } = EdgeHintSettings::resolve(&c, &env).unwrap_err();
        assert!(
            path.ends_with("edge_hint") && msg.contains("ignore, advisory, trust"),
            "{msg}"
        );
        let c = cfg(
            "router_settings:\n  routing_strategy_args: {edge_hint: trust, edge_hint_secret: short, edge_hint_max_age: 0}\n",
        );
        let path = EdgeHintSettings::resolve(&c, &env).unwrap_err().path;
        assert!(path.ends_with("edge_hint_max_age"), "{path}");
    }
}
