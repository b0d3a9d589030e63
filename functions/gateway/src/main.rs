//! `routeiq-gateway`: parse the command line, load the config, serve.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use routeiq_gateway::cli::{Args, ConfigSource};
use routeiq_gateway::{Gateway, server, startup};

/// mimalloc: the gateway allocates per request (bodies, JSON, headers); glibc's malloc showed
/// up at ~15% of CPU under load in profiles, mimalloc's thread-local free lists cut that.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let env = |name: &str| std::env::var(name).ok();
    let json_env = env("JSON_LOGS").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let source = args.config_source();
    let loaded = startup::load_config(&source, &env);
    startup::init_logging(
        json_env
            || loaded
                .as_ref()
                .is_ok_and(|l| l.config.litellm_settings.json_logs),
    );
    let loaded = loaded.context("loading config")?;
    match &source {
        ConfigSource::File(p) => tracing::info!(path = %p.display(), "config loaded"),
        ConfigSource::Embedded => tracing::info!(
            "no config given (--config, LITELLM_CONFIG_PATH, /app/config/config.yaml): serving the embedded quickstart config"
        ),
    }
    for w in &loaded.warnings {
        tracing::warn!(path = %w.path, "{}", w.message);
    }
    if args.num_workers.is_some() {
        tracing::warn!("--num_workers is ignored: RouteIQ serves from one multi-threaded process");
    }
    rustls::crypto::ring::default_provider()
        .install_default()
        .map_err(|_| anyhow::anyhow!("a TLS crypto provider was already installed"))?;
    let gateway = Gateway::new(&loaded.config, &env).context("building the gateway")?;
    if gateway.master_key.is_none() {
        tracing::warn!(
            "no master_key configured (general_settings.master_key or LITELLM_MASTER_KEY): the gateway accepts requests without authentication"
        );
    }
    tracing::info!(
        model_groups = gateway.router.model_names().len(),
        deployments = gateway.router.deployments().count(),
        routing_strategy = gateway.router.strategy().name(),
        "router ready"
    );
    let ip: IpAddr = args
        .host
        .parse()
        .with_context(|| format!("--host '{}' is not an IP address", args.host))?;
    let addr = SocketAddr::new(ip, args.port);
    let app = server::app(Arc::new(gateway));
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(server::serve(app, addr))
        .with_context(|| format!("serving on {addr}"))
}
