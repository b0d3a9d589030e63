//! Google OAuth access tokens for Vertex AI deployments (`vertex_ai/`).
//!
//! - A service-account key (`vertex_credentials` as JSON text or a file path, else the file
//!   `GOOGLE_APPLICATION_CREDENTIALS` names): a JWT signed with its key (RS256,
//!   `jsonwebtoken`) is exchanged at the key's `token_uri`.
//! - An authorized-user key (gcloud's application-default credentials): its refresh token is
//!   exchanged at its `token_uri` (default Google's).
//! - Neither: the metadata server of the machine (Cloud Run, GKE, GCE), at `GCE_METADATA_HOST`
//!   (default `metadata.google.internal`).
//!
//! Tokens are cached until 5 minutes before they expire; concurrent callers wait for one
//! refresh. Token endpoints are Google's own infrastructure (or the operator's), so they are
//! called with a plain client, not through the SSRF guard that protects model endpoints.

use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use routeiq::config::SecretString;
use serde::Deserialize;

use crate::error::{GatewayError, UpstreamErrorKind};

/// The OAuth scope Vertex AI needs.
const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Google's token endpoint, for keys that name none.
const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// A token is refreshed this long before it expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// How long a token endpoint may take.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(10);
/// The provider name token errors carry.
const PROVIDER: &str = "vertex_ai";
/// Vertex AI's default location (LiteLLM's).
const DEFAULT_VERTEX_LOCATION: &str = "us-central1";

/// A Vertex AI model's URL up to the method (`…/publishers/{publisher}/models/{model}`) and
/// its token source: project from `vertex_project`, else `VERTEXAI_PROJECT` /
/// `VERTEX_PROJECT` / `GOOGLE_CLOUD_PROJECT`; location from `vertex_location`, else
/// `VERTEXAI_LOCATION` / `VERTEX_LOCATION`, else `us-central1`; host from `api_base`, else
/// the location's endpoint (`global`: `aiplatform.googleapis.com`); tokens from
/// `vertex_credentials` (see [`TokenSource::new`]).
pub(super) fn vertex_model_base(
    d: &routeiq::router::Deployment,
    env: &dyn Fn(&str) -> Option<String>,
    publisher: &str,
    model: &str,
) -> Result<(String, std::sync::Arc<TokenSource>), GatewayError> {
    let non_empty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
    let first = |names: &[&str]| names.iter().find_map(|n| non_empty(env(n)));
    let project = non_empty(d.params.vertex.project.clone())
        .or_else(|| first(&["VERTEXAI_PROJECT", "VERTEX_PROJECT", "GOOGLE_CLOUD_PROJECT"]))
        .ok_or_else(|| {
            GatewayError::Internal(format!(
                "deployment '{}': vertex_ai needs a project (vertex_project or VERTEXAI_PROJECT)",
                d.id
            ))
        })?;
    let location = non_empty(d.params.vertex.location.clone())
        .or_else(|| first(&["VERTEXAI_LOCATION", "VERTEX_LOCATION"]))
        .unwrap_or_else(|| DEFAULT_VERTEX_LOCATION.into());
    let host = non_empty(d.params.api_base.clone()).unwrap_or_else(|| {
        if location == "global" {
            "https://aiplatform.googleapis.com".into()
        } else {
            format!("https://{location}-aiplatform.googleapis.com")
        }
    });
    let base = format!(
        "{}/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{model}",
        host.trim().trim_end_matches('/')
    );
    let tokens = TokenSource::new(d.params.vertex.credentials.as_ref(), env)
        .map_err(|e| GatewayError::Internal(format!("deployment '{}': {e}", d.id)))?;
    Ok((base, std::sync::Arc::new(tokens)))
}

/// `Authorization: Bearer <token>`, marked sensitive.
pub(super) fn bearer(token: &SecretString) -> Result<http::HeaderValue, GatewayError> {
    let mut v = http::HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        .map_err(|_| GatewayError::Internal("the access token is not a valid header".into()))?;
    v.set_sensitive(true);
    Ok(v)
}

enum Source {
    ServiceAccount {
        email: String,
        key_id: Option<String>,
        key: EncodingKey,
        token_uri: String,
    },
    AuthorizedUser {
        client_id: String,
        client_secret: SecretString,
        refresh_token: SecretString,
        token_uri: String,
    },
    Metadata {
        url: String,
    },
}

/// Where a Vertex AI deployment's access tokens come from, with the current one cached.
pub struct TokenSource {
    source: Source,
    client: reqwest::Client,
    cached: tokio::sync::Mutex<Option<(SecretString, Instant)>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.source {
            Source::ServiceAccount { email, .. } => format!("service account {email}"),
            Source::AuthorizedUser { .. } => "authorized user".to_string(),
            Source::Metadata { .. } => "metadata server".to_string(),
        };
        f.debug_struct("TokenSource")
            .field("source", &kind)
            .finish()
    }
}

/// A key file's fields (service account or authorized user).
#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    client_email: Option<String>,
    #[serde(default)]
    private_key: Option<String>,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default)]
    token_uri: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

impl TokenSource {
    /// The token source for `credentials` (`vertex_credentials`: key JSON, or a path to
    /// it), else `GOOGLE_APPLICATION_CREDENTIALS`' file, else the metadata server. `Err`
    /// says why the key cannot be used (never its contents).
    pub fn new(
        credentials: Option<&SecretString>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<TokenSource, String> {
        let text = match credentials.map(|c| c.expose().trim().to_string()) {
            Some(c) if c.starts_with('{') => Some(c),
            Some(path) if !path.is_empty() => Some(read_key(&path)?),
            _ => match env("GOOGLE_APPLICATION_CREDENTIALS").filter(|p| !p.trim().is_empty()) {
                Some(path) => Some(read_key(path.trim())?),
                None => None,
            },
        };
        let source = match text {
            Some(text) => parse_key(&text)?,
            None => {
                let host = env("GCE_METADATA_HOST")
                    .filter(|h| !h.trim().is_empty())
                    .unwrap_or_else(|| "metadata.google.internal".into());
                Source::Metadata {
                    url: format!(
                        "http://{}/computeMetadata/v1/instance/service-accounts/default/token",
                        host.trim()
                    ),
                }
            }
        };
        let tls = crate::upstream::client::tls_config()
            .map_err(|e| format!("cannot set up TLS for the token client: {e}"))?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(TOKEN_TIMEOUT)
            .build()
            .map_err(|e| format!("cannot build the token client: {e}"))?;
        Ok(TokenSource {
            source,
            client,
            cached: tokio::sync::Mutex::new(None),
        })
    }

    /// A valid access token: the cached one, or a new one.
    pub async fn token(&self) -> Result<SecretString, GatewayError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, refresh_at)) = cached.as_ref()
            && Instant::now() < *refresh_at
        {
            return Ok(token.clone());
        }
        let (token, lifetime) = self.fetch().await?;
        let refresh_at = Instant::now() + lifetime.saturating_sub(REFRESH_MARGIN);
        *cached = Some((token.clone(), refresh_at));
        Ok(token)
    }

    async fn fetch(&self) -> Result<(SecretString, Duration), GatewayError> {
        let request = match &self.source {
            Source::ServiceAccount {
                email,
                key_id,
                key,
                token_uri,
            } => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or_default();
                let claims = Claims {
                    iss: email,
                    scope: SCOPE,
                    aud: token_uri,
                    iat: now,
                    exp: now + 3600,
                };
                let mut header = Header::new(Algorithm::RS256);
                header.kid = key_id.clone();
                let jwt = jsonwebtoken::encode(&header, &claims, key)
                    .map_err(|e| auth_error(format!("cannot sign the token request: {e}")))?;
                self.client.post(token_uri).form(&[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", jwt.as_str()),
                ])
            }
            Source::AuthorizedUser {
                client_id,
                client_secret,
                refresh_token,
                token_uri,
            } => self.client.post(token_uri).form(&[
                ("grant_type", "refresh_token"),
                ("client_id", client_id.as_str()),
                ("client_secret", client_secret.expose()),
                ("refresh_token", refresh_token.expose()),
            ]),
            Source::Metadata { url } => self.client.get(url).header("Metadata-Flavor", "Google"),
        };
        let resp = request.send().await.map_err(|e| GatewayError::Connection {
            provider: PROVIDER.into(),
            message: format!("token endpoint: {e}"),
        })?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| GatewayError::Connection {
            provider: PROVIDER.into(),
            message: format!("token endpoint: {e}"),
        })?;
        if !(200..300).contains(&status) {
            // The body names the reason (`invalid_grant`...) and never holds a secret.
            let text = String::from_utf8_lossy(&body);
            return Err(auth_error(format!(
                "the token endpoint answered {status}: {}",
                text.chars().take(300).collect::<String>()
            )));
        }
        let token: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| auth_error(format!("the token endpoint's answer is not a token: {e}")))?;
        Ok((
            SecretString::new(token.access_token),
            Duration::from_secs(token.expires_in.unwrap_or(3600)),
        ))
    }
}

fn auth_error(message: String) -> GatewayError {
    GatewayError::Upstream {
        provider: PROVIDER.into(),
        status: 401,
        kind: UpstreamErrorKind::Authentication,
        message,
        retry_after: None,
    }
}

fn read_key(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the credentials file '{path}': {e}"))
}

fn parse_key(text: &str) -> Result<Source, String> {
    let key: KeyFile = serde_json::from_str(text)
        .map_err(|e| format!("the credentials are not a Google key file: {e}"))?;
    let token_uri = key
        .token_uri
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| GOOGLE_TOKEN_URI.into());
    match key.kind.as_deref() {
        Some("service_account") | None if key.private_key.is_some() => {
            let email = key
                .client_email
                .ok_or("the service-account key has no client_email")?;
            let pem = key.private_key.unwrap_or_default();
            let signing = EncodingKey::from_rsa_pem(pem.as_bytes())
                .map_err(|e| format!("the service-account private_key is not an RSA key: {e}"))?;
            Ok(Source::ServiceAccount {
                email,
                key_id: key.private_key_id,
                key: signing,
                token_uri,
            })
        }
        Some("authorized_user") => Ok(Source::AuthorizedUser {
            client_id: key
                .client_id
                .ok_or("the authorized-user key has no client_id")?,
            client_secret: SecretString::new(
                key.client_secret
                    .ok_or("the authorized-user key has no client_secret")?,
            ),
            refresh_token: SecretString::new(
                key.refresh_token
                    .ok_or("the authorized-user key has no refresh_token")?,
            ),
            token_uri,
        }),
        Some(other) => Err(format!(
            "credentials of type '{other}' are not supported (use a service-account or \
             authorized-user key, or the metadata server)"
        )),
        None => Err("the credentials have no 'type' and no private_key".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_are_recognised() {
        let bad = |text: &str| match parse_key(text) {
            Err(e) => e,
            Ok(_) => panic!("accepted {text}"),
        };
        assert!(bad("not json").contains("not a Google key file"));
        assert!(bad(r#"{"type": "external_account"}"#).contains("not supported"));
        assert!(
            bad(r#"{"type": "service_account", "client_email": "a@b", "private_key": "x"}"#)
                .contains("not an RSA key")
        );
        let user = parse_key(
            r#"{"type": "authorized_user", "client_id": "c", "client_secret": "s", "refresh_token": "r"}"#,
        )
        .unwrap();
        assert!(
            matches!(user, Source::AuthorizedUser { token_uri, .. } if token_uri == GOOGLE_TOKEN_URI)
        );
        let none = |_: &str| None;
        let metadata = TokenSource::new(None, &none).unwrap();
        assert!(
            matches!(&metadata.source, Source::Metadata { url } if url.starts_with("http://metadata.google.internal/"))
        );
        let missing = TokenSource::new(
            Some(&SecretString::new("/nope/key.json".to_string())),
            &none,
        );
        assert!(missing.unwrap_err().contains("/nope/key.json"));
    }
}
