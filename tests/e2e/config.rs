//! Config handling at start-up: bad values stop the binary with a message naming the path;
//! keys RouteIQ ignores warn (and stop it under `ROUTEIQ_STRICT_CONFIG`); secrets never
//! reach the logs.

use crate::bin;
use routeiq_testkit::GatewayProcess;

#[tokio::test]
async fn unknown_key_warns_and_starts_unless_strict() {
    let yaml = r#"
model_list:
  - model_name: gpt
    litellm_params:
      model: openai/gpt-4o-mini
      mock_response: hi
router_settings:
  routing_stratgy: simple-shuffle
general_settings:
  master_key: sk-admin
"#;
    // LiteLLM adds keys every month: a key RouteIQ does not know is a warning, never a
    // refused start. It is listed at GET /config/warnings.
    let gw = GatewayProcess::start(bin(), yaml, &[]).await.unwrap();
    let resp = reqwest::Client::new()
        .get(format!("{}/config/warnings", gw.base_url()))
        .bearer_auth("sk-admin")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["count"], 1, "{body}");
    assert_eq!(
        body["warnings"][0]["path"],
        "router_settings.routing_stratgy"
    );
    assert_eq!(body["warnings"][0]["kind"], "unknown_key");
    let message = body["warnings"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("did you mean 'routing_strategy'?"),
        "{message}"
    );
    let unauthorized = reqwest::Client::new()
        .get(format!("{}/config/warnings", gw.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
    let logs = gw.logs();
    assert!(logs.contains("router_settings.routing_stratgy"), "{logs}");
    drop(gw);

    // Strict: the same config does not start, and says why.
    let (code, stderr) =
        GatewayProcess::start_expect_failure(bin(), yaml, &[("ROUTEIQ_STRICT_CONFIG", "true")])
            .await
            .unwrap();
    assert_ne!(code, 0);
    assert!(
        stderr.contains("router_settings.routing_stratgy"),
        "{stderr}"
    );
    assert!(stderr.contains("routing_strategy"), "{stderr}");
    assert!(stderr.contains("strict"), "{stderr}");
}

#[tokio::test]
async fn missing_config_file_fails_clearly() {
    let out = std::process::Command::new(bin())
        .args(["--config", "/nonexistent/routeiq.yaml", "--port", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/routeiq.yaml"), "{stderr}");
}

#[tokio::test]
async fn documented_unimplemented_keys_warn_and_secrets_stay_hidden() {
    let yaml = r#"
model_list:
  - model_name: gpt
    litellm_params:
      model: openai/gpt-4o-mini
      api_key: os.environ/ROUTEIQ_TEST_SECRET_KEY
      mock_response: hi
litellm_settings:
  success_callback: ["langfuse"]
general_settings:
  master_key: sk-super-secret-master
  database_url: os.environ/ROUTEIQ_TEST_DB_URL
"#;
    let gw = GatewayProcess::start(
        bin(),
        yaml,
        &[
            ("ROUTEIQ_TEST_SECRET_KEY", "sk-upstream-secret-value"),
            (
                "ROUTEIQ_TEST_DB_URL",
                "postgres://user:db-secret-pw@127.0.0.1:9/x",
            ),
        ],
    )
    .await
    .unwrap();
    assert!(
        gw.wait_for_log(
            "litellm_settings.success_callback",
            std::time::Duration::from_secs(5)
        )
        .await,
        "{}",
        gw.logs()
    );
    let logs = gw.logs();
    // database_url is implemented now: the key store, its password never logged.
    assert!(logs.contains("virtual keys in PostgreSQL"), "{logs}");
    assert!(!logs.contains("db-secret-pw"), "{logs}");
    assert!(!logs.contains("sk-upstream-secret-value"), "{logs}");
    assert!(!logs.contains("sk-super-secret-master"), "{logs}");
}

#[tokio::test]
async fn open_gateway_says_so_at_start() {
    let yaml = "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/x\n      mock_response: hi\n";
    let gw = GatewayProcess::start(bin(), yaml, &[]).await.unwrap();
    assert!(
        gw.wait_for_log(
            "no master_key configured",
            std::time::Duration::from_secs(5)
        )
        .await,
        "{}",
        gw.logs()
    );
}

#[test]
fn help_documents_flags_and_environment() {
    let out = std::process::Command::new(bin())
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--config",
        "--host",
        "--port",
        "LITELLM_CONFIG_PATH",
        "LITELLM_MASTER_KEY",
        "PORT",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
}

/// LiteLLM's own example configs (`tests/configs/litellm_corpus/`): each one the loader says
/// serves (`expected.txt`, checked by `shared/tests/litellm_corpus.rs`) starts the gateway,
/// which lists its model groups; each refused one stops it, naming the control RouteIQ cannot
/// enforce. Every `os.environ/` variable is set to a placeholder.
#[tokio::test]
async fn litellm_example_configs_start_the_gateway() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/configs/litellm_corpus");
    let expected = std::fs::read_to_string(dir.join("expected.txt")).unwrap();
    let mut started = 0;
    let mut refused = 0;
    for line in expected.lines().filter_map(|l| l.strip_prefix("## ")) {
        let Some((file, outcome)) = line.split_once(": ") else {
            continue;
        };
        if !file.ends_with(".yaml") {
            continue;
        }
        // `include:` is read beside the config; the harness writes the config to a temp file,
        // so an include names the corpus copy by its absolute path.
        let included = dir.join("included");
        let yaml = std::fs::read_to_string(dir.join(file)).unwrap().replace(
            "  - model_config.yaml",
            &format!("  - {}", included.join("model_config.yaml").display()),
        );
        let mut vars: std::collections::BTreeSet<String> = yaml
            .split("os.environ/")
            .skip(1)
            .map(|rest| {
                rest.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect()
            })
            .collect();
        // JWT auth reads its key set's URL from the environment, as LiteLLM does.
        if yaml.contains("enable_jwt_auth") {
            vars.insert("JWT_PUBLIC_KEY_URL".to_string());
        }
        let values: Vec<(String, String)> = vars
            .iter()
            .map(|v| (v.clone(), routeiq_testkit::litellm_placeholder(v)))
            .collect();
        let env: Vec<(&str, &str)> = values
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if outcome.starts_with("serves") {
            let lookup = |name: &str| Some(routeiq_testkit::litellm_placeholder(name));
            let read = |name: &str| std::fs::read_to_string(name).map_err(|e| e.to_string());
            let config = routeiq::config::load_str_with(&yaml, &lookup, Some(&read))
                .unwrap()
                .config;
            let gw = GatewayProcess::start(bin(), &yaml, &env)
                .await
                .unwrap_or_else(|e| panic!("{file} did not start: {e:#}"));
            let mut request = reqwest::Client::new().get(format!("{}/v1/models", gw.base_url()));
            if let Some(key) = &config.general_settings.master_key {
                request = request.bearer_auth(key.expose());
            }
            let models: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
            let listed: Vec<&str> = models["data"]
                .as_array()
                .unwrap_or_else(|| panic!("{file}: {models}"))
                .iter()
                .filter_map(|m| m["id"].as_str())
                .collect();
            for d in &config.model_list {
                if !d.model_name.contains('*') {
                    assert!(
                        listed.contains(&d.model_name.as_str()),
                        "{file}: {} not in /v1/models {listed:?}",
                        d.model_name
                    );
                }
            }
            started += 1;
        } else {
            let (code, stderr) = GatewayProcess::start_expect_failure(bin(), &yaml, &env)
                .await
                .unwrap();
            assert_ne!(code, 0, "{file}");
            // An unenforceable control, or a docs placeholder left unfilled
            // (`redis_host: <your redis host>`, `database_url: postgresql://<user>:...`, see
            // shared/tests/litellm_corpus.rs).
            assert!(
                stderr.contains("cannot enforce")
                    || stderr.contains("must be a host name")
                    || stderr.contains("must be a PostgreSQL URL"),
                "{file}: {stderr}"
            );
            refused += 1;
        }
    }
    assert!(started >= 20, "{started} LiteLLM configs started");
    assert!(refused > 0);
}
