//! Azure OpenAI: OpenAI's wire format at per-deployment URLs with an `api-version`.

use http::header::{HeaderMap, HeaderName};
use routeiq::router::Deployment;

use super::http::{non_empty, resolve_api_base, resolve_key, secret_header};
use super::openai::{OpenAiCompatibleClient, OpenAiProvider, UrlScheme};
use crate::error::GatewayError;

/// Used when neither `api_version` nor `AZURE_API_VERSION` is set (latest GA at writing).
const DEFAULT_API_VERSION: &str = "2024-10-21";

/// First API version that accepts `stream_options` (streamed usage).
const STREAM_USAGE_SINCE: &str = "2024-09-01";

/// Azure OpenAI: OpenAI's client at
/// `{api_base}/openai/deployments/{deployment}/{chat/completions|completions|embeddings}?api-version=…`
/// where the deployment is the part after `azure/`, authenticating with the `api-key` header.
/// Bodies and answers are OpenAI's; streamed usage is requested only from API versions that
/// support `stream_options`.
///
/// `api_base`/`api_version`/`api_key` from `litellm_params`, else `AZURE_API_BASE`,
/// `AZURE_API_VERSION` (default 2024-10-21) and `AZURE_API_KEY`.
pub fn provider(
    d: &Deployment,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<OpenAiProvider, GatewayError> {
    let base = resolve_api_base(d, env)
        .map(|b| b.trim().trim_end_matches('/').to_string())
        .ok_or_else(|| {
            GatewayError::NotSupported(format!(
                "deployment '{}': azure needs an endpoint; set litellm_params.api_base or AZURE_API_BASE",
                d.id
            ))
        })?;
    let api_version = non_empty(d.params.api_version.clone())
        .or_else(|| non_empty(env("AZURE_API_VERSION")))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| DEFAULT_API_VERSION.to_string());
    let stream_usage =
        api_version.get(..STREAM_USAGE_SINCE.len()).unwrap_or("") >= STREAM_USAGE_SINCE;
    let mut headers = HeaderMap::new();
    if let Some(key) = resolve_key(d, d.provider.api_key_env(), env) {
        headers.insert(
            HeaderName::from_static("api-key"),
            secret_header(d, "", &key)?,
        );
    }
    let urls = UrlScheme::Azure {
        base,
        deployment: d.upstream_model.clone(),
        api_version,
    };
    Ok(OpenAiProvider::with_client(OpenAiCompatibleClient::new(
        d,
        urls,
        headers,
        stream_usage,
    )?))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::Json;
    use axum::extract::{Path, Query, State};
    use axum::routing::post;
    use routeiq::config::SecretString;
    use serde_json::{Value, json};

    use super::super::http::test_support::{client, deployment, params, serve};
    use super::super::openai::Endpoint;
    use super::super::{CallContext, InferenceProvider};
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn url_building() {
        let mut ps = params("azure/my-gpt4o");
        ps.api_base = Some("https://res.openai.azure.com/".into());
        let p = provider(&deployment(ps), &no_env).unwrap();
        assert_eq!(
            p.client.url(Endpoint::Chat),
            "https://res.openai.azure.com/openai/deployments/my-gpt4o/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(
            p.client.url(Endpoint::Embeddings),
            "https://res.openai.azure.com/openai/deployments/my-gpt4o/embeddings?api-version=2024-10-21"
        );
        assert_eq!(
            p.client.url(Endpoint::Completions),
            "https://res.openai.azure.com/openai/deployments/my-gpt4o/completions?api-version=2024-10-21"
        );
        assert!(p.client.stream_usage());
    }

    #[test]
    fn env_fallbacks_and_missing_base() {
        let env = |name: &str| match name {
            "AZURE_API_BASE" => Some("https://env.openai.azure.com".to_string()),
            "AZURE_API_VERSION" => Some("2023-05-15".to_string()),
            "AZURE_API_KEY" => Some("az-key".to_string()),
            _ => None,
        };
        let p = provider(&deployment(params("azure/dep")), &env).unwrap();
        assert_eq!(
            p.client.url(Endpoint::Chat),
            "https://env.openai.azure.com/openai/deployments/dep/chat/completions?api-version=2023-05-15"
        );
        assert!(!p.client.stream_usage());
        let err = provider(&deployment(params("azure/dep")), &no_env).unwrap_err();
        assert!(matches!(err, GatewayError::NotSupported(ref m) if m.contains("AZURE_API_BASE")));
    }

    /// What the fake Azure endpoint received: deployment, api-version, api-key, body.
    type Request = (String, String, Option<String>, Value);

    #[derive(Default, Clone)]
    struct Seen(Arc<Mutex<Option<Request>>>);

    #[tokio::test]
    async fn chat_uses_deployment_url_and_api_key_header() {
        let seen = Seen::default();
        let app = axum::Router::new()
            .route(
                "/openai/deployments/{dep}/chat/completions",
                post(
                    |State(seen): State<Seen>,
                     Path(dep): Path<String>,
                     Query(q): Query<std::collections::HashMap<String, String>>,
                     headers: axum::http::HeaderMap,
                     Json(body): Json<Value>| async move {
                        let key = headers
                            .get("api-key")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string);
                        *seen.0.lock().unwrap() = Some((
                            dep,
                            q.get("api-version").cloned().unwrap_or_default(),
                            key,
                            body,
                        ));
                        Json(json!({"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o",
                            "choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}))
                    },
                ),
            )
            .with_state(seen.clone());
        let url = serve(app).await;
        let mut ps = params("azure/prod-4o");
        ps.api_base = Some(url);
        ps.api_version = Some("2024-10-21".into());
        ps.api_key = Some(SecretString::new("az-secret"));
        let d = deployment(ps);
        let p = provider(&d, &no_env).unwrap();
        let http = client();
        let ctx = CallContext {
            deployment: &d,
            http: &http,
            extra_headers: None,
        };
        let req =
            serde_json::from_value(json!({"model":"g","messages":[{"role":"user","content":"x"}]}))
                .unwrap();
        let resp: routeiq::openai::ChatCompletionResponse =
            p.chat(&ctx, &req).await.unwrap().parse().unwrap();
        assert_eq!(resp.choices[0].message.content.as_deref(), Some("hi"));
        let (dep, version, key, body) = seen.0.lock().unwrap().clone().unwrap();
        assert_eq!(dep, "prod-4o");
        assert_eq!(version, "2024-10-21");
        assert_eq!(key.as_deref(), Some("az-secret"));
        assert_eq!(body["model"], "prod-4o");
    }
}
