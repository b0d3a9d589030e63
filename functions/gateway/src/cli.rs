//! The gateway's command line, in LiteLLM's conventions (`--config`, `--host`, `--port`).
//!
//! - [`Args`]: `routeiq-gateway`'s arguments (also `routeiq serve`'s), with the `--help`
//!   section on environment variables;
//! - [`ConfigSource`]: where the config comes from (S3, a file, the embedded quickstart).
//!
//! The `routeiq` CLI's subcommands (`src/bin/routeiq.rs`) are not here: its tools need the
//! trainer, which the gateway library does not depend on.

use std::path::PathBuf;

use clap::Parser;
use routeiq::provider::ProviderKind;

/// The `--help` section on environment variables; the provider variables come from the
/// providers' own declarations ([`ProviderKind::env_vars`]).
fn env_help() -> String {
    let mut providers = String::new();
    let mut line = String::new();
    for var in ProviderKind::env_vars()
        .into_iter()
        .chain(["AZURE_API_VERSION"])
    {
        if line.len() + var.len() > 88 {
            providers.push_str(&format!("  {}\n", line.trim_end_matches(' ')));
            line.clear();
        }
        line.push_str(var);
        line.push_str(", ");
    }
    providers.push_str(&format!("  {}\n", line.trim_end_matches([',', ' '])));
    format!(
        "ENVIRONMENT:\n  \
LITELLM_CONFIG_PATH   config file when --config is not given (then /app/config/config.yaml;\n                        \
with none of them, the embedded quickstart config is served)\n  \
PORT, HOST            listen address when --port/--host are not given\n  \
NUM_WORKERS           serving threads when --num_workers is not given (default: CPUs)\n  \
LITELLM_MASTER_KEY    API key clients must send (general_settings.master_key wins)\n  \
RUST_LOG              log filter (default: info)\n  \
JSON_LOGS             'true' for JSON log lines (also litellm_settings.json_logs)\n\
{providers}                        \
provider keys and endpoints used when a deployment sets no api_key/api_base\n  \
ADMIN_API_KEYS, ROUTEIQ_*, OTEL_*\n                        \
admin keys, backpressure, drain, timeouts, circuit breakers, limits, SSRF guard,\n                        \
tracing: see the README's table"
    )
}

/// RouteIQ gateway: an OpenAI-compatible LLM gateway that routes every request to the model
/// that answers it well for the least money. Reads LiteLLM's config.yaml.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "routeiq-gateway",
    version,
    after_help = env_help()
)]
pub struct Args {
    /// Path to a LiteLLM config.yaml.
    #[arg(long, short = 'c', env = "LITELLM_CONFIG_PATH")]
    pub config: Option<PathBuf>,

    /// Address to listen on (0.0.0.0 to accept connections from other hosts, e.g. in a container).
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// Port to listen on.
    #[arg(long, short = 'p', env = "PORT", default_value_t = 4000)]
    pub port: u16,

    /// Serving threads (LiteLLM's worker count): each runs an event loop of its own over the
    /// shared listening socket, with its own upstream connection pool. Default: the number of
    /// CPUs.
    #[arg(long = "num_workers", env = "NUM_WORKERS", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub num_workers: Option<u32>,
}

impl Args {
    /// The number of serving threads: `--num_workers`, else the CPUs available.
    pub fn server_threads(&self) -> usize {
        self.num_workers.map_or_else(
            || std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            |n| n as usize,
        )
    }
}

/// Where the config comes from, in LiteLLM's precedence order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// `CONFIG_S3_BUCKET` + `CONFIG_S3_KEY` (LiteLLM's config-bucket convention: when set they
    /// take precedence over a config file).
    S3 {
        bucket: String,
        key: String,
    },
    File(PathBuf),
    /// No file given or found: the embedded quickstart config.
    Embedded,
}

/// The object key read from `CONFIG_S3_BUCKET` when `CONFIG_S3_KEY` is unset (the seed
/// config guide's layout).
pub const DEFAULT_CONFIG_S3_KEY: &str = "configs/config.yaml";

/// The container default LiteLLM's images use.
pub const DEFAULT_CONFIG_PATH: &str = "/app/config/config.yaml";

impl Args {
    /// `CONFIG_S3_BUCKET` (with `CONFIG_S3_KEY`, default [`DEFAULT_CONFIG_S3_KEY`]), then
    /// `--config`, then `LITELLM_CONFIG_PATH` (both via clap), then `/app/config/config.yaml`
    /// when it exists, else the embedded default. A bucket is never ignored: without a key the
    /// documented default key is read (and a missing object fails the start).
    pub fn config_source_with(&self, env: &dyn Fn(&str) -> Option<String>) -> ConfigSource {
        let non_empty = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        if let Some(bucket) = non_empty("CONFIG_S3_BUCKET") {
            let key = non_empty("CONFIG_S3_KEY").unwrap_or_else(|| DEFAULT_CONFIG_S3_KEY.into());
            return ConfigSource::S3 { bucket, key };
        }
        self.config_source()
    }

    /// [`Args::config_source_with`] without the S3 variables: `--config`, then
    /// `LITELLM_CONFIG_PATH`, then `/app/config/config.yaml` when it exists, else the embedded
    /// default.
    pub fn config_source(&self) -> ConfigSource {
        if let Some(p) = &self.config {
            return ConfigSource::File(p.clone());
        }
        let default = PathBuf::from(DEFAULT_CONFIG_PATH);
        if default.exists() {
            ConfigSource::File(default)
        } else {
            ConfigSource::Embedded
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn source(env: &[(&str, &str)]) -> ConfigSource {
        let args = Args::parse_from(["routeiq-gateway", "--config", "local.yaml"]);
        args.config_source_with(&|name| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn an_s3_bucket_without_a_key_reads_the_default_key() {
        assert_eq!(
            source(&[("CONFIG_S3_BUCKET", "cfg"), ("CONFIG_S3_KEY", "a/b.yaml")]),
            ConfigSource::S3 {
                bucket: "cfg".into(),
                key: "a/b.yaml".into()
            }
        );
        // Never a silent fall-back to the file (or the embedded quickstart).
        assert_eq!(
            source(&[("CONFIG_S3_BUCKET", "cfg")]),
            ConfigSource::S3 {
                bucket: "cfg".into(),
                key: DEFAULT_CONFIG_S3_KEY.into()
            }
        );
        assert_eq!(
            source(&[("CONFIG_S3_KEY", "a/b.yaml")]),
            ConfigSource::File("local.yaml".into())
        );
    }
}
