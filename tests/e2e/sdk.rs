//! The official OpenAI and Anthropic Python SDKs, unchanged, against the gateway.

use std::process::Command;

use crate::start;

const SDK_CONFIG: &str = r#"
model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: "{MOCK}"
      api_key: sk-upstream
  - model_name: text-embedding-3-small
    litellm_params:
      model: openai/text-embedding-3-small
      api_base: "{MOCK}"
      api_key: sk-upstream
    model_info:
      mode: embedding
general_settings:
  master_key: sk-test-master
"#;

#[tokio::test]
async fn openai_python_sdk_works_unchanged() {
    let python = std::env::var("ROUTEIQ_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_sdk = Command::new(&python)
        .args(["-c", "import openai"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_sdk,
        "{python} cannot import the openai SDK: run the tests with `bash tests/run.sh` (it installs it) or set ROUTEIQ_TEST_PYTHON"
    );
    let (_mock, gw) = start(SDK_CONFIG).await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/sdk/openai_sdk_check.py"
    );
    let base = gw.base_url();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .args([
                script,
                &base,
                "sk-test-master",
                "gpt-4o-mini",
                "text-embedding-3-small",
            ])
            .env("OPENAI_LOG", "")
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "SDK check failed:\n{stdout}\n{stderr}\ngateway logs:\n{}",
        gw.logs()
    );
    assert!(stdout.contains("ALL SDK CHECKS PASSED"), "{stdout}");
}

const ANTHROPIC_SDK_CONFIG: &str = r#"
model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: "{MOCK}"
      api_key: sk-upstream
  - model_name: claude-sonnet
    litellm_params:
      model: anthropic/claude-sonnet-test
      api_base: "{MOCK_ROOT}"
      api_key: sk-ant-upstream
general_settings:
  master_key: sk-test-master
"#;

/// The official Anthropic Python SDK against `/v1/messages`: one group translated to an
/// OpenAI-shaped upstream, one passed through to an Anthropic one.
#[tokio::test]
async fn anthropic_python_sdk_works_unchanged() {
    let python = std::env::var("ROUTEIQ_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_sdk = Command::new(&python)
        .args(["-c", "import anthropic"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_sdk,
        "{python} cannot import the anthropic SDK: run the tests with `bash tests/run.sh` (it installs it) or set ROUTEIQ_TEST_PYTHON"
    );
    let (_mock, gw) = start(ANTHROPIC_SDK_CONFIG).await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/sdk/anthropic_sdk_check.py"
    );
    let base = gw.base_url();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .args([
                script,
                &base,
                "sk-test-master",
                "gpt-4o-mini",
                "claude-sonnet",
            ])
            .env("ANTHROPIC_LOG", "")
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("ANTHROPIC_BASE_URL")
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "Anthropic SDK check failed:\n{stdout}\n{stderr}\ngateway logs:\n{}",
        gw.logs()
    );
    assert!(
        stdout.contains("ALL ANTHROPIC SDK CHECKS PASSED"),
        "{stdout}"
    );
}
