//! Client authentication: the master key as `Authorization: Bearer <key>` or `x-api-key`,
//! compared in constant time; admin requests ([`authorize_admin`]): an admin key, or a JWT
//! whose `scope` holds `litellm_jwtauth.admin_jwt_scope` when JWT auth is on.

use axum::http::HeaderMap;
use routeiq::config::SecretString;
use subtle::ConstantTimeEq;

use crate::error::GatewayError;
use crate::keys::access::presented_key;

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

/// The identity a request acts as, for what the gateway keeps on a client's behalf (stored
/// Responses API answers): a fingerprint of the key it presented, or `None` when the gateway
/// runs open (no master key). Only meaningful after [`authorize`] accepted the request. The
/// key itself is never stored: 128 bits of a domain-separated SHA-256 of it are.
pub fn key_identity(master_key: Option<&SecretString>, headers: &HeaderMap) -> Option<String> {
    master_key?;
    let key = presented_key(headers)?;
    let mut digest =
        routeiq::ml::artifact::sha256_hex(format!("routeiq-key-identity\0{key}").as_bytes());
    digest.truncate(32);
    Some(digest)
}

/// Checks an admin request: an admin key ([`authorize_admin_key`]), else, with JWT auth on and
/// a credential that looks like a JWT, a verified JWT with the admin scope (a valid JWT
/// without it is 403; an invalid one is LiteLLM's 401).
pub async fn authorize_admin(
    gw: &crate::gateway::Gateway,
    headers: &HeaderMap,
) -> Result<(), GatewayError> {
    let by_key = authorize_admin_key(gw.master_key.as_ref(), &gw.settings().admin_keys, headers);
    let (Err(refused), Some(token), Some(jwt)) = (
        &by_key,
        crate::http::access::presented_jwt(gw, headers),
        &gw.jwt,
    ) else {
        return by_key;
    };
    if matches!(refused, GatewayError::Unauthorized) {
        return by_key;
    }
    if jwt.verify(token).await?.admin {
        Ok(())
    } else {
        Err(GatewayError::Forbidden(format!(
            "this JWT is not an admin's: its scope claim does not hold '{}'",
            jwt.settings().admin_jwt_scope
        )))
    }
}

/// Checks an admin key: it must be one of `admin_keys` (`ADMIN_API_KEYS`) or the master key,
/// compared in constant time against every one of them. No key is 401; a key that is not an
/// admin key is 403; with no admin key configured at all, admin endpoints are off (403).
pub fn authorize_admin_key(
    master_key: Option<&SecretString>,
    admin_keys: &[SecretString],
    headers: &HeaderMap,
) -> Result<(), GatewayError> {
    let keys: Vec<&SecretString> = master_key
        .into_iter()
        .chain(admin_keys)
        .filter(|k| !k.is_empty())
        .collect();
    if keys.is_empty() {
        return Err(GatewayError::Forbidden(
            "admin endpoints are disabled: set ADMIN_API_KEYS or a master key".into(),
        ));
    }
    let Some(presented) = presented_key(headers).filter(|k| !k.is_empty()) else {
        return Err(GatewayError::Unauthorized);
    };
    let mut matched = subtle::Choice::from(0);
    for k in keys {
        matched |= presented.as_bytes().ct_eq(k.expose().as_bytes());
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(GatewayError::Forbidden(
            "this API key is not an admin key (ADMIN_API_KEYS or the master key)".into(),
        ))
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

    #[test]
    fn key_identity_is_a_fingerprint_of_the_presented_key() {
        let key = SecretString::new("sk-1234");
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer sk-1234"));
        let id = key_identity(Some(&key), &h).unwrap();
        assert_eq!(id.len(), 32);
        assert!(!id.contains("sk-1234"));
        let mut x = HeaderMap::new();
        x.insert("x-api-key", HeaderValue::from_static("sk-1234"));
        assert_eq!(key_identity(Some(&key), &x).as_deref(), Some(id.as_str()));
        let mut other = HeaderMap::new();
        other.insert("authorization", HeaderValue::from_static("Bearer sk-5678"));
        assert_ne!(
            key_identity(Some(&key), &other).as_deref(),
            Some(id.as_str())
        );
        // An open gateway has no identities.
        assert_eq!(key_identity(None, &h), None);
    }

    #[test]
    fn admin_keys_and_master_key_are_admins() {
        let master = SecretString::new("sk-master");
        let admins = vec![SecretString::new("sk-admin")];
        let with = |key: &'static str| {
            let mut h = HeaderMap::new();
            h.insert("authorization", HeaderValue::from_static(key));
            h
        };
        let none = HeaderMap::new();
        assert!(matches!(
            authorize_admin_key(Some(&master), &admins, &none),
            Err(GatewayError::Unauthorized)
        ));
        assert!(authorize_admin_key(Some(&master), &admins, &with("Bearer sk-admin")).is_ok());
        assert!(authorize_admin_key(Some(&master), &admins, &with("Bearer sk-master")).is_ok());
        assert!(authorize_admin_key(None, &admins, &with("Bearer sk-admin")).is_ok());
        assert!(matches!(
            authorize_admin_key(Some(&master), &admins, &with("Bearer sk-client")),
            Err(GatewayError::Forbidden(_))
        ));
        // No admin key configured: admin endpoints are off, whatever is presented.
        assert!(matches!(
            authorize_admin_key(None, &[], &with("Bearer anything")),
            Err(GatewayError::Forbidden(_))
        ));
    }
}
