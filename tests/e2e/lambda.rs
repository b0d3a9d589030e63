//! The gateway under a real Lambda runtime emulator: `cargo lambda watch` (cargo-lambda from
//! PyPI, installed by `tests/run.sh`) runs the `routeiq-gateway` binary with the Lambda runtime
//! API around it. Streaming mode is read through the emulator's function URL route, chunk by
//! chunk; buffered mode is driven with API Gateway v1/v2 and function URL events through the
//! Lambda Invoke API.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use routeiq_testkit::{Behavior, ChunkStream, MockUpstream, gateway::free_port};
use serde_json::{Value, json};

/// A `cargo lambda watch` process group, killed on drop.
struct Watch {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Drop for Watch {
    fn drop(&mut self) {
        // cargo lambda watch runs the function as a child of its own: end the whole group.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

impl Watch {
    fn start(config: &str, streaming: bool) -> Watch {
        let has_cargo_lambda = Command::new("cargo")
            .args(["lambda", "--version"])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            has_cargo_lambda,
            "cargo-lambda is not on PATH: run the tests with `bash tests/run.sh` (it installs it)"
        );
        let dir = std::env::temp_dir();
        let port = free_port().unwrap();
        let config_path = dir.join(format!("routeiq-lambda-{port}.yaml"));
        std::fs::write(&config_path, config).unwrap();
        let log = dir.join(format!("routeiq-lambda-{port}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let child = std::os::unix::process::CommandExt::process_group(
            Command::new("cargo")
                .current_dir(workspace)
                .args(["lambda", "watch", "--ignore-changes", "-A", "127.0.0.1"])
                .args(["-P", &port.to_string()])
                .args(["-p", "routeiq-gateway", "--bin", "routeiq-gateway"])
                .arg("--env-var")
                .arg(format!("LITELLM_CONFIG_PATH={}", config_path.display()))
                .arg("--env-var")
                .arg(format!("ROUTEIQ_LAMBDA_STREAMING={streaming}"))
                .stdout(Stdio::from(out.try_clone().unwrap()))
                .stderr(Stdio::from(out)),
            0,
        )
        .spawn()
        .expect("spawn cargo lambda watch");
        Watch { child, port, log }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `POST` an event to the Lambda Invoke API and return the function's result.
    async fn invoke(&self, event: &Value) -> Value {
        let url = format!(
            "http://127.0.0.1:{}/2015-03-31/functions/routeiq-gateway/invocations",
            self.port
        );
        let resp = self.retry(|c| c.post(&url).json(event)).await;
        assert_eq!(resp.status(), 200, "{}", self.logs());
        resp.json().await.unwrap()
    }

    /// Sends a request, retrying while the emulator is still starting (it builds and starts
    /// the function on the first call).
    async fn retry(
        &self,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> reqwest::Response {
        let client = routeiq_testkit::client();
        let deadline = Instant::now() + Duration::from_secs(240);
        loop {
            match build(&client)
                .timeout(Duration::from_secs(240))
                .send()
                .await
            {
                Ok(r) => return r,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => panic!("emulator never answered: {e}\n{}", self.logs()),
            }
        }
    }
}

fn config(mock: &MockUpstream) -> String {
    format!(
        r#"
model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: "{}"
      api_key: sk-upstream
general_settings:
  master_key: sk-routeiq-test
"#,
        mock.openai_base()
    )
}

#[tokio::test]
async fn streams_chunk_by_chunk_through_the_function_url() {
    let mock = MockUpstream::start().await;
    mock.script(
        "gpt-4o-mini",
        vec![Behavior::Trickle {
            chunk_delay_ms: 200,
        }],
    );
    let watch = Watch::start(&config(&mock), true);
    let url = format!(
        "http://127.0.0.1:{}/lambda-url/routeiq-gateway/v1/chat/completions",
        watch.port
    );
    let body = json!({"model": "gpt-4o-mini", "stream": true,
        "messages": [{"role": "user", "content": "tell me a story"}]});
    let resp = watch
        .retry(|c| c.post(&url).bearer_auth("sk-routeiq-test").json(&body))
        .await;
    assert_eq!(resp.status(), 200, "{}", watch.logs());
    assert!(resp.headers().contains_key("x-routeiq-model"));
    let started = Instant::now();
    let mut stream = resp.bytes_stream();
    let mut arrivals = Vec::new();
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        arrivals.push(started.elapsed());
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let stream = ChunkStream::parse(&text);
    assert!(stream.done, "{text}\n{}", watch.logs());
    assert_eq!(stream.content(), "mock answer from gpt-4o-mini", "{text}");
    // The upstream sends a chunk every 200 ms: a streamed response arrives in several reads
    // spread over that time, a buffered one in one piece at the end.
    let first = arrivals[0];
    let last = *arrivals.last().unwrap();
    assert!(arrivals.len() >= 3, "{arrivals:?}");
    assert!(last - first >= Duration::from_millis(400), "{arrivals:?}");
}

#[tokio::test]
async fn buffered_mode_serves_api_gateway_and_function_url_events() {
    let mock = MockUpstream::start().await;
    let watch = Watch::start(&config(&mock), false);
    let events = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/events");
    let load = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(events.join(name)).unwrap()).unwrap()
    };

    // API Gateway HTTP API (payload v2).
    let out = watch.invoke(&load("apigw-http-v2.json")).await;
    assert_eq!(out["statusCode"], 200, "{out}");
    let body: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "mock answer from gpt-4o-mini"
    );
    assert!(out["headers"]["x-routeiq-strategy"].is_string(), "{out}");

    // REST API with a stage in the path: the route still matches.
    let out = watch.invoke(&load("apigw-rest-v1-stage.json")).await;
    assert_eq!(out["statusCode"], 200, "{out}");
    let body: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["data"][0]["id"], "gpt-4o-mini");

    // Function URL event with a base64 body (asks for a stream: buffered, as SSE text).
    let out = watch.invoke(&load("function-url-stream-base64.json")).await;
    assert_eq!(out["statusCode"], 200, "{out}");
    let sse = out["body"].as_str().unwrap();
    assert!(
        sse.contains("chat.completion.chunk") && sse.ends_with("data: [DONE]\n\n"),
        "{sse}"
    );

    // A missing key is the gateway's 401, not a runtime error.
    let mut unauthorized = load("apigw-http-v2.json");
    unauthorized["headers"]["authorization"] = json!("Bearer wrong");
    let out = watch.invoke(&unauthorized).await;
    assert_eq!(out["statusCode"], 401, "{out}");
}
