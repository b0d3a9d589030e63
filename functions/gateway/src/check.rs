//! `routeiq check`: validates a config (and optionally the environment) without starting the
//! gateway, collecting every problem with its path — fit for CI.
//!
//! Without `--validate-env`, `os.environ/NAME` references resolve to a placeholder when unset,
//! so the config's structure is checked on a machine that does not hold the secrets. With it,
//! unset references are errors, and so are missing provider key variables a deployment needs,
//! `api_base` URLs that do not parse (or that the SSRF guard refuses), deployments that cannot
//! be built, bad `ROUTEIQ_*` variables, and bad `REDIS_*` variables when the config names no
//! Redis (the shared state would read them).

use std::path::Path;
use std::sync::Arc;

use routeiq::config::{
    Config, ConfigError, ConfigWarning, DeploymentConfig, IncludeReader, WarningKind,
};
use routeiq::provider::ProviderKind;

use crate::gateway::{Gateway, Services};
use crate::settings::RuntimeSettings;

/// The value an unset `os.environ/` reference gets when the environment is not validated.
const PLACEHOLDER: &str = "routeiq-check-placeholder";

/// One finding, with the path (YAML path, or environment variable) it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Everything `routeiq check` found.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    pub errors: Vec<Finding>,
    pub warnings: Vec<Finding>,
}

impl CheckReport {
    /// Whether the config (and environment) passed.
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }

    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(Finding {
            path: path.into(),
            message: message.into(),
        });
    }

    fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Finding {
            path: path.into(),
            message: message.into(),
        });
    }

    /// The loader's warnings; with `--validate-env`, a deployment's unset `os.environ/`
    /// variable is an error (the server starts without it, but the environment is wrong).
    fn warnings_of(&mut self, warnings: Vec<ConfigWarning>, validate_env: bool) {
        for w in warnings {
            if validate_env && w.kind == WarningKind::UnsetVariable {
                self.error(w.path, w.message);
            } else {
                self.warn(w.path, w.message);
            }
        }
    }

    /// The report as printed: one line per finding, then a summary line.
    pub fn render(&self, file: &Path) -> String {
        let mut out = String::new();
        for e in &self.errors {
            out.push_str(&format!("error: {e}\n"));
        }
        for w in &self.warnings {
            out.push_str(&format!("warning: {w}\n"));
        }
        out.push_str(&format!(
            "{}: {} error(s), {} warning(s)\n",
            file.display(),
            self.errors.len(),
            self.warnings.len()
        ));
        out
    }
}

/// What `routeiq check` checks beyond the config's structure.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckOptions {
    /// `--validate-env`: the environment too (see the module docs).
    pub validate_env: bool,
    /// `--strict`: every warning is an error (what `ROUTEIQ_STRICT_CONFIG=true` refuses).
    pub strict: bool,
}

/// Checks the config file at `path`.
pub fn check_file(
    path: &Path,
    options: CheckOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> CheckReport {
    let read_include = |name: &str| crate::startup::read_beside(path, name);
    match std::fs::read_to_string(path) {
        Ok(text) => check_with(&text, options, env, Some(&read_include)),
        Err(e) => {
            let mut r = CheckReport::default();
            r.error(path.display().to_string(), format!("cannot read: {e}"));
            r
        }
    }
}

/// Checks config text (its `include:` is a warning: there is no directory to read from); see
/// [`check_file`].
pub fn check_str(
    yaml: &str,
    options: CheckOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> CheckReport {
    check_with(yaml, options, env, None)
}

fn check_with(
    yaml: &str,
    options: CheckOptions,
    env: &dyn Fn(&str) -> Option<String>,
    include: Option<IncludeReader<'_>>,
) -> CheckReport {
    let mut report = check_config(yaml, options.validate_env, env, include);
    if options.strict {
        for w in std::mem::take(&mut report.warnings) {
            report.error(w.path, format!("{} (an error under --strict)", w.message));
        }
    }
    report
}

fn check_config(
    yaml: &str,
    validate_env: bool,
    env: &dyn Fn(&str) -> Option<String>,
    include: Option<IncludeReader<'_>>,
) -> CheckReport {
    let mut report = CheckReport::default();
    let lenient = |name: &str| env(name).or_else(|| Some(PLACEHOLDER.to_string()));
    let lookup: &dyn Fn(&str) -> Option<String> = if validate_env { env } else { &lenient };
    let loaded = match routeiq::config::load_str_with(yaml, lookup, include) {
        Ok(l) => l,
        Err(ConfigError::Yaml(m)) => {
            report.error("<root>", format!("not valid YAML: {m}"));
            return report;
        }
        Err(ConfigError::Invalid { problems, warnings }) => {
            for p in problems {
                report.error(p.path, p.message);
            }
            report.warnings_of(warnings, validate_env);
            // Unset variables are reported above; load again with placeholders for them so
            // the environment checks below still see every deployment.
            match (
                validate_env,
                routeiq::config::load_str_with(yaml, &lenient, include),
            ) {
                (true, Ok(l)) => routeiq::config::LoadedConfig {
                    warnings: Vec::new(),
                    ..l
                },
                _ => return report,
            }
        }
    };
    report.warnings_of(loaded.warnings, validate_env);
    let config = loaded.config;
    if !validate_env {
        return report;
    }
    let with_config = |name: &str| {
        config
            .environment_variables
            .get(name)
            .map(|s| s.expose().to_string())
            .or_else(|| env(name))
            .filter(|v| !v.trim().is_empty())
    };
    for (i, d) in config.model_list.iter().enumerate() {
        check_deployment(&mut report, i, d, &with_config);
    }
    let settings = match RuntimeSettings::from_env(env) {
        Ok(s) => s,
        Err(e) => {
            for p in e.0 {
                report.error(p.var, p.message);
            }
            RuntimeSettings::default()
        }
    };
    match crate::startup::state_backend(&config, env) {
        Ok((_, None)) => {}
        Ok((_, Some(ignored))) => report.warn("ROUTEIQ_STATE_TABLE", ignored),
        Err(e) => {
            for p in e.0 {
                report.error(p.var, p.message);
            }
        }
    }
    check_build(&mut report, &config, &with_config, settings);
    report
}

/// The provider key variable a deployment needs, if any (the provider's rule,
/// [`ProviderKind::required_key_env`]).
fn required_key_var(
    d: &DeploymentConfig,
    kind: &ProviderKind,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<&'static str> {
    let set = |v: Option<String>| v.is_some_and(|b| !b.trim().is_empty());
    let custom_endpoint =
        set(d.litellm_params.api_base.clone()) || kind.api_base_env().iter().any(|v| set(env(v)));
    kind.required_key_env(custom_endpoint)
}

fn check_deployment(
    report: &mut CheckReport,
    i: usize,
    d: &DeploymentConfig,
    env: &dyn Fn(&str) -> Option<String>,
) {
    let p = &d.litellm_params;
    if p.mock_response.is_some() {
        return;
    }
    let Ok((kind, _)) = ProviderKind::parse(&p.model) else {
        return;
    };
    let has_key = p.api_key.as_ref().is_some_and(|k| !k.is_empty());
    if !has_key
        && let Some(var) = required_key_var(d, &kind, env)
        && env(var).is_none()
    {
        report.error(
            format!("model_list[{i}].litellm_params.api_key"),
            format!(
                "deployment '{}' has no api_key and {var} is not set",
                d.model_name
            ),
        );
    }
    if kind == ProviderKind::Azure
        && p.api_base.as_deref().is_none_or(|b| b.trim().is_empty())
        && env("AZURE_API_BASE").is_none()
    {
        report.error(
            format!("model_list[{i}].litellm_params.api_base"),
            "azure deployments need api_base or AZURE_API_BASE",
        );
    }
    if let Some(base) = p.api_base.as_deref().filter(|b| !b.trim().is_empty()) {
        let path = format!("model_list[{i}].litellm_params.api_base");
        match reqwest::Url::parse(base.trim()) {
            Err(e) => report.error(path, format!("'{base}' is not a URL: {e}")),
            Ok(u) if !matches!(u.scheme(), "http" | "https") => {
                report.error(path, format!("'{base}' must be an http:// or https:// URL"))
            }
            Ok(u) if u.host_str().is_none_or(str::is_empty) => {
                report.error(path, format!("'{base}' has no host"))
            }
            Ok(_) => {}
        }
    }
}

/// Builds the gateway as `serve` would: provider construction and the SSRF guard's view of
/// IP-literal endpoints.
fn check_build(
    report: &mut CheckReport,
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
    settings: RuntimeSettings,
) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // With a key store configured, `serve` runs the control plane: stand one in (in memory,
    // nothing contacted) so the checks that depend on it (master key, JWT teams) see it.
    let keys_on = !matches!(
        crate::startup::keys_backend(config, &settings, env),
        Ok(crate::startup::KeysBackend::Off) | Err(_)
    );
    let mut services = Services::new(settings);
    if keys_on {
        services = services.with_keys(
            Arc::new(crate::keys::memory::MemoryKeyStore::new()),
            crate::keys::access::DEFAULT_BUDGET_STATUS,
        );
    }
    match Gateway::build(config, env, services) {
        Ok(gw) => {
            // With the environment checked, a deployment that cannot be built is an error
            // (the server starts without it).
            for w in gw.config_warnings.iter() {
                if w.kind == WarningKind::Unusable
                    && !report.errors.iter().any(|f| f.path.starts_with(&w.path))
                {
                    report.error(w.path.clone(), w.message.clone());
                }
            }
            for (i, d) in config.model_list.iter().enumerate() {
                let id = routeiq::router::Deployment::from_config(i, d).id;
                if let Some(b) = gw.blocked_endpoint(&id) {
                    report.error(
                        format!("model_list[{i}].litellm_params.api_base"),
                        b.to_string(),
                    );
                }
            }
        }
        Err(e) => {
            let (path, message) = e.problem();
            if !report.errors.iter().any(|f| f.path.starts_with(&path)) {
                report.error(path, message);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |n| {
            pairs
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        }
    }

    const CONFIG: &str = r#"
model_list:
  - model_name: gpt
    litellm_params:
      model: openai/gpt-4o-mini
  - model_name: claude
    litellm_params:
      model: anthropic/claude-3-5-haiku-latest
      api_key: os.environ/MY_ANTHROPIC_KEY
  - model_name: local
    litellm_params:
      model: hosted_vllm/llama
      api_base: "http://127.0.0.1:8000/v1"
  - model_name: meta
    litellm_params:
      model: openai/x
      api_base: "http://169.254.169.254/v1"
      api_key: sk-x
  - model_name: broken
    litellm_params:
      model: openai/y
      api_base: "http://bad_host:99999/v1"
      api_key: sk-x
"#;

    const VALIDATE_ENV: CheckOptions = CheckOptions {
        validate_env: true,
        strict: false,
    };

    #[test]
    fn strict_makes_warnings_errors() {
        let yaml = "model_list:\n  - {model_name: a, litellm_params: {model: gpt-4o, api_key: sk-x}}\n\
                    litellm_settings:\n  success_callback: [langfuse]\n";
        let r = check_str(yaml, CheckOptions::default(), &env(&[]));
        assert!(r.ok() && r.warnings.len() == 1, "{r:?}");
        let strict = CheckOptions {
            validate_env: false,
            strict: true,
        };
        let r = check_str(yaml, strict, &env(&[]));
        assert!(!r.ok());
        assert_eq!(r.errors[0].path, "litellm_settings.success_callback");
        assert!(r.warnings.is_empty());
    }

    #[test]
    fn structure_only_without_validate_env() {
        let r = check_str(CONFIG, CheckOptions::default(), &env(&[]));
        assert!(r.ok(), "{:?}", r.errors);
    }

    #[test]
    fn validate_env_reports_every_problem_with_its_path() {
        let r = check_str(
            CONFIG,
            CheckOptions {
                validate_env: true,
                strict: false,
            },
            &env(&[("ROUTEIQ_CB_FAILURE_THRESHOLD", "x")]),
        );
        let paths: Vec<&str> = r.errors.iter().map(|f| f.path.as_str()).collect();
        assert!(
            paths.contains(&"model_list[0].litellm_params.api_key"),
            "{paths:?}"
        );
        assert!(
            paths.contains(&"model_list[1].litellm_params.api_key"),
            "{paths:?}"
        );
        assert!(
            paths.contains(&"model_list[4].litellm_params.api_base"),
            "{paths:?}"
        );
        assert!(paths.contains(&"ROUTEIQ_CB_FAILURE_THRESHOLD"), "{paths:?}");
        assert!(
            !paths.iter().any(|p| p.starts_with("model_list[2]")),
            "{paths:?}"
        );
        let r = check_str(
            CONFIG,
            VALIDATE_ENV,
            &env(&[("OPENAI_API_KEY", "sk"), ("MY_ANTHROPIC_KEY", "sk")]),
        );
        let paths: Vec<&str> = r.errors.iter().map(|f| f.path.as_str()).collect();
        // The broken URL, and (now that one bad deployment no longer stops the build) the
        // metadata address the SSRF guard refuses.
        assert_eq!(
            paths,
            vec![
                "model_list[4].litellm_params.api_base",
                "model_list[3].litellm_params.api_base"
            ]
        );
    }

    #[test]
    fn redis_variables_are_checked_when_they_would_be_used() {
        const MOCK: &str = "model_list:\n  - {model_name: m, litellm_params: {model: openai/x, mock_response: hi}}\n";
        let bad = &[("REDIS_HOST", "cache"), ("REDIS_PORT", "99999")];
        let r = check_str(MOCK, VALIDATE_ENV, &env(bad));
        let paths: Vec<&str> = r.errors.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["REDIS_PORT"]);
        // Not read when the config names a Redis.
        let with_redis = format!("{MOCK}router_settings:\n  redis_host: cache\n");
        assert!(check_str(&with_redis, VALIDATE_ENV, &env(bad)).ok());
        // Both DynamoDB and Redis: a warning says which one is used. Without a master key the
        // state table does not turn virtual keys on (the gateway stays open, as before).
        let state_table = env(&[("ROUTEIQ_STATE_TABLE", "routeiq-state")]);
        let r = check_str(&with_redis, VALIDATE_ENV, &state_table);
        assert!(r.ok(), "{:?}", r.errors);
        assert_eq!(r.warnings[0].path, "ROUTEIQ_STATE_TABLE");
        // The keys table does, and then a master key is required, as `serve` says.
        let keys_table = env(&[("ROUTEIQ_KEYS_TABLE", "routeiq-keys")]);
        let r = check_str(&with_redis, VALIDATE_ENV, &keys_table);
        assert_eq!(
            r.errors[0].path, "general_settings.master_key",
            "{:?}",
            r.errors
        );
        let with_key = format!("{with_redis}general_settings:\n  master_key: sk-1234\n");
        let r = check_str(&with_key, VALIDATE_ENV, &state_table);
        assert!(r.ok(), "{:?}", r.errors);
        assert_eq!(r.warnings[0].path, "ROUTEIQ_STATE_TABLE");
        assert!(r.warnings[0].message.contains("goes to DynamoDB"));
    }

    #[test]
    fn jwt_settings_are_checked_as_serve_would() {
        const JWT: &str = "model_list:\n  - {model_name: m, litellm_params: {model: openai/x, mock_response: hi}}\n\
            general_settings:\n  master_key: sk-1234\n  enable_jwt_auth: true\n  \
            litellm_jwtauth: {team_id_jwt_field: team}\n";
        const URL: (&str, &str) = (
            "JWT_PUBLIC_KEY_URL",
            "https://idp.example/.well-known/jwks.json",
        );
        // Teams from tokens need a key store.
        let r = check_str(JWT, VALIDATE_ENV, &env(&[URL]));
        let paths: Vec<&str> = r.errors.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["general_settings.litellm_jwtauth"]);
        let r = check_str(
            JWT,
            VALIDATE_ENV,
            &env(&[URL, ("ROUTEIQ_KEYS_BACKEND", "memory")]),
        );
        assert!(r.ok(), "{:?}", r.errors);
        // No key source.
        let r = check_str(
            JWT,
            VALIDATE_ENV,
            &env(&[("ROUTEIQ_KEYS_BACKEND", "memory")]),
        );
        assert_eq!(r.errors[0].path, "JWT_PUBLIC_KEY_URL");
    }

    #[test]
    fn ssrf_refused_endpoints_are_errors() {
        let yaml = r#"
model_list:
  - model_name: meta
    litellm_params:
      model: openai/x
      api_base: "http://169.254.169.254/v1"
      api_key: sk-x
"#;
        let r = check_str(yaml, VALIDATE_ENV, &env(&[]));
        assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
        assert_eq!(r.errors[0].path, "model_list[0].litellm_params.api_base");
        assert!(r.errors[0].message.contains("SSRF guard"));
    }
}
