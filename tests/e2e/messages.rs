//! Anthropic's Messages API as RouteIQ's front door (`POST /v1/messages`,
//! `/v1/messages/count_tokens`): requests passed through to an Anthropic deployment, translated
//! for an OpenAI-shaped one, streams in both directions, errors in Anthropic's shape, fallbacks,
//! and a recorded Claude Code session replayed against an OpenAI-shaped upstream.

use routeiq::anthropic::{ContentBlock, Message, MessageAccumulator, StopReason, StreamEvent};
use routeiq_testkit::mock::COUNT_TOKENS_PER_TOOL;
use routeiq_testkit::{Behavior, GatewayProcess, MockUpstream, read_sse};
use serde_json::{Value, json};

use crate::{header, metric_value, metrics_text, start, start_with_env};

const MASTER_KEY: &str = "sk-master-messages";

/// An OpenAI-shaped group (`gpt`), an Anthropic group (`claude`), a group whose deployment
/// always fails over to `gpt` (`broken`), prices for the cost header, a master key.
const CONFIG: &str = r#"
model_list:
  - model_name: gpt
    litellm_params:
      model: openai/model-a
      api_base: "{MOCK}"
      api_key: sk-upstream
    model_info:
      id: gpt-a
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
  - model_name: claude
    litellm_params:
      model: anthropic/claude-test
      api_base: "{MOCK_ROOT}"
      api_key: sk-ant-upstream
    model_info:
      id: claude-1
      input_cost_per_token: 0.000003
      output_cost_per_token: 0.000015
  - model_name: broken
    litellm_params:
      model: openai/broken-model
      api_base: "{MOCK}"
      api_key: sk-upstream
    model_info:
      id: broken-1
router_settings:
  num_retries: 0
  fallbacks:
    - broken: ["gpt"]
general_settings:
  master_key: sk-master-messages
  max_request_size_mb: 0.05
"#;

/// `POST {path}` with Anthropic's headers and the master key as `x-api-key`.
async fn send(
    gw: &GatewayProcess,
    path: &str,
    body: &Value,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = routeiq_testkit::client()
        .post(format!("{}{path}", gw.base_url()))
        .header("x-api-key", MASTER_KEY)
        .header("anthropic-version", "2023-06-01")
        .json(body);
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    req.send()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

async fn messages(gw: &GatewayProcess, body: &Value) -> reqwest::Response {
    send(gw, "/v1/messages", body, &[]).await
}

fn text_body(model: &str, text: &str) -> Value {
    json!({"model": model, "max_tokens": 256, "messages": [{"role": "user", "content": text}]})
}

/// Checks Anthropic's error shape and returns `error`.
async fn anthropic_error(resp: reqwest::Response) -> Value {
    let body: Value = resp.json().await.expect("error body is JSON");
    assert_eq!(body["type"], "error", "{body}");
    assert!(body["error"]["type"].is_string(), "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    body["error"].clone()
}

/// A streamed answer read to its end: the events (their `event:` names checked against their
/// `type`) and the message they rebuild, as the Anthropic SDKs rebuild it.
struct Streamed {
    events: Vec<StreamEvent>,
    message: Option<Message>,
    complete: bool,
    error: Option<Value>,
}

impl Streamed {
    fn names(&self) -> Vec<&str> {
        self.events.iter().map(StreamEvent::event_type).collect()
    }

    fn message(&self) -> &Message {
        self.message.as_ref().expect("the stream started a message")
    }

    fn text(&self) -> String {
        text_of(&self.message().content)
    }
}

async fn read_stream(resp: reqwest::Response) -> Streamed {
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), "text/event-stream");
    let out = read_sse(resp).await;
    assert!(out.error.is_none(), "transport error: {:?}", out.error);
    assert!(
        out.trailing.trim().is_empty(),
        "cut event: {:?}",
        out.trailing
    );
    let mut acc = MessageAccumulator::new();
    let mut events = Vec::new();
    let mut error = None;
    for ev in out.events {
        let name = ev.event.clone().expect("every event has an event: line");
        let data: Value = serde_json::from_str(&ev.data).expect("event data is JSON");
        assert_eq!(data["type"], name.as_str(), "{data}");
        if name == "error" {
            error = Some(data.clone());
        }
        let parsed: StreamEvent = serde_json::from_value(data).expect("a Messages stream event");
        acc.push(&parsed)
            .unwrap_or_else(|e| panic!("protocol error at {name}: {e}"));
        events.push(parsed);
    }
    let complete = acc.is_complete();
    Streamed {
        events,
        message: acc.into_message(),
        complete,
        error,
    }
}

fn text_of(content: &[ContentBlock]) -> String {
    content
        .iter()
        .filter_map(|b| match b {
            ContentBlock::Text(t) => Some(t.text.as_str()),
            _ => None,
        })
        .collect()
}

fn weather_tool() -> Value {
    json!({
        "name": "get_weather",
        "description": "The weather in a city.",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    })
}

#[tokio::test]
async fn text_to_an_openai_deployment_is_translated_both_ways() {
    let (mock, gw) = start(CONFIG).await;
    let body = json!({
        "model": "gpt", "max_tokens": 300, "temperature": 0.5,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}},
                   {"type": "text", "text": "Answer in English."}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Say hello."}]}],
        "stop_sequences": ["END"],
        "metadata": {"user_id": "user-42"}
    });
    let resp = send(
        &gw,
        "/v1/messages",
        &body,
        &[("anthropic-beta", "some-beta-2025")],
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), "application/json");
    assert_eq!(header(&resp, "x-routeiq-model"), "gpt-a");
    assert_eq!(header(&resp, "x-routeiq-model-group"), "gpt");
    assert_eq!(header(&resp, "x-routeiq-attempts"), "1");
    assert!(header(&resp, "x-routeiq-strategy").len() > 1);
    let cost: f64 = header(&resp, "x-routeiq-response-cost").parse().unwrap();
    assert!(cost > 0.0, "{cost}");
    let answer: Message = resp.json().await.unwrap();
    assert_eq!(answer.kind, "message");
    assert_eq!(answer.role, "assistant");
    assert!(answer.id.starts_with("msg_"), "{}", answer.id);
    assert_eq!(text_of(&answer.content), "mock answer from model-a");
    assert_eq!(answer.stop_reason, Some(StopReason::EndTurn));
    assert!(answer.usage.input_tokens > 0 && answer.usage.output_tokens > 0);

    // The upstream got an OpenAI chat request: system blocks joined, cache_control dropped,
    // and no anthropic-beta header (it is for Anthropic only).
    let up = mock.last_request().unwrap();
    assert_eq!(up.path, "/v1/chat/completions");
    assert_eq!(up.header("authorization"), Some("Bearer sk-upstream"));
    assert_eq!(up.header("anthropic-beta"), None);
    assert_eq!(up.body["model"], "model-a");
    assert_eq!(
        up.body["messages"],
        json!([
            {"role": "system", "content": "Be brief.\nAnswer in English."},
            {"role": "user", "content": "Say hello."}
        ])
    );
    assert_eq!(up.body["max_tokens"], 300);
    assert_eq!(up.body["temperature"], 0.5);
    assert_eq!(up.body["stop"], json!(["END"]));
    assert_eq!(up.body["user"], "user-42");
    assert!(
        !up.body.to_string().contains("cache_control"),
        "{}",
        up.body
    );

    // Metrics count it under its own route.
    let text = metrics_text(&gw).await;
    assert_eq!(
        metric_value(
            &text,
            r#"routeiq_requests_total{model="gpt",route="messages",status="200"}"#
        ),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test]
async fn an_anthropic_deployment_gets_the_request_as_sent() {
    let (mock, gw) = start(CONFIG).await;
    let body = json!({
        "model": "claude", "max_tokens": 1024, "top_k": 5,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Hello", "cache_control": {"type": "ephemeral"}}
        ]}],
        "tools": [weather_tool(), {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}],
        "metadata": {"user_id": "user-7"},
        "temperature": 1
    });
    // LiteLLM's `extra_headers` member becomes headers, not part of the body.
    let mut sent = body.clone();
    sent["extra_headers"] = json!({"x-client-tag": "t-1"});
    let resp = send(
        &gw,
        "/v1/messages",
        &sent,
        &[("anthropic-beta", "interleaved-thinking-2025-05-14")],
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-routeiq-model"), "claude-1");
    assert!(
        header(&resp, "x-routeiq-response-cost")
            .parse::<f64>()
            .unwrap()
            > 0.0
    );
    let answer: Value = resp.json().await.unwrap();
    // Relayed as Anthropic (the mock) sent it.
    assert!(
        answer["id"].as_str().unwrap().starts_with("msg_mock"),
        "{answer}"
    );
    assert_eq!(answer["model"], "claude-test");
    assert_eq!(answer["content"][0]["text"], "mock answer from claude-test");
    assert_eq!(answer["usage"]["cache_read_input_tokens"], 0);

    let up = mock.last_request().unwrap();
    assert_eq!(up.path, "/v1/messages");
    assert_eq!(up.header("x-api-key"), Some("sk-ant-upstream"));
    assert_eq!(up.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(
        up.header("anthropic-beta"),
        Some("interleaved-thinking-2025-05-14")
    );
    assert_eq!(up.header("x-client-tag"), Some("t-1"));
    // The body is the client's, but for the model: cache_control, thinking, top_k and the
    // server tool kept, numbers as written (`temperature: 1`, not `1.0`).
    let mut expected = body.clone();
    expected["model"] = json!("claude-test");
    assert_eq!(up.body, expected);
}

#[tokio::test]
async fn tools_tool_use_and_tool_result_both_ways() {
    let (mock, gw) = start(CONFIG).await;
    for (model, upstream_model) in [("gpt", "model-a"), ("claude", "claude-test")] {
        let first = json!({
            "model": model, "max_tokens": 256,
            "tools": [weather_tool()],
            "tool_choice": {"type": "auto"},
            "messages": [{"role": "user", "content": "What is the weather in Paris? Use the tool."}]
        });
        let resp = messages(&gw, &first).await;
        assert_eq!(resp.status(), 200, "{model}");
        let answer: Message = resp.json().await.unwrap();
        assert_eq!(answer.stop_reason, Some(StopReason::ToolUse), "{model}");
        let tool_use = answer
            .content
            .iter()
            .find_map(|b| match b {
                ContentBlock::ToolUse(t) => Some(t.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{model}: no tool_use in {:?}", answer.content));
        assert_eq!(tool_use.name, "get_weather");
        assert!(
            tool_use.input["city"].is_string(),
            "{model}: {:?}",
            tool_use.input
        );
        assert!(!tool_use.id.is_empty());

        // The second turn: the tool_use answered with a tool_result.
        let assistant = serde_json::to_value(&answer.content).unwrap();
        let second = json!({
            "model": model, "max_tokens": 256,
            "tools": [weather_tool()],
            "messages": [
                {"role": "user", "content": "What is the weather in Paris? Use the tool."},
                {"role": "assistant", "content": assistant},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": tool_use.id, "content": [{"type": "text", "text": "18C and sunny"}]}
                ]}
            ]
        });
        let resp = messages(&gw, &second).await;
        assert_eq!(resp.status(), 200, "{model}");
        let answer: Message = resp.json().await.unwrap();
        assert_eq!(answer.stop_reason, Some(StopReason::EndTurn));
        assert_eq!(
            text_of(&answer.content),
            format!("mock answer from {upstream_model}")
        );
        let up = mock.last_request().unwrap();
        if model == "gpt" {
            let msgs = up.body["messages"].as_array().unwrap();
            assert_eq!(msgs.len(), 3, "{}", up.body);
            assert_eq!(msgs[1]["role"], "assistant");
            let call = &msgs[1]["tool_calls"][0];
            assert_eq!(call["id"], tool_use.id.as_str());
            assert_eq!(call["type"], "function");
            assert_eq!(call["function"]["name"], "get_weather");
            let args: Value =
                serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
            assert_eq!(args, tool_use.input);
            assert_eq!(
                msgs[2],
                json!({"role": "tool", "tool_call_id": tool_use.id, "content": "18C and sunny"})
            );
            assert_eq!(
                up.body["tools"][0]["function"]["parameters"],
                weather_tool()["input_schema"]
            );
        } else {
            assert_eq!(up.path, "/v1/messages");
            assert_eq!(up.body["messages"], second["messages"]);
        }
    }
}

#[tokio::test]
async fn streams_are_anthropic_events_that_rebuild_the_plain_answer() {
    let (_mock, gw) = start(CONFIG).await;
    for (model, upstream_model) in [("gpt", "model-a"), ("claude", "claude-test")] {
        let mut body = text_body(model, "Tell me something.");
        let plain: Message = messages(&gw, &body).await.json().await.unwrap();
        body["stream"] = json!(true);
        let s = read_stream(messages(&gw, &body).await).await;
        assert!(s.complete, "{model}: {:?}", s.names());
        assert!(s.error.is_none());
        let names = s.names();
        assert_eq!(names.first(), Some(&"message_start"), "{model}");
        assert_eq!(
            names[names.len() - 3..],
            ["content_block_stop", "message_delta", "message_stop"],
            "{model}"
        );
        // One text block: start, deltas (and Anthropic's ping), stop.
        let middle: Vec<&str> = names[1..names.len() - 3]
            .iter()
            .copied()
            .filter(|n| *n != "ping")
            .collect();
        assert_eq!(middle[0], "content_block_start", "{model}: {names:?}");
        assert!(
            middle[1..].iter().all(|n| *n == "content_block_delta") && middle.len() >= 2,
            "{model}: {names:?}"
        );
        if model == "claude" {
            assert!(names.contains(&"ping"), "relayed as sent: {names:?}");
        }
        assert_eq!(s.text(), format!("mock answer from {upstream_model}"));
        assert_eq!(s.text(), text_of(&plain.content));
        let m = s.message();
        assert_eq!(m.stop_reason, Some(StopReason::EndTurn));
        assert_eq!(m.usage.output_tokens, plain.usage.output_tokens, "{model}");
        assert_eq!(m.usage.input_tokens, plain.usage.input_tokens, "{model}");
        // Both calls are accounted for with the upstream's usage (the stream's when it ends).
        for (kind, n) in [
            ("prompt", plain.usage.input_tokens),
            ("completion", plain.usage.output_tokens),
        ] {
            let series = format!(r#"routeiq_tokens_total{{kind="{kind}",model="{model}"}}"#);
            wait_for_metric(&gw, &series, (2 * n) as f64).await;
        }
    }
}

/// Waits (at most 5 s) for a metric to reach `expected` (a stream is counted when its body
/// has ended, just after the client read its last byte).
async fn wait_for_metric(gw: &GatewayProcess, series: &str, expected: f64) {
    let mut last = None;
    for _ in 0..100 {
        last = metric_value(&metrics_text(gw).await, series);
        if last == Some(expected) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{series}: {last:?}, expected {expected}");
}

#[tokio::test]
async fn streamed_tool_use_rebuilds_the_tool_input() {
    let (_mock, gw) = start(CONFIG).await;
    for model in ["gpt", "claude"] {
        let mut body = json!({
            "model": model, "max_tokens": 256, "tools": [weather_tool()],
            "messages": [{"role": "user", "content": "Weather in Rome? Use the tool."}]
        });
        let plain: Message = messages(&gw, &body).await.json().await.unwrap();
        body["stream"] = json!(true);
        let s = read_stream(messages(&gw, &body).await).await;
        assert!(s.complete);
        let m = s.message();
        assert_eq!(m.stop_reason, Some(StopReason::ToolUse), "{model}");
        let streamed: Vec<(&str, &Value)> = m
            .content
            .iter()
            .filter_map(|b| match b {
                ContentBlock::ToolUse(t) => Some((t.name.as_str(), &t.input)),
                _ => None,
            })
            .collect();
        let expected: Vec<(&str, &Value)> = plain
            .content
            .iter()
            .filter_map(|b| match b {
                ContentBlock::ToolUse(t) => Some((t.name.as_str(), &t.input)),
                _ => None,
            })
            .collect();
        assert_eq!(streamed, expected, "{model}");
        assert_eq!(streamed.len(), 1);
        assert!(
            s.events.iter().any(|e| matches!(
                e,
                StreamEvent::ContentBlockDelta {
                    delta: routeiq::anthropic::BlockDelta::InputJsonDelta { .. },
                    ..
                }
            )),
            "{model}: {:?}",
            s.names()
        );
    }
}

#[tokio::test]
async fn a_stream_that_fails_after_its_first_event_ends_with_an_error_event() {
    let (mock, gw) = start(CONFIG).await;
    mock.script("model-a", vec![Behavior::CutStream { after_chunks: 2 }]);
    mock.script(
        "claude-test",
        vec![Behavior::ErrorMidStream { after_chunks: 3 }],
    );
    for (model, kind) in [("gpt", "api_error"), ("claude", "overloaded_error")] {
        let mut body = text_body(model, "Tell me a story.");
        body["stream"] = json!(true);
        let s = read_stream(messages(&gw, &body).await).await;
        assert!(
            !s.complete,
            "{model}: a failed stream must not look complete"
        );
        assert_eq!(s.names().first(), Some(&"message_start"), "{model}");
        assert_eq!(s.names().last(), Some(&"error"), "{model}");
        let error = s.error.expect("an error event");
        assert_eq!(error["error"]["type"], kind, "{model}: {error}");
    }
}

#[tokio::test]
async fn errors_are_in_anthropics_shape() {
    let (mock, gw) = start(CONFIG).await;
    let url = format!("{}/v1/messages", gw.base_url());
    let client = routeiq_testkit::client();

    // No key, a wrong key: 401. The master key as a Bearer token works too.
    let resp = client
        .post(&url)
        .json(&text_body("gpt", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(anthropic_error(resp).await["type"], "authentication_error");
    let resp = client
        .post(&url)
        .header("x-api-key", "sk-wrong")
        .json(&text_body("gpt", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = client
        .post(&url)
        .bearer_auth(MASTER_KEY)
        .json(&text_body("gpt", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "Bearer auth, no anthropic-version");

    // Unknown model: 404 not_found_error naming the models.
    let resp = messages(&gw, &text_body("no-such-model", "hi")).await;
    assert_eq!(resp.status(), 404);
    let e = anthropic_error(resp).await;
    assert_eq!(e["type"], "not_found_error");
    assert!(e["message"].as_str().unwrap().contains("claude"), "{e}");

    // Malformed JSON, missing max_tokens, a body that is not a Messages request: 400.
    let resp = client
        .post(&url)
        .header("x-api-key", MASTER_KEY)
        .header("content-type", "application/json")
        .body("{\"model\": \"gpt\", \"messages\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(anthropic_error(resp).await["type"], "invalid_request_error");
    let resp = messages(
        &gw,
        &json!({"model": "claude", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let e = anthropic_error(resp).await;
    assert_eq!(e["type"], "invalid_request_error");
    assert!(e["message"].as_str().unwrap().contains("max_tokens"), "{e}");
    let resp = messages(
        &gw,
        &json!({"model": "gpt", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert!(
        anthropic_error(resp).await["message"]
            .as_str()
            .unwrap()
            .contains("messages")
    );

    // Over general_settings.max_request_size_mb: 413 request_too_large.
    let resp = messages(&gw, &text_body("gpt", &"x".repeat(80_000))).await;
    assert_eq!(resp.status(), 413);
    assert_eq!(anthropic_error(resp).await["type"], "request_too_large");

    // Another method: 405 in the same shape.
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(anthropic_error(resp).await["type"], "invalid_request_error");

    // No request reached an upstream.
    assert_eq!(mock.hits("/v1/chat/completions"), 1);
    assert_eq!(mock.hits("/v1/messages"), 0);
}

#[tokio::test]
async fn upstream_rate_limits_are_rate_limit_errors_with_retry_after() {
    let (mock, gw) = start(CONFIG).await;
    // An upstream 400 from Anthropic stays a 400 invalid_request_error (and cools nothing
    // down).
    mock.script("claude-test", vec![Behavior::status(400)]);
    let resp = messages(&gw, &text_body("claude", "hi")).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(anthropic_error(resp).await["type"], "invalid_request_error");
    mock.script("model-a", vec![Behavior::rate_limited(Some(7))]);
    mock.script("claude-test", vec![Behavior::rate_limited(Some(4))]);
    for (model, after) in [("gpt", "7"), ("claude", "4")] {
        let resp = messages(&gw, &text_body(model, "hi")).await;
        assert_eq!(resp.status(), 429, "{model}");
        assert_eq!(header(&resp, "retry-after"), after, "{model}");
        let e = anthropic_error(resp).await;
        assert_eq!(e["type"], "rate_limit_error", "{model}: {e}");
    }
}

#[tokio::test]
async fn a_failing_group_falls_back() {
    let (mock, gw) = start(CONFIG).await;
    mock.script("broken-model", vec![Behavior::server_error()]);
    for stream in [false, true] {
        let mut body = text_body("broken", "hi");
        body["stream"] = json!(stream);
        let resp = messages(&gw, &body).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "x-routeiq-fallback"), "true");
        assert_eq!(header(&resp, "x-routeiq-model-group"), "gpt");
        assert_eq!(header(&resp, "x-routeiq-attempts"), "2");
        let text = if stream {
            let s = read_stream(resp).await;
            assert!(s.complete);
            s.text()
        } else {
            let m: Message = resp.json().await.unwrap();
            text_of(&m.content)
        };
        assert_eq!(text, "mock answer from model-a");
    }
    assert_eq!(mock.hits("broken-model"), 2);
}

#[tokio::test]
async fn count_tokens_asks_anthropic_or_estimates() {
    let (mock, gw) = start(CONFIG).await;
    let body = |model: &str| {
        json!({
            "model": model,
            "system": "Be brief.",
            "tools": [weather_tool()],
            "messages": [{"role": "user", "content": "How many tokens is this?"}]
        })
    };
    // Anthropic deployment: its own count (the mock adds 1000 per tool), relayed.
    let resp = send(
        &gw,
        "/v1/messages/count_tokens",
        &body("claude"),
        &[("anthropic-beta", "token-counting-2024-11-01")],
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-routeiq-model"), "claude-1");
    let v: Value = resp.json().await.unwrap();
    let n = v["input_tokens"].as_u64().unwrap();
    assert!(n > COUNT_TOKENS_PER_TOOL, "{v}");
    let up = mock.last_request().unwrap();
    assert_eq!(up.path, "/v1/messages/count_tokens");
    assert_eq!(up.body["model"], "claude-test");
    assert_eq!(up.body["tools"], body("claude")["tools"]);
    assert_eq!(
        up.header("anthropic-beta"),
        Some("token-counting-2024-11-01")
    );
    assert_eq!(up.header("x-api-key"), Some("sk-ant-upstream"));

    // OpenAI-shaped deployment: the gateway's estimate, no upstream call.
    let before = mock.requests().len();
    let resp = send(&gw, "/v1/messages/count_tokens", &body("gpt"), &[]).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    let estimate = v["input_tokens"].as_u64().unwrap();
    assert!(estimate > 0 && estimate < COUNT_TOKENS_PER_TOOL, "{v}");
    assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
    assert_eq!(mock.requests().len(), before);

    // Errors in Anthropic's shape here too.
    let resp = send(&gw, "/v1/messages/count_tokens", &body("nope"), &[]).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(anthropic_error(resp).await["type"], "not_found_error");
    let resp = routeiq_testkit::client()
        .post(format!("{}/v1/messages/count_tokens", gw.base_url()))
        .json(&body("gpt"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(anthropic_error(resp).await["type"], "authentication_error");
}

/// A recorded Claude Code session (two turns) replayed through the gateway to an
/// OpenAI-shaped upstream.
#[tokio::test]
async fn claude_code_session_replays_against_an_openai_upstream() {
    let fixture: Value =
        serde_json::from_str(include_str!("fixtures/claude_code_session.json")).unwrap();
    let (mock, gw): (MockUpstream, GatewayProcess) = start_with_env(
        CONFIG,
        &[("RUST_LOG", "info,routeiq_gateway::messages=debug")],
    )
    .await;
    let headers: Vec<(&str, &str)> = fixture["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
        .collect();
    let turn = |i: usize| {
        let mut t = fixture["turns"][i].clone();
        t["model"] = json!("gpt");
        t
    };

    // Turn 1: the model asks for a tool.
    let resp = send(&gw, "/v1/messages", &turn(0), &headers).await;
    let s = read_stream(resp).await;
    assert!(s.complete, "{:?}", s.names());
    let m = s.message();
    assert_eq!(m.stop_reason, Some(StopReason::ToolUse));
    let ContentBlock::ToolUse(call) = m.content.last().unwrap() else {
        panic!("no tool_use: {:?}", m.content)
    };
    assert_eq!(call.name, "Read");
    assert!(call.input["file_path"].is_string(), "{:?}", call.input);
    assert!(m.usage.output_tokens > 0);
    let up = mock.last_request().unwrap();
    assert_eq!(up.path, "/v1/chat/completions");
    assert_eq!(up.header("anthropic-beta"), None);
    let b = &up.body;
    assert_eq!(b["stream"], true);
    assert_eq!(b["stream_options"]["include_usage"], true);
    assert_eq!(b["max_tokens"], 32000);
    assert_eq!(b["reasoning_effort"], "high");
    assert_eq!(b["user"], "user_7f3a_account_42_session_0b9e");
    assert_eq!(b["messages"][0]["role"], "system");
    assert!(b["messages"][0]["content"].as_str().unwrap().starts_with(
        "You are Claude Code, Anthropic's official CLI for Claude.\nYou are an interactive CLI tool"
    ));
    assert_eq!(b["messages"][1]["role"], "user");
    assert!(
        b["messages"][1]["content"]
            .as_str()
            .unwrap()
            .ends_with("Use the tool to read it.")
    );
    let tools = b["tools"].as_array().unwrap();
    let names: Vec<&str> = tools
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(&names[..3], ["Read", "Bash", "Edit"]);
    assert!(
        names[3].len() <= 64 && names[3].starts_with("mcp__"),
        "{names:?}"
    );
    assert_eq!(
        tools[0]["function"]["parameters"],
        fixture["turns"][0]["tools"][0]["input_schema"]
    );
    assert!(!b.to_string().contains("cache_control"));

    // Turn 2: the tool_use and its tool_result, as Claude Code sends them.
    let resp = send(&gw, "/v1/messages", &turn(1), &headers).await;
    let s = read_stream(resp).await;
    assert!(s.complete);
    assert_eq!(s.message().stop_reason, Some(StopReason::EndTurn));
    assert_eq!(s.text(), "mock answer from model-a");
    let up = mock.last_request().unwrap();
    let msgs = up.body["messages"].as_array().unwrap();
    let roles: Vec<&str> = msgs.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "tool", "user"]);
    assert_eq!(msgs[2]["content"], "I'll read the file.");
    assert_eq!(
        msgs[2]["tool_calls"],
        json!([{"id": "toolu_01XyZ9aBcDeFgHiJkLmNoPq", "type": "function",
                "function": {"name": "Read", "arguments": "{\"file_path\":\"/repo/src/main.rs\"}"}}])
    );
    assert_eq!(msgs[3]["tool_call_id"], "toolu_01XyZ9aBcDeFgHiJkLmNoPq");
    assert!(
        msgs[3]["content"]
            .as_str()
            .unwrap()
            .contains("Hello, world!")
    );
    assert_eq!(msgs[4]["content"], "Keep it short.");

    // What the translation dropped is logged at debug level (fields, no content).
    assert!(
        gw.wait_for_log(
            "anthropic translation note",
            std::time::Duration::from_secs(5)
        )
        .await
    );
    let logs = gw.logs();
    assert!(
        logs.contains("cache_control breakpoint(s) dropped"),
        "{logs}"
    );
    assert!(
        logs.contains("thinking/redacted_thinking block(s) dropped"),
        "{logs}"
    );

    // The same turn to an Anthropic deployment goes through as recorded (signatures,
    // cache_control on tools and all), with Claude Code's beta header.
    let mut to_claude = fixture["turns"][1].clone();
    to_claude["model"] = json!("claude");
    let s = read_stream(send(&gw, "/v1/messages", &to_claude, &headers).await).await;
    assert!(s.complete);
    assert_eq!(s.text(), "mock answer from claude-test");
    let up = mock.last_request().unwrap();
    assert_eq!(up.path, "/v1/messages");
    let mut expected = fixture["turns"][1].clone();
    expected["model"] = json!("claude-test");
    assert_eq!(up.body, expected);
    assert_eq!(
        up.header("anthropic-beta"),
        fixture["headers"]["anthropic-beta"].as_str()
    );
}

/// Every other upstream shape behind `/v1/messages`: Azure, Bedrock (Converse), Gemini and
/// `mock_response` deployments get the translated request; plain and streamed answers, tool
/// use included, come back as Anthropic's.
#[tokio::test]
async fn azure_bedrock_gemini_and_mock_deployments_are_translated() {
    let (mock, gw) = start(
        r#"
model_list:
  - model_name: azure
    litellm_params:
      model: azure/my-deployment
      api_base: "{MOCK_ROOT}"
      api_key: azure-key
      api_version: "2024-06-01"
  - model_name: bedrock
    litellm_params:
      model: bedrock/amazon.nova-lite-v1:0
      aws_region_name: us-west-2
      aws_access_key_id: AKIDROUTEIQTEST
      aws_secret_access_key: test-secret
      aws_bedrock_runtime_endpoint: "{MOCK_ROOT}"
  - model_name: gemini
    litellm_params: {model: gemini/gemini-2.5-flash, api_base: "{MOCK_ROOT}", api_key: g-key}
  - model_name: canned
    litellm_params: {model: anthropic/claude-3-5-haiku-latest, mock_response: "canned answer"}
router_settings:
  num_retries: 0
"#,
    )
    .await;
    let client = routeiq_testkit::client();
    let post = |body: Value| {
        client
            .post(format!("{}/v1/messages", gw.base_url()))
            .header("anthropic-beta", "some-beta")
            .json(&body)
            .send()
    };
    for (model, text) in [
        ("azure", "mock answer from my-deployment"),
        ("bedrock", "mock answer from amazon.nova-lite-v1:0"),
        ("gemini", "mock answer from gemini-2.5-flash"),
        ("canned", "canned answer"),
    ] {
        let mut body = text_body(model, "Hello");
        let resp = post(body.clone()).await.unwrap();
        assert_eq!(resp.status(), 200, "{model}");
        let m: Message = resp.json().await.unwrap();
        assert_eq!(text_of(&m.content), text, "{model}");
        assert_eq!(m.stop_reason, Some(StopReason::EndTurn), "{model}");
        body["stream"] = json!(true);
        let s = read_stream(post(body).await.unwrap()).await;
        assert!(s.complete, "{model}: {:?}", s.names());
        assert_eq!(s.text(), text, "{model}");
        if model == "canned" {
            continue;
        }
        let tools = json!({
            "model": model, "max_tokens": 64, "tools": [weather_tool()], "stream": true,
            "messages": [{"role": "user", "content": "Weather in Oslo? Use the tool."}]
        });
        let s = read_stream(post(tools).await.unwrap()).await;
        assert!(s.complete, "{model}");
        let m = s.message();
        assert_eq!(m.stop_reason, Some(StopReason::ToolUse), "{model}");
        assert!(
            m.content.iter().any(
                |b| matches!(b, ContentBlock::ToolUse(t) if t.name == "get_weather" && t.input["city"].is_string())
            ),
            "{model}: {:?}",
            m.content
        );
    }
    // anthropic-beta reaches none of them.
    assert!(
        mock.requests()
            .iter()
            .all(|r| r.header("anthropic-beta").is_none())
    );
    assert!(mock.requests().len() >= 9);
}
