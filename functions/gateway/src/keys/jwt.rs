//! [`JwtAuth`]: JWTs as client credentials (`general_settings.enable_jwt_auth`), verified as
//! LiteLLM verifies them, plus ModelMuxer's shared-secret tokens.
//!
//! - Keys: the JWKS at each `JWT_PUBLIC_KEY_URL` entry (comma-separated; an OpenID discovery
//!   URL, `.../.well-known/openid-configuration`, is followed to its `jwks_uri`), searched in
//!   order by the token's `kid`; cached `litellm_jwtauth.public_key_ttl`, fetched again at once
//!   (at most every [`REFETCH_EVERY`]) for a `kid` no cached set holds, and served stale up to
//!   `public_key_stale_ttl` past their TTL while their URL cannot be reached. `JWT_SECRET_KEY`
//!   with `JWT_ALGORITHM` (HS256, HS384, HS512) verifies HMAC tokens.
//! - Algorithms: a JWK verifies only its own family (RSA: RS*/PS*; EC: ES256 or ES384 by curve;
//!   OKP: EdDSA; only its `alg` when it names one); HS* only with the secret; `none` never.
//! - Claims: `exp` required, `nbf` honoured, `aud` (`JWT_AUDIENCE`) and `iss` (`JWT_ISSUER`)
//!   required and compared when set; no leeway (LiteLLM's).
//! - Who ([`JwtIdentity`]): an admin when the `scope` claim holds `admin_jwt_scope`; else the
//!   team at `team_id_jwt_field` (else `team_id_default`) and the user at `user_id_jwt_field`
//!   ([`claim_at`]: dot paths). The control plane turns it into a principal.
//! - Refusals ([`AccessError`]): expired → `expired_key` "Token Expired"; any other failure →
//!   `auth_error` "Authentication Error, Validation fails: <reason>" (never quoting the token);
//!   a key set that cannot be fetched and has no usable copy → 503.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use routeiq::config::{GeneralSettings, JwtAuthSettings};
use serde_json::{Map, Value};

use super::error::AccessError;

/// The shortest wait between two fetches made because a token named a `kid` no cached key set
/// holds (or between fetches of a URL that just failed).
pub const REFETCH_EVERY: Duration = Duration::from_secs(10);
/// How long a key-set request may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest key set or discovery document read.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// The reason of a token whose algorithm is refused (PyJWT's words).
const ALG_NOT_ALLOWED: &str = "The specified alg value is not allowed";

/// Who a verified token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtIdentity {
    /// The `scope` claim holds `admin_jwt_scope`.
    pub admin: bool,
    pub team_id: Option<String>,
    pub user_id: Option<String>,
}

/// Why JWT authentication cannot be set up from the config and environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSetupError {
    /// The config path or environment variable at fault.
    pub path: String,
    pub message: String,
}

fn setup_error(path: &str, message: impl Into<String>) -> JwtSetupError {
    JwtSetupError {
        path: path.to_string(),
        message: message.into(),
    }
}

/// A public key from a key set, with the algorithms it may verify.
struct PublicKey {
    kid: Option<String>,
    key: DecodingKey,
    algorithms: Vec<Algorithm>,
}

/// One fetch of a key set.
struct KeySet {
    keys: Vec<Arc<PublicKey>>,
    fetched: Instant,
}

impl KeySet {
    /// The key for `kid`; a token without one matches only a set of exactly one key
    /// (LiteLLM's rule).
    fn find(&self, kid: Option<&str>) -> Option<Arc<PublicKey>> {
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                .cloned(),
            None if self.keys.len() == 1 => self.keys.first().cloned(),
            None => None,
        }
    }
}

/// A `JWT_PUBLIC_KEY_URL` entry and its cached key set.
struct KeySource {
    url: String,
    cached: RwLock<Option<Arc<KeySet>>>,
    /// One fetch at a time.
    fetching: tokio::sync::Mutex<()>,
    failed_at: Mutex<Option<Instant>>,
}

impl KeySource {
    fn cached(&self) -> Option<Arc<KeySet>> {
        self.cached
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn failed_recently(&self, now: Instant) -> bool {
        self.failed_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|at| now.duration_since(at) < REFETCH_EVERY)
    }

    fn set_failed(&self, at: Option<Instant>) {
        *self.failed_at.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }
}

/// Why a key set could not be fetched.
enum FetchError {
    /// Not reached, or it answered 5xx/429: a cached copy may serve meanwhile.
    Unreachable(String),
    /// It answered something that is not a key set.
    Invalid(String),
}

/// See the module docs.
pub struct JwtAuth {
    settings: JwtAuthSettings,
    audience: Option<String>,
    issuer: Option<String>,
    /// `JWT_SECRET_KEY` and the one HMAC algorithm it verifies.
    secret: Option<(DecodingKey, Algorithm)>,
    sources: Vec<KeySource>,
    client: Option<reqwest::Client>,
    /// The last fetch made for an unknown `kid`.
    last_refetch: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for JwtAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuth")
            .field(
                "key_urls",
                &self.sources.iter().map(|s| &s.url).collect::<Vec<_>>(),
            )
            .field("secret", &self.secret.as_ref().map(|(_, alg)| alg))
            .field("audience", &self.audience)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl JwtAuth {
    /// JWT authentication for `general` and the environment (`JWT_PUBLIC_KEY_URL`,
    /// `JWT_AUDIENCE`, `JWT_ISSUER`, `JWT_SECRET_KEY`, `JWT_ALGORITHM`); `None` when
    /// `enable_jwt_auth` is off. Refused: no master key (the gateway would run open), teams or
    /// users named by tokens without the control plane (their limits could not be applied),
    /// no key source, a bad URL, algorithm or too short a secret.
    pub fn from_config(
        general: &GeneralSettings,
        env: &dyn Fn(&str) -> Option<String>,
        control_plane: bool,
        master_key: bool,
    ) -> Result<Option<Arc<JwtAuth>>, JwtSetupError> {
        let var = |name: &str| {
            env(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let urls = var("JWT_PUBLIC_KEY_URL");
        // The secret as given (trimming would change the key); blank is unset.
        let secret = env("JWT_SECRET_KEY").filter(|v| !v.trim().is_empty());
        if !general.enable_jwt_auth {
            if urls.is_some() || secret.is_some() {
                tracing::warn!(
                    "JWT_PUBLIC_KEY_URL or JWT_SECRET_KEY is set but general_settings.enable_jwt_auth is not true: JWTs are not accepted"
                );
            }
            return Ok(None);
        }
        if !master_key {
            return Err(setup_error(
                "general_settings.enable_jwt_auth",
                "JWT authentication needs a master key (general_settings.master_key or LITELLM_MASTER_KEY): without one the gateway runs open and checks no token",
            ));
        }
        let settings = general.litellm_jwtauth.clone();
        if settings.maps_identities() && !control_plane {
            return Err(setup_error(
                "general_settings.litellm_jwtauth",
                "team_id_jwt_field, team_id_default and user_id_jwt_field name teams and users whose models, budgets and rate limits need virtual keys (a key store: ROUTEIQ_KEYS_BACKEND, general_settings.database_url or DATABASE_URL, ROUTEIQ_KEYS_TABLE): refusing to start rather than ignore them",
            ));
        }
        if urls.is_none() && secret.is_none() {
            return Err(setup_error(
                "JWT_PUBLIC_KEY_URL",
                "enable_jwt_auth needs JWT_PUBLIC_KEY_URL (JWKS or OpenID discovery URLs, comma-separated) or JWT_SECRET_KEY (a shared HMAC secret)",
            ));
        }
        let mut sources = Vec::new();
        for url in urls.iter().flat_map(|u| u.split(',')).map(str::trim) {
            if url.is_empty() {
                continue;
            }
            let parsed = reqwest::Url::parse(url).map_err(|e| {
                setup_error("JWT_PUBLIC_KEY_URL", format!("'{url}' is not a URL: {e}"))
            })?;
            if !matches!(parsed.scheme(), "http" | "https")
                || parsed.host_str().is_none_or(str::is_empty)
            {
                return Err(setup_error(
                    "JWT_PUBLIC_KEY_URL",
                    format!("'{url}' must be an http:// or https:// URL with a host"),
                ));
            }
            if parsed.scheme() == "http" && !is_loopback(&parsed) {
                tracing::warn!(
                    url,
                    "JWT keys fetched over plain HTTP: whoever can alter that traffic can mint accepted tokens; use https://"
                );
            }
            sources.push(KeySource {
                url: url.to_string(),
                cached: RwLock::new(None),
                fetching: tokio::sync::Mutex::new(()),
                failed_at: Mutex::new(None),
            });
        }
        let algorithm = var("JWT_ALGORITHM");
        let secret = match secret {
            Some(s) => {
                let name = algorithm.as_deref().unwrap_or("HS256").to_ascii_uppercase();
                let (alg, min) = match name.as_str() {
                    "HS256" => (Algorithm::HS256, 32),
                    "HS384" => (Algorithm::HS384, 48),
                    "HS512" => (Algorithm::HS512, 64),
                    _ => {
                        return Err(setup_error(
                            "JWT_ALGORITHM",
                            format!(
                                "must be HS256, HS384 or HS512 (JWT_SECRET_KEY is an HMAC secret), got '{name}'"
                            ),
                        ));
                    }
                };
                if s.len() < min {
                    return Err(setup_error(
                        "JWT_SECRET_KEY",
                        format!(
                            "is {} bytes; {name} needs at least {min} (RFC 7518 §3.2: a key as long as the hash): generate one with `openssl rand -hex {min}`",
                            s.len()
                        ),
                    ));
                }
                Some((DecodingKey::from_secret(s.as_bytes()), alg))
            }
            None => {
                if algorithm.is_some() {
                    tracing::warn!("JWT_ALGORITHM is set but JWT_SECRET_KEY is not: ignored");
                }
                None
            }
        };
        let audience = var("JWT_AUDIENCE");
        let issuer = var("JWT_ISSUER");
        if audience.is_none() && issuer.is_none() {
            tracing::warn!(
                "JWT_AUDIENCE and JWT_ISSUER are unset: any unexpired token the configured keys signed is accepted, whatever application it was issued for"
            );
        }
        let client = if sources.is_empty() {
            None
        } else {
            let tls = crate::upstream::client::tls_config().map_err(|e| {
                setup_error(
                    "JWT_PUBLIC_KEY_URL",
                    format!("cannot set up TLS for the key-set client: {e}"),
                )
            })?;
            Some(
                reqwest::Client::builder()
                    .tls_backend_preconfigured(tls)
                    .timeout(FETCH_TIMEOUT)
                    .build()
                    .map_err(|e| {
                        setup_error(
                            "JWT_PUBLIC_KEY_URL",
                            format!("cannot build the key-set client: {e}"),
                        )
                    })?,
            )
        };
        tracing::info!(
            key_urls = sources.len(),
            shared_secret = secret.is_some(),
            audience = audience.is_some(),
            issuer = issuer.is_some(),
            "JWT authentication on"
        );
        Ok(Some(Arc::new(JwtAuth {
            settings,
            audience,
            issuer,
            secret,
            sources,
            client,
            last_refetch: Mutex::new(None),
        })))
    }

    /// The `litellm_jwtauth` settings.
    pub fn settings(&self) -> &JwtAuthSettings {
        &self.settings
    }

    /// Fetches every key set in the background (start-up and reloads), so the first request
    /// does not wait and an unreachable URL shows in the log at once.
    pub fn prefetch(self: &Arc<Self>) {
        if self.sources.is_empty() {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let me = self.clone();
        handle.spawn(async move {
            for source in &me.sources {
                if let Ok(set) = me.key_set(source, false).await {
                    tracing::info!(url = %source.url, keys = set.keys.len(), "JWT key set fetched");
                }
            }
        });
    }

    /// Verifies `token` (see the module docs) and says who it names.
    pub async fn verify(&self, token: &str) -> Result<JwtIdentity, AccessError> {
        let claims = self.verified_claims(token).await?;
        self.identity(&claims)
    }

    async fn verified_claims(&self, token: &str) -> Result<Map<String, Value>, AccessError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| {
            // `alg: none` (or any other algorithm jsonwebtoken does not know) fails here.
            if header_alg(token).is_some_and(|a| a.parse::<Algorithm>().is_err())
                && is_json_error(&e)
            {
                validation_fails(ALG_NOT_ALLOWED)
            } else {
                rejection(&e)
            }
        })?;
        let alg = header.alg;
        let key = match alg {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => match &self.secret {
                Some((key, allowed)) if *allowed == alg => key.clone(),
                _ => return Err(validation_fails(ALG_NOT_ALLOWED)),
            },
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512
            | Algorithm::ES256
            | Algorithm::ES384
            | Algorithm::EdDSA => {
                if self.sources.is_empty() {
                    return Err(validation_fails(ALG_NOT_ALLOWED));
                }
                let public = self.public_key(header.kid.as_deref()).await?;
                if !public.algorithms.contains(&alg) {
                    return Err(validation_fails(ALG_NOT_ALLOWED));
                }
                public.key.clone()
            }
        };
        jsonwebtoken::decode::<Map<String, Value>>(token, &key, &self.validation(alg))
            .map(|data| data.claims)
            .map_err(|e| rejection(&e))
    }

    /// What the claims must satisfy for `alg`.
    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = 0;
        v.validate_exp = true;
        v.validate_nbf = true;
        let mut required: HashSet<String> = HashSet::from(["exp".to_string()]);
        match &self.audience {
            Some(aud) => {
                v.set_audience(&[aud]);
                required.insert("aud".into());
            }
            None => v.validate_aud = false,
        }
        if let Some(iss) = &self.issuer {
            v.set_issuer(&[iss]);
            required.insert("iss".into());
        }
        v.required_spec_claims = required;
        v
    }

    /// Who verified claims name (see the module docs).
    pub fn identity(&self, claims: &Map<String, Value>) -> Result<JwtIdentity, AccessError> {
        let s = &self.settings;
        if scopes(claims).any(|scope| scope == s.admin_jwt_scope) {
            return Ok(JwtIdentity {
                admin: true,
                team_id: None,
                user_id: None,
            });
        }
        let not_a_string =
            |path: &str| validation_fails(&format!("the claim '{path}' is not a string"));
        let team_id = match &s.team_id_jwt_field {
            Some(path) => match claim_at(claims, path) {
                Some(v) => Some(claim_string(v).ok_or_else(|| not_a_string(path))?),
                None => None,
            }
            .filter(|t| !t.is_empty())
            .or_else(|| s.team_id_default.clone()),
            None => s.team_id_default.clone(),
        };
        if team_id.is_none()
            && let Some(path) = &s.team_id_jwt_field
        {
            return Err(AccessError::InvalidToken(format!(
                "No team id found in token. Checked team_id field '{path}'"
            )));
        }
        let user_id = match &s.user_id_jwt_field {
            Some(path) => match claim_at(claims, path) {
                Some(v) => Some(claim_string(v).ok_or_else(|| not_a_string(path))?),
                None => None,
            }
            .filter(|u| !u.is_empty()),
            None => None,
        };
        Ok(JwtIdentity {
            admin: false,
            team_id,
            user_id,
        })
    }

    /// The key that verifies a token with `kid`: searched in each source's key set in order;
    /// an unknown `kid` fetches every set again (at most every [`REFETCH_EVERY`]).
    async fn public_key(&self, kid: Option<&str>) -> Result<Arc<PublicKey>, AccessError> {
        for source in &self.sources {
            if let Some(k) = self.key_set(source, false).await?.find(kid) {
                return Ok(k);
            }
        }
        if self.may_refetch() {
            for source in &self.sources {
                if let Ok(set) = self.key_set(source, true).await
                    && let Some(k) = set.find(kid)
                {
                    return Ok(k);
                }
            }
        }
        Err(validation_fails(match kid {
            Some(_) => "No matching public key found for the token's kid",
            None => {
                "No matching public key found: the token has no kid and no key set holds exactly one key"
            }
        }))
    }

    /// Whether an unknown `kid` may fetch the key sets now (and, if so, notes that it did).
    fn may_refetch(&self) -> bool {
        let mut last = self.last_refetch.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < REFETCH_EVERY) {
            return false;
        }
        *last = Some(now);
        true
    }

    /// `source`'s key set: the cached one while fresh (unless `force`), else fetched; a failed
    /// fetch serves the cached one up to `public_key_stale_ttl` past its TTL.
    async fn key_set(&self, source: &KeySource, force: bool) -> Result<Arc<KeySet>, AccessError> {
        let asked = Instant::now();
        let ttl = self.settings.public_key_ttl;
        let fresh = |set: &KeySet| asked.duration_since(set.fetched) < ttl;
        if !force
            && let Some(set) = source.cached()
            && fresh(&set)
        {
            return Ok(set);
        }
        let stale_for = ttl + self.settings.public_key_stale_ttl;
        let _one_at_a_time = match source.fetching.try_lock() {
            Ok(guard) => guard,
            Err(_) => match source.cached() {
                // Another request is fetching: the last set serves meanwhile (within the
                // stale window), rather than waiting on a slow identity provider.
                Some(set) if !force && asked.duration_since(set.fetched) < stale_for => {
                    return Ok(set);
                }
                _ => source.fetching.lock().await,
            },
        };
        let cached = source.cached();
        if let Some(set) = &cached
            && (set.fetched >= asked || (!force && fresh(set)))
        {
            // Fetched while this request waited.
            return Ok(set.clone());
        }
        let failure = if source.failed_recently(Instant::now()) {
            FetchError::Unreachable("it failed less than 10 s ago".into())
        } else {
            match self.fetch(&source.url).await {
                Ok(keys) => {
                    let set = Arc::new(KeySet {
                        keys,
                        fetched: Instant::now(),
                    });
                    *source.cached.write().unwrap_or_else(|p| p.into_inner()) = Some(set.clone());
                    source.set_failed(None);
                    return Ok(set);
                }
                Err(e) => {
                    source.set_failed(Some(Instant::now()));
                    e
                }
            }
        };
        let (reason, unreachable) = match &failure {
            FetchError::Unreachable(m) => (m.as_str(), true),
            FetchError::Invalid(m) => (m.as_str(), false),
        };
        if let Some(set) = cached
            && Instant::now().duration_since(set.fetched) < stale_for
        {
            tracing::warn!(url = %source.url, error = reason, "JWT key set not fetched: using the last one fetched");
            return Ok(set);
        }
        tracing::warn!(url = %source.url, error = reason, "JWT key set not fetched");
        Err(if unreachable {
            AccessError::KeySetUnavailable
        } else {
            validation_fails("the identity provider's key set could not be read")
        })
    }

    /// Fetches a key set (through its discovery document when the URL is one).
    async fn fetch(&self, url: &str) -> Result<Vec<Arc<PublicKey>>, FetchError> {
        let jwks_url = if url.contains(".well-known/openid-configuration") {
            let doc = self.get_json(url).await?;
            doc.get("jwks_uri")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| {
                    FetchError::Invalid(format!(
                        "the OpenID discovery document at {url} has no 'jwks_uri'"
                    ))
                })?
        } else {
            url.to_string()
        };
        let doc = self.get_json(&jwks_url).await?;
        Ok(parse_key_set(&doc))
    }

    async fn get_json(&self, url: &str) -> Result<Value, FetchError> {
        let Some(client) = &self.client else {
            return Err(FetchError::Unreachable("no HTTP client".into()));
        };
        let unreachable = |e: reqwest::Error| FetchError::Unreachable(e.to_string());
        let mut resp = client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(unreachable)?;
        let status = resp.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(FetchError::Unreachable(format!("{url} answered {status}")));
        }
        if !status.is_success() {
            return Err(FetchError::Invalid(format!("{url} answered {status}")));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(FetchError::Invalid(format!(
                    "{url} answered more than {MAX_DOCUMENT_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body)
            .map_err(|e| FetchError::Invalid(format!("{url} did not answer JSON: {e}")))
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    url.host_str().is_some_and(|h| {
        h.eq_ignore_ascii_case("localhost")
            || h.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    })
}

/// The usable signing keys of a JWKS document (`{"keys": [...]}`, or LiteLLM's other forms:
/// a list of keys, one key). Keys for encryption, symmetric keys and key types or curves
/// nothing here verifies are skipped.
fn parse_key_set(doc: &Value) -> Vec<Arc<PublicKey>> {
    let items: Vec<&Value> = match doc.get("keys") {
        Some(Value::Array(keys)) => keys.iter().collect(),
        _ => match doc {
            Value::Array(keys) => keys.iter().collect(),
            Value::Object(_) => vec![doc],
            _ => Vec::new(),
        },
    };
    items
        .into_iter()
        .filter_map(|v| {
            let jwk: Jwk = match serde_json::from_value(v.clone()) {
                Ok(j) => j,
                Err(e) => {
                    tracing::debug!(error = %e, "JWK skipped: not a key jsonwebtoken reads");
                    return None;
                }
            };
            let algorithms = algorithms_of(&jwk)?;
            let key = DecodingKey::from_jwk(&jwk).ok()?;
            Some(Arc::new(PublicKey {
                kid: jwk.common.key_id.clone(),
                key,
                algorithms,
            }))
        })
        .collect()
}

/// The algorithms a JWK may verify: its family's, or only its `alg` when it names one of
/// them; `None` for keys that verify nothing here (encryption and symmetric keys, other
/// curves).
fn algorithms_of(jwk: &Jwk) -> Option<Vec<Algorithm>> {
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return None;
    }
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => vec![
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            EllipticCurve::P521 | EllipticCurve::Ed25519 => return None,
        },
        AlgorithmParameters::OctetKeyPair(p) => match p.curve {
            EllipticCurve::Ed25519 => vec![Algorithm::EdDSA],
            EllipticCurve::P256 | EllipticCurve::P384 | EllipticCurve::P521 => return None,
        },
        // A symmetric key in a public key set would let anyone who reads it sign tokens.
        AlgorithmParameters::OctetKey(_) => return None,
    };
    let Some(named) = &jwk.common.key_algorithm else {
        return Some(family);
    };
    let named = match named {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        KeyAlgorithm::HS256
        | KeyAlgorithm::HS384
        | KeyAlgorithm::HS512
        | KeyAlgorithm::RSA1_5
        | KeyAlgorithm::RSA_OAEP
        | KeyAlgorithm::RSA_OAEP_256 => return None,
    };
    family.contains(&named).then(|| vec![named])
}

/// The `alg` of a token's header as written, if the header is JSON.
fn header_alg(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.get("alg").and_then(Value::as_str).map(str::to_string)
}

fn is_json_error(e: &jsonwebtoken::errors::Error) -> bool {
    matches!(e.kind(), jsonwebtoken::errors::ErrorKind::Json(_))
}

fn validation_fails(reason: &str) -> AccessError {
    AccessError::InvalidToken(format!("Validation fails: {reason}"))
}

/// A verification failure as LiteLLM words it (PyJWT's reasons), never quoting the token.
fn rejection(e: &jsonwebtoken::errors::Error) -> AccessError {
    use jsonwebtoken::errors::ErrorKind as K;
    let reason = match e.kind() {
        K::ExpiredSignature => return AccessError::TokenExpired,
        K::InvalidSignature => "Signature verification failed".to_string(),
        K::InvalidAudience => "Audience doesn't match".to_string(),
        K::InvalidIssuer => "Invalid issuer".to_string(),
        K::InvalidSubject => "Invalid subject".to_string(),
        K::ImmatureSignature => "The token is not yet valid (nbf)".to_string(),
        K::MissingRequiredClaim(c) => format!("Token is missing the \"{c}\" claim"),
        K::InvalidAlgorithm | K::InvalidAlgorithmName | K::MissingAlgorithm => {
            ALG_NOT_ALLOWED.to_string()
        }
        K::InvalidToken | K::Base64(_) | K::Json(_) | K::Utf8(_) => {
            "Invalid token: not a well-formed JWT".to_string()
        }
        _ => "Invalid token".to_string(),
    };
    validation_fails(&reason)
}

/// Whether `token` is handled as a JWT: three dot-separated base64url segments (the
/// signature may be empty, so an unsigned token is refused as a JWT). Anything else is a
/// virtual key.
pub fn looks_like_jwt(token: &str) -> bool {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let b64url = |s: &str| {
        s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    };
    !header.is_empty()
        && !payload.is_empty()
        && b64url(header)
        && b64url(payload)
        && b64url(signature)
}

/// The scopes in the `scope` claim: a space-separated string or a list.
fn scopes(claims: &Map<String, Value>) -> impl Iterator<Item = &str> {
    let (text, list): (Option<&str>, &[Value]) = match claims.get("scope") {
        Some(Value::String(s)) => (Some(s), &[]),
        Some(Value::Array(items)) => (None, items),
        _ => (None, &[]),
    };
    text.into_iter()
        .flat_map(str::split_whitespace)
        .chain(list.iter().filter_map(Value::as_str))
}

/// The claim at a dot path (`tenant.team`; `\.` is a literal dot: `kubernetes\.io.namespace`).
pub fn claim_at<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut segments = Vec::new();
    let mut current = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'.') => {
                current.push('.');
                chars.next();
            }
            '.' => segments.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    segments.push(current);
    let (first, rest) = segments.split_first()?;
    let mut value = claims.get(first.as_str())?;
    for segment in rest {
        value = value.as_object()?.get(segment.as_str())?;
    }
    Some(value)
}

/// A claim as an id: a string, or a number as written.
fn claim_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Null | Value::Bool(_) | Value::Array(_) | Value::Object(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn auth(settings: JwtAuthSettings) -> JwtAuth {
        JwtAuth {
            settings,
            audience: None,
            issuer: None,
            secret: None,
            sources: Vec::new(),
            client: None,
            last_refetch: Mutex::new(None),
        }
    }

    #[test]
    fn claim_paths() {
        let c = claims(json!({
            "sub": "u1",
            "tenant": {"team": {"id": "t1"}, "n": 7},
            "kubernetes.io": {"namespace": "prod"},
            "a": "not an object"
        }));
        assert_eq!(claim_at(&c, "sub"), Some(&json!("u1")));
        assert_eq!(claim_at(&c, "tenant.team.id"), Some(&json!("t1")));
        assert_eq!(claim_at(&c, "tenant.n"), Some(&json!(7)));
        assert_eq!(
            claim_at(&c, r"kubernetes\.io.namespace"),
            Some(&json!("prod"))
        );
        assert_eq!(claim_at(&c, "kubernetes.io.namespace"), None);
        assert_eq!(claim_at(&c, "tenant.missing"), None);
        assert_eq!(claim_at(&c, "a.b"), None);
        assert_eq!(claim_at(&c, ""), None);
        assert_eq!(claim_string(&json!(7)), Some("7".into()));
        assert_eq!(claim_string(&json!(["x"])), None);
    }

    #[test]
    fn identities_from_claims() {
        let a = auth(JwtAuthSettings {
            team_id_jwt_field: Some("org.team".into()),
            user_id_jwt_field: Some("sub".into()),
            ..JwtAuthSettings::default()
        });
        let id = a
            .identity(&claims(json!({"sub": "u1", "org": {"team": "t1"}})))
            .unwrap();
        assert_eq!(
            id,
            JwtIdentity {
                admin: false,
                team_id: Some("t1".into()),
                user_id: Some("u1".into())
            }
        );
        // No team claim and no default: refused, naming the field.
        let e = a.identity(&claims(json!({"sub": "u1"}))).unwrap_err();
        assert!(
            e.to_string()
                .contains("No team id found in token. Checked team_id field 'org.team'")
        );
        // A team claim that is not a string.
        let e = a
            .identity(&claims(json!({"org": {"team": ["t1"]}})))
            .unwrap_err();
        assert!(e.to_string().contains("is not a string"), "{e}");
        // The default team fills in.
        let d = auth(JwtAuthSettings {
            team_id_jwt_field: Some("team".into()),
            team_id_default: Some("dflt".into()),
            ..JwtAuthSettings::default()
        });
        assert_eq!(
            d.identity(&claims(json!({}))).unwrap().team_id.as_deref(),
            Some("dflt")
        );
        // Admin scope: a string or a list; admins name no team.
        for scope in [
            json!("openid litellm_proxy_admin"),
            json!(["x", "litellm_proxy_admin"]),
        ] {
            let id = a
                .identity(&claims(json!({"scope": scope, "org": {"team": "t1"}})))
                .unwrap();
            assert!(id.admin);
            assert_eq!(id.team_id, None);
        }
        let id = a
            .identity(&claims(
                json!({"scope": "litellm_proxy_admins", "org": {"team": "t1"}}),
            ))
            .unwrap();
        assert!(!id.admin);
        // Nothing configured: an anonymous identity.
        let plain = auth(JwtAuthSettings::default());
        assert_eq!(
            plain.identity(&claims(json!({"sub": "x"}))).unwrap(),
            JwtIdentity {
                admin: false,
                team_id: None,
                user_id: None
            }
        );
    }

    #[test]
    fn what_counts_as_a_jwt() {
        assert!(looks_like_jwt("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"));
        assert!(looks_like_jwt("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."));
        for not in [
            "sk-1234",
            "a.b",
            "a.b.c.d",
            ".b.c",
            "a..c",
            "a.b.c=",
            "a+b.c.d",
            "sk-abc.def.ghi jkl",
        ] {
            assert!(!looks_like_jwt(not), "{not}");
        }
    }

    fn jwk(v: Value) -> Jwk {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn algorithms_follow_the_key_family() {
        let rsa = json!({"kty": "RSA", "n": "sXch", "e": "AQAB"});
        let all_rsa = algorithms_of(&jwk(rsa.clone())).unwrap();
        assert!(all_rsa.contains(&Algorithm::RS256) && all_rsa.contains(&Algorithm::PS512));
        assert!(!all_rsa.contains(&Algorithm::HS256));
        assert!(!all_rsa.contains(&Algorithm::ES256));
        let mut rs384 = rsa.clone();
        rs384["alg"] = json!("RS384");
        assert_eq!(algorithms_of(&jwk(rs384)), Some(vec![Algorithm::RS384]));
        // An RSA key claiming an EC or HMAC algorithm verifies nothing.
        let mut odd = rsa.clone();
        odd["alg"] = json!("ES256");
        assert_eq!(algorithms_of(&jwk(odd)), None);
        let mut hs = rsa.clone();
        hs["alg"] = json!("HS256");
        assert_eq!(algorithms_of(&jwk(hs)), None);
        let mut enc = rsa;
        enc["use"] = json!("enc");
        assert_eq!(algorithms_of(&jwk(enc)), None);
        let ec = json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"});
        assert_eq!(algorithms_of(&jwk(ec)), Some(vec![Algorithm::ES256]));
        let ec384 = json!({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"});
        assert_eq!(algorithms_of(&jwk(ec384)), Some(vec![Algorithm::ES384]));
        let ed = json!({"kty": "OKP", "crv": "Ed25519", "x": "AA"});
        assert_eq!(algorithms_of(&jwk(ed)), Some(vec![Algorithm::EdDSA]));
        // A symmetric key published in a key set is never used.
        let oct = json!({"kty": "oct", "k": "c2VjcmV0"});
        assert_eq!(algorithms_of(&jwk(oct)), None);
    }

    #[test]
    fn key_sets_skip_what_they_cannot_use() {
        let doc = json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "sym"},
            {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA", "kid": "p521"},
            {"kty": "XYZ", "kid": "odd"},
            {"kty": "RSA", "n": "sXch", "e": "AQAB", "kid": "r1"},
            {"kty": "RSA", "n": "sXch", "e": "AQAB", "kid": "r2", "use": "enc"}
        ]});
        let keys = parse_key_set(&doc);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("r1"));
        let set = KeySet {
            keys,
            fetched: Instant::now(),
        };
        assert!(set.find(Some("r1")).is_some());
        assert!(set.find(Some("r2")).is_none());
        // No kid: only a set of exactly one key matches.
        assert!(set.find(None).is_some());
        // LiteLLM's other shapes: a bare list, one key.
        assert_eq!(
            parse_key_set(&json!([{"kty": "RSA", "n": "sXch", "e": "AQAB"}])).len(),
            1
        );
        assert_eq!(
            parse_key_set(&json!({"kty": "RSA", "n": "sXch", "e": "AQAB"})).len(),
            1
        );
    }

    #[test]
    fn header_alg_reads_unknown_algorithms() {
        // {"alg":"none"}
        assert_eq!(
            header_alg("eyJhbGciOiJub25lIn0.e30.").as_deref(),
            Some("none")
        );
        assert_eq!(header_alg("!!!.e30."), None);
    }

    fn general(enable: bool, settings: JwtAuthSettings) -> GeneralSettings {
        GeneralSettings {
            enable_jwt_auth: enable,
            litellm_jwtauth: settings,
            ..GeneralSettings::default()
        }
    }

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn setup_refuses_what_it_could_not_enforce() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let secret = "0123456789abcdef0123456789abcdef";
        let ok_env: &'static [(&str, &str)] =
            &[("JWT_SECRET_KEY", "0123456789abcdef0123456789abcdef")];
        let g = general(true, JwtAuthSettings::default());
        // Off: nothing.
        assert!(
            JwtAuth::from_config(
                &general(false, JwtAuthSettings::default()),
                &env_of(ok_env),
                false,
                true
            )
            .unwrap()
            .is_none()
        );
        // On with a secret.
        let a = JwtAuth::from_config(&g, &env_of(ok_env), false, true)
            .unwrap()
            .unwrap();
        assert_eq!(
            a.secret.as_ref().map(|(_, alg)| *alg),
            Some(Algorithm::HS256)
        );
        assert!(!format!("{a:?}").contains(secret));
        // No master key: the gateway would run open.
        let e = JwtAuth::from_config(&g, &env_of(ok_env), false, false).unwrap_err();
        assert_eq!(e.path, "general_settings.enable_jwt_auth");
        // Teams or users without the control plane.
        let mapped = general(
            true,
            JwtAuthSettings {
                user_id_jwt_field: Some("sub".into()),
                ..JwtAuthSettings::default()
            },
        );
        let e = JwtAuth::from_config(&mapped, &env_of(ok_env), false, true).unwrap_err();
        assert_eq!(e.path, "general_settings.litellm_jwtauth");
        assert!(JwtAuth::from_config(&mapped, &env_of(ok_env), true, true).is_ok());
        // No key source.
        let e = JwtAuth::from_config(&g, &env_of(&[]), false, true).unwrap_err();
        assert_eq!(e.path, "JWT_PUBLIC_KEY_URL");
        // Bad URLs, algorithms, short secrets.
        let e = JwtAuth::from_config(
            &g,
            &env_of(&[("JWT_PUBLIC_KEY_URL", "ftp://x/keys")]),
            false,
            true,
        )
        .unwrap_err();
        assert!(e.message.contains("http"), "{e:?}");
        let e = JwtAuth::from_config(
            &g,
            &env_of(&[
                ("JWT_SECRET_KEY", "0123456789abcdef0123456789abcdef"),
                ("JWT_ALGORITHM", "RS256"),
            ]),
            false,
            true,
        )
        .unwrap_err();
        assert_eq!(e.path, "JWT_ALGORITHM");
        let e = JwtAuth::from_config(&g, &env_of(&[("JWT_SECRET_KEY", "short")]), false, true)
            .unwrap_err();
        assert_eq!(e.path, "JWT_SECRET_KEY");
        assert!(!e.message.contains("short"));
        let e = JwtAuth::from_config(
            &g,
            &env_of(&[
                ("JWT_SECRET_KEY", "0123456789abcdef0123456789abcdef"),
                ("JWT_ALGORITHM", "HS512"),
            ]),
            false,
            true,
        )
        .unwrap_err();
        assert_eq!(e.path, "JWT_SECRET_KEY");
        // Several URLs, a discovery URL among them.
        let a = JwtAuth::from_config(
            &g,
            &env_of(&[(
                "JWT_PUBLIC_KEY_URL",
                "https://idp.example/.well-known/openid-configuration, http://127.0.0.1:1/jwks.json",
            )]),
            false,
            true,
        )
        .unwrap()
        .unwrap();
        assert_eq!(a.sources.len(), 2);
        assert!(a.client.is_some());
    }

    fn hs_auth(alg: Algorithm, secret: &str) -> JwtAuth {
        JwtAuth {
            secret: Some((DecodingKey::from_secret(secret.as_bytes()), alg)),
            ..auth(JwtAuthSettings::default())
        }
    }

    fn sign(alg: Algorithm, key: &[u8], claims: Value) -> String {
        let header = jsonwebtoken::Header::new(alg);
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(key),
        )
        .unwrap()
    }

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    #[tokio::test]
    async fn hmac_tokens_and_algorithm_selection() {
        let secret = "0123456789abcdef0123456789abcdef";
        let a = hs_auth(Algorithm::HS256, secret);
        let good = sign(
            Algorithm::HS256,
            secret.as_bytes(),
            json!({"exp": now() + 60}),
        );
        assert!(a.verify(&good).await.is_ok());
        // Another secret.
        let bad = sign(
            Algorithm::HS256,
            b"another-secret-another-secret-xx",
            json!({"exp": now() + 60}),
        );
        let e = a.verify(&bad).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "Authentication Error, Validation fails: Signature verification failed"
        );
        // Another HMAC algorithm than JWT_ALGORITHM.
        let hs512 = sign(
            Algorithm::HS512,
            secret.as_bytes(),
            json!({"exp": now() + 60}),
        );
        let e = a.verify(&hs512).await.unwrap_err();
        assert!(e.to_string().contains(ALG_NOT_ALLOWED), "{e}");
        // An asymmetric algorithm without key URLs.
        let rs = format!(
            "{}.{}.c2ln",
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(br#"{"alg":"RS256","typ":"JWT"}"#),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"exp":9999999999}"#)
        );
        let e = a.verify(&rs).await.unwrap_err();
        assert!(e.to_string().contains(ALG_NOT_ALLOWED), "{e}");
        // alg none.
        let none = format!(
            "{}.{}.",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"exp":9999999999}"#)
        );
        let e = a.verify(&none).await.unwrap_err();
        assert!(e.to_string().contains(ALG_NOT_ALLOWED), "{e}");
        // Expired, not yet valid, no exp.
        let expired = sign(
            Algorithm::HS256,
            secret.as_bytes(),
            json!({"exp": now() - 5}),
        );
        let e = a.verify(&expired).await.unwrap_err();
        assert!(matches!(e, AccessError::TokenExpired));
        assert_eq!(e.error_type(), "expired_key");
        assert_eq!(e.to_string(), "Token Expired");
        let early = sign(
            Algorithm::HS256,
            secret.as_bytes(),
            json!({"exp": now() + 60, "nbf": now() + 30}),
        );
        assert!(
            a.verify(&early)
                .await
                .unwrap_err()
                .to_string()
                .contains("not yet valid")
        );
        let no_exp = sign(Algorithm::HS256, secret.as_bytes(), json!({"sub": "x"}));
        let e = a.verify(&no_exp).await.unwrap_err();
        assert!(e.to_string().contains("missing the \"exp\" claim"), "{e}");
        // Messages never quote the token.
        assert!(!e.to_string().contains(&no_exp[..20]));
    }

    #[tokio::test]
    async fn audience_and_issuer_are_required_when_set() {
        let secret = "0123456789abcdef0123456789abcdef";
        let a = JwtAuth {
            audience: Some("routeiq".into()),
            issuer: Some("https://idp".into()),
            ..hs_auth(Algorithm::HS256, secret)
        };
        let t = |c: Value| sign(Algorithm::HS256, secret.as_bytes(), c);
        let exp = now() + 60;
        assert!(
            a.verify(&t(
                json!({"exp": exp, "aud": "routeiq", "iss": "https://idp"})
            ))
            .await
            .is_ok()
        );
        assert!(
            a.verify(&t(
                json!({"exp": exp, "aud": ["x", "routeiq"], "iss": "https://idp"})
            ))
            .await
            .is_ok()
        );
        for (claims, reason) in [
            (
                json!({"exp": exp, "aud": "other", "iss": "https://idp"}),
                "Audience doesn't match",
            ),
            (
                json!({"exp": exp, "iss": "https://idp"}),
                "missing the \"aud\" claim",
            ),
            (
                json!({"exp": exp, "aud": "routeiq", "iss": "https://other"}),
                "Invalid issuer",
            ),
            (
                json!({"exp": exp, "aud": "routeiq"}),
                "missing the \"iss\" claim",
            ),
        ] {
            let e = a.verify(&t(claims.clone())).await.unwrap_err();
            assert!(e.to_string().contains(reason), "{claims}: {e}");
            assert_eq!(e.error_type(), "auth_error");
        }
    }
}
