//! Parameters LiteLLM clients put in a request body beside the API's own, and what the
//! gateway does with each (as LiteLLM's proxy does, `litellm/proxy/auth/auth_utils.py`):
//!
//! - `extra_body` (an object): merged into the request before it is read, as LiteLLM and the
//!   OpenAI SDKs do, so its members reach the upstream as top-level members;
//! - credentials, endpoints and gateway settings (`api_key`, `api_base`, AWS and Vertex
//!   credentials, `user_config`...): refused with 400 and never forwarded. LiteLLM accepts
//!   some of them only with `general_settings.allow_client_side_credentials`, which RouteIQ
//!   does not implement: the only keys and URLs it uses come from the config;
//! - `extra_headers` (an object of strings): sent to the upstream as headers, as LiteLLM does,
//!   except credentials, framing and routing headers (400); the provider's own headers win
//!   over a client header of the same name. Providers that cannot send them (Bedrock) refuse
//!   the call (400);
//! - with `litellm_settings.forward_traceparent_to_llm_provider`, the request's `traceparent`
//!   and `tracestate` headers join them ([`trace_headers`]; Bedrock's SDK sends its own).

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};

use crate::error::GatewayError;

/// Body members that must never come from a client: credentials, endpoints (the SSRF guard
/// only trusts the config's) and LiteLLM settings that would change where a call goes.
pub const REFUSED: &[&str] = &[
    "api_key",
    "api_base",
    "base_url",
    "api_version",
    "azure_endpoint",
    "azure_ad_token",
    "azure_ad_token_provider",
    "organization",
    "user_config",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_session_name",
    "aws_profile_name",
    "aws_role_name",
    "aws_web_identity_token",
    "aws_sts_endpoint",
    "aws_region_name",
    "aws_bedrock_runtime_endpoint",
    "s3_endpoint_url",
    "sagemaker_base_url",
    "deployment_url",
    "vertex_credentials",
    "vertex_project",
    "vertex_location",
    "client_id",
    "client_secret",
    "tenant_id",
    "litellm_credential_name",
    "custom_llm_provider",
    "mock_response",
];

/// Headers a client may not set on the upstream call: credentials, framing and hop-by-hop
/// headers (and any `x-amz-*`, `x-routeiq-*` or `proxy-*` header).
const REFUSED_HEADERS: &[&str] = &[
    "authorization",
    "api-key",
    "x-api-key",
    "x-goog-api-key",
    "cookie",
    "host",
    "content-length",
    "content-type",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
];

/// The member that carries extra members to merge.
const EXTRA_BODY: &str = "extra_body";
/// The member that asks for extra upstream headers.
pub const EXTRA_HEADERS: &str = "extra_headers";

/// Whether a body may carry `extra_body` (a cheap look at the raw bytes, so requests without
/// it are parsed once).
pub fn mentions_extra_body(raw: &[u8]) -> bool {
    memchr::memmem::find(raw, EXTRA_BODY.as_bytes()).is_some()
}

/// Merges a body's `extra_body` object into the body itself (its members win over the
/// body's own, as in the OpenAI SDKs). A body without one is returned unchanged.
pub fn merge_extra_body(mut body: Map<String, Value>) -> Result<Map<String, Value>, GatewayError> {
    let Some(extra) = body.remove(EXTRA_BODY) else {
        return Ok(body);
    };
    let extra = match extra {
        Value::Object(m) => m,
        Value::Null => return Ok(body),
        _ => {
            return Err(GatewayError::invalid_param(
                "'extra_body' must be an object of request members",
                EXTRA_BODY,
            ));
        }
    };
    for (key, value) in extra {
        if key == EXTRA_BODY {
            return Err(GatewayError::invalid_param(
                "'extra_body' must not contain 'extra_body'",
                format!("{EXTRA_BODY}.{EXTRA_BODY}"),
            ));
        }
        refuse(&key, &format!("{EXTRA_BODY}.{key}"))?;
        body.insert(key, value);
    }
    Ok(body)
}

/// Takes a request's client parameters out of its unmodelled rest (`extra`): refuses the
/// members that must not come from a client (400, naming the member) and returns its
/// `extra_headers`, checked, if it has any. `extra_body` was merged before the request was
/// read.
pub fn take(extra: &mut Map<String, Value>) -> Result<Option<HeaderMap>, GatewayError> {
    for key in extra.keys() {
        refuse(key, key)?;
    }
    match extra.remove(EXTRA_HEADERS) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(headers)) => extra_headers(&headers).map(Some),
        Some(_) => Err(GatewayError::invalid_param(
            "'extra_headers' must be an object of header names and string values",
            EXTRA_HEADERS,
        )),
    }
}

/// The checked `extra_headers`.
fn extra_headers(members: &Map<String, Value>) -> Result<HeaderMap, GatewayError> {
    let mut headers = HeaderMap::with_capacity(members.len());
    for (name, value) in members {
        let path = format!("{EXTRA_HEADERS}.{name}");
        let Ok(header) = HeaderName::from_bytes(name.as_bytes()) else {
            return Err(GatewayError::invalid_param(
                format!("'{path}' is not a valid header name"),
                path,
            ));
        };
        let lower = header.as_str();
        if REFUSED_HEADERS.contains(&lower)
            || ["x-amz-", "x-routeiq-", "proxy-"]
                .iter()
                .any(|prefix| lower.starts_with(prefix))
        {
            return Err(GatewayError::invalid_param(
                format!(
                    "'{path}' is not accepted: credentials, framing and routing headers to \
                     the upstream come from the config only"
                ),
                path,
            ));
        }
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                return Err(GatewayError::invalid_param(
                    format!("'{path}' must be a string"),
                    path,
                ));
            }
        };
        let Ok(value) = HeaderValue::from_str(&text) else {
            return Err(GatewayError::invalid_param(
                format!("'{path}' is not a valid header value"),
                path,
            ));
        };
        headers.append(header, value);
    }
    Ok(headers)
}

fn refuse(key: &str, path: &str) -> Result<(), GatewayError> {
    if REFUSED.contains(&key) {
        return Err(GatewayError::invalid_param(
            format!(
                "'{path}' is not accepted in a request (SSRF guard): RouteIQ only calls the \
                 endpoints and uses the credentials configured in model_list"
            ),
            path,
        ));
    }
    Ok(())
}

/// W3C trace context headers, forwarded with `forward_traceparent_to_llm_provider`.
pub const TRACE_HEADERS: [&str; 2] = ["traceparent", "tracestate"];

/// The request's `traceparent`/`tracestate`, when `litellm_settings.forward_traceparent_to_llm_provider`
/// is on (LiteLLM's behaviour: the client's trace continues at the provider).
pub fn trace_headers(gw: &crate::gateway::Gateway, headers: &HeaderMap) -> Option<HeaderMap> {
    if !gw.config.litellm_settings.forward_traceparent {
        return None;
    }
    let mut out = HeaderMap::new();
    for name in TRACE_HEADERS {
        if let Some(v) = headers.get(name) {
            out.insert(name, v.clone());
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The client's `extra_headers` with the forwarded trace headers added (the client's own
/// `traceparent` in `extra_headers` wins).
pub fn with_trace(extra: Option<HeaderMap>, trace: Option<HeaderMap>) -> Option<HeaderMap> {
    let Some(trace) = trace else {
        return extra;
    };
    let mut all = extra.unwrap_or_default();
    for (name, value) in trace {
        if let Some(name) = name
            && !all.contains_key(&name)
        {
            all.insert(name, value);
        }
    }
    Some(all)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn extra_body_members_are_merged_and_win() {
        let body = map(json!({"model": "m", "seed": 1, "extra_body": {"seed": 7, "flag": true}}));
        let merged = merge_extra_body(body).unwrap();
        assert_eq!(merged["seed"], 7);
        assert_eq!(merged["flag"], true);
        assert!(!merged.contains_key("extra_body"));
        let plain = map(json!({"model": "m"}));
        assert_eq!(merge_extra_body(plain.clone()).unwrap(), plain);
    }

    #[test]
    fn extra_body_must_be_an_object_without_refused_members() {
        let e = merge_extra_body(map(json!({"extra_body": 5}))).unwrap_err();
        assert_eq!(e.status_code(), 400);
        let e = merge_extra_body(map(json!({"extra_body": {"api_base": "http://x"}}))).unwrap_err();
        assert_eq!(e.body().error.param.as_deref(), Some("extra_body.api_base"));
        assert!(merge_extra_body(map(json!({"extra_body": null}))).is_ok());
    }

    fn check(extra: &Map<String, Value>) -> Result<Option<HeaderMap>, GatewayError> {
        take(&mut extra.clone())
    }

    #[test]
    fn credentials_and_endpoints_are_refused() {
        for key in [
            "api_key",
            "aws_bedrock_runtime_endpoint",
            "api_base",
            "user_config",
        ] {
            let e = check(&map(json!({ key: "x" }))).unwrap_err();
            assert_eq!(e.status_code(), 400, "{key}");
            assert_eq!(e.body().error.param.as_deref(), Some(key));
        }
        assert!(check(&map(json!({"seed": 1, "response_format": {}}))).is_ok());
        let e = check(&map(json!({"api_base": "http://169.254.169.254"}))).unwrap_err();
        assert!(e.to_string().contains("SSRF guard"), "{e}");
        assert!(mentions_extra_body(br#"{"extra_body":{}}"#));
        assert!(!mentions_extra_body(br#"{"model":"m"}"#));
    }

    #[test]
    fn extra_headers_are_taken_out_and_checked() {
        let mut extra = map(json!({
            "seed": 1,
            "extra_headers": {"x-custom": "1", "anthropic-beta": "b"},
        }));
        let headers = take(&mut extra).unwrap().unwrap();
        assert_eq!(headers.get("x-custom").unwrap(), "1");
        assert_eq!(headers.get("anthropic-beta").unwrap(), "b");
        assert!(!extra.contains_key("extra_headers"));
        assert!(extra.contains_key("seed"));
        for bad in [
            json!({"extra_headers": {"Authorization": "Bearer x"}}),
            json!({"extra_headers": {"x-amz-security-token": "t"}}),
            json!({"extra_headers": {"bad name": "x"}}),
            json!({"extra_headers": {"x-a": "line\nbreak"}}),
            json!({"extra_headers": {"x-a": {"nested": 1}}}),
            json!({"extra_headers": ["x-a"]}),
        ] {
            let e = take(&mut map(bad.clone())).unwrap_err();
            assert_eq!(e.status_code(), 400, "{bad}");
            let param = e.body().error.param.unwrap_or_default();
            assert!(param.starts_with("extra_headers"), "{bad}: {param}");
        }
        assert_eq!(
            take(&mut map(json!({"extra_headers": null}))).unwrap(),
            None
        );
    }
}
