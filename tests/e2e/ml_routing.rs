//! ML routing through the real binary: a router trained by the project's trainer picks the
//! deployment per prompt, the decision headers explain it, `/router/explain` ranks without
//! calling a model, hot reload swaps a new artifact in and keeps the old one on a broken
//! file, `/router/reload` forces it, and unavailable strategies fail clearly.

use std::path::Path;
use std::time::Duration;

use routeiq_testkit::GatewayProcess;
use routeiq_testkit::TempDir;
use routeiq_trainer::cli::{DataArgs, HybridModeArg, TrainArgs, run_train};
use serde_json::{Value, json};

use crate::{bin, chat_body, header, post, start, start_with_env};

const CODE: &str = "Write a Python function that sorts a list of integers";
const STORY: &str = "Tell me a bedtime story about a friendly dragon";

/// Trains a kNN router on prompts where "coder" answers code questions and "talker"
/// stories (or the reverse, `flipped`), into `out` (knn.json + manifest.json).
fn train_knn(work: &Path, out: &Path, flipped: bool) {
    let data = work.join(if flipped { "data-flipped" } else { "data" });
    std::fs::create_dir_all(&data).expect("data dir");
    std::fs::write(
        data.join("default_llm.json"),
        r#"{"coder": {"size": "7B", "input_price": 0.2, "output_price": 0.2},
            "talker": {"size": "8B", "input_price": 0.2, "output_price": 0.2},
            "big": {"size": "70B", "input_price": 9.0, "output_price": 9.0}}"#,
    )
    .expect("llm file");
    let mut rows = Vec::new();
    for i in 0..40 {
        let (code, story) = (
            format!("Write a Python function number {i} that sorts a list of integers"),
            format!("Tell me a bedtime story about a dragon called Ember the {i}th"),
        );
        let (c, t) = if flipped { (0.0, 1.0) } else { (1.0, 0.0) };
        rows.push(json!({"question": code, "scores": {"coder": c, "talker": t, "big": 0.5}}));
        rows.push(json!({"question": story, "scores": {"coder": t, "talker": c, "big": 0.5}}));
    }
    std::fs::write(
        data.join("train.json"),
        serde_json::to_vec(&rows).expect("json"),
    )
    .expect("train file");
    run_train(&TrainArgs {
        data: DataArgs {
            data: Some(data),
            val_fraction: Some(0.0),
            split_salt: None,
            cache_dir: None,
            no_cache: true,
            model_dir: None,
            quiet: true,
        },
        embedder: "hashed-ngram:128".into(),
        strategies: vec!["knn".into()],
        out: out.to_path_buf(),
        signing_key: None,
        seed: 1,
        knn_k: Some(3),
        knn_max_points: None,
        mlp_hidden: 16,
        mf_dim: 8,
        hybrid_small: None,
        hybrid_large: None,
        hybrid_mode: HybridModeArg::Deterministic,
        hybrid_threshold: None,
    })
    .expect("training");
}

/// Three deployments in group `auto` (`dep-coder`, `dep-talker`, `dep-big`) routed by
/// `strategy` with the router artifact at `model_path`; `extra` is appended to
/// `routing_strategy_args`.
pub(crate) fn config(model_path: &str, strategy: &str, extra: &str) -> String {
    format!(
        r#"
model_list:
  - model_name: auto
    litellm_params: {{model: openai/coder, api_base: "{{MOCK}}", api_key: k}}
    model_info: {{id: dep-coder}}
  - model_name: auto
    litellm_params: {{model: openai/talker, api_base: "{{MOCK}}", api_key: k}}
    model_info: {{id: dep-talker}}
  - model_name: auto
    litellm_params: {{model: openai/big, api_base: "{{MOCK}}", api_key: k}}
    model_info: {{id: dep-big}}
router_settings:
  num_retries: 0
  routing_strategy: {strategy}
  routing_strategy_args:
    model_path: "{model_path}"
{extra}"#
    )
}

async fn answered_by(gw: &GatewayProcess, prompt: &str) -> (String, reqwest::Response) {
    let resp = post(gw, "/v1/chat/completions", &chat_body("auto", prompt)).await;
    assert_eq!(resp.status(), 200);
    (header(&resp, "x-routeiq-model").to_string(), resp)
}

/// Writes `bytes` to `path` by rename (what a deploy pipeline does).
fn replace(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("incoming");
    std::fs::write(&tmp, bytes).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

#[tokio::test]
async fn trained_router_routes_explains_and_hot_reloads() {
    let work = TempDir::new("reload");
    let served = work.0.join("served");
    train_knn(&work.0, &served, false);
    let flipped = work.0.join("flipped");
    train_knn(&work.0, &flipped, true);
    let model_path = served.join("knn.json").display().to_string();
    let (mock, gw) = start(&config(
        &model_path,
        "llmrouter-knn",
        "    hot_reload: true\n    reload_interval: 0.2\n",
    ))
    .await;

    let (dep, resp) = answered_by(&gw, CODE).await;
    assert_eq!(dep, "dep-coder");
    assert_eq!(header(&resp, "x-routeiq-strategy"), "llmrouter-knn");
    assert_eq!(header(&resp, "x-routeiq-decision-method"), "router");
    let q: f64 = header(&resp, "x-routeiq-predicted-quality")
        .parse()
        .unwrap();
    assert!(q > 0.9, "{q}");
    let cost: f64 = header(&resp, "x-routeiq-predicted-cost").parse().unwrap();
    assert!(cost > 0.0 && cost < 0.01, "{cost}");
    let ms: f64 = header(&resp, "x-routeiq-decision-ms").parse().unwrap();
    assert!((0.0..1000.0).contains(&ms), "{ms}");
    let v1 = header(&resp, "x-routeiq-router-version").to_string();
    assert_eq!(answered_by(&gw, STORY).await.0, "dep-talker");

    // Explain: the whole ranking, and no upstream call.
    let before = mock.requests().len();
    let resp = post(&gw, "/router/explain", &chat_body("auto", CODE)).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(mock.requests().len(), before);
    assert_eq!(body["strategy"], "llmrouter-knn");
    assert_eq!(
        body["candidates"],
        json!(["dep-coder", "dep-big", "dep-talker"])
    );
    let ranking = body["decision"]["ranking"].as_array().unwrap();
    assert_eq!(ranking.len(), 3);
    assert_eq!(ranking[0]["model"], "coder");
    assert!(ranking[0]["predicted_quality"].as_f64().unwrap() > 0.9);
    assert!(ranking[2]["predicted_cost"].as_f64().is_some());
    assert!(body["decision_ms"].as_f64().is_some());

    // A broken artifact (and a manifest that matches it): the old router keeps serving.
    let broken = b"{\"format\": \"routeiq-router\", \"format_version\": 1, \"strategy\": ";
    let manifest = routeiq::ml::artifact::update_manifest(
        std::fs::read(served.join("manifest.json")).ok().as_deref(),
        "knn.json",
        broken,
        json!({}),
        None,
    )
    .unwrap();
    replace(&served.join("knn.json"), broken);
    replace(&served.join("manifest.json"), &manifest);
    assert!(
        gw.wait_for_log("previous router keeps serving", Duration::from_secs(10))
            .await,
        "{}",
        gw.logs()
    );
    let (dep, resp) = answered_by(&gw, CODE).await;
    assert_eq!(dep, "dep-coder");
    assert_eq!(header(&resp, "x-routeiq-router-version"), v1);

    // A good new artifact (trained the other way round) is swapped in by the poller.
    let art = std::fs::read(flipped.join("knn.json")).unwrap();
    replace(&served.join("knn.json"), &art);
    replace(
        &served.join("manifest.json"),
        &std::fs::read(flipped.join("manifest.json")).unwrap(),
    );
    let mut swapped = false;
    for _ in 0..50 {
        if answered_by(&gw, CODE).await.0 == "dep-talker" {
            swapped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(swapped, "{}", gw.logs());
    assert_ne!(
        header(&answered_by(&gw, CODE).await.1, "x-routeiq-router-version"),
        v1
    );
}

#[tokio::test]
async fn router_reload_endpoint_refuses_a_broken_artifact() {
    let work = TempDir::new("force");
    let served = work.0.join("served");
    train_knn(&work.0, &served, false);
    let model_path = served.join("knn.json").display().to_string();
    let yaml = format!(
        "{}general_settings:\n  master_key: sk-master\n",
        config(&model_path, "llmrouter-knn", "")
    );
    let (_mock, gw) = start_with_env(&yaml, &[("ADMIN_API_KEYS", "sk-admin")]).await;
    let reload = || async {
        routeiq_testkit::client()
            .post(format!("{}/router/reload", gw.base_url()))
            .bearer_auth("sk-admin")
            .send()
            .await
            .unwrap()
    };
    // A file that does not match its manifest: refused, old router still serving.
    std::fs::write(served.join("knn.json"), b"{}").unwrap();
    let resp = reload().await;
    assert!(resp.status().is_client_error() || resp.status().is_server_error());
    let text = resp.text().await.unwrap();
    assert!(text.contains("manifest"), "{text}");
    let resp = routeiq_testkit::client()
        .post(format!("{}/v1/chat/completions", gw.base_url()))
        .bearer_auth("sk-master")
        .json(&chat_body("auto", CODE))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-routeiq-model"), "dep-coder");
    assert_eq!(header(&resp, "x-routeiq-decision-method"), "router");
}

#[tokio::test]
async fn missing_router_falls_back_to_centroids_and_profiles_are_checked() {
    let (_mock, gw) = start(&config(
        "/nonexistent/routeiq/knn.json",
        "llmrouter-knn",
        "",
    ))
    .await;
    let resp = post(&gw, "/v1/chat/completions", &chat_body("auto", "hi there")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-routeiq-decision-method"), "centroid");
    header(&resp, "x-routeiq-tier");
    // Profiles per request: a valid one is used, a bad one is a 400 naming the header.
    let resp = routeiq_testkit::client()
        .post(format!("{}/router/explain", gw.base_url()))
        .header("x-routeiq-profile", "premium")
        .json(&chat_body("auto", "hi there"))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["decision"]["profile"], "premium");
    let resp = routeiq_testkit::client()
        .post(format!("{}/v1/chat/completions", gw.base_url()))
        .header("x-routeiq-profile", "turbo")
        .json(&chat_body("auto", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let err = crate::error_of(resp).await;
    assert!(err["message"].as_str().unwrap().contains("turbo"), "{err}");
    let mut body = chat_body("auto", "hi");
    body["metadata"] = json!({"routing_profile": "eco"});
    assert_eq!(post(&gw, "/v1/chat/completions", &body).await.status(), 200);
}

#[tokio::test]
async fn unavailable_strategies_fail_clearly() {
    let offline = |yaml: String| yaml.replace("{MOCK}", "http://127.0.0.1:9/v1");
    let yaml = offline(config("/nonexistent/x.json", "llmrouter-routerdc", ""));
    let (code, stderr) = GatewayProcess::start_expect_failure(bin(), &yaml, &[])
        .await
        .unwrap();
    assert_ne!(code, 0);
    assert!(stderr.contains("not supported by RouteIQ"), "{stderr}");
    assert!(stderr.contains("GPU"), "{stderr}");
    // Without centroid routing a router that cannot load stops the start.
    let yaml = offline(config("/nonexistent/x.json", "llmrouter-mlp", ""));
    let (code, stderr) = GatewayProcess::start_expect_failure(
        bin(),
        &yaml,
        &[("ROUTEIQ_CENTROID_ROUTING", "false")],
    )
    .await
    .unwrap();
    assert_ne!(code, 0);
    assert!(
        stderr.contains("ROUTEIQ_CENTROID_ROUTING=false"),
        "{stderr}"
    );
}
