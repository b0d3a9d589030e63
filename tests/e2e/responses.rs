//! OpenAI's Responses API (`POST /v1/responses`, `GET`/`DELETE /v1/responses/{id}`): passed
//! through to OpenAI deployments (the mock's `/v1/responses`), translated for the others
//! (Anthropic, Gemini, an OpenAI-compatible chat server, `mock_response`), stored for
//! `previous_response_id` in the state store (in memory, Redis shared by two processes,
//! DynamoDB's size limit), streams event by event, errors in OpenAI's shape, and the official
//! `openai` Python SDK's `client.responses`.

use std::process::Command;

use routeiq::responses::{ResponseAccumulator, ResponseStreamEvent};
use routeiq_testkit::{
    Behavior, GatewayProcess, MockUpstream, RecordedRequest, read_sse, shared_redis_url,
};
use serde_json::{Value, json};

use crate::{bin, error_of, header, render, start};

const KEY: &str = "sk-master";

/// `gpt`: an OpenAI deployment (pass-through); `claude`: Anthropic (translated); `gemini`:
/// Google AI Studio (translated); `compat`: an
/// OpenAI-compatible chat server (translated to chat completions); `canned`: `mock_response`;
/// `primary` fails over to `claude`.
const CONFIG: &str = r#"
model_list:
  - model_name: gpt
    litellm_params: {model: openai/gpt-up, api_base: "{MOCK}", api_key: sk-upstream}
    model_info: {id: gpt-a}
  - model_name: claude
    litellm_params: {model: anthropic/claude-test, api_base: "{MOCK_ROOT}", api_key: sk-ant-upstream}
    model_info: {id: claude-1}
  - model_name: gemini
    litellm_params: {model: gemini/gemini-2.5-flash, api_base: "{MOCK_ROOT}", api_key: g-key}
    model_info: {id: gemini-1}
  - model_name: compat
    litellm_params: {model: hosted_vllm/compat-up, api_base: "{MOCK}", api_key: sk-upstream}
    model_info: {id: compat-1}
  - model_name: canned
    litellm_params: {model: openai/canned, mock_response: "a canned answer"}
    model_info: {id: canned-1}
  - model_name: primary
    litellm_params: {model: openai/primary-up, api_base: "{MOCK}", api_key: sk-upstream}
    model_info: {id: primary-1}
router_settings:
  num_retries: 0
  fallbacks: [{primary: [claude]}]
general_settings:
  master_key: sk-master
"#;

async fn send(
    gw: &GatewayProcess,
    method: reqwest::Method,
    path: &str,
    key: &str,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut req = routeiq_testkit::client()
        .request(method.clone(), format!("{}{path}", gw.base_url()))
        .bearer_auth(key);
    if let Some(b) = body {
        req = req.json(b);
    }
    req.send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

async fn create(gw: &GatewayProcess, body: &Value) -> reqwest::Response {
    send(gw, reqwest::Method::POST, "/v1/responses", KEY, Some(body)).await
}

/// A successful non-streamed create: the Response.
async fn create_ok(gw: &GatewayProcess, body: &Value) -> Value {
    let resp = create(gw, body).await;
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 200, "{text}\n{}", gw.logs());
    serde_json::from_str(&text).unwrap()
}

async fn retrieve(gw: &GatewayProcess, id: &str, key: &str) -> reqwest::Response {
    send(
        gw,
        reqwest::Method::GET,
        &format!("/v1/responses/{id}"),
        key,
        None,
    )
    .await
}

/// The text of a Response's output messages (the SDKs' `output_text`).
fn output_text(r: &Value) -> String {
    r["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "message")
        .flat_map(|i| i["content"].as_array().unwrap().iter())
        .filter(|p| p["type"] == "output_text")
        .map(|p| p["text"].as_str().unwrap())
        .collect()
}

fn requests(mock: &MockUpstream, path: &str) -> Vec<RecordedRequest> {
    mock.requests_to(path)
}

fn last_body(mock: &MockUpstream, path: &str) -> Value {
    requests(mock, path)
        .last()
        .unwrap_or_else(|| panic!("no request to {path}"))
        .body
        .clone()
}

/// A stream read, checked and reassembled: every event named as its payload's `type`,
/// numbered from 0 without gaps, taken by the SDK's reassembly rules; no `[DONE]`.
struct Events {
    types: Vec<String>,
    response: Value,
    accumulated: Option<routeiq::responses::Response>,
}

async fn read_events(resp: reqwest::Response) -> Events {
    assert_eq!(header(&resp, "content-type"), "text/event-stream");
    let out = read_sse(resp).await;
    assert!(out.error.is_none(), "{:?}", out.error);
    assert!(out.trailing.trim().is_empty(), "{:?}", out.trailing);
    let mut acc = ResponseAccumulator::new();
    let mut types = Vec::new();
    let mut last = Value::Null;
    for (n, ev) in out.events.iter().enumerate() {
        assert_ne!(ev.data, "[DONE]", "Responses streams have no [DONE]");
        let v: Value = serde_json::from_str(&ev.data).unwrap();
        let kind = v["type"].as_str().unwrap().to_string();
        assert_eq!(ev.event.as_deref(), Some(kind.as_str()), "{}", ev.data);
        assert_eq!(v["sequence_number"], json!(n), "{}", ev.data);
        let typed: ResponseStreamEvent = serde_json::from_value(v.clone()).unwrap();
        acc.push(&typed)
            .unwrap_or_else(|e| panic!("{e}: event {n} {}", ev.data));
        types.push(kind);
        last = v;
    }
    Events {
        types,
        response: last["response"].clone(),
        accumulated: acc.into_response(),
    }
}

fn tool_body(model: &str, input: Value) -> Value {
    json!({
        "model": model,
        "input": input,
        "tools": [{
            "type": "function", "name": "get_weather", "description": "Weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                "required": ["city"]}
        }]
    })
}

#[tokio::test]
async fn plain_answers_pass_through_or_are_translated() {
    let (mock, gw) = start(CONFIG).await;
    // Translated (Anthropic): a Response built by the gateway.
    let resp = create(
        &gw,
        &json!({"model": "claude", "input": "Hello", "instructions": "Be brief."}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-routeiq-model"), "claude-1");
    assert_eq!(header(&resp, "x-routeiq-model-group"), "claude");
    assert!(resp.headers().contains_key("x-routeiq-strategy"));
    assert_eq!(header(&resp, "x-routeiq-attempts"), "1");
    let r: Value = resp.json().await.unwrap();
    assert!(r["id"].as_str().unwrap().starts_with("resp_"), "{r}");
    assert_eq!(r["object"], "response");
    assert_eq!(r["status"], "completed");
    assert_eq!(r["model"], "claude");
    assert_eq!(r["instructions"], "Be brief.");
    assert_eq!(r["store"], true);
    assert_eq!(output_text(&r), "mock answer from claude-test");
    assert!(r["usage"]["input_tokens"].as_u64().unwrap() > 0, "{r}");
    assert!(r["usage"]["output_tokens"].as_u64().unwrap() > 0, "{r}");
    let sent = last_body(&mock, "/v1/messages");
    assert_eq!(sent["model"], "claude-test");
    assert_eq!(sent["system"], "Be brief.");
    assert_eq!(requests(&mock, "/v1/responses").len(), 0);

    // Passed through (OpenAI): the upstream's Response as sent, its body as the client's but
    // the model.
    let body = json!({"model": "gpt", "input": [{"role": "user", "content": "Hi"}],
        "temperature": 0.25, "include": ["reasoning.encrypted_content"], "store": true});
    let r = create_ok(&gw, &body).await;
    assert!(r["id"].as_str().unwrap().starts_with("resp_mock"), "{r}");
    assert_eq!(r["model"], "gpt-up");
    assert_eq!(output_text(&r), "mock answer from gpt-up");
    let sent = requests(&mock, "/v1/responses").pop().unwrap();
    assert_eq!(sent.header("authorization"), Some("Bearer sk-upstream"));
    let mut expected = body.clone();
    expected["model"] = json!("gpt-up");
    assert_eq!(sent.body, expected);

    // mock_response deployments are translated too.
    let r = create_ok(&gw, &json!({"model": "canned", "input": "Hi"})).await;
    assert_eq!(output_text(&r), "a canned answer");

    // An OpenAI-compatible chat server gets a chat completion.
    let r = create_ok(
        &gw,
        &json!({"model": "compat", "input": "Hi", "max_output_tokens": 50}),
    )
    .await;
    assert_eq!(output_text(&r), "mock answer from compat-up");
    let sent = last_body(&mock, "/v1/chat/completions");
    assert_eq!(sent["model"], "compat-up");
    assert_eq!(sent["max_completion_tokens"], 50);
    assert_eq!(sent["messages"], json!([{"role": "user", "content": "Hi"}]));
}

#[tokio::test]
async fn streams_are_events_that_reassemble_into_the_stored_response() {
    let (mock, gw) = start(CONFIG).await;
    for model in ["claude", "gpt", "compat"] {
        let resp = create(
            &gw,
            &json!({"model": model, "input": "Tell me a story", "stream": true}),
        )
        .await;
        assert_eq!(resp.status(), 200, "{model}");
        assert!(resp.headers().contains_key("x-routeiq-model"));
        let ev = read_events(resp).await;
        assert_eq!(ev.types[0], "response.created", "{model}");
        assert_eq!(ev.types[1], "response.in_progress", "{model}");
        assert_eq!(ev.types.last().unwrap(), "response.completed", "{model}");
        for kind in [
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
        ] {
            assert!(
                ev.types.iter().any(|t| t == kind),
                "{model}: no {kind} in {:?}",
                ev.types
            );
        }
        let upstream = match model {
            "claude" => "claude-test",
            "gpt" => "gpt-up",
            _ => "compat-up",
        };
        let final_response = ev.response;
        assert_eq!(
            output_text(&final_response),
            format!("mock answer from {upstream}")
        );
        assert!(final_response["usage"]["total_tokens"].as_u64().unwrap() > 0);
        let rebuilt = serde_json::to_value(ev.accumulated.unwrap()).unwrap();
        assert_eq!(output_text(&rebuilt), output_text(&final_response));
        // The final Response is stored before `response.completed` goes out.
        let id = final_response["id"].as_str().unwrap();
        let stored = retrieve(&gw, id, KEY).await;
        assert_eq!(stored.status(), 200, "{model}");
        let stored: Value = stored.json().await.unwrap();
        assert_eq!(stored["id"], final_response["id"]);
        assert_eq!(stored["output"], final_response["output"]);
    }
    // The passed-through stream asked the upstream for a stream; the translated ones asked
    // the chat upstreams for usage.
    assert!(requests(&mock, "/v1/responses")[0].is_stream());
    let chat = last_body(&mock, "/v1/chat/completions");
    assert_eq!(chat["stream_options"]["include_usage"], true);
}

/// A function call, then its output in a second turn that names the first.
async fn function_call_round_trip(mock: &MockUpstream, gw: &GatewayProcess, model: &str) {
    let first = create_ok(
        gw,
        &tool_body(model, json!("Please use the tool for Paris")),
    )
    .await;
    let call = first["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "function_call")
        .unwrap_or_else(|| panic!("{model}: no function_call in {first}"))
        .clone();
    assert_eq!(call["name"], "get_weather");
    let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
    assert!(args["city"].is_string(), "{args}");
    let call_id = call["call_id"].as_str().unwrap();
    let mut second = tool_body(
        model,
        json!([{"type": "function_call_output", "call_id": call_id, "output": "sunny, 21°C"}]),
    );
    second["previous_response_id"] = first["id"].clone();
    let answer = create_ok(gw, &second).await;
    assert_eq!(answer["previous_response_id"], first["id"]);
    assert!(!output_text(&answer).is_empty(), "{answer}");
    if model == "claude" {
        // The stored turn became Anthropic's tool_use, the output its tool_result.
        let sent = last_body(mock, "/v1/messages");
        let messages = sent["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 3, "{sent}");
        // The mock's turn was "I'll use the tool." and the call: the tool_use block is kept.
        let tool_use = messages[1]["content"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["type"] == "tool_use")
            .unwrap_or_else(|| panic!("no tool_use in {sent}"));
        assert_eq!(tool_use["id"], call_id);
        assert_eq!(messages[2]["content"][0]["type"], "tool_result");
        assert_eq!(messages[2]["content"][0]["tool_use_id"], call_id);
    } else {
        // The deployment that answered holds the first turn: the id goes on unchanged.
        let sent = last_body(mock, "/v1/responses");
        assert_eq!(sent["previous_response_id"], first["id"]);
        assert_eq!(sent["input"][0]["call_id"], call_id);
    }
}

#[tokio::test]
async fn function_calling_across_two_turns() {
    let (mock, gw) = start(CONFIG).await;
    function_call_round_trip(&mock, &gw, "claude").await;
    function_call_round_trip(&mock, &gw, "gpt").await;
    // Streamed, the call arrives as function_call_arguments events.
    let mut body = tool_body("claude", json!("Please use the tool for Oslo"));
    body["stream"] = json!(true);
    let ev = read_events(create(&gw, &body).await).await;
    assert!(
        ev.types
            .iter()
            .any(|t| t == "response.function_call_arguments.delta")
    );
    assert!(
        ev.types
            .iter()
            .any(|t| t == "response.function_call_arguments.done")
    );
    // The mock says "I'll use the tool." first: a message item, then the call.
    let output = ev.response["output"].as_array().unwrap();
    let call = output
        .iter()
        .find(|i| i["type"] == "function_call")
        .unwrap_or_else(|| panic!("no function_call in {output:?}"));
    assert_eq!(call["name"], "get_weather");
}

#[tokio::test]
async fn previous_response_id_carries_the_conversation_to_a_chat_upstream() {
    let (mock, gw) = start(CONFIG).await;
    let first = create_ok(
        &gw,
        &json!({"model": "compat", "input": "My name is Ada.", "instructions": "one"}),
    )
    .await;
    let second = create_ok(
        &gw,
        &json!({"model": "compat", "input": "What is my name?", "instructions": "two",
            "previous_response_id": first["id"]}),
    )
    .await;
    assert_eq!(second["previous_response_id"], first["id"]);
    let sent = last_body(&mock, "/v1/chat/completions");
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "system", "content": "two"},
            {"role": "user", "content": "My name is Ada."},
            {"role": "assistant", "content": "mock answer from compat-up"},
            {"role": "user", "content": "What is my name?"}
        ])
    );
    // A third turn, streamed, still carries all of it.
    let resp = create(
        &gw,
        &json!({"model": "compat", "input": "Thanks", "stream": true,
            "previous_response_id": second["id"]}),
    )
    .await;
    let ev = read_events(resp).await;
    assert_eq!(ev.types.last().unwrap(), "response.completed");
    let sent = last_body(&mock, "/v1/chat/completions");
    assert_eq!(sent["messages"].as_array().unwrap().len(), 5, "{sent}");
}

#[tokio::test]
async fn a_conversation_moves_between_translated_and_passed_through_deployments() {
    let (mock, gw) = start(CONFIG).await;
    // Turn 1 on Anthropic: the gateway's id, which OpenAI does not know.
    let t1 = create_ok(&gw, &json!({"model": "claude", "input": "Remember: 42."})).await;
    // Turn 2 on OpenAI: the conversation goes inline, without the id.
    let t2 = create_ok(
        &gw,
        &json!({"model": "gpt", "input": "What number?", "previous_response_id": t1["id"]}),
    )
    .await;
    let sent = last_body(&mock, "/v1/responses");
    assert!(sent.get("previous_response_id").is_none(), "{sent}");
    let input = sent["input"].as_array().unwrap();
    assert_eq!(input.len(), 3, "{sent}");
    assert_eq!(input[0]["content"][0]["text"], "Remember: 42.");
    assert_eq!(input[1]["role"], "assistant");
    assert!(
        input[1].get("id").is_none(),
        "stored ids are dropped: {sent}"
    );
    assert_eq!(input[2]["content"][0]["text"], "What number?");
    // Turn 3 on OpenAI names turn 2, which the upstream holds: passed on as is.
    let t3 = create_ok(
        &gw,
        &json!({"model": "gpt", "input": "And doubled?", "previous_response_id": t2["id"]}),
    )
    .await;
    let sent = last_body(&mock, "/v1/responses");
    assert_eq!(sent["previous_response_id"], t2["id"]);
    assert_eq!(sent["input"], json!("And doubled?"));
    // Turn 4 back on Anthropic: the whole conversation, from the store.
    create_ok(
        &gw,
        &json!({"model": "claude", "input": "Bye", "previous_response_id": t3["id"]}),
    )
    .await;
    let sent = last_body(&mock, "/v1/messages");
    assert_eq!(sent["messages"].as_array().unwrap().len(), 7, "{sent}");
}

#[tokio::test]
async fn get_and_delete_and_store_false() {
    let (_mock, gw) = start(CONFIG).await;
    for model in ["claude", "gpt"] {
        let created = create_ok(&gw, &json!({"model": model, "input": "Hi"})).await;
        let id = created["id"].as_str().unwrap();
        let got = retrieve(&gw, id, KEY).await;
        assert_eq!(got.status(), 200);
        let got: Value = got.json().await.unwrap();
        assert_eq!(got, created, "{model}: GET returns the Response as created");

        let path = format!("/v1/responses/{id}");
        let deleted = send(&gw, reqwest::Method::DELETE, &path, KEY, None).await;
        assert_eq!(deleted.status(), 200);
        let deleted: Value = deleted.json().await.unwrap();
        assert_eq!(
            deleted,
            json!({"id": id, "object": "response.deleted", "deleted": true})
        );
        let gone = retrieve(&gw, id, KEY).await;
        assert_eq!(gone.status(), 404);
        let err = error_of(gone).await;
        assert_eq!(
            err["message"],
            format!("Response with id '{id}' not found.")
        );
        let again = send(&gw, reqwest::Method::DELETE, &path, KEY, None).await;
        assert_eq!(again.status(), 404);
        let resp = create(
            &gw,
            &json!({"model": model, "input": "more", "previous_response_id": id}),
        )
        .await;
        assert_eq!(resp.status(), 400);
        assert_eq!(error_of(resp).await["code"], "previous_response_not_found");

        // store: false is answered, not kept.
        let unstored =
            create_ok(&gw, &json!({"model": model, "input": "Hi", "store": false})).await;
        assert_eq!(unstored["store"], false);
        let id = unstored["id"].as_str().unwrap();
        assert_eq!(retrieve(&gw, id, KEY).await.status(), 404);
        let resp = create(
            &gw,
            &json!({"model": "claude", "input": "more", "previous_response_id": id}),
        )
        .await;
        assert_eq!(resp.status(), 400);
    }
    // Without the key, nothing is answered.
    let created = create_ok(&gw, &json!({"model": "canned", "input": "Hi"})).await;
    let id = created["id"].as_str().unwrap();
    let resp = retrieve(&gw, id, "sk-wrong").await;
    assert_eq!(resp.status(), 401);
    assert_eq!(error_of(resp).await["type"], "authentication_error");
}

#[tokio::test]
async fn errors_are_openai_shaped() {
    let (mock, gw) = start(CONFIG).await;
    // Unknown previous_response_id (well-formed or not).
    for id in ["resp_doesnotexist", "../../etc/passwd", "resp:x"] {
        let resp = create(
            &gw,
            &json!({"model": "claude", "input": "Hi", "previous_response_id": id}),
        )
        .await;
        assert_eq!(resp.status(), 400, "{id}");
        let err = error_of(resp).await;
        assert_eq!(err["code"], "previous_response_not_found");
        assert_eq!(err["param"], "previous_response_id");
        assert_eq!(err["type"], "invalid_request_error");
        assert_eq!(
            err["message"],
            format!("Previous response with id '{id}' not found.")
        );
    }
    let resp = retrieve(&gw, "resp_doesnotexist", KEY).await;
    assert_eq!(resp.status(), 404);
    error_of(resp).await;

    // No key, unknown model, bad JSON.
    let resp = send(
        &gw,
        reqwest::Method::POST,
        "/v1/responses",
        "",
        Some(&json!({"model": "gpt", "input": "x"})),
    )
    .await;
    assert_eq!(resp.status(), 401);
    let resp = create(&gw, &json!({"model": "nope", "input": "x"})).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(error_of(resp).await["code"], "model_not_found");
    let resp = routeiq_testkit::client()
        .post(format!("{}/v1/responses", gw.base_url()))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body("{\"model\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    error_of(resp).await;

    // A request the translation cannot carry: 400 naming the field, nothing sent upstream.
    let before = requests(&mock, "/v1/messages").len();
    let resp = create(
        &gw,
        &json!({"model": "claude", "input": [{"type": "function_call_output", "call_id": "call_nowhere", "output": "x"}]}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let err = error_of(resp).await;
    assert!(
        err["param"].as_str().unwrap().starts_with("input.0"),
        "{err}"
    );
    assert_eq!(requests(&mock, "/v1/messages").len(), before);

    // The upstream's own 400 passes on (a request without input, which only OpenAI checks).
    let resp = create(&gw, &json!({"model": "gpt"})).await;
    assert_eq!(resp.status(), 400);
    let err = error_of(resp).await;
    assert!(
        err["message"].as_str().unwrap().contains("'input'"),
        "{err}"
    );

    // The upstream's errors, before any byte: its status (and Retry-After), OpenAI's shape.
    mock.fail_times("gpt-up", 1, Behavior::rate_limited(Some(7)));
    let resp = create(&gw, &json!({"model": "gpt", "input": "x"})).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(header(&resp, "retry-after"), "7");
    assert_eq!(error_of(resp).await["type"], "rate_limit_error");
    mock.fail_times("claude-test", 1, Behavior::server_error());
    let resp = create(
        &gw,
        &json!({"model": "claude", "input": "x", "stream": true}),
    )
    .await;
    assert_eq!(resp.status(), 500);
    assert_eq!(header(&resp, "content-type"), "application/json");
    error_of(resp).await;
}

#[tokio::test]
async fn a_stream_that_breaks_ends_with_error_and_response_failed() {
    let (mock, gw) = start(CONFIG).await;
    for (model, upstream) in [
        ("claude", "claude-test"),
        ("gpt", "gpt-up"),
        ("compat", "compat-up"),
    ] {
        for behavior in [
            Behavior::ErrorMidStream { after_chunks: 3 },
            Behavior::CutStream { after_chunks: 3 },
        ] {
            mock.script(upstream, vec![behavior.clone()]);
            let resp = create(
                &gw,
                &json!({"model": model, "input": "Tell me a story", "stream": true}),
            )
            .await;
            assert_eq!(resp.status(), 200, "{model} {behavior:?}");
            let ev = read_events(resp).await;
            let n = ev.types.len();
            assert!(n >= 3, "{model} {behavior:?}: {:?}", ev.types);
            assert_eq!(
                ev.types[n - 2],
                "error",
                "{model} {behavior:?}: {:?}",
                ev.types
            );
            assert_eq!(ev.types[n - 1], "response.failed", "{model} {behavior:?}");
            assert_eq!(ev.response["status"], "failed");
            assert!(
                ev.response["error"]["message"].is_string(),
                "{}",
                ev.response
            );
            let id = ev.response["id"].as_str().unwrap().to_string();
            // A failed answer is not kept.
            assert_eq!(retrieve(&gw, &id, KEY).await.status(), 404);
        }
        mock.script(upstream, vec![]);
    }
}

#[tokio::test]
async fn responses_fall_back_like_chat() {
    let (mock, gw) = start(CONFIG).await;
    mock.fail_times("primary-up", 1, Behavior::server_error());
    let resp = create(&gw, &json!({"model": "primary", "input": "Hi"})).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-routeiq-fallback"), "true");
    assert_eq!(header(&resp, "x-routeiq-model"), "claude-1");
    assert_eq!(header(&resp, "x-routeiq-attempts"), "2");
    let r: Value = resp.json().await.unwrap();
    assert_eq!(output_text(&r), "mock answer from claude-test");
    assert_eq!(mock.hits("primary-up"), 1);
    // The request counted under its route and group.
    let metrics = crate::metrics_text(&gw).await;
    assert!(
        metrics.contains("route=\"responses\""),
        "no responses route in metrics"
    );
}

/// Two gateway processes on one Redis: a conversation started on one continues on the
/// other; another key sees nothing.
#[tokio::test]
async fn previous_response_id_across_two_gateway_processes_sharing_redis() {
    let url = shared_redis_url();
    let (host, port) = url
        .trim_start_matches("redis://")
        .rsplit_once(':')
        .expect("ROUTEIQ_TEST_REDIS_URL is redis://host:port");
    let mock = MockUpstream::start().await;
    let prefix = format!("responses-{}-{}", std::process::id(), fastrand_suffix());
    let config = format!(
        "{}  redis_host: {host}\n  redis_port: {port}\n",
        render(CONFIG, &mock).replace("general_settings:\n  master_key: sk-master\n", "")
    );
    let config = format!("{config}general_settings:\n  master_key: sk-master\n");
    let other_key = config.replace("master_key: sk-master", "master_key: sk-other");
    let env = [("ROUTEIQ_STATE_PREFIX", format!("{prefix}:"))];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = GatewayProcess::start(bin(), &config, &env).await.unwrap();
    let b = GatewayProcess::start(bin(), &config, &env).await.unwrap();
    let c = GatewayProcess::start(bin(), &other_key, &env)
        .await
        .unwrap();
    let ready: Value = crate::get(&a, "/health/readiness")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ready["state_backend"], "redis");

    let first = create_ok(&a, &json!({"model": "compat", "input": "My name is Ada."})).await;
    // Streamed on the other process, continuing the first.
    let resp = create(
        &b,
        &json!({"model": "compat", "input": "What is my name?", "stream": true,
            "previous_response_id": first["id"]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let second = read_events(resp).await.response;
    let sent = last_body(&mock, "/v1/chat/completions");
    assert_eq!(sent["messages"][0]["content"], "My name is Ada.");
    assert_eq!(sent["messages"].as_array().unwrap().len(), 3, "{sent}");
    // Stored by b, read by a.
    let got = retrieve(&a, second["id"].as_str().unwrap(), KEY).await;
    assert_eq!(got.status(), 200);
    // A gateway with another key shares the store but not the responses.
    let id = first["id"].as_str().unwrap();
    assert_eq!(retrieve(&c, id, "sk-other").await.status(), 404);
    let resp = send(
        &c,
        reqwest::Method::POST,
        "/v1/responses",
        "sk-other",
        Some(&json!({"model": "compat", "input": "x", "previous_response_id": id})),
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert_eq!(error_of(resp).await["code"], "previous_response_not_found");
    // Deleted on b, gone on a.
    let deleted = send(
        &b,
        reqwest::Method::DELETE,
        &format!("/v1/responses/{id}"),
        KEY,
        None,
    )
    .await;
    assert_eq!(deleted.status(), 200);
    assert_eq!(retrieve(&a, id, KEY).await.status(), 404);
}

fn fastrand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// With DynamoDB (400 KB items), a turn too large to store is answered but not kept, and
/// says so when named later.
#[tokio::test]
async fn a_turn_over_dynamodbs_item_limit_is_answered_but_not_stored() {
    let mock = MockUpstream::start().await;
    let env = routeiq_testkit::dynamodb_state_env(&format!(
        "responses-{}-{}",
        std::process::id(),
        fastrand_suffix()
    ));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let gw = GatewayProcess::start(bin(), &render(CONFIG, &mock), &env)
        .await
        .unwrap();
    let big = "word ".repeat(100_000); // 500 KB
    let r = create_ok(&gw, &json!({"model": "claude", "input": big})).await;
    assert_eq!(output_text(&r), "mock answer from claude-test");
    let id = r["id"].as_str().unwrap();
    let got = retrieve(&gw, id, KEY).await;
    assert_eq!(got.status(), 404);
    let err = error_of(got).await;
    assert!(
        err["message"].as_str().unwrap().contains("was not stored"),
        "{err}"
    );
    let resp = create(
        &gw,
        &json!({"model": "claude", "input": "more", "previous_response_id": id}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let err = error_of(resp).await;
    assert_eq!(err["code"], "previous_response_not_found");
    assert!(
        err["message"].as_str().unwrap().contains("larger than"),
        "{err}"
    );
    // A small turn on the same store is kept, and the store stays healthy.
    let small = create_ok(&gw, &json!({"model": "claude", "input": "Hi"})).await;
    assert_eq!(
        retrieve(&gw, small["id"].as_str().unwrap(), KEY)
            .await
            .status(),
        200
    );
    let ready: Value = crate::get(&gw, "/health/readiness")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ready["state"]["status"], "healthy", "{ready}");
}

/// The official OpenAI Python SDK's `client.responses` against OpenAI- (passed through),
/// Anthropic- and Gemini-shaped (translated) upstreams.
#[tokio::test]
async fn openai_python_sdk_responses() {
    let python = std::env::var("ROUTEIQ_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_sdk = Command::new(&python)
        .args(["-c", "import openai; openai.OpenAI(api_key='x').responses"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_sdk,
        "{python} cannot import an openai SDK with client.responses: run the tests with `bash tests/run.sh` (it installs it) or set ROUTEIQ_TEST_PYTHON"
    );
    let (_mock, gw) = start(CONFIG).await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/sdk/openai_responses_check.py"
    );
    let base = gw.base_url();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .args([script, &base, KEY, "claude", "gpt", "gemini"])
            .env("OPENAI_LOG", "")
            .env_remove("OPENAI_API_KEY")
            .env_remove("OPENAI_BASE_URL")
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "Responses SDK check failed:\n{stdout}\n{stderr}\ngateway logs:\n{}",
        gw.logs()
    );
    assert!(
        stdout.contains("ALL RESPONSES SDK CHECKS PASSED"),
        "{stdout}"
    );
}
