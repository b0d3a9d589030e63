//! An in-process mock of the upstream LLM APIs the gateway talks to: OpenAI, Azure OpenAI and
//! Anthropic Messages, speaking their real wire formats, with scriptable failures.
//!
//! ```no_run
//! # async fn demo() {
//! use routeiq_testkit::mock::{Behavior, MockUpstream};
//! let mock = MockUpstream::start().await;
//! mock.script("gpt-4o", Behavior::fail_times(1, Behavior::rate_limited(Some(1))));
//! let api_base = format!("{}/v1", mock.base_url());
//! // ... point a gateway deployment at `api_base`, send requests ...
//! assert_eq!(mock.hits("gpt-4o"), 2);
//! # }
//! ```
//!
//! Endpoints (each also without the `/v1` prefix for the OpenAI ones):
//! - `POST /v1/chat/completions`, `POST /v1/completions`, `POST /v1/embeddings`, `GET /v1/models`
//! - `POST /v1/responses` (OpenAI's Responses API: JSON and its event stream; keeps stored
//!   responses for `previous_response_id`, see [`responses`](self::responses))
//! - `POST /openai/deployments/{deployment}/{chat/completions|completions|embeddings}` (Azure:
//!   needs an `api-key` header (401) and an `api-version` query (404))
//! - `POST /v1/messages` (Anthropic: needs `x-api-key` (401) and `anthropic-version` (400),
//!   validates the body like Anthropic does) and `POST /v1/messages/count_tokens` (the same
//!   headers; `{"input_tokens": n}` counting ~4 characters per token of the system prompt and
//!   messages, plus 1000 per tool, so a test can tell it from the gateway's own estimate)
//! - Bedrock: `POST /model/{id}/converse`, `/converse-stream` and `/invoke` (Titan and Cohere
//!   embedding models), SigV4-signed
//! - Gemini: `POST /v1beta/models/{model}:{generateContent|streamGenerateContent|
//!   batchEmbedContents}` (AI Studio: needs an API key) and `POST /v1/projects/{p}/locations/
//!   {l}/publishers/google/models/{model}:{generateContent|streamGenerateContent|predict}`
//!   (Vertex AI: needs the bearer token the mock issues at `POST /token` (a service-account
//!   JWT or a refresh token) or `GET /computeMetadata/v1/instance/service-accounts/default/token`)
//! - `GET /.well-known/jwks.json`: a JWKS the test sets ([`MockUpstream::set_jwks`]; `{"keys":
//!   []}` until then; 503 while [`MockUpstream::set_jwks_down`]), and `GET
//!   /.well-known/openid-configuration`: an OpenID discovery document pointing at it
//! - `GET /health` and `GET /health/liveliness` answer 200 (for scripts).
//!
//! Answers are deterministic: the content is `"mock answer from <model>"` (the Azure deployment
//! name stands for the model), usage counts ~4 characters per token. When a request carries
//! `tools` and its last message is a user message whose text contains "use the tool", the answer
//! is a call of the first tool (or the one `tool_choice` names) with arguments made from its
//! JSON schema.
//!
//! Faults are scripted per model ([`MockUpstream::script`]) or picked per request with the
//! `x-mock-behavior` header ([`Behavior`] lists both spellings). Besides error statuses, delays,
//! hangs and broken streams, three behaviours answer what a client must not trust blindly, on
//! every endpoint: [`Behavior::Raw`] (any status, content type, body and headers: a 200 whose
//! body is an error, an HTML page from a proxy, an absurd `retry-after`),
//! [`Behavior::Huge`] (a valid answer of any size, chunked, with no `content-length`) and
//! [`Behavior::EndlessLine`] (an SSE line, or a JSON body, that never ends).

mod anthropic;
mod bedrock;
mod behavior;
mod gemini;
mod openai;
mod responses;
mod util;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::task::JoinHandle;

pub use anthropic::COUNT_TOKENS_PER_TOOL;
pub use behavior::{
    Behavior, CONTEXT_LENGTH_MESSAGE, ENDLESS_LINE_DEFAULT_BYTES, ParseBehaviorError, openai_error,
};
pub use gemini::{MOCK_ACCESS_TOKEN, TEST_SERVICE_ACCOUNT_PUBLIC_KEY};

/// The header that picks a behaviour for one request (syntax: [`Behavior`]'s `FromStr`).
pub const BEHAVIOR_HEADER: &str = "x-mock-behavior";

/// Largest request body the mock reads.
const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// How to start a [`MockUpstream`].
#[derive(Debug, Clone)]
pub struct MockOptions {
    /// Address to listen on (default 127.0.0.1).
    pub host: IpAddr,
    /// Port (default 0: any free port).
    pub port: u16,
    /// Fixed latency added before every answer.
    pub latency_ms: u64,
    /// Record every request for [`MockUpstream::requests`] (default true; the standalone binary
    /// turns it off so that long benchmarks do not grow its memory).
    pub record: bool,
}

impl Default for MockOptions {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            latency_ms: 0,
            record: true,
        }
    }
}

/// One request the mock received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// Path without the query, e.g. `/v1/chat/completions`.
    pub path: String,
    /// Raw query string, e.g. `api-version=2024-06-01`.
    pub query: Option<String>,
    /// Headers, names lower-case, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The JSON body (`Value::Null` when empty or not JSON).
    pub body: Value,
    /// The model (Azure: the deployment) the request was for, if any.
    pub model: Option<String>,
}

impl RecordedRequest {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// One query parameter (not percent-decoded).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        util::query_param(self.query.as_deref()?, name)
    }

    /// Whether the body asked for a stream.
    pub fn is_stream(&self) -> bool {
        self.body.get("stream").and_then(Value::as_bool) == Some(true)
    }
}

pub(crate) struct Inner {
    record: bool,
    latency_ms: AtomicU64,
    seq: AtomicU64,
    scripts: Mutex<HashMap<String, VecDeque<Behavior>>>,
    requests: Mutex<Vec<RecordedRequest>>,
    hits: Mutex<HashMap<String, u64>>,
    api_key: Mutex<Option<String>>,
    /// Stored Responses API conversations by response id.
    pub(crate) responses: Mutex<HashMap<String, Vec<Value>>>,
    /// The JWKS served at `/.well-known/jwks.json`, and whether that endpoint answers 503.
    jwks: Mutex<(Value, bool)>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The script key that applies to every model without a script of its own.
const ANY_MODEL: &str = "*";

impl Inner {
    pub(crate) fn next_id(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn next_behavior(&self, model: Option<&str>) -> Behavior {
        let mut scripts = lock(&self.scripts);
        if scripts.is_empty() {
            return Behavior::Ok;
        }
        let key = match model {
            Some(m) if scripts.contains_key(m) => m,
            _ => ANY_MODEL,
        };
        match scripts.get_mut(key) {
            Some(queue) if queue.len() > 1 => queue.pop_front().unwrap_or(Behavior::Ok),
            Some(queue) => queue.front().cloned().unwrap_or(Behavior::Ok),
            None => Behavior::Ok,
        }
    }

    fn count(&self, path: &str, model: Option<&str>) {
        let mut hits = lock(&self.hits);
        for key in std::iter::once(path).chain(model) {
            match hits.get_mut(key) {
                Some(n) => *n += 1,
                None => {
                    hits.insert(key.to_string(), 1);
                }
            }
        }
    }

    fn api_key(&self) -> Option<String> {
        lock(&self.api_key).clone()
    }
}

/// A running mock upstream. Dropping it stops accepting connections.
pub struct MockUpstream {
    addr: SocketAddr,
    inner: Arc<Inner>,
    task: Option<JoinHandle<()>>,
}

impl MockUpstream {
    /// Starts a mock on `127.0.0.1:<free port>` in the current tokio runtime.
    ///
    /// # Panics
    /// If no local port can be bound.
    pub async fn start() -> Self {
        match Self::start_with(MockOptions::default()).await {
            Ok(mock) => mock,
            Err(e) => panic!("mock upstream failed to start: {e:#}"),
        }
    }

    /// Starts a mock with these options.
    pub async fn start_with(opts: MockOptions) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind((opts.host, opts.port)).await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            record: opts.record,
            latency_ms: AtomicU64::new(opts.latency_ms),
            seq: AtomicU64::new(0),
            scripts: Mutex::new(HashMap::new()),
            requests: Mutex::new(Vec::new()),
            hits: Mutex::new(HashMap::new()),
            api_key: Mutex::new(None),
            responses: Mutex::new(HashMap::new()),
            jwks: Mutex::new((serde_json::json!({"keys": []}), false)),
        });
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("mock upstream stopped: {e}");
            }
        });
        Ok(Self {
            addr,
            inner,
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/v1`: the `api_base` of an OpenAI-style deployment.
    pub fn openai_base(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The address the mock listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far (since the last [`reset`](Self::reset)).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.inner.requests).clone()
    }

    /// The requests whose path or model is `path_or_model`.
    pub fn requests_to(&self, path_or_model: &str) -> Vec<RecordedRequest> {
        lock(&self.inner.requests)
            .iter()
            .filter(|r| r.path == path_or_model || r.model.as_deref() == Some(path_or_model))
            .cloned()
            .collect()
    }

    /// The last request received.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        lock(&self.inner.requests).last().cloned()
    }

    /// How many requests went to this path (e.g. `/v1/chat/completions`) or this model (Azure:
    /// deployment). Counted even when recording is off, and whatever the answer was.
    pub fn hits(&self, path_or_model: &str) -> u64 {
        lock(&self.inner.hits)
            .get(path_or_model)
            .copied()
            .unwrap_or(0)
    }

    /// Programs the answers for `model` (Azure: the deployment name): consumed in order, the
    /// last one sticky. An empty script removes the model's script. The model `"*"` applies to
    /// every model without a script of its own.
    pub fn script(&self, model: &str, behaviors: Vec<Behavior>) {
        let mut scripts = lock(&self.inner.scripts);
        if behaviors.is_empty() {
            scripts.remove(model);
        } else {
            scripts.insert(model.to_string(), behaviors.into());
        }
    }

    /// Programs the answers of every model without a script of its own.
    pub fn script_all(&self, behaviors: Vec<Behavior>) {
        self.script(ANY_MODEL, behaviors);
    }

    /// `model` fails `n` times with `failure`, then answers normally.
    pub fn fail_times(&self, model: &str, n: usize, failure: Behavior) {
        self.script(model, Behavior::fail_times(n, failure));
    }

    /// Only this API key is accepted (OpenAI `Authorization: Bearer`, Azure `api-key`, Anthropic
    /// `x-api-key`); others get the provider's 401. `None` (the default) accepts any key; Azure
    /// and Anthropic still need one to be present, OpenAI endpoints then need none.
    pub fn expect_api_key(&self, key: Option<&str>) {
        *lock(&self.inner.api_key) = key.map(str::to_string);
    }

    /// The JWKS `GET /.well-known/jwks.json` serves from now on (`{"keys": [...]}`).
    pub fn set_jwks(&self, jwks: Value) {
        lock(&self.inner.jwks).0 = jwks;
    }

    /// Whether `GET /.well-known/jwks.json` (and the discovery document) answer 503.
    pub fn set_jwks_down(&self, down: bool) {
        lock(&self.inner.jwks).1 = down;
    }

    /// Fixed latency before every answer from now on.
    pub fn set_latency_ms(&self, ms: u64) {
        self.inner.latency_ms.store(ms, Ordering::Relaxed);
    }

    /// Forgets recorded requests, hit counts, scripts, the expected API key and the latency.
    pub fn reset(&self) {
        lock(&self.inner.requests).clear();
        lock(&self.inner.hits).clear();
        lock(&self.inner.scripts).clear();
        *lock(&self.inner.api_key) = None;
        self.inner.latency_ms.store(0, Ordering::Relaxed);
    }

    /// A URL (`http://127.0.0.1:PORT`) where nothing listens: connections are refused. See
    /// [`closed_port_url`].
    pub fn closed_port_url() -> String {
        closed_port_url()
    }

    /// Runs until the mock's server task ends (it does not, unless the listener fails): for the
    /// standalone binary.
    pub async fn wait(mut self) -> anyhow::Result<()> {
        if let Some(task) = self.task.take() {
            task.await?;
        }
        Ok(())
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// A URL (`http://127.0.0.1:PORT`) where nothing listens: connections to it are refused. The port
/// stays bound (without listening) for the life of the process, so nothing else can take it.
pub fn closed_port_url() -> String {
    static HELD: OnceLock<Mutex<Vec<tokio::net::TcpSocket>>> = OnceLock::new();
    let held = HELD.get_or_init(|| Mutex::new(Vec::new()));
    let reserved = tokio::net::TcpSocket::new_v4().and_then(|s| {
        s.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        let addr = s.local_addr()?;
        Ok((s, addr))
    });
    match reserved {
        Ok((socket, addr)) => {
            lock(held).push(socket);
            format!("http://{addr}")
        }
        // Fallback: a port that was free a moment ago.
        Err(_) => {
            let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .unwrap_or(9);
            format!("http://127.0.0.1:{port}")
        }
    }
}

/// What kind of request an endpoint serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    Chat,
    Completions,
    Embeddings,
    /// OpenAI's Responses API (OpenAI flavor only).
    Responses,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    OpenAi,
    Azure,
    Anthropic,
    Bedrock,
    Gemini,
}

enum Route<'a> {
    OpenAi(Api),
    Azure(&'a str, Api),
    Anthropic,
    AnthropicCountTokens,
    /// Bedrock Converse: the decoded model id, and whether it is ConverseStream.
    Bedrock(String, bool),
    /// Bedrock InvokeModel (embedding models): the decoded model id.
    BedrockInvoke(String),
    /// Claude on Vertex AI (`…/publishers/anthropic/models/{model}:rawPredict` or
    /// `:streamRawPredict`): the model.
    VertexAnthropic(String),
    /// Gemini (AI Studio or Vertex AI): the model, the method, and whether on Vertex AI.
    Gemini(String, gemini::Method, bool),
    /// OAuth token endpoint (`POST /token`) and the metadata server's token.
    Token,
    MetadataToken,
    Models,
    Health,
    Jwks,
    OpenIdConfiguration,
    NotFound,
}

fn route<'a>(method: &Method, path: &'a str) -> Route<'a> {
    let path = path.strip_suffix('/').unwrap_or(path);
    if method == Method::GET {
        return match path {
            "/v1/models" | "/models" => Route::Models,
            "/health" | "/health/liveliness" | "/health/readiness" => Route::Health,
            "/computeMetadata/v1/instance/service-accounts/default/token" => Route::MetadataToken,
            "/.well-known/jwks.json" => Route::Jwks,
            "/.well-known/openid-configuration" => Route::OpenIdConfiguration,
            _ => Route::NotFound,
        };
    }
    if method != Method::POST {
        return Route::NotFound;
    }
    match path {
        "/v1/chat/completions" | "/chat/completions" => Route::OpenAi(Api::Chat),
        "/v1/completions" | "/completions" => Route::OpenAi(Api::Completions),
        "/v1/embeddings" | "/embeddings" => Route::OpenAi(Api::Embeddings),
        "/v1/responses" | "/responses" => Route::OpenAi(Api::Responses),
        "/v1/messages" => Route::Anthropic,
        "/token" => Route::Token,
        "/v1/messages/count_tokens" => Route::AnthropicCountTokens,
        _ => {
            if let Some(model) = gemini::vertex_anthropic_model(path) {
                return Route::VertexAnthropic(model);
            }
            if let Some((model, method, vertex)) = gemini::parse_path(path) {
                return Route::Gemini(model, method, vertex);
            }
            if let Some(rest) = path.strip_prefix("/model/") {
                return match rest.rsplit_once('/') {
                    Some((id, "converse")) if !id.is_empty() => {
                        Route::Bedrock(bedrock::decode_model_id(id), false)
                    }
                    Some((id, "converse-stream")) if !id.is_empty() => {
                        Route::Bedrock(bedrock::decode_model_id(id), true)
                    }
                    Some((id, "invoke")) if !id.is_empty() => {
                        Route::BedrockInvoke(bedrock::decode_model_id(id))
                    }
                    _ => Route::NotFound,
                };
            }
            let Some(rest) = path.strip_prefix("/openai/deployments/") else {
                return Route::NotFound;
            };
            let Some((deployment, op)) = rest.split_once('/') else {
                return Route::NotFound;
            };
            if deployment.is_empty() {
                return Route::NotFound;
            }
            match op {
                "chat/completions" => Route::Azure(deployment, Api::Chat),
                "completions" => Route::Azure(deployment, Api::Completions),
                "embeddings" => Route::Azure(deployment, Api::Embeddings),
                _ => Route::NotFound,
            }
        }
    }
}

/// The answer an endpoint would give, in both shapes, before a behaviour is applied.
pub(crate) struct Answer {
    /// The non-streaming JSON body.
    pub json: Bytes,
    /// The SSE frames of the streaming answer, the terminator (`[DONE]` / `message_stop`) last.
    pub frames: Vec<Bytes>,
    /// Whether the request asked for a stream.
    pub stream: bool,
}

async fn handle(State(st): State<Arc<Inner>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let query = parts.uri.query();
    let route = route(&parts.method, path);
    if matches!(route, Route::Health) {
        return (StatusCode::OK, "ok").into_response();
    }
    if matches!(route, Route::Jwks | Route::OpenIdConfiguration) {
        st.count(path, None);
        let (jwks, down) = lock(&st.jwks).clone();
        if down {
            return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
        }
        if matches!(route, Route::Jwks) {
            return json_response(StatusCode::OK, &jwks);
        }
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        let issuer = format!("http://{host}");
        return json_response(
            StatusCode::OK,
            &serde_json::json!({
                "issuer": issuer,
                "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
                "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            }),
        );
    }
    if matches!(route, Route::MetadataToken) {
        st.count(path, None);
        let (code, body) = gemini::metadata_token(&parts.headers);
        return error_response(code, &body, None);
    }
    let bytes = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &openai_error(
                    "could not read the request body",
                    "invalid_request_error",
                    None,
                ),
            );
        }
    };
    if matches!(route, Route::Token) {
        st.count(path, None);
        let (code, body) = gemini::token(&bytes);
        return error_response(code, &body, None);
    }
    let parsed: Result<Value, _> = if bytes.is_empty() {
        Ok(Value::Null)
    } else {
        serde_json::from_slice(&bytes)
    };
    let body_ok = parsed.is_ok();
    let mut body = parsed.unwrap_or(Value::Null);
    // As sent, for the record.
    let sent_body = body.clone();
    // Claude on Vertex AI: the body names no model and carries Vertex's anthropic_version.
    let mut vertex_claude_problem = None;
    if let Route::VertexAnthropic(model) = &route {
        vertex_claude_problem = gemini::check_vertex_claude_body(&body).err();
        if let Some(obj) = body.as_object_mut() {
            obj.remove("anthropic_version");
            obj.insert("model".into(), Value::String(model.clone()));
        }
    }
    let model: Option<&str> = match &route {
        Route::Azure(deployment, _) => Some(deployment),
        Route::Bedrock(id, _) | Route::BedrockInvoke(id) => Some(id.as_str()),
        Route::Gemini(model, ..) | Route::VertexAnthropic(model) => Some(model.as_str()),
        _ => body.get("model").and_then(Value::as_str),
    };

    st.count(path, model);
    if st.record {
        let rec = RecordedRequest {
            method: parts.method.to_string(),
            path: path.to_string(),
            query: query.map(str::to_string),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: sent_body,
            model: model.map(str::to_string),
        };
        lock(&st.requests).push(rec);
    }

    let gemini_route = match &route {
        Route::Gemini(m, method, vertex) => (m.clone(), *method, *vertex, false),
        Route::VertexAnthropic(m) => (m.clone(), gemini::Method::Generate, true, true),
        _ => (String::new(), gemini::Method::Generate, false, false),
    };
    let (flavor, api) = match route {
        Route::Models => {
            let checked = openai::check_auth(&st, &parts.headers);
            return match checked {
                Ok(()) => json_response(StatusCode::OK, &openai::models_list(&st)),
                Err((code, err)) => error_response(code, &err, None),
            };
        }
        Route::OpenAi(api) => (Flavor::OpenAi, api),
        Route::Azure(_, api) => (Flavor::Azure, api),
        Route::Anthropic | Route::VertexAnthropic(_) => (Flavor::Anthropic, Api::Chat),
        Route::AnthropicCountTokens => {
            return match anthropic::count_tokens(&st, &parts.headers, body_ok, &body) {
                Ok(v) => json_response(StatusCode::OK, &v),
                Err((code, err)) => error_response(code, &err, None),
            };
        }
        Route::Bedrock(..) => (Flavor::Bedrock, Api::Chat),
        Route::BedrockInvoke(_) => (Flavor::Bedrock, Api::Embeddings),
        Route::Gemini(..) => (Flavor::Gemini, Api::Chat),
        _ => {
            return json_response(
                StatusCode::NOT_FOUND,
                &openai_error(
                    &format!("Invalid URL ({} {})", parts.method, path),
                    "invalid_request_error",
                    None,
                ),
            );
        }
    };

    // Authentication, then the body, like the real services.
    let checked = match flavor {
        Flavor::OpenAi => openai::check_auth(&st, &parts.headers),
        Flavor::Azure => openai::check_azure(&st, &parts.headers, query),
        Flavor::Anthropic if gemini_route.3 => gemini::check_auth(&st, &parts.headers, query, true)
            .and_then(|()| vertex_claude_problem.take().map_or(Ok(()), Err)),
        Flavor::Anthropic => anthropic::check_headers(&st, &parts.headers),
        Flavor::Bedrock => bedrock::check_auth(&parts.headers),
        Flavor::Gemini => gemini::check_auth(&st, &parts.headers, query, gemini_route.2),
    }
    .and_then(|()| {
        if !body_ok {
            return Err(match flavor {
                Flavor::Anthropic => (
                    400,
                    anthropic::error("invalid_request_error", "There was an error parsing the body of your request."),
                ),
                _ => (
                    400,
                    openai_error(
                        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.",
                        "invalid_request_error",
                        None,
                    ),
                ),
            });
        }
        match flavor {
            Flavor::Anthropic => anthropic::validate(&body),
            Flavor::Bedrock if api == Api::Embeddings => bedrock::validate_invoke(model.unwrap_or(""), &body),
            Flavor::Bedrock => bedrock::validate(&body),
            Flavor::Gemini => gemini::validate(gemini_route.1, &body),
            _ if api == Api::Responses => responses::validate(&st, &body),
            _ => openai::validate(api, flavor, &body),
        }
    });
    if let Err((code, err)) = checked {
        if flavor == Flavor::Bedrock {
            return bedrock_error_response(code, &err, None);
        }
        return error_response(code, &err, None);
    }
    let bedrock_stream = matches!(route, Route::Bedrock(_, true));
    let model = model.unwrap_or("unknown");

    let behavior = match parts.headers.get(BEHAVIOR_HEADER).map(|v| v.to_str()) {
        Some(Ok(text)) => match text.parse::<Behavior>() {
            Ok(b) => b,
            Err(e) => {
                return error_response(
                    400,
                    &openai_error(&e.to_string(), "invalid_request_error", None),
                    None,
                );
            }
        },
        _ => st.next_behavior(Some(model)),
    };

    let latency = st.latency_ms.load(Ordering::Relaxed);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }

    let huge_text: String;
    let text_override = match &behavior {
        Behavior::Text(t) => Some(t.as_str()),
        Behavior::Huge { content_bytes } => {
            huge_text = huge_content(*content_bytes);
            Some(huge_text.as_str())
        }
        _ => None,
    };
    let build = |st: &Inner| -> Answer {
        match flavor {
            Flavor::Anthropic => anthropic::answer(st, model, &body, text_override),
            Flavor::Bedrock if api == Api::Embeddings => bedrock::invoke_answer(model, &body),
            Flavor::Bedrock => bedrock::answer(st, model, &body, bedrock_stream, text_override),
            Flavor::Gemini => gemini::answer(st, model, gemini_route.1, &body, text_override),
            _ => openai::answer(st, api, flavor, model, &body, text_override),
        }
    };

    let finish = |answer: Answer, plan: Plan| {
        let mut resp = finish(answer, plan);
        if flavor == Flavor::Bedrock && bedrock_stream {
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(bedrock::EVENT_STREAM),
            );
        }
        resp
    };
    match behavior {
        Behavior::Ok | Behavior::Text(_) => finish(build(&st), Plan::All),
        Behavior::Delay(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            finish(build(&st), Plan::All)
        }
        Behavior::Hang => std::future::pending::<Response>().await,
        Behavior::Status {
            code,
            body: err_body,
            retry_after,
        } => {
            if flavor == Flavor::Bedrock {
                return bedrock_error_response(
                    code,
                    &bedrock::reshape_error(code, err_body),
                    retry_after,
                );
            }
            let err = match (flavor, err_body) {
                (Flavor::Anthropic, Some(b)) => anthropic::reshape_error(code, b),
                (Flavor::Anthropic, None) => anthropic::default_error(code),
                (Flavor::Gemini, Some(b)) => gemini::reshape_error(code, b),
                (Flavor::Gemini, None) => gemini::error(code, "mock error"),
                (_, Some(b)) => b,
                (_, None) => openai::default_error(code, model),
            };
            error_response(code, &err, retry_after)
        }
        Behavior::ResetMidBody => finish(build(&st), Plan::Reset),
        Behavior::CutStream { after_chunks } => finish(build(&st), Plan::Cut(after_chunks)),
        Behavior::EndStreamEarly { after_chunks } => finish(build(&st), Plan::End(after_chunks)),
        Behavior::ErrorMidStream { after_chunks } => {
            let answer = build(&st);
            if !answer.stream {
                return match flavor {
                    Flavor::Anthropic => error_response(500, &anthropic::default_error(500), None),
                    Flavor::Gemini => error_response(500, &gemini::error(500, "mock error"), None),
                    Flavor::Bedrock => {
                        bedrock_error_response(500, &bedrock::reshape_error(500, None), None)
                    }
                    _ => error_response(500, &openai::default_error(500, model), None),
                };
            }
            let frame = match flavor {
                Flavor::Anthropic => anthropic::error_frame(),
                Flavor::Bedrock => bedrock::error_frame(),
                Flavor::Gemini => gemini::error_frame(),
                _ if api == Api::Responses => responses::error_frame(),
                _ => openai::error_frame(),
            };
            finish(answer, Plan::ErrorMid(after_chunks, frame))
        }
        Behavior::Trickle { chunk_delay_ms } => finish(build(&st), Plan::Trickle(chunk_delay_ms)),
        Behavior::Raw {
            status,
            content_type,
            body,
            headers,
        } => raw_response(status, &content_type, body, &headers),
        Behavior::Huge { .. } => finish(build(&st), Plan::Pieces(HUGE_PIECE)),
        Behavior::EndlessLine { bytes } => {
            let stream =
                bedrock_stream || body.get("stream").and_then(Value::as_bool) == Some(true);
            endless_line(stream, bytes)
        }
    }
}

/// Piece size of a [`Behavior::Huge`] body.
const HUGE_PIECE: usize = 64 * 1024;
/// Piece size of a [`Behavior::EndlessLine`].
const ENDLESS_PIECE: usize = 16 * 1024;

/// `len` bytes of `x`, every 1024th a space (so that a stream has ~1 KiB words).
fn huge_content(len: usize) -> String {
    (0..len)
        .map(|i| if i % 1024 == 1023 { ' ' } else { 'x' })
        .collect()
}

/// A [`Behavior::Raw`] answer.
fn raw_response(
    status: u16,
    content_type: &str,
    body: String,
    headers: &[(String, String)],
) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    match HeaderValue::from_str(content_type) {
        Ok(v) => {
            h.insert(header::CONTENT_TYPE, v);
        }
        Err(_) => {
            h.remove(header::CONTENT_TYPE);
        }
    }
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            h.append(n, v);
        }
    }
    resp
}

/// A [`Behavior::EndlessLine`] answer: the opening of an SSE `data:` line (or of a JSON body),
/// `bytes` more bytes without a newline, then nothing until the client goes away.
fn endless_line(stream: bool, bytes: usize) -> Response {
    let (content_type, head): (&'static str, &'static [u8]) = if stream {
        ("text/event-stream", b"data: {\"")
    } else {
        ("application/json", b"{\"id\":\"")
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Item>(8);
    tokio::spawn(async move {
        if tx.send(Ok(Bytes::from_static(head))).await.is_err() {
            return;
        }
        let piece = Bytes::from(vec![b'a'; ENDLESS_PIECE]);
        let mut sent = 0;
        while sent < bytes {
            let n = ENDLESS_PIECE.min(bytes - sent);
            if tx.send(Ok(piece.slice(..n))).await.is_err() {
                return;
            }
            sent += n;
        }
        // Silence, with the connection open, until the client drops it.
        tx.closed().await;
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if stream {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    resp
}

/// How to send an [`Answer`].
enum Plan {
    All,
    Reset,
    Cut(usize),
    End(usize),
    ErrorMid(usize, Bytes),
    Trickle(u64),
    /// Everything, without pauses, through the channel (so chunked, no `content-length`): the
    /// JSON body in pieces of this size, or the SSE frames one by one.
    Pieces(usize),
}

/// A body item: bytes, or "drop the connection".
type Item = Result<Bytes, std::io::Error>;

fn finish(answer: Answer, plan: Plan) -> Response {
    let content_type = if answer.stream {
        "text/event-stream"
    } else {
        "application/json"
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if answer.stream {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }

    // Everything at once: no task, no channel.
    if matches!(plan, Plan::All) {
        let bytes = if answer.stream {
            let len = answer.frames.iter().map(Bytes::len).sum();
            let mut buf = Vec::with_capacity(len);
            for f in &answer.frames {
                buf.extend_from_slice(f);
            }
            Bytes::from(buf)
        } else {
            answer.json
        };
        return (StatusCode::OK, headers, bytes).into_response();
    }

    // Otherwise a task feeds the body through a channel, pausing where the plan says.
    let mut steps: Vec<(u64, Item)> = Vec::new();
    let terminated = answer.frames.len().saturating_sub(1);
    let abort = || Err(std::io::Error::other("mock: connection dropped on purpose"));
    match plan {
        Plan::All => {}
        Plan::Pieces(size) => {
            if answer.stream {
                steps.extend(answer.frames.into_iter().map(|f| (0, Ok(f))));
            } else {
                let json = answer.json;
                let size = size.max(1);
                let mut start = 0;
                while start < json.len() {
                    let end = (start + size).min(json.len());
                    steps.push((0, Ok(json.slice(start..end))));
                    start = end;
                }
            }
        }
        Plan::Reset => {
            if answer.stream {
                let first = answer.frames.first().cloned().unwrap_or_default();
                steps.push((0, Ok(first.slice(..first.len() / 2))));
            } else {
                let len = answer.json.len();
                if let Ok(v) = HeaderValue::from_str(&len.to_string()) {
                    headers.insert(header::CONTENT_LENGTH, v);
                }
                steps.push((0, Ok(answer.json.slice(..len / 2))));
            }
            steps.push((30, abort()));
        }
        Plan::Cut(_) | Plan::End(_) if !answer.stream => {
            let len = answer.json.len();
            if let Ok(v) = HeaderValue::from_str(&len.to_string()) {
                headers.insert(header::CONTENT_LENGTH, v);
            }
            steps.push((0, Ok(answer.json.slice(..len / 2))));
            steps.push((30, abort()));
        }
        Plan::Cut(n) => {
            for f in answer.frames.into_iter().take(n.min(terminated)) {
                steps.push((0, Ok(f)));
            }
            steps.push((30, abort()));
        }
        Plan::End(n) => {
            for f in answer.frames.into_iter().take(n.min(terminated)) {
                steps.push((0, Ok(f)));
            }
        }
        Plan::ErrorMid(n, frame) => {
            for f in answer.frames.into_iter().take(n.min(terminated)) {
                steps.push((0, Ok(f)));
            }
            steps.push((0, Ok(frame)));
        }
        Plan::Trickle(ms) => {
            if answer.stream {
                for f in answer.frames {
                    steps.push((ms, Ok(f)));
                }
            } else {
                let json = answer.json;
                let piece = json.len().div_ceil(8).max(1);
                let mut start = 0;
                while start < json.len() {
                    let end = (start + piece).min(json.len());
                    steps.push((ms, Ok(json.slice(start..end))));
                    start = end;
                }
            }
        }
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Item>(8);
    tokio::spawn(async move {
        for (pause, item) in steps {
            if pause > 0 {
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            if tx.send(item).await.is_err() {
                return;
            }
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    (StatusCode::OK, headers, body).into_response()
}

fn json_response(status: StatusCode, value: &Value) -> Response {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response()
}

/// A Bedrock error: JSON body plus the `x-amzn-errortype` header the AWS SDK reads.
fn bedrock_error_response(code: u16, body: &Value, retry_after: Option<u64>) -> Response {
    let mut resp = error_response(code, body, retry_after);
    resp.headers_mut().insert(
        HeaderName::from_static("x-amzn-errortype"),
        HeaderValue::from_static(bedrock::error_type(code)),
    );
    resp
}

fn error_response(code: u16, body: &Value, retry_after: Option<u64>) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = json_response(status, body);
    if let Some(secs) = retry_after {
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    resp
}

/// A JSON value as compact bytes.
pub(crate) fn to_bytes(v: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(v).unwrap_or_default())
}

/// `data: <json>\n\n`.
pub(crate) fn data_frame(v: &Value) -> Bytes {
    let mut buf = Vec::with_capacity(256);
    buf.extend_from_slice(b"data: ");
    let _ = serde_json::to_writer(&mut buf, v);
    buf.extend_from_slice(b"\n\n");
    Bytes::from(buf)
}

/// `event: <name>\ndata: <json>\n\n`.
pub(crate) fn event_frame(name: &str, v: &Value) -> Bytes {
    let mut buf = Vec::with_capacity(256);
    buf.extend_from_slice(b"event: ");
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b"\ndata: ");
    let _ = serde_json::to_writer(&mut buf, v);
    buf.extend_from_slice(b"\n\n");
    Bytes::from(buf)
}

#[cfg(test)]
mod tests;
