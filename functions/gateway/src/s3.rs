//! Objects in S3: the gateway's config (`CONFIG_S3_BUCKET` / `CONFIG_S3_KEY`), read at cold
//! start and watched by ETag for hot reload.

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;

/// Why an S3 object could not be read.
#[derive(Debug, thiserror::Error)]
#[error("s3://{bucket}/{key}: {message}")]
pub struct S3Error {
    pub bucket: String,
    pub key: String,
    pub message: String,
}

/// An object's bytes and ETag.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub body: Vec<u8>,
    pub etag: Option<String>,
}

/// One S3 object, with a client from the standard AWS configuration chain (the Lambda role,
/// env, profile; `AWS_ENDPOINT_URL_S3` for emulators, which also switches to path-style
/// addressing) over rustls with ring.
#[derive(Clone)]
pub struct S3Object {
    client: Client,
    pub bucket: String,
    pub key: String,
}

impl S3Object {
    pub async fn new(
        bucket: impl Into<String>,
        key: impl Into<String>,
        env: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> S3Object {
        let emulator = env("AWS_ENDPOINT_URL_S3").is_some() || env("AWS_ENDPOINT_URL").is_some();
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(http)
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(2))
                    .operation_timeout(Duration::from_secs(10))
                    .build(),
            )
            .load()
            .await;
        let config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(emulator)
            .build();
        S3Object {
            client: Client::from_conf(config),
            bucket: bucket.into(),
            key: key.into(),
        }
    }

    fn err(&self, message: impl Into<String>) -> S3Error {
        S3Error {
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            message: message.into(),
        }
    }

    /// The object's body and ETag.
    pub async fn get(&self) -> Result<Fetched, S3Error> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .send()
            .await
            .map_err(|e| {
                self.err(
                    e.as_service_error()
                        .and_then(|s| s.message().map(str::to_string))
                        .unwrap_or_else(|| e.to_string()),
                )
            })?;
        let etag = out.e_tag().map(str::to_string);
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| self.err(format!("reading the body: {e}")))?
            .into_bytes()
            .to_vec();
        Ok(Fetched { body, etag })
    }

    /// The object's current ETag (a `HeadObject`, no body).
    pub async fn etag(&self) -> Result<Option<String>, S3Error> {
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .send()
            .await
            .map_err(|e| {
                self.err(
                    e.as_service_error()
                        .and_then(|s| s.message().map(str::to_string))
                        .unwrap_or_else(|| e.to_string()),
                )
            })?;
        Ok(out.e_tag().map(str::to_string))
    }
}
