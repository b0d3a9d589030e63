//! Loads the config corpus in `tests/configs/`: every `*.yaml` must load (with the facts
//! asserted below), every `invalid/*.yaml` must fail with each line of its `.expect` file in
//! the error — under strict loading when the `.expect` file starts with `# strict` (then the
//! plain load succeeds and its warnings hold each line).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use routeiq::config::{
    ConfigError, FallbackRule, LoadedConfig, RoutingStrategyName, load_str_with_env,
};
use routeiq::provider::{CompatibleProvider, ProviderKind};
use serde_json::json;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/configs")
}

/// Every `os.environ/NAME` the valid corpus uses (checked by `env_map_covers_the_corpus`).
const ENV: &[(&str, &str)] = &[
    ("OPENAI_API_KEY", "sk-test-openai"),
    ("ANTHROPIC_API_KEY", "sk-ant-test"),
    ("LITELLM_MASTER_KEY", "sk-master-test"),
    ("AZURE_API_KEY", "azure-key"),
    ("AZURE_API_KEY_EU", "azure-key-eu"),
    ("AZURE_API_KEY_CA", "azure-key-ca"),
    ("AZURE_API_BASE", "https://routeiq-test.openai.azure.com"),
    ("OPENAI_TPM_LIMIT", "50000"),
    ("OPENAI_RPM_LIMIT", "300"),
    ("REDIS_HOST", "redis.internal"),
    ("REDIS_PASSWORD", "redis-secret"),
    ("REDIS_PORT", "6380"),
    ("DATABASE_URL", "postgresql://u:p@db/litellm"),
    ("OPENAI_KEY_FROM_VAULT", "sk-from-vault"),
    ("VLLM_API_KEY", "vllm-key"),
    ("GROQ_API_KEY", "gsk-test"),
    ("TOGETHERAI_API_KEY", "together-key"),
    ("FIREWORKS_AI_API_KEY", "fw-key"),
    ("MISTRAL_API_KEY", "mistral-key"),
    ("DEEPSEEK_API_KEY", "deepseek-key"),
    ("OPENROUTER_API_KEY", "sk-or-key"),
    ("AWS_ACCESS_KEY_ID", "AKIATEST"),
    ("AWS_SECRET_ACCESS_KEY", "aws-secret"),
    ("VERTEX_CREDENTIALS_PATH", "/secrets/vertex.json"),
    ("APORIA_API_KEY", "aporia-key"),
];

fn env(name: &str) -> Option<String> {
    ENV.iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

fn load(name: &str) -> LoadedConfig {
    let path = corpus_dir().join(name);
    let yaml = std::fs::read_to_string(&path).unwrap();
    load_str_with_env(&yaml, &env).unwrap_or_else(|e| panic!("{name} did not load:\n{e}"))
}

fn warning_paths(l: &LoadedConfig) -> BTreeSet<&str> {
    l.warnings.iter().map(|w| w.path.as_str()).collect()
}

fn rule(from: &str, to: &[&str]) -> FallbackRule {
    FallbackRule {
        from: from.to_string(),
        to: to.iter().map(|s| s.to_string()).collect(),
    }
}

fn kind(model: &str) -> ProviderKind {
    ProviderKind::parse(model).unwrap().0
}

#[test]
fn every_valid_config_loads() {
    let files = yaml_files(&corpus_dir());
    assert!(files.len() >= 8, "corpus too small: {files:?}");
    for f in files {
        let yaml = std::fs::read_to_string(&f).unwrap();
        let loaded = load_str_with_env(&yaml, &env);
        assert!(
            loaded.is_ok(),
            "{} did not load:\n{}",
            f.display(),
            loaded.err().map(|e| e.to_string()).unwrap_or_default()
        );
        let loaded = loaded.unwrap();
        assert!(!loaded.config.model_list.is_empty(), "{}", f.display());
        // No secret from the environment shows up in Debug output.
        let dbg = format!("{:?}", loaded.config);
        for secret in [
            "sk-test-openai",
            "sk-ant-test",
            "sk-master-test",
            "aws-secret",
        ] {
            assert!(!dbg.contains(secret), "{} leaks {secret}", f.display());
        }
    }
}

#[test]
fn env_map_covers_the_corpus() {
    let known: BTreeSet<&str> = ENV.iter().map(|(k, _)| *k).collect();
    for f in yaml_files(&corpus_dir()) {
        let text = std::fs::read_to_string(&f).unwrap();
        for part in text.split("os.environ/").skip(1) {
            let name: String = part
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert!(
                known.contains(name.as_str()),
                "{} uses os.environ/{name}, missing from ENV",
                f.display()
            );
        }
    }
}

#[test]
fn invalid_configs_fail_with_expected_messages() {
    let dir = corpus_dir().join("invalid");
    let files = yaml_files(&dir);
    assert!(files.len() >= 5, "too few invalid configs: {files:?}");
    for f in files {
        let yaml = std::fs::read_to_string(&f).unwrap();
        let expect_path = f.with_extension("expect");
        let expect = std::fs::read_to_string(&expect_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expect_path.display()));
        let strict = expect.lines().next() == Some("# strict");
        let expected: Vec<&str> = expect
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        let loaded = load_str_with_env(&yaml, &env);
        let err = match (strict, loaded) {
            (false, Ok(_)) => panic!("{} loaded but must fail", f.display()),
            (false, Err(e)) => e,
            (true, Err(e)) => panic!("{} must load (with warnings):\n{e}", f.display()),
            (true, Ok(l)) => {
                let warnings: Vec<String> = l.warnings.iter().map(ToString::to_string).collect();
                let warnings = warnings.join("\n");
                for line in &expected {
                    assert!(
                        warnings.contains(line),
                        "{}: warnings do not contain {line:?}:\n{warnings}",
                        f.display()
                    );
                }
                l.strict().expect_err("strict loading must fail")
            }
        };
        assert!(
            matches!(err, ConfigError::Invalid { .. }),
            "{}",
            f.display()
        );
        let text = err.to_string();
        for line in expected {
            assert!(
                text.contains(line),
                "{}: error does not contain {line:?}:\n{text}",
                f.display()
            );
        }
    }
}

#[test]
fn openai_anthropic_fallbacks() {
    let l = load("openai_anthropic_fallbacks.yaml");
    let c = &l.config;
    assert_eq!(c.model_list.len(), 4);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let rs = &c.router_settings;
    assert_eq!(rs.routing_strategy, RoutingStrategyName::SimpleShuffle);
    assert_eq!(rs.fallbacks[0], rule("gpt-4o", &["claude-3-5-sonnet"]));
    assert_eq!(
        rs.fallbacks[1],
        rule("gpt-4o-mini", &["claude-3-5-haiku", "gpt-4o"])
    );
    // litellm_settings fill what router_settings leaves unset.
    assert_eq!(rs.num_retries, 3);
    assert_eq!(rs.timeout, Some(Duration::from_secs(600)));
    assert_eq!(rs.allowed_fails, 3);
    assert_eq!(rs.cooldown_time, Duration::from_secs(30));
    assert!(c.litellm_settings.drop_params);
    assert_eq!(
        c.general_settings.master_key.as_ref().unwrap().expose(),
        "sk-master-test"
    );
    let sonnet = &c.model_list[2].litellm_params;
    assert_eq!(kind(&sonnet.model), ProviderKind::Anthropic);
    assert_eq!(sonnet.api_key.as_ref().unwrap().expose(), "sk-ant-test");
    assert_eq!(sonnet.extra["max_tokens"], json!(4096));
    assert_eq!(c.model_list[0].litellm_params.rpm, Some(500));
    assert_eq!(
        kind(&c.model_list[1].litellm_params.model),
        ProviderKind::OpenAi
    );
}

#[test]
fn azure_openai_mix() {
    let l = load("azure_openai_mix.yaml");
    let c = &l.config;
    assert_eq!(c.model_list.len(), 4);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_eq!(
        c.model_list
            .iter()
            .filter(|d| d.model_name == "gpt-4o")
            .count(),
        3
    );
    // `<<: *azure_eu` merged, own keys win.
    let ca = &c.model_list[1].litellm_params;
    assert_eq!(ca.model, "azure/gpt-4o-ca");
    assert_eq!(ca.api_version.as_deref(), Some("2024-08-01-preview"));
    assert_eq!(ca.tpm, Some(240000));
    assert_eq!(ca.rpm, Some(300));
    assert_eq!(
        ca.api_base.as_deref(),
        Some("https://my-endpoint-canada.openai.azure.com/")
    );
    assert_eq!(ca.api_key.as_ref().unwrap().expose(), "azure-key-ca");
    assert_eq!(kind(&ca.model), ProviderKind::Azure);
    assert_eq!(
        c.model_list[1].model_info.id.as_deref(),
        Some("azure-gpt-4o-ca")
    );
    let openai = &c.model_list[2].litellm_params;
    assert_eq!(openai.weight, Some(0.2));
    assert_eq!(openai.timeout, Some(Duration::from_secs(45)));
    assert_eq!(openai.stream_timeout, Some(Duration::from_secs(10)));
    assert_eq!(openai.organization.as_deref(), Some("org-routeiq-tests"));
    let emb = &c.model_list[3];
    assert_eq!(emb.model_info.mode.as_deref(), Some("embedding"));
    assert_eq!(
        emb.litellm_params.api_base.as_deref(),
        Some("https://routeiq-test.openai.azure.com")
    );
    assert_eq!(c.router_settings.timeout, Some(Duration::from_secs(30)));
    assert_eq!(c.router_settings.retry_after, Duration::from_secs(5));
    assert_eq!(c.router_settings.num_retries, 2);
}

#[test]
fn usage_based_redis() {
    let l = load("usage_based_redis.yaml");
    let c = &l.config;
    assert_eq!(c.model_list.len(), 3);
    let rs = &c.router_settings;
    assert_eq!(rs.routing_strategy, RoutingStrategyName::UsageBasedV2);
    assert_eq!(rs.num_retries, 4);
    assert_eq!(rs.retry_policy.authentication, Some(0));
    assert_eq!(rs.retry_policy.rate_limit, Some(5));
    assert_eq!(rs.retry_policy.internal_server, Some(2));
    assert_eq!(rs.retry_policy.bad_request, None);
    assert_eq!(rs.max_fallbacks, 2);
    assert_eq!(rs.fallbacks, [rule("gpt-4", &["gpt-3.5-turbo"])]);
    // rpm/tpm from os.environ strings become numbers.
    assert_eq!(c.model_list[1].litellm_params.tpm, Some(50000));
    assert_eq!(c.model_list[1].litellm_params.rpm, Some(300));
    assert_eq!(
        warning_paths(&l),
        BTreeSet::from([
            "router_settings.enable_pre_call_checks",
            "router_settings.allowed_fails_policy",
        ])
    );
    assert_eq!(l.warnings.len(), 2);
    // The Redis keys from os.environ strings: shared routing state.
    let redis = rs.redis.as_ref().expect("redis settings");
    assert_eq!(redis.endpoint(), "redis://redis.internal:6380/0");
    assert_eq!(
        redis.password.as_ref().map(|p| p.expose()),
        Some("redis-secret")
    );
}

#[test]
fn litellm_settings_callbacks_cache() {
    let l = load("litellm_settings_callbacks_cache.yaml");
    let c = &l.config;
    assert_eq!(c.model_list.len(), 3);
    assert_eq!(
        warning_paths(&l),
        BTreeSet::from([
            "litellm_settings.success_callback",
            "litellm_settings.failure_callback",
            "litellm_settings.callbacks",
            "litellm_settings.service_callbacks",
            "litellm_settings.turn_off_message_logging",
            "litellm_settings.cache",
            "litellm_settings.cache_params",
            "callback_settings",
        ])
    );
    assert!(c.litellm_settings.json_logs);
    assert!(!c.litellm_settings.set_verbose);
    assert_eq!(
        c.litellm_settings.request_timeout,
        Some(Duration::from_secs(120))
    );
    let rs = &c.router_settings;
    assert_eq!(rs.timeout, Some(Duration::from_secs(120)));
    assert_eq!(rs.num_retries, 2);
    assert_eq!(rs.default_fallbacks, ["claude-opus"]);
    assert_eq!(
        rs.context_window_fallbacks,
        [rule("gpt-4o-mini", &["gpt-4o", "claude-opus"])]
    );
    assert_eq!(
        rs.content_policy_fallbacks,
        [rule("gpt-4o", &["claude-opus"])]
    );
    assert!(rs.fallbacks.is_empty());
}

#[test]
fn general_settings_db_alerting() {
    let l = load("general_settings_db_alerting.yaml");
    let c = &l.config;
    let gs = &c.general_settings;
    assert_eq!(gs.master_key.as_ref().unwrap().expose(), "sk-1234");
    assert_eq!(gs.max_request_size_mb, 32.0);
    assert_eq!(gs.max_response_size_mb, 64.0);
    // database_url is the virtual keys' store now: read, kept secret, not a warning.
    assert!(gs.database_url.is_some());
    let w = warning_paths(&l);
    assert!(!w.contains("general_settings.database_url"));
    for p in [
        "general_settings.database_connection_pool_limit",
        "general_settings.store_model_in_db",
        "general_settings.alerting",
        "general_settings.alert_types",
        "general_settings.proxy_batch_write_at",
        "general_settings.background_health_checks",
    ] {
        assert!(w.contains(p), "missing warning {p}: {w:?}");
    }
    assert!(!w.contains("general_settings.master_key"));
    // Budgets and parallel-request limits fail closed: invalid/unenforceable_access_and_spend.
    assert_eq!(l.warnings.len(), 10, "{:?}", l.warnings);
    let ev = &c.environment_variables;
    assert_eq!(ev["REDIS_PORT"].expose(), "6379");
    assert_eq!(
        ev["SLACK_WEBHOOK_URL"].expose(),
        "https://hooks.slack.com/services/T000/B000/XXXX"
    );
    // The config's own environment_variables win over the process environment.
    assert_eq!(ev["OPENAI_API_KEY"].expose(), "sk-from-vault");
    assert_eq!(
        c.model_list[0]
            .litellm_params
            .api_key
            .as_ref()
            .unwrap()
            .expose(),
        "sk-from-vault"
    );
    assert_eq!(
        c.model_list[1].litellm_params.extra["reasoning_effort"],
        json!("medium")
    );
}

#[test]
fn model_group_alias() {
    let l = load("model_group_alias.yaml");
    let rs = &l.config.router_settings;
    assert!(l.warnings.is_empty());
    assert_eq!(
        rs.model_group_alias,
        BTreeMap::from([
            ("gpt-4".to_string(), "gpt-4o".to_string()),
            ("gpt-3.5-turbo".to_string(), "gpt-4o-mini".to_string()),
            ("internal-cheap".to_string(), "claude-3-5-haiku".to_string()),
        ])
    );
    assert_eq!(rs.hidden_aliases, ["internal-cheap"]);
    assert_eq!(rs.fallbacks, [rule("gpt-4", &["gpt-4o-mini"])]);
    assert_eq!(rs.default_fallbacks, ["claude-3-5-haiku"]);
}

#[test]
fn local_ollama_vllm() {
    let l = load("local_ollama_vllm.yaml");
    let c = &l.config;
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_eq!(c.model_list.len(), 5);
    assert_eq!(
        c.router_settings.routing_strategy,
        RoutingStrategyName::LeastBusy
    );
    assert_eq!(
        c.router_settings.fallbacks,
        [rule("qwen-coder", &["llama3"])]
    );
    let ollama = &c.model_list[0].litellm_params;
    assert_eq!(
        kind(&ollama.model),
        ProviderKind::Compatible(CompatibleProvider::Ollama)
    );
    assert_eq!(ollama.extra["temperature"], json!(0.2));
    assert_eq!(ollama.extra["num_ctx"], json!(8192));
    let vllm = &c.model_list[1].litellm_params;
    assert_eq!(
        kind(&vllm.model),
        ProviderKind::Compatible(CompatibleProvider::HostedVllm)
    );
    assert_eq!(vllm.api_base.as_deref(), Some("http://gpu-node-1:8000/v1"));
    // extra_body is merged into the body fields (never sent as a literal `extra_body`).
    assert_eq!(vllm.extra["repetition_penalty"], json!(1.05));
    assert_eq!(vllm.extra["top_k"], json!(40));
    assert!(!vllm.extra.contains_key("extra_body"));
    assert_eq!(
        c.model_list
            .iter()
            .filter(|d| d.model_name == "qwen-coder")
            .count(),
        2
    );
    assert_eq!(c.model_list[3].litellm_params.extra["seed"], json!(42));
    assert_eq!(
        c.model_list[4].litellm_params.mock_response.as_deref(),
        Some("This is a mocked reply.")
    );
}

#[test]
fn hosted_providers() {
    let l = load("hosted_providers.yaml");
    let c = &l.config;
    assert_eq!(c.model_list.len(), 6);
    let rs = &c.router_settings;
    assert_eq!(rs.routing_strategy, RoutingStrategyName::LatencyBased);
    assert_eq!(rs.routing_strategy_args.ttl, Duration::from_secs(300));
    assert_eq!(rs.routing_strategy_args.lowest_latency_buffer, 0.5);
    assert_eq!(rs.stream_timeout, Some(Duration::from_secs(15)));
    assert_eq!(rs.timeout, Some(Duration::from_secs(60)));
    assert_eq!(
        rs.content_policy_fallbacks,
        [rule("deepseek-chat", &["mistral-large"])]
    );
    assert_eq!(rs.fallbacks.len(), 2);
    let kinds: Vec<ProviderKind> = c
        .model_list
        .iter()
        .map(|d| kind(&d.litellm_params.model))
        .collect();
    use CompatibleProvider::*;
    assert_eq!(
        kinds,
        [Groq, TogetherAi, FireworksAi, Mistral, DeepSeek, OpenRouter]
            .map(ProviderKind::Compatible)
    );
    assert_eq!(
        warning_paths(&l),
        BTreeSet::from(["model_list[5].litellm_params.merge_reasoning_content_in_choices"])
    );
}

#[test]
fn unsupported_providers() {
    let l = load("unsupported_providers.yaml");
    let c = &l.config;
    assert_eq!(c.model_list.len(), 3);
    // Bedrock is supported: its aws_* keys load into `aws`, without warnings.
    assert_eq!(
        kind(&c.model_list[0].litellm_params.model),
        ProviderKind::Bedrock
    );
    let aws = &c.model_list[0].litellm_params.aws;
    assert_eq!(aws.region_name.as_deref(), Some("us-east-1"));
    assert!(aws.access_key_id.is_some() && aws.secret_access_key.is_some());
    assert_eq!(
        warning_paths(&l),
        BTreeSet::from([
            "model_list[1].litellm_params.model",
            "model_list[2].litellm_params.tags",
            "credential_list",
        ])
    );
    let vertex = l
        .warnings
        .iter()
        .find(|w| w.path == "model_list[1].litellm_params.model")
        .unwrap();
    assert!(vertex.message.contains("partner model"), "{vertex}");
    let v = &c.model_list[1].litellm_params.vertex;
    assert_eq!(v.project.as_deref(), Some("my-gcp-project"));
    assert_eq!(v.location.as_deref(), Some("us-central1"));
    // Ignored settings never reach the runtime config.
    assert!(c.model_list[0].litellm_params.extra.is_empty());
    assert_eq!(
        c.router_settings.fallbacks,
        [
            rule("claude-bedrock", &["gpt-4o"]),
            rule("gemini-pro", &["gpt-4o"])
        ]
    );
}

#[test]
fn cost_based_model_info() {
    let l = load("cost_based_model_info.yaml");
    let c = &l.config;
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_eq!(c.model_list.len(), 3);
    assert_eq!(
        c.router_settings.routing_strategy,
        RoutingStrategyName::CostBased
    );
    assert_eq!(c.router_settings.num_retries, 0);
    assert_eq!(c.router_settings.max_fallbacks, 1);
    // Prices in litellm_params land in model_info.
    let mini = &c.model_list[0].model_info;
    assert_eq!(mini.input_cost_per_token, Some(0.00000015));
    assert_eq!(mini.output_cost_per_token, Some(0.0000006));
    assert_eq!(mini.extra["supports_function_calling"], json!(true));
    assert_eq!(mini.id.as_deref(), Some("chat-openai-mini"));
    let haiku = &c.model_list[1].model_info;
    assert_eq!(haiku.max_input_tokens, Some(200000));
    assert_eq!(haiku.metadata["owner"], json!("platform-team"));
    let emb = &c.model_list[2].model_info;
    assert_eq!(emb.id.as_deref(), Some("17"));
    assert_eq!(emb.mode.as_deref(), Some("embedding"));
    assert_eq!(emb.max_tokens, Some(8191));
    assert_eq!(emb.output_cost_per_token, Some(0.0));
}
