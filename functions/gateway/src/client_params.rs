//! Parameters LiteLLM clients put in a request body beside the API's own, and what the
//! gateway does with each (as LiteLLM's proxy does, `litellm/proxy/auth/auth_utils.py`):
//!
//! - `extra_body` (an object): merged into the request before it is read, as LiteLLM and the
//!   OpenAI SDKs do, so its members reach the upstream as top-level members;
//! - credentials, endpoints and gateway settings (`api_key`, `api_base`, AWS and Vertex
//!   credentials, `user_config`...): refused with 400 and never forwarded. LiteLLM accepts
//!   some of them only with `general_settings.allow_client_side_credentials`, which RouteIQ
//!   does not implement: the only keys and URLs it uses come from the config;
//! - `extra_headers`: refused with 400 (RouteIQ does not forward client headers upstream),
//!   rather than sent on as a body member the upstream would reject or ignore.

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

/// The member that carries extra members to merge.
const EXTRA_BODY: &str = "extra_body";
/// The member that asks for extra upstream headers.
const EXTRA_HEADERS: &str = "extra_headers";

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

/// Refuses the members of a request's unmodelled rest (`extra`) that must not come from a
/// client (400, naming the member); `extra_body` was merged before the request was read.
pub fn check(extra: &Map<String, Value>) -> Result<(), GatewayError> {
    for key in extra.keys() {
        refuse(key, key)?;
    }
    Ok(())
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
    if key == EXTRA_HEADERS {
        return Err(GatewayError::invalid_param(
            format!(
                "'{path}' is not supported: RouteIQ does not forward client-chosen headers to \
                 upstream providers"
            ),
            path,
        ));
    }
    Ok(())
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

    #[test]
    fn credentials_endpoints_and_headers_are_refused() {
        for key in [
            "api_key",
            "aws_bedrock_runtime_endpoint",
            "api_base",
            "extra_headers",
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
}
