//! The AWS Lambda front door: the same axum app, driven by `lambda_http` instead of a TCP
//! listener when the binary runs inside Lambda (`AWS_LAMBDA_RUNTIME_API` is set).
//!
//! With response streaming (`ROUTEIQ_LAMBDA_STREAMING`, default on: function URLs with
//! `InvokeMode: RESPONSE_STREAM`) SSE chunks reach the client as they are produced; API Gateway
//! HTTP APIs cannot stream, so a function behind one runs buffered
//! (`ROUTEIQ_LAMBDA_STREAMING=false`). API Gateway v1/v2, function URL and ALB events are all
//! accepted; base64 bodies are decoded by `lambda_http`, and the stage prefix it adds to REST
//! API paths (`/prod/v1/models`) is removed so routes match.

use axum::body::Body;
use lambda_http::RequestExt;

/// Whether this process runs inside the Lambda runtime.
pub fn in_lambda(env: &dyn Fn(&str) -> Option<String>) -> bool {
    env("AWS_LAMBDA_RUNTIME_API").is_some_and(|v| !v.is_empty())
}

/// Whether responses stream (`ROUTEIQ_LAMBDA_STREAMING`, default true).
pub fn streaming(env: &dyn Fn(&str) -> Option<String>) -> bool {
    env("ROUTEIQ_LAMBDA_STREAMING").is_none_or(|v| !v.trim().eq_ignore_ascii_case("false"))
}

/// A Lambda event (as `lambda_http` decoded it) as a request for the axum app: the raw
/// path without the stage prefix, the query string kept, the body as bytes.
pub fn to_app_request(req: lambda_http::Request) -> axum::extract::Request {
    let raw_path = req.raw_http_path().to_string();
    let (mut parts, body) = req.into_parts();
    if !raw_path.is_empty() && raw_path != parts.uri.path() {
        let path_and_query = match parts.uri.query() {
            Some(q) => format!("{raw_path}?{q}"),
            None => raw_path,
        };
        let mut uri = parts.uri.clone().into_parts();
        if let Ok(pq) = path_and_query.parse() {
            uri.path_and_query = Some(pq);
            if let Ok(u) = axum::http::Uri::from_parts(uri) {
                parts.uri = u;
            }
        }
    }
    let body = match body {
        lambda_http::Body::Empty => Body::empty(),
        lambda_http::Body::Text(s) => Body::from(s),
        lambda_http::Body::Binary(b) => Body::from(b),
        _ => Body::empty(),
    };
    axum::extract::Request::from_parts(parts, body)
}

/// Runs `app` under the Lambda runtime until the runtime stops the process.
pub async fn run(app: axum::Router, streaming: bool) -> Result<(), lambda_http::Error> {
    let service = tower::ServiceBuilder::new()
        .map_request(to_app_request)
        .service(app);
    if streaming {
        lambda_http::run_with_streaming_response(service).await
    } else {
        lambda_http::run(service).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str) -> lambda_http::Request {
        lambda_http::request::from_str(json).expect("event parses")
    }

    #[test]
    fn rest_api_stage_is_removed_and_http_api_paths_kept() {
        let rest = event(include_str!(
            "../../../tests/events/apigw-rest-v1-stage.json"
        ));
        let req = to_app_request(rest);
        assert_eq!(req.uri().path(), "/v1/models");
        assert_eq!(req.method(), "GET");

        let http = event(include_str!("../../../tests/events/apigw-http-v2.json"));
        let req = to_app_request(http);
        assert_eq!(req.uri().path(), "/v1/chat/completions");
        assert_eq!(
            req.headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer sk-routeiq-test")
        );
    }

    #[tokio::test]
    async fn base64_bodies_are_decoded() {
        let url = event(include_str!(
            "../../../tests/events/function-url-stream-base64.json"
        ));
        let req = to_app_request(url);
        let bytes = axum::body::to_bytes(req.into_body(), 1 << 20)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["stream"], true);
        assert_eq!(v["messages"][0]["content"], "Hello from a function URL");
    }

    #[test]
    fn mode_switches() {
        let env = |k: &str| (k == "AWS_LAMBDA_RUNTIME_API").then(|| "127.0.0.1:9001".to_string());
        assert!(in_lambda(&env));
        assert!(!in_lambda(&|_| None));
        assert!(streaming(&|_| None));
        assert!(!streaming(
            &|k| (k == "ROUTEIQ_LAMBDA_STREAMING").then(|| "false".into())
        ));
    }
}
