//! The HTTP client the providers call upstreams with: hyper-util's pooled client over a
//! connector that
//!
//! - resolves names through the SSRF guard ([`crate::upstream::guard`]), so a name that resolves only
//!   to refused addresses never gets a connection;
//! - goes through the proxy the environment names (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`,
//!   lower-case too, with `NO_PROXY`), as curl and most HTTP clients do: `https://` upstreams
//!   through a `CONNECT` tunnel, `http://` ones by sending the request to the proxy in
//!   absolute form, with the proxy URL's credentials as `Proxy-Authorization`;
//! - speaks TLS with rustls (ring) and the platform's certificate verifier, offering HTTP/2
//!   and HTTP/1.1 by ALPN.
//!
//! The gateway used reqwest here before. Measured with callgrind on the benchmark's request
//! (`tests/bench/README.md`), reqwest's per-request layers (redirect and retry policies, and a
//! re-parse of the URL for every response) cost about 25k instructions a request of the
//! gateway's ~140k, more than the whole routing decision; this client makes the same calls
//! without them. Redirects are not followed (no LLM API answers a POST with one), and the
//! dispatcher owns retries and timeouts, as before.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderValue, PROXY_AUTHORIZATION};
use http::{Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tower_service::Service;

use crate::upstream::guard::{BlockObserver, GuardedResolver, OutboundPolicy, Trust};

/// Idle pooled connections kept per host.
const POOL_MAX_IDLE_PER_HOST: usize = 512;
/// How long an idle pooled connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Bound on establishing a TCP connection (per address tried).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

type Connector = hyper_rustls::HttpsConnector<ProxyConnector>;

thread_local! {
    /// The serving thread this thread is ([`set_worker`]); 0 elsewhere.
    static WORKER: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Marks the calling thread as serving thread `worker`: its upstream calls use pool `worker`
/// of every [`HttpClient`], so a request and its upstream connections stay on one thread
/// (see [`crate::http::server::serve`]).
pub fn set_worker(worker: usize) {
    WORKER.with(|w| w.set(worker));
}

/// Bounds on what is read of an upstream answer, so a broken or hostile upstream cannot
/// make the gateway buffer without end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseLimits {
    /// Largest non-streamed body (`general_settings.max_response_size_mb`).
    pub max_body_bytes: usize,
    /// Longest line of an event stream (`ROUTEIQ_MAX_SSE_LINE_BYTES`).
    pub max_sse_line_bytes: usize,
}

impl Default for ResponseLimits {
    fn default() -> Self {
        ResponseLimits {
            max_body_bytes: mb_to_bytes(routeiq::config::DEFAULT_MAX_RESPONSE_SIZE_MB),
            max_sse_line_bytes: crate::settings::DEFAULT_MAX_SSE_LINE_BYTES,
        }
    }
}

/// Megabytes (MiB, as LiteLLM counts them) to bytes, saturating.
pub fn mb_to_bytes(mb: f64) -> usize {
    (mb * 1024.0 * 1024.0) as usize
}

/// The upstream HTTP client (cheap to clone: the pools are shared). It keeps one connection
/// pool per serving thread: a pooled connection is driven by a task on the thread that
/// opened it, so sharing pools across threads would hand every call to another thread.
#[derive(Clone)]
pub struct HttpClient {
    pools: Arc<[Client<Connector, Full<Bytes>>]>,
    /// How much of an upstream answer is read.
    limits: ResponseLimits,
    proxy: Arc<Matcher>,
    /// Whether the environment names any proxy (skips the per-request lookup when not).
    proxied: bool,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("proxied", &self.proxied)
            .finish_non_exhaustive()
    }
}

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("TLS setup: {0}")]
pub struct BuildError(#[from] rustls::Error);

/// The proxy environment variables, for the "does the environment name a proxy" check.
const PROXY_VARS: [&str; 6] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

impl HttpClient {
    /// A client whose connections the guard checks for URLs of `trust`; `observer` is told of
    /// every refusal. Proxies come from the process environment. `threads`: the number of
    /// serving threads (one pool each).
    pub fn new(
        policy: Arc<OutboundPolicy>,
        trust: Trust,
        observer: Option<BlockObserver>,
        threads: usize,
    ) -> Result<HttpClient, BuildError> {
        let proxied = PROXY_VARS
            .iter()
            .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()));
        Self::with_proxy(
            policy,
            trust,
            observer,
            Matcher::from_env(),
            proxied,
            threads,
        )
    }

    fn with_proxy(
        policy: Arc<OutboundPolicy>,
        trust: Trust,
        observer: Option<BlockObserver>,
        matcher: Matcher,
        proxied: bool,
        threads: usize,
    ) -> Result<HttpClient, BuildError> {
        let resolver = GuardedDns(Arc::new(GuardedResolver::new(policy, trust, observer)));
        let mut tcp = HttpConnector::new_with_resolver(resolver);
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let proxy = Arc::new(matcher);
        let tls = tls_config()?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(ProxyConnector {
                tcp,
                proxy: proxy.clone(),
            });
        let pools = (0..threads.max(1))
            .map(|_| {
                Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(POOL_IDLE_TIMEOUT)
                    .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
                    .build(https.clone())
            })
            .collect();
        Ok(HttpClient {
            pools,
            limits: ResponseLimits::default(),
            proxy,
            proxied,
        })
    }

    /// This client with other answer limits.
    pub fn with_limits(mut self, limits: ResponseLimits) -> HttpClient {
        self.limits = limits;
        self
    }

    /// How much of an upstream answer is read.
    pub fn limits(&self) -> ResponseLimits {
        self.limits
    }

    /// `POST`s a JSON `body` to `uri` with `headers` (plus `content-type: application/json`)
    /// and returns the response head; its body streams.
    pub async fn post_json(
        &self,
        uri: &Uri,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = uri.clone();
        let h = req.headers_mut();
        h.reserve(headers.len() + 2);
        for (name, value) in headers {
            h.append(name, value.clone());
        }
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if self.proxied && uri.scheme() == Some(&http::uri::Scheme::HTTP) {
            // Plain HTTP through a proxy: the request itself goes to the proxy.
            if let Some(auth) = self
                .proxy
                .intercept(uri)
                .and_then(|i| i.basic_auth().cloned())
            {
                h.insert(PROXY_AUTHORIZATION, auth);
            }
        }
        let pool = &self.pools[WORKER.with(std::cell::Cell::get) % self.pools.len()];
        pool.request(req).await
    }
}

/// rustls with ring and the platform verifier (the OS trust store, as reqwest used), ALPN
/// set by the connector.
pub(crate) fn tls_config() -> Result<rustls::ClientConfig, rustls::Error> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_platform_verifier()?
        .with_no_client_auth())
}

/// DNS through [`GuardedResolver`]: the system resolver, then the guard's filter.
#[derive(Clone)]
struct GuardedDns(Arc<GuardedResolver>);

impl Service<Name> for GuardedDns {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let guard = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed = guard.filter(&host, resolved)?;
            if allowed.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no addresses found for '{host}'"),
                )
                .into());
            }
            Ok(allowed.into_iter())
        })
    }
}

/// TCP to the upstream, or to the proxy the environment names for it: a `CONNECT` tunnel
/// for `https://` (TLS then runs inside it), a plain connection marked as proxied for
/// `http://` (so the request goes out in absolute form).
#[derive(Clone)]
struct ProxyConnector {
    tcp: HttpConnector<GuardedDns>,
    proxy: Arc<Matcher>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Service<Uri> for ProxyConnector {
    type Response = ProxyStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<ProxyStream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.tcp.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let mut tcp = self.tcp.clone();
        let intercept = self.proxy.intercept(&dst);
        Box::pin(async move {
            let Some(intercept) = intercept else {
                let io = tcp.call(dst).await?;
                return Ok(ProxyStream { io, proxied: false });
            };
            if dst.scheme() == Some(&http::uri::Scheme::HTTPS) {
                let mut tunnel = Tunnel::new(intercept.uri().clone(), tcp);
                if let Some(auth) = intercept.basic_auth() {
                    tunnel = tunnel.with_auth(auth.clone());
                }
                let io = tunnel.call(dst).await?;
                Ok(ProxyStream { io, proxied: false })
            } else {
                let io = tcp.call(intercept.uri().clone()).await?;
                Ok(ProxyStream { io, proxied: true })
            }
        })
    }
}

/// A TCP stream that knows whether it leads to an HTTP proxy.
struct ProxyStream {
    io: TokioIo<tokio::net::TcpStream>,
    proxied: bool,
}

impl Connection for ProxyStream {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.proxied)
    }
}

impl hyper::rt::Read for ProxyStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for ProxyStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn client_via(matcher: Matcher) -> HttpClient {
        HttpClient::with_proxy(
            Arc::new(OutboundPolicy::default()),
            Trust::Operator,
            None,
            matcher,
            true,
            1,
        )
        .unwrap()
    }

    /// An HTTP server that records each request's target and `proxy-authorization`.
    async fn recording_server() -> (SocketAddr, Arc<Mutex<Vec<(String, Option<String>)>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let log = log.clone();
            async move {
                let auth = req
                    .headers()
                    .get(PROXY_AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                log.lock().unwrap().push((req.uri().to_string(), auth));
                "{}"
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (addr, seen)
    }

    #[tokio::test]
    async fn plain_http_goes_to_the_proxy_in_absolute_form_with_its_credentials() {
        let (proxy, seen) = recording_server().await;
        let client = client_via(
            Matcher::builder()
                .http(format!("http://user:pw@{proxy}"))
                .build(),
        );
        // The upstream's name is never resolved: the proxy is the one to reach it.
        let target: Uri = "http://upstream.invalid:8000/v1/chat/completions"
            .parse()
            .unwrap();
        let resp = client
            .post_json(&target, &HeaderMap::new(), Bytes::from_static(b"{}"))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            vec![(
                "http://upstream.invalid:8000/v1/chat/completions".to_string(),
                Some("Basic dXNlcjpwdw==".to_string())
            )]
        );
    }

    #[tokio::test]
    async fn https_tunnels_through_connect() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = listener.local_addr().unwrap();
        let head = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8(got).unwrap()
        });
        let client = client_via(
            Matcher::builder()
                .https(format!("http://user:pw@{proxy}"))
                .build(),
        );
        let target: Uri = "https://api.example.invalid/v1/chat/completions"
            .parse()
            .unwrap();
        let err = client
            .post_json(&target, &HeaderMap::new(), Bytes::from_static(b"{}"))
            .await
            .unwrap_err();
        assert!(err.is_connect(), "{err:?}");
        let head = head.await.unwrap().to_ascii_lowercase();
        assert!(
            head.starts_with("connect api.example.invalid:443 http/1.1\r\n"),
            "{head}"
        );
        assert!(
            head.contains("proxy-authorization: basic dxnlcjpwdw=="),
            "{head}"
        );
    }

    #[tokio::test]
    async fn no_proxy_hosts_are_reached_directly() {
        let (proxy, via_proxy) = recording_server().await;
        let (upstream, direct) = recording_server().await;
        let client = client_via(
            Matcher::builder()
                .http(format!("http://{proxy}"))
                .no("127.0.0.1")
                .build(),
        );
        let target: Uri = format!("http://{upstream}/v1/embeddings").parse().unwrap();
        let resp = client
            .post_json(&target, &HeaderMap::new(), Bytes::from_static(b"{}"))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert!(via_proxy.lock().unwrap().is_empty());
        assert_eq!(
            direct.lock().unwrap().clone(),
            vec![("/v1/embeddings".to_string(), None)]
        );
    }

    #[tokio::test]
    async fn sends_the_body_with_the_callers_headers_and_json_type() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let tx = Arc::new(Mutex::new(Some(tx)));
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let tx = tx.clone();
            async move {
                let (parts, body) = req.into_parts();
                let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
                if let Some(tx) = tx.lock().unwrap().take() {
                    let _ = tx.send((parts.headers, body));
                }
                "{}"
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = HttpClient::new(
            Arc::new(OutboundPolicy::default()),
            Trust::Operator,
            None,
            1,
        )
        .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("Bearer sk-x"));
        let target: Uri = format!("http://{addr}/v1/chat/completions")
            .parse()
            .unwrap();
        client
            .post_json(&target, &headers, Bytes::from_static(br#"{"a":1}"#))
            .await
            .unwrap();
        let (got, body) = rx.await.unwrap();
        assert_eq!(got["authorization"], "Bearer sk-x");
        assert_eq!(got["content-type"], "application/json");
        assert_eq!(got["host"], addr.to_string());
        assert_eq!(&body[..], br#"{"a":1}"#);
    }
}
