//! Control plane: admin keys on the reload endpoints, atomic config reload (bad configs are
//! rejected and the old one keeps serving; requests in flight finish on the old gateway),
//! router reload, and `routeiq check`.

use std::time::Duration;

use routeiq_testkit::{Behavior, GatewayProcess};
use serde_json::Value;

use crate::{chat_body, error_of, routeiq_bin};

const ALPHA: &str = r#"
model_list:
  - model_name: alpha
    litellm_params:
      model: openai/alpha-model
      api_base: "{MOCK}"
      api_key: sk-x
general_settings:
  master_key: sk-master
"#;

const BETA: &str = r#"
model_list:
  - model_name: beta
    litellm_params:
      model: openai/beta-model
      api_base: "{MOCK}"
      api_key: sk-x
general_settings:
  master_key: sk-master
"#;

async fn admin_post(gw: &GatewayProcess, path: &str, key: Option<&str>) -> reqwest::Response {
    let mut req = routeiq_testkit::client().post(format!("{}{path}", gw.base_url()));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    req.send().await.unwrap()
}

async fn chat(gw: &GatewayProcess, model: &str) -> reqwest::Response {
    routeiq_testkit::client()
        .post(format!("{}/v1/chat/completions", gw.base_url()))
        .bearer_auth("sk-master")
        .json(&chat_body(model, "hi"))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn admin_endpoints_need_an_admin_key() {
    let (_mock, gw) =
        crate::start_with_env(ALPHA, &[("ADMIN_API_KEYS", "sk-admin-1,sk-admin-2")]).await;
    for path in ["/router/reload", "/config/reload"] {
        let resp = admin_post(&gw, path, None).await;
        assert_eq!(resp.status(), 401, "{path}");
        error_of(resp).await;
        let resp = admin_post(&gw, path, Some("sk-not-an-admin")).await;
        assert_eq!(resp.status(), 403, "{path}");
        assert_eq!(error_of(resp).await["type"], "permission_error");
        for key in ["sk-admin-2", "sk-master"] {
            let resp = admin_post(&gw, path, Some(key)).await;
            assert_eq!(resp.status(), 200, "{path} with {key}");
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["status"], "reloaded");
        }
    }
    let logs = gw.logs();
    assert!(
        !logs.contains("sk-admin-1") && !logs.contains("sk-admin-2"),
        "{logs}"
    );
}

#[tokio::test]
async fn config_reload_swaps_atomically_and_rejects_bad_configs() {
    let (mock, gw) = crate::start_with_env(ALPHA, &[]).await;
    assert_eq!(chat(&gw, "alpha").await.status(), 200);

    // A request in flight when the config changes finishes on the old gateway.
    mock.script("alpha-model", vec![Behavior::Delay(1500)]);
    let base = gw.base_url();
    let in_flight = tokio::spawn(async move {
        routeiq_testkit::client()
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth("sk-master")
            .json(&chat_body("alpha", "slow"))
            .send()
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::write(gw.config_path(), crate::render(BETA, &mock)).unwrap();
    let resp = admin_post(&gw, "/config/reload", Some("sk-master")).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["summary"]["model_groups"], 1);
    assert_eq!(chat(&gw, "beta").await.status(), 200);
    assert_eq!(chat(&gw, "alpha").await.status(), 404);
    let slow = in_flight.await.unwrap();
    assert_eq!(slow.status(), 200, "the in-flight request finished");
    assert_eq!(crate::header(&slow, "x-routeiq-model-group"), "alpha");

    // A bad config: 400 with every problem and its path; the running config keeps serving.
    let bad = BETA
        .replace(
            "model_list:",
            "router_settings:\n  num_retries: two\nmodel_list:",
        )
        .replace("api_key: sk-x", "api_key: sk-x\n      rpm: lots");
    std::fs::write(gw.config_path(), crate::render(&bad, &mock)).unwrap();
    let resp = admin_post(&gw, "/config/reload", Some("sk-master")).await;
    assert_eq!(resp.status(), 400);
    let err = error_of(resp).await;
    assert_eq!(err["code"], "invalid_config");
    let paths: Vec<&str> = err["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["path"].as_str())
        .collect();
    assert!(paths.contains(&"router_settings.num_retries"), "{err}");
    assert!(paths.contains(&"model_list[0].litellm_params.rpm"), "{err}");
    assert_eq!(chat(&gw, "beta").await.status(), 200);

    // Not even YAML.
    std::fs::write(gw.config_path(), "model_list: [unclosed").unwrap();
    let resp = admin_post(&gw, "/config/reload", Some("sk-master")).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(chat(&gw, "beta").await.status(), 200);

    let text = crate::metrics_text(&gw).await;
    assert_eq!(
        crate::metric_value(
            &text,
            r#"routeiq_reloads_total{kind="config",result="rejected"}"#
        ),
        Some(2.0),
        "{text}"
    );
}

fn write_temp(name: &str, text: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("routeiq-check-{}-{name}.yaml", std::process::id()));
    std::fs::write(&p, text).unwrap();
    p
}

fn run_check(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = std::process::Command::new(routeiq_bin());
    cmd.arg("check").args(args).env_remove("OPENAI_API_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test]
async fn routeiq_check_validates_config_and_environment() {
    let good = write_temp(
        "good",
        r#"
model_list:
  - model_name: gpt
    litellm_params:
      model: openai/gpt-4o-mini
      api_key: os.environ/ROUTEIQ_CHECK_TEST_KEY
litellm_settings:
  success_callback: ["langfuse"]
"#,
    );
    let bad = write_temp(
        "bad",
        r#"
model_list:
  - model_name: gpt
    litellm_params:
      model: openai/gpt-4o-mini
      rpm: many
router_settings:
  routing_stratgy: simple-shuffle
"#,
    );
    let good_s = good.to_str().unwrap();
    let bad_s = bad.to_str().unwrap();

    // Structure only: unset variables are fine.
    let (code, out) = run_check(&["--config", good_s], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("warning: litellm_settings.success_callback"),
        "{out}"
    );
    assert!(out.contains("0 error(s)"), "{out}");

    // Every problem, with its path; non-zero exit.
    let (code, out) = run_check(&["--config", bad_s], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("error: model_list[0].litellm_params.rpm"),
        "{out}"
    );
    // An unknown key is a warning (with a "did you mean"), not an error.
    assert!(
        out.contains("warning: router_settings.routing_stratgy"),
        "{out}"
    );
    assert!(out.contains("did you mean 'routing_strategy'"), "{out}");

    // --strict: every warning is an error, for CI.
    let (code, out) = run_check(&["--config", good_s, "--strict"], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("error: litellm_settings.success_callback"),
        "{out}"
    );

    // --validate-env: the unset reference is an error, then fine once set.
    let (code, out) = run_check(&["--config", good_s, "--validate-env"], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("model_list[0].litellm_params.api_key"),
        "{out}"
    );
    assert!(out.contains("ROUTEIQ_CHECK_TEST_KEY"), "{out}");
    let (code, out) = run_check(
        &["--config", good_s, "--validate-env"],
        &[
            ("ROUTEIQ_CHECK_TEST_KEY", "sk-secret-value"),
            ("ROUTEIQ_MAX_MESSAGES", "ten"),
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("error: ROUTEIQ_MAX_MESSAGES"), "{out}");
    assert!(!out.contains("sk-secret-value"), "{out}");
    let (code, out) = run_check(
        &["--config", good_s, "--validate-env"],
        &[("ROUTEIQ_CHECK_TEST_KEY", "sk-secret-value")],
    );
    assert_eq!(code, 0, "{out}");

    let (code, out) = run_check(&["--config", "/nonexistent/routeiq.yaml"], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("/nonexistent/routeiq.yaml"), "{out}");
    let _ = std::fs::remove_file(good);
    let _ = std::fs::remove_file(bad);
}

#[tokio::test]
async fn routeiq_serve_runs_the_gateway() {
    let (_mock, gw, script) = {
        let mock = routeiq_testkit::MockUpstream::start().await;
        let cfg = crate::render(ALPHA, &mock);
        // `routeiq serve --config ... --host ... --port ...`: the harness passes those flags
        // after the binary, so put `serve` first through a one-line wrapper script.
        let script = std::env::temp_dir().join(format!("routeiq-serve-{}.sh", std::process::id()));
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nexec '{}' serve \"$@\"\n",
                routeiq_bin().display()
            ),
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let gw = GatewayProcess::start(&script, &cfg, &[]).await.unwrap();
        (mock, gw, script)
    };
    assert_eq!(chat(&gw, "alpha").await.status(), 200);
    let _ = std::fs::remove_file(script);
}

/// `CONFIG_HOT_RELOAD` with a file config: the file is watched (size and modification time)
/// and a changed file is reloaded like `POST /config/reload`; a bad one is rejected and the
/// running config keeps serving.
#[tokio::test]
async fn config_hot_reload_watches_a_config_file() {
    let mock = routeiq_testkit::MockUpstream::start().await;
    let gw = GatewayProcess::start(
        crate::bin(),
        &crate::render(ALPHA, &mock),
        &[
            ("CONFIG_HOT_RELOAD", "true"),
            ("CONFIG_SYNC_INTERVAL", "0.2"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(chat(&gw, "alpha").await.status(), 200);
    std::fs::write(gw.config_path(), crate::render(BETA, &mock)).unwrap();
    let mut swapped = false;
    for _ in 0..100 {
        if chat(&gw, "beta").await.status() == 200 {
            swapped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(swapped, "the changed file was not reloaded:\n{}", gw.logs());
    assert_eq!(chat(&gw, "alpha").await.status(), 404);

    // A bad file: rejected, logged, and beta keeps serving.
    std::fs::write(gw.config_path(), "model_list: [unclosed").unwrap();
    assert!(
        gw.wait_for_log("config reload rejected", Duration::from_secs(10))
            .await,
        "{}",
        gw.logs()
    );
    assert_eq!(chat(&gw, "beta").await.status(), 200);
}

#[tokio::test]
async fn bad_config_sync_settings_stop_the_start() {
    let (code, stderr) = GatewayProcess::start_expect_failure(
        crate::bin(),
        "model_list: []\n",
        &[
            ("CONFIG_HOT_RELOAD", "yes please"),
            ("CONFIG_SYNC_INTERVAL", "1e300"),
        ],
    )
    .await
    .unwrap();
    assert_ne!(code, 0);
    assert!(stderr.contains("CONFIG_HOT_RELOAD"), "{stderr}");
    assert!(stderr.contains("CONFIG_SYNC_INTERVAL"), "{stderr}");
}
