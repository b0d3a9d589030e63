//! The mock's answers that a client must not trust blindly: [`Behavior::Raw`],
//! [`Behavior::Huge`] and [`Behavior::EndlessLine`], scripted and from the header.

use std::time::Duration;

use serde_json::{Value, json};

use super::{BEHAVIOR_HEADER, Behavior, MockUpstream};

fn chat(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
}

async fn post(mock: &MockUpstream, body: &Value, behavior: Option<&str>) -> reqwest::Response {
    let mut req = crate::client()
        .post(format!("{}/chat/completions", mock.openai_base()))
        .timeout(Duration::from_secs(10))
        .json(body);
    if let Some(b) = behavior {
        req = req.header(BEHAVIOR_HEADER, b);
    }
    match req.send().await {
        Ok(r) => r,
        Err(e) => panic!("POST to the mock: {e:#}"),
    }
}

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn raw_answers_exactly_what_it_is_given() {
    let mock = MockUpstream::start().await;
    mock.script(
        "m",
        vec![Behavior::raw_with_headers(
            429,
            "application/json",
            r#"{"error":{"message":"slow"}}"#,
            &[("retry-after", "99999999999999999999")],
        )],
    );
    let resp = post(&mock, &chat("m", false), None).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(header(&resp, "content-type"), Some("application/json"));
    assert_eq!(header(&resp, "retry-after"), Some("99999999999999999999"));
    assert_eq!(
        resp.text().await.expect("body"),
        r#"{"error":{"message":"slow"}}"#
    );

    // From the header, on a streaming request: no SSE, just the page.
    let resp = post(
        &mock,
        &chat("other", true),
        Some("raw:200:text/html:<html><body>bad gateway: try later</body></html>"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), Some("text/html"));
    assert_eq!(
        resp.text().await.expect("body"),
        "<html><body>bad gateway: try later</body></html>"
    );
    assert_eq!(mock.hits("m"), 1);
    assert_eq!(mock.hits("other"), 1);
}

#[tokio::test]
async fn huge_is_a_valid_answer_of_the_given_size_sent_chunked() {
    let mock = MockUpstream::start().await;
    let n = 300_000;
    let resp = post(&mock, &chat("m", false), Some(&format!("huge:{n}"))).await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers().get("content-length").is_none(),
        "huge answers are chunked: {:?}",
        resp.headers()
    );
    let v: Value = resp.json().await.expect("a JSON chat completion");
    assert_eq!(v["object"], "chat.completion");
    let content = v["choices"][0]["message"]["content"]
        .as_str()
        .expect("content");
    assert_eq!(content.len(), n);
    assert!(content.bytes().all(|b| b == b'x' || b == b' '));

    // Streaming: the same content over many events, then [DONE].
    mock.script("s", vec![Behavior::Huge { content_bytes: n }]);
    let resp = post(&mock, &chat("s", true), None).await;
    assert_eq!(resp.status(), 200);
    let events = crate::sse_events(resp).await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    assert!(events.len() > 100, "{} events", events.len());
    let streamed: usize = events
        .iter()
        .filter(|e| *e != "[DONE]")
        .map(|e| {
            let chunk: Value = serde_json::from_str(e).expect("chunk JSON");
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .map_or(0, str::len)
        })
        .sum();
    assert_eq!(streamed, n);
}

/// Reads `resp` until `want` bytes arrived (at most 5 s), then checks nothing more comes for
/// 300 ms and the body has not ended. Returns what was read.
async fn read_then_silence(mut resp: reqwest::Response, want: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while got.len() < want {
        match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Ok(Ok(Some(c))) => got.extend_from_slice(&c),
            Ok(Ok(None)) => panic!("body ended after {} of {want} bytes", got.len()),
            Ok(Err(e)) => panic!("body failed after {} bytes: {e:#}", got.len()),
            Err(_) => panic!("only {} of {want} bytes within 5 s", got.len()),
        }
    }
    assert_eq!(got.len(), want, "no more than the bytes asked for");
    match tokio::time::timeout(Duration::from_millis(300), resp.chunk()).await {
        Err(_) => {}
        Ok(other) => panic!("expected silence, got {other:?}"),
    }
    got
}

#[tokio::test]
async fn endless_line_never_ends_the_line_or_the_body() {
    let mock = MockUpstream::start().await;
    let n = 100_000;
    let resp = post(&mock, &chat("m", true), Some(&format!("endless-line:{n}"))).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), Some("text/event-stream"));
    let got = read_then_silence(resp, n + "data: {\"".len()).await;
    assert!(got.starts_with(b"data: {\""), "{:?}", &got[..16]);
    assert!(!got.contains(&b'\n'), "the line must never end");

    // Non-streaming: a JSON body that never ends.
    mock.script("j", vec![Behavior::EndlessLine { bytes: n }]);
    let resp = post(&mock, &chat("j", false), None).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), Some("application/json"));
    let got = read_then_silence(resp, n + "{\"id\":\"".len()).await;
    assert!(got.starts_with(b"{\"id\":\""));
}

#[tokio::test]
async fn anthropic_count_tokens_checks_headers_and_body() {
    let mock = MockUpstream::start().await;
    let url = format!("{}/v1/messages/count_tokens", mock.base_url());
    let send = |body: Value, key: Option<&'static str>| {
        let mut req = crate::client()
            .post(&url)
            .header("anthropic-version", "2023-06-01")
            .json(&body);
        if let Some(k) = key {
            req = req.header("x-api-key", k);
        }
        req.send()
    };
    let body = json!({"model": "m", "system": "12345678",
                      "tools": [{"name": "t", "input_schema": {"type": "object"}}],
                      "messages": [{"role": "user", "content": "1234"}]});
    let resp = send(body.clone(), Some("k")).await.expect("count_tokens");
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v, json!({"input_tokens": 3 + super::COUNT_TOKENS_PER_TOOL}));
    let resp = send(body.clone(), None).await.expect("count_tokens");
    assert_eq!(resp.status(), 401);
    let mut with_max = body;
    with_max["max_tokens"] = json!(5);
    let resp = send(with_max, Some("k")).await.expect("count_tokens");
    assert_eq!(resp.status(), 400);
    assert_eq!(mock.hits("/v1/messages/count_tokens"), 3);
}

async fn post_responses(mock: &MockUpstream, body: &Value) -> reqwest::Response {
    match crate::client()
        .post(format!("{}/responses", mock.openai_base()))
        .timeout(Duration::from_secs(10))
        .json(body)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => panic!("POST to the mock: {e:#}"),
    }
}

/// `POST /v1/responses`: a Response, its event stream (numbered, ending with
/// `response.completed`, no `[DONE]`), and `previous_response_id` only for what it stored.
#[tokio::test]
async fn responses_api_answers_streams_and_remembers() {
    let mock = MockUpstream::start().await;
    let resp = post_responses(&mock, &json!({"model": "m", "input": "hi"})).await;
    assert_eq!(resp.status(), 200);
    let first: Value = resp.json().await.expect("json");
    assert_eq!(first["object"], "response");
    assert_eq!(first["status"], "completed");
    assert_eq!(
        first["output"][0]["content"][0]["text"],
        "mock answer from m"
    );
    assert!(first["usage"]["total_tokens"].as_u64().unwrap_or(0) > 0);
    assert_eq!(mock.requests_to("/v1/responses").len(), 1);

    let body = json!({"model": "m", "input": "more", "stream": true,
        "previous_response_id": first["id"]});
    let resp = post_responses(&mock, &body).await;
    assert_eq!(resp.status(), 200);
    let events = crate::read_sse(resp).await.events;
    let kinds: Vec<&str> = events.iter().filter_map(|e| e.event.as_deref()).collect();
    assert_eq!(kinds.first(), Some(&"response.created"));
    assert_eq!(kinds.last(), Some(&"response.completed"));
    assert!(kinds.contains(&"response.output_text.delta"));
    for (n, ev) in events.iter().enumerate() {
        let v: Value = serde_json::from_str(&ev.data).expect("event json");
        assert_eq!(v["sequence_number"], json!(n));
        assert_eq!(Some(v["type"].as_str().unwrap_or("")), ev.event.as_deref());
    }

    // A tool call when asked, and unknown or unstored ids refused.
    let tools = json!([{"type": "function", "name": "f", "parameters": {"type": "object",
        "properties": {"x": {"type": "integer"}}}}]);
    let resp = post_responses(
        &mock,
        &json!({"model": "m", "input": "use the tool", "tools": tools, "store": false}),
    )
    .await;
    let call: Value = resp.json().await.expect("json");
    assert_eq!(call["output"][0]["type"], "function_call");
    assert_eq!(call["output"][0]["arguments"], "{\"x\":1}");
    for id in [call["id"].clone(), json!("resp_unknown")] {
        let resp = post_responses(
            &mock,
            &json!({"model": "m", "input": "x", "previous_response_id": id}),
        )
        .await;
        assert_eq!(resp.status(), 400);
        let err: Value = resp.json().await.expect("json");
        assert_eq!(err["error"]["code"], "previous_response_not_found");
    }
}
