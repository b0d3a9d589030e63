//! `routeiq-gateway`: parse the command line, run the gateway (see `startup::run`).

use clap::Parser;
use routeiq_gateway::cli::Args;
use routeiq_gateway::startup;

/// mimalloc: the gateway allocates per request (bodies, JSON, headers); glibc's malloc showed
/// up at ~15% of CPU under load in profiles, mimalloc's thread-local free lists cut that.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    startup::run(&args)?;
    Ok(())
}
