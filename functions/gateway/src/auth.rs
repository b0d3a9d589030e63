//! Client authentication: the master key as `Authorization: Bearer <key>` or `x-api-key`,
//! compared in constant time.

use axum::http::HeaderMap;
use routeiq::config::SecretString;
use subtle::ConstantTimeEq;

use crate::error::GatewayError;

/// The key a client presented, if any.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        let key = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .unwrap_or(v);
        return Some(key.trim());
    }
    headers
        .get("x-api-key")
        .or_else(|| headers.get("api-key"))
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Checks the request's key against `master_key`. With no key configured, all requests pass.
pub fn authorize(
    master_key: Option<&SecretString>,
    headers: &HeaderMap,
) -> Result<(), GatewayError> {
    let Some(expected) = master_key else {
        return Ok(());
    };
    match presented_key(headers) {
        Some(k) if bool::from(k.as_bytes().ct_eq(expected.expose().as_bytes())) => Ok(()),
        _ => Err(GatewayError::Unauthorized),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn accepts_bearer_and_x_api_key() {
        let key = SecretString::new("sk-1234");
        let mut h = HeaderMap::new();
        assert!(authorize(Some(&key), &h).is_err());
        assert!(authorize(None, &h).is_ok());
        h.insert("authorization", HeaderValue::from_static("Bearer sk-1234"));
        assert!(authorize(Some(&key), &h).is_ok());
        h.insert("authorization", HeaderValue::from_static("Bearer sk-12345"));
        assert!(authorize(Some(&key), &h).is_err());
        let mut h = HeaderMap::new();
        h.insert("x-api-key", HeaderValue::from_static("sk-1234"));
        assert!(authorize(Some(&key), &h).is_ok());
    }
}
