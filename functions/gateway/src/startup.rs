//! Start-up: find and load the config, set up logging, build the gateway.

use std::path::Path;

use routeiq::config::{ConfigError, LoadedConfig};

use crate::cli::ConfigSource;

/// The config served when none is given: deployments answering with `mock_response`, so the
/// gateway runs with no API key and no network.
pub const EMBEDDED_CONFIG: &str = include_str!("../../../examples/quickstart.yaml");

/// Why the config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Invalid { path: String, source: ConfigError },
}

/// Reads and validates the config from `source`, resolving `os.environ/` through `env`.
pub fn load_config(
    source: &ConfigSource,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<LoadedConfig, LoadError> {
    let (path, text) = match source {
        ConfigSource::File(p) => (
            p.display().to_string(),
            read(p).map_err(|source| LoadError::Read {
                path: p.display().to_string(),
                source,
            })?,
        ),
        ConfigSource::Embedded => (
            "<embedded quickstart>".to_string(),
            EMBEDDED_CONFIG.to_string(),
        ),
    };
    routeiq::config::load_str_with_env(&text, env)
        .map_err(|source| LoadError::Invalid { path, source })
}

fn read(p: &Path) -> std::io::Result<String> {
    std::fs::read_to_string(p)
}

/// Installs the global tracing subscriber: JSON lines when `json`, else compact text; the
/// filter comes from `RUST_LOG` (default `info`).
pub fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal, never into log files or collectors.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stdout);
    let result = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.compact().try_init()
    };
    if let Err(e) = result {
        eprintln!("logging already initialised: {e}");
    }
}
