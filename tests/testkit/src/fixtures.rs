//! Small fixtures the black-box tests share: a self-deleting temporary directory, objects
//! put into the S3 emulator, and the environment of a gateway on shared DynamoDB state.

use std::path::PathBuf;

/// A temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new, empty directory under the system temp dir, unique per process and call.
    pub fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!(
            "routeiq-test-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        ));
        std::fs::create_dir_all(&d).expect("temp dir");
        TempDir(d)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The S3 emulator's endpoint (`AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`), as
/// `tests/run.sh` exports it.
pub fn s3_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL_S3")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .expect("no S3 endpoint: run the tests with `bash tests/run.sh`")
}

/// Puts an object into the emulator's S3 (path-style; moto wants a SigV4-shaped header, not
/// a valid signature), creating the bucket first.
pub async fn s3_put(bucket: &str, key: &str, content_type: &str, body: Vec<u8>) {
    let endpoint = s3_endpoint();
    const AUTH: &str = "AWS4-HMAC-SHA256 Credential=testing/20261121/us-east-1/s3/aws4_request, \
                        SignedHeaders=host, Signature=0";
    let c = crate::client();
    let _ = c
        .put(format!("{endpoint}/{bucket}"))
        .header("authorization", AUTH)
        .send()
        .await;
    let resp = c
        .put(format!("{endpoint}/{bucket}/{key}"))
        .header("authorization", AUTH)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("PUT object");
    let status = resp.status();
    assert!(
        status.is_success(),
        "{status}: {}",
        resp.text().await.unwrap_or_default()
    );
}

/// The environment of a gateway keeping its routing state in the emulator's DynamoDB
/// (table `routeiq-e2e-state`, created if missing), under key prefix `prefix`.
pub fn dynamodb_state_env(prefix: &str) -> Vec<(String, String)> {
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL_DYNAMODB").is_some(),
        "no DynamoDB endpoint: run the tests with `bash tests/run.sh`"
    );
    vec![
        ("ROUTEIQ_STATE_TABLE".into(), "routeiq-e2e-state".into()),
        ("ROUTEIQ_STATE_PREFIX".into(), format!("{prefix}#")),
        ("ROUTEIQ_STATE_CREATE_TABLE".into(), "true".into()),
    ]
}

/// The value a LiteLLM config's `os.environ/NAME` gets in the corpus tests
/// (`tests/configs/litellm_corpus/`): hosts are 127.0.0.1 and ports a closed one (a Redis
/// the config names is unreachable, and nothing leaves the machine), URLs `https://`, the
/// rest a named placeholder.
pub fn litellm_placeholder(name: &str) -> String {
    if name.contains("DATABASE") {
        "postgresql://placeholder:placeholder@127.0.0.1:9/litellm".to_string()
    } else if name.contains("PORT") {
        "9".to_string()
    } else if name.ends_with("HOST") {
        "127.0.0.1".to_string()
    } else if ["BASE", "URL", "ENDPOINT"].iter().any(|k| name.contains(k)) {
        "https://placeholder.example.com".to_string()
    } else {
        format!("placeholder-{}", name.to_ascii_lowercase())
    }
}

/// A test-only RSA private key (PEM), generated for RouteIQ's tests and trusted by nothing but
/// the mock's token endpoint.
pub const TEST_SERVICE_ACCOUNT_PEM: &str = include_str!("../fixtures/service_account.pem");

/// A second test-only RSA private key (PEM, PKCS#8): a JWT signer rotated in after
/// [`TEST_SERVICE_ACCOUNT_PEM`].
pub const TEST_JWT_RSA_2_PEM: &str = include_str!("../fixtures/jwt_rsa_2.pem");

/// A test-only EC P-256 private key (PEM, PKCS#8): an ES256 JWT signer.
pub const TEST_JWT_EC_PEM: &str = include_str!("../fixtures/jwt_ec_p256.pem");

/// The public halves of the test keys as JWKs (`n`/`e`, `x`/`y`), made with `openssl` and
/// Python's `cryptography` from the PEM files: `service_account`, `rsa_2`, `ec_p256`.
const TEST_JWKS: &str = include_str!("../fixtures/jwt_public_jwks.json");

/// The public JWK of a test key (`service_account`, `rsa_2` or `ec_p256`) with `kid` (and
/// `use: sig`), for a JWKS document.
///
/// # Panics
/// If `name` is not one of the test keys.
pub fn test_jwk(name: &str, kid: &str) -> serde_json::Value {
    let all: serde_json::Value = serde_json::from_str(TEST_JWKS).expect("fixture JWKS is JSON");
    let mut jwk = all
        .get(name)
        .cloned()
        .unwrap_or_else(|| panic!("no test JWK named {name}"));
    jwk["kid"] = serde_json::Value::String(kid.to_string());
    jwk["use"] = serde_json::Value::String("sig".to_string());
    jwk
}

/// A signed JWT: `claims` under a header of `alg` and `kid`, signed with `key` (a PEM private
/// key for RS*/PS*/ES*, the secret's bytes for HS*).
///
/// # Panics
/// If the key does not fit the algorithm.
pub fn sign_jwt(
    alg: jsonwebtoken::Algorithm,
    kid: Option<&str>,
    key: &[u8],
    claims: &serde_json::Value,
) -> String {
    use jsonwebtoken::{Algorithm as A, EncodingKey, Header};
    let encoding = match alg {
        A::HS256 | A::HS384 | A::HS512 => EncodingKey::from_secret(key),
        A::ES256 | A::ES384 => EncodingKey::from_ec_pem(key).expect("EC PEM"),
        A::EdDSA => EncodingKey::from_ed_pem(key).expect("Ed25519 PEM"),
        _ => EncodingKey::from_rsa_pem(key).expect("RSA PEM"),
    };
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, &encoding).expect("signing a test JWT")
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// A Google service-account key file (JSON) whose key is [`TEST_SERVICE_ACCOUNT_PEM`] and whose
/// `token_uri` is `token_uri` (the mock's `POST /token`).
pub fn test_service_account_json(token_uri: &str) -> String {
    serde_json::json!({
        "type": "service_account",
        "project_id": "routeiq-test",
        "private_key_id": "test-key-1",
        "private_key": TEST_SERVICE_ACCOUNT_PEM,
        "client_email": "gateway@routeiq-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    })
    .to_string()
}
