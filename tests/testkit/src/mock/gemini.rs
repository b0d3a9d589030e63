//! Google's Gemini wire format, as AI Studio (`/v1beta/models/{model}:{method}`, an
//! `x-goog-api-key`) and Vertex AI (`/v1/projects/{p}/locations/{l}/publishers/google/models/
//! {model}:{method}`, a bearer token) serve it, and the token endpoints Vertex AI clients use:
//! an OAuth token endpoint (`POST /token`: a service-account JWT, checked against
//! [`TEST_SERVICE_ACCOUNT_PUBLIC_KEY`], or a refresh token) and the metadata server's
//! (`GET /computeMetadata/v1/instance/service-accounts/default/token`).

use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::util::{content_chars, embedding, pieces, sample_args, tokens};
use super::{Answer, Inner, data_frame, to_bytes};

type Rejection = (u16, Value);

/// The bearer token the mock's token endpoints issue (and Vertex AI routes accept).
pub const MOCK_ACCESS_TOKEN: &str = "ya29.mock-access-token";

/// The public half of [`crate::TEST_SERVICE_ACCOUNT_PEM`]: the token endpoint
/// verifies service-account assertions with it.
pub const TEST_SERVICE_ACCOUNT_PUBLIC_KEY: &str =
    include_str!("../../fixtures/service_account_public.pem");

/// A Gemini API method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Generate,
    Stream,
    BatchEmbed,
    Predict,
}

/// `(model, method, vertex)` of a Gemini path, if it is one.
pub(crate) fn parse_path(path: &str) -> Option<(String, Method, bool)> {
    let (vertex, rest) = if let Some(rest) = path.strip_prefix("/v1beta/models/") {
        (false, rest)
    } else if let Some(rest) = path.strip_prefix("/v1/projects/") {
        let (_, model_part) = rest.split_once("/publishers/google/models/")?;
        (true, model_part)
    } else {
        return None;
    };
    let (model, method) = rest.rsplit_once(':')?;
    let method = match method {
        "generateContent" => Method::Generate,
        "streamGenerateContent" => Method::Stream,
        "batchEmbedContents" if !vertex => Method::BatchEmbed,
        "predict" if vertex => Method::Predict,
        _ => return None,
    };
    (!model.is_empty()).then(|| (model.to_string(), method, vertex))
}

fn status_name(code: u16) -> &'static str {
    match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    }
}

/// The model of a Claude-on-Vertex path (`/v1/projects/{p}/locations/{l}/publishers/
/// anthropic/models/{model}:rawPredict` or `:streamRawPredict`).
pub(crate) fn vertex_anthropic_model(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/v1/projects/")?;
    let (_, model_part) = rest.split_once("/publishers/anthropic/models/")?;
    let (model, method) = model_part.rsplit_once(':')?;
    (matches!(method, "rawPredict" | "streamRawPredict") && !model.is_empty())
        .then(|| model.to_string())
}

/// Vertex AI's Claude body: no `model` (the URL names it) and
/// `anthropic_version: vertex-2023-10-16`.
pub(crate) fn check_vertex_claude_body(body: &Value) -> Result<(), Rejection> {
    if body.get("model").is_some() {
        return Err(invalid("model: Extra inputs are not permitted"));
    }
    match body.get("anthropic_version").and_then(Value::as_str) {
        Some("vertex-2023-10-16") => Ok(()),
        _ => Err(invalid(
            "anthropic_version: Field required (vertex-2023-10-16)",
        )),
    }
}

/// Google's error JSON.
pub(crate) fn error(code: u16, message: &str) -> Value {
    json!({"error": {"code": code, "message": message, "status": status_name(code)}})
}

/// An error body given for the OpenAI shape, re-shaped for Google.
pub(crate) fn reshape_error(code: u16, body: Value) -> Value {
    let message = body
        .get("error")
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("mock error")
        .to_string();
    error(code, &message)
}

/// The error event of a stream that fails.
pub(crate) fn error_frame() -> bytes::Bytes {
    data_frame(&error(
        503,
        "The model is overloaded. Please try again later.",
    ))
}

/// AI Studio: an API key (`x-goog-api-key` or `?key=`), matching the expected one if set.
/// Vertex AI: `Authorization: Bearer` with the token the mock issues.
pub(crate) fn check_auth(
    st: &Inner,
    headers: &HeaderMap,
    query: Option<&str>,
    vertex: bool,
) -> Result<(), Rejection> {
    if vertex {
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        return match bearer {
            Some(t) if t == MOCK_ACCESS_TOKEN => Ok(()),
            Some(_) => Err((
                401,
                error(401, "Request had invalid authentication credentials."),
            )),
            None => Err((
                401,
                error(
                    401,
                    "Request is missing required authentication credential.",
                ),
            )),
        };
    }
    let key = headers
        .get("x-goog-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            query
                .and_then(|q| super::util::query_param(q, "key"))
                .map(str::to_string)
        })
        .filter(|k| !k.is_empty());
    match (key, st.api_key()) {
        (None, _) => Err((
            403,
            error(
                403,
                "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
            ),
        )),
        (Some(k), Some(expected)) if k != expected => Err((
            400,
            error(400, "API key not valid. Please pass a valid API key."),
        )),
        _ => Ok(()),
    }
}

fn invalid(message: impl AsRef<str>) -> Rejection {
    (400, error(400, message.as_ref()))
}

/// Validates a `generateContent` body like Gemini does (the parts a translating gateway can
/// get wrong).
pub(crate) fn validate(method: Method, body: &Value) -> Result<(), Rejection> {
    let Some(obj) = body.as_object() else {
        return Err(invalid("Invalid JSON payload received."));
    };
    if matches!(method, Method::BatchEmbed | Method::Predict) {
        let key = if method == Method::Predict {
            "instances"
        } else {
            "requests"
        };
        return match obj.get(key).and_then(Value::as_array) {
            Some(list) if !list.is_empty() => Ok(()),
            _ => Err(invalid(format!("* {key}: must not be empty"))),
        };
    }
    const FIELDS: &[&str] = &[
        "contents",
        "systemInstruction",
        "tools",
        "toolConfig",
        "generationConfig",
        "safetySettings",
        "cachedContent",
        "labels",
    ];
    for key in obj.keys() {
        if !FIELDS.contains(&key.as_str()) {
            return Err(invalid(format!(
                "Invalid JSON payload received. Unknown name \"{key}\": Cannot find field."
            )));
        }
    }
    let Some(contents) = obj
        .get("contents")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
    else {
        return Err(invalid(
            "* GenerateContentRequest.contents: contents is not specified",
        ));
    };
    let mut open_calls = 0usize;
    for (i, c) in contents.iter().enumerate() {
        let role = c.get("role").and_then(Value::as_str).unwrap_or("user");
        if role != "user" && role != "model" {
            return Err(invalid(format!(
                "Please use a valid role: user, model. (contents[{i}].role: {role})"
            )));
        }
        let Some(parts) = c
            .get("parts")
            .and_then(Value::as_array)
            .filter(|p| !p.is_empty())
        else {
            return Err(invalid(format!(
                "* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
            )));
        };
        let calls = parts
            .iter()
            .filter(|p| p.get("functionCall").is_some())
            .count();
        let responses = parts
            .iter()
            .filter(|p| p.get("functionResponse").is_some())
            .count();
        if responses > 0 && responses != open_calls {
            return Err(invalid(
                "Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.",
            ));
        }
        for p in parts {
            if let Some(r) = p.get("functionResponse")
                && (r.get("name").and_then(Value::as_str).is_none()
                    || !r.get("response").is_some_and(Value::is_object))
            {
                return Err(invalid(
                    "functionResponse needs a name and an object response",
                ));
            }
        }
        open_calls = calls;
    }
    Ok(())
}

fn last_user_text(body: &Value) -> String {
    body.get("contents")
        .and_then(Value::as_array)
        .and_then(|c| c.last())
        .filter(|c| c.get("role").and_then(Value::as_str).unwrap_or("user") == "user")
        .and_then(|c| c.get("parts"))
        .and_then(Value::as_array)
        .map(|parts| {
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase()
        })
        .unwrap_or_default()
}

/// The tool to call: the one `allowedFunctionNames` names, else the first.
fn chosen_tool(body: &Value) -> Option<(String, Option<&Value>)> {
    let decls = body
        .get("tools")?
        .as_array()?
        .iter()
        .filter_map(|t| t.get("functionDeclarations").and_then(Value::as_array))
        .flatten()
        .collect::<Vec<_>>();
    let mode = body
        .pointer("/toolConfig/functionCallingConfig/mode")
        .and_then(Value::as_str);
    if decls.is_empty() || mode == Some("NONE") {
        return None;
    }
    if mode != Some("ANY") && !last_user_text(body).contains("use the tool") {
        return None;
    }
    let allowed = body
        .pointer("/toolConfig/functionCallingConfig/allowedFunctionNames/0")
        .and_then(Value::as_str);
    let tool = decls
        .iter()
        .find(|d| allowed.is_some() && d.get("name").and_then(Value::as_str) == allowed)
        .or_else(|| decls.first())?;
    Some((
        tool.get("name")?.as_str()?.to_string(),
        tool.get("parameters"),
    ))
}

/// The answer of a Gemini method.
pub(crate) fn answer(
    st: &Inner,
    model: &str,
    method: Method,
    body: &Value,
    text: Option<&str>,
) -> Answer {
    match method {
        Method::BatchEmbed | Method::Predict => return embeddings(method, body),
        Method::Generate | Method::Stream => {}
    }
    let n = st.next_id();
    let mut prompt_chars = body
        .pointer("/systemInstruction/parts")
        .map(content_chars)
        .unwrap_or(0);
    for c in body
        .get("contents")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        prompt_chars += c.get("parts").map(content_chars).unwrap_or(0);
    }
    let prompt_tokens = tokens(prompt_chars);
    let (parts, finish): (Vec<Value>, &str) = match (text, chosen_tool(body)) {
        (None, Some((name, schema))) => (
            vec![json!({"functionCall": {"name": name, "args": sample_args(schema)}})],
            "STOP",
        ),
        (Some(t), _) => (vec![json!({"text": t})], "STOP"),
        (None, None) => (
            vec![json!({"text": format!("mock answer from {model}")})],
            "STOP",
        ),
    };
    let out_chars: usize = parts.iter().map(|p| p.to_string().len()).sum();
    let completion_tokens = tokens(out_chars);
    let usage = json!({"promptTokenCount": prompt_tokens, "candidatesTokenCount": completion_tokens,
        "totalTokenCount": prompt_tokens + completion_tokens});
    let response_id = format!("mockresp{n:08}");
    if method == Method::Generate {
        let v = json!({
            "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}],
            "usageMetadata": usage, "modelVersion": model, "responseId": response_id,
        });
        return Answer {
            json: to_bytes(&v),
            frames: Vec::new(),
            stream: false,
        };
    }
    // A stream: text word by word, a call in one event, the last event with the finish reason
    // and the usage. No terminator: the connection closes.
    let mut events: Vec<Value> = Vec::new();
    for p in &parts {
        match p.get("text").and_then(Value::as_str) {
            Some(t) => events.extend(pieces(t).into_iter().map(|w| json!([{"text": w}]))),
            None => events.push(json!([p])),
        }
    }
    let last = events.len().saturating_sub(1);
    let frames = events
        .into_iter()
        .enumerate()
        .map(|(i, parts)| {
            let mut candidate = json!({"content": {"role": "model", "parts": parts}, "index": 0});
            let mut v = json!({"modelVersion": model, "responseId": response_id});
            if i == last {
                candidate["finishReason"] = json!(finish);
                v["usageMetadata"] = usage.clone();
            }
            v["candidates"] = json!([candidate]);
            data_frame(&v)
        })
        .collect();
    Answer {
        json: bytes::Bytes::new(),
        frames,
        stream: true,
    }
}

fn embeddings(method: Method, body: &Value) -> Answer {
    let v = if method == Method::Predict {
        let predictions: Vec<Value> = body
            .get("instances")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|i| {
                let text = i.get("content").and_then(Value::as_str).unwrap_or_default();
                json!({"embeddings": {"values": embedding(text, 8),
                    "statistics": {"token_count": tokens(text.chars().count()), "truncated": false}}})
            })
            .collect();
        json!({"predictions": predictions})
    } else {
        let list: Vec<Value> = body
            .get("requests")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|r| {
                let text = r
                    .pointer("/content/parts/0/text")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                json!({"values": embedding(text, 8)})
            })
            .collect();
        json!({"embeddings": list})
    };
    Answer {
        json: to_bytes(&v),
        frames: Vec::new(),
        stream: false,
    }
}

/// `POST /token`: a service-account assertion (RS256, signed by the test key, audience this
/// endpoint, the cloud-platform scope) or a refresh token, exchanged for
/// [`MOCK_ACCESS_TOKEN`]. A form body, as OAuth has it.
pub(crate) fn token(body: &[u8]) -> (u16, Value) {
    let form: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let ok = json!({"access_token": MOCK_ACCESS_TOKEN, "expires_in": 3599, "token_type": "Bearer"});
    match get("grant_type") {
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer") => {
            let Some(assertion) = get("assertion") else {
                return (
                    400,
                    json!({"error": "invalid_request", "error_description": "no assertion"}),
                );
            };
            match verify_assertion(assertion) {
                Ok(()) => (200, ok),
                Err(e) => (
                    400,
                    json!({"error": "invalid_grant", "error_description": e}),
                ),
            }
        }
        Some("refresh_token") if get("refresh_token").is_some_and(|t| !t.is_empty()) => (200, ok),
        _ => (400, json!({"error": "unsupported_grant_type"})),
    }
}

#[derive(serde::Deserialize)]
struct Claims {
    iss: String,
    scope: String,
}

fn verify_assertion(jwt: &str) -> Result<(), String> {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
    let key = DecodingKey::from_rsa_pem(TEST_SERVICE_ACCOUNT_PUBLIC_KEY.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut v = Validation::new(Algorithm::RS256);
    // The audience is this endpoint's URL, whatever port the mock got.
    v.validate_aud = false;
    let claims = decode::<Claims>(jwt, &key, &v)
        .map_err(|e| format!("Invalid JWT Signature: {e}"))?
        .claims;
    if claims.scope != "https://www.googleapis.com/auth/cloud-platform" || claims.iss.is_empty() {
        return Err("wrong scope or issuer".into());
    }
    Ok(())
}

/// The metadata server's token: only with `Metadata-Flavor: Google`.
pub(crate) fn metadata_token(headers: &HeaderMap) -> (u16, Value) {
    if headers.get("metadata-flavor").and_then(|v| v.to_str().ok()) != Some("Google") {
        return (
            403,
            json!({"error": "Missing Metadata-Flavor:Google header"}),
        );
    }
    (
        200,
        json!({"access_token": MOCK_ACCESS_TOKEN, "expires_in": 3599, "token_type": "Bearer"}),
    )
}
