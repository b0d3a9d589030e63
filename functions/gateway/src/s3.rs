//! Objects in S3: the gateway's config (`CONFIG_S3_BUCKET` / `CONFIG_S3_KEY`), read at cold
//! start and watched by ETag for hot reload; and router model files
//! (`routing_strategy_args.model_path: s3://bucket/key`) through [`UriModelStore`].

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;

/// The HTTP client the gateway's AWS SDK clients use: rustls with ring (the SDK's default
/// client would pull a second TLS stack).
pub fn aws_http_client() -> aws_sdk_s3::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

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
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(aws_http_client())
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

    fn sdk_err<E: ProvideErrorMetadata + std::fmt::Display>(&self, e: E) -> S3Error {
        self.err(
            e.message()
                .map(str::to_string)
                .unwrap_or_else(|| e.to_string()),
        )
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
            .map_err(|e| self.sdk_err(e.into_service_error()))?;
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
            .map_err(|e| self.sdk_err(e.into_service_error()))?;
        Ok(out.e_tag().map(str::to_string))
    }
}

/// Router and embedding model files in S3 (`s3://bucket/key`), behind the synchronous
/// [`routeiq::ml::ModelStore`] interface: models load at start-up, on reload and in the
/// hot-reload poller, so each call runs the SDK on the runtime `handle` with `block_on`
/// (inside `block_in_place` when called on a runtime worker thread). Objects are downloaded
/// once into `cache_dir` (Lambda: `/tmp`), under their ETag, and the cached copy is reused
/// while the ETag holds; [`ModelStore::version`] is the ETag, which hot reload polls. What
/// was downloaded is verified against the manifest by the caller (the router slot), so a
/// tampered object never serves.
///
/// Needs the multi-threaded runtime (the gateway's) when called from async code.
pub struct S3ModelStore {
    client: Client,
    handle: tokio::runtime::Handle,
    cache_dir: std::path::PathBuf,
}

/// Splits `s3://bucket/key`.
pub fn parse_s3_uri(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/')?;
    (!bucket.is_empty() && !key.is_empty()).then_some((bucket, key))
}

impl S3ModelStore {
    /// A store whose client comes from the standard AWS chain (see [`S3Object::new`]).
    pub async fn new(
        cache_dir: impl Into<std::path::PathBuf>,
        env: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> S3ModelStore {
        let probe = S3Object::new("", "", env).await;
        S3ModelStore {
            client: probe.client,
            handle: tokio::runtime::Handle::current(),
            cache_dir: cache_dir.into(),
        }
    }

    fn object(&self, uri: &str) -> Result<S3Object, routeiq::ml::store::StoreError> {
        let (bucket, key) =
            parse_s3_uri(uri).ok_or_else(|| routeiq::ml::store::StoreError::Io {
                uri: uri.to_string(),
                message: "not an s3://bucket/key URI".into(),
            })?;
        Ok(S3Object {
            client: self.client.clone(),
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }
}

/// Runs `fut` to completion from synchronous code: on a runtime worker thread inside
/// `block_in_place` (so the worker's other tasks move elsewhere), on any other thread (a
/// blocking-pool thread, a plain thread) directly on `handle`.
fn block_on<F: std::future::Future>(handle: &tokio::runtime::Handle, fut: F) -> F::Output {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| handle.block_on(fut))
        }
        _ => handle.block_on(fut),
    }
}

fn store_error(uri: &str, e: impl std::fmt::Display) -> routeiq::ml::store::StoreError {
    routeiq::ml::store::StoreError::Io {
        uri: uri.to_string(),
        message: e.to_string(),
    }
}

impl routeiq::ml::ModelStore for S3ModelStore {
    fn fetch(
        &self,
        uri: &str,
    ) -> Result<routeiq::ml::store::LocalFile, routeiq::ml::store::StoreError> {
        let object = self.object(uri)?;
        let etag = block_on(&self.handle, object.etag())
            .map_err(|e| store_error(uri, e))?
            .unwrap_or_default();
        let tag: String = etag
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        let name = object.key.rsplit('/').next().unwrap_or("object");
        let dir = self
            .cache_dir
            .join(&object.bucket)
            .join(object.key.replace('/', "__"));
        let path = dir.join(format!("{tag}-{name}"));
        if !path.exists() {
            let fetched = block_on(&self.handle, object.get()).map_err(|e| store_error(uri, e))?;
            std::fs::create_dir_all(&dir).map_err(|e| store_error(uri, e))?;
            // Write beside, then rename: a reader never sees half a file.
            let tmp = dir.join(format!(".{tag}-{name}.{}", std::process::id()));
            std::fs::write(&tmp, &fetched.body).map_err(|e| store_error(uri, e))?;
            std::fs::rename(&tmp, &path).map_err(|e| store_error(uri, e))?;
        }
        Ok(routeiq::ml::store::LocalFile {
            path,
            version: etag,
        })
    }

    fn version(&self, uri: &str) -> Result<String, routeiq::ml::store::StoreError> {
        let object = self.object(uri)?;
        block_on(&self.handle, object.etag())
            .map_err(|e| store_error(uri, e))
            .map(Option::unwrap_or_default)
    }
}

/// Where downloaded model files are cached: `ROUTEIQ_MODEL_CACHE_DIR`, else
/// `$TMPDIR/routeiq-models` (`/tmp/routeiq-models` in Lambda, its only writable disk).
pub fn model_cache_dir(env: &dyn Fn(&str) -> Option<String>) -> std::path::PathBuf {
    env("ROUTEIQ_MODEL_CACHE_DIR")
        .filter(|d| !d.trim().is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("routeiq-models"))
}

/// The gateway's model store: local paths and `file://` URIs through the filesystem store,
/// `s3://` through an [`S3ModelStore`] created on first use (so configs without S3 models
/// never build an S3 client at cold start).
pub struct UriModelStore {
    fs: routeiq::ml::FsModelStore,
    /// The runtime S3 calls run on (`None`: built outside a runtime; `s3://` is refused).
    handle: Option<tokio::runtime::Handle>,
    cache_dir: std::path::PathBuf,
    s3: std::sync::OnceLock<S3ModelStore>,
}

impl UriModelStore {
    /// A store caching S3 objects under `cache_dir`; S3 works when built inside the
    /// gateway's runtime.
    pub fn new(cache_dir: std::path::PathBuf) -> UriModelStore {
        UriModelStore {
            fs: routeiq::ml::FsModelStore::new(),
            handle: tokio::runtime::Handle::try_current().ok(),
            cache_dir,
            s3: std::sync::OnceLock::new(),
        }
    }

    /// A store whose `s3://` URIs go to `s3` (already built).
    pub fn with_s3(s3: S3ModelStore) -> UriModelStore {
        let cache_dir = s3.cache_dir.clone();
        let cell = std::sync::OnceLock::new();
        let _ = cell.set(s3);
        UriModelStore {
            fs: routeiq::ml::FsModelStore::new(),
            handle: tokio::runtime::Handle::try_current().ok(),
            cache_dir,
            s3: cell,
        }
    }

    fn s3(&self, uri: &str) -> Result<&S3ModelStore, routeiq::ml::store::StoreError> {
        if let Some(s3) = self.s3.get() {
            return Ok(s3);
        }
        let handle = self.handle.as_ref().ok_or_else(|| {
            store_error(uri, "s3:// model files need the gateway's async runtime")
        })?;
        let env = |name: &str| std::env::var(name).ok();
        let store = block_on(handle, S3ModelStore::new(self.cache_dir.clone(), &env));
        tracing::info!(cache_dir = %self.cache_dir.display(), "S3 model store ready");
        Ok(self.s3.get_or_init(|| store))
    }
}

impl routeiq::ml::ModelStore for UriModelStore {
    fn fetch(
        &self,
        uri: &str,
    ) -> Result<routeiq::ml::store::LocalFile, routeiq::ml::store::StoreError> {
        if uri.starts_with("s3://") {
            self.s3(uri)?.fetch(uri)
        } else {
            self.fs.fetch(uri)
        }
    }

    fn version(&self, uri: &str) -> Result<String, routeiq::ml::store::StoreError> {
        if uri.starts_with("s3://") {
            self.s3(uri)?.version(uri)
        } else {
            self.fs.version(uri)
        }
    }
}
