//! `routeiq`: the gateway (`serve`) and its tools (`check`, `train`, `eval`, `train-edge`,
//! `sign`, `keygen`), as subcommands.
//!
//! - the command line ([`Cli`], [`Command`]): defined here, not in the gateway library, because
//!   the tools' arguments are the trainer's types (only this binary depends on the trainer:
//!   the `tools` feature, on by default);
//! - `main`: dispatches; the logic lives in the libraries.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use routeiq_gateway::check;
use routeiq_gateway::cli::Args;
use routeiq_gateway::startup;

/// `routeiq`: the gateway and its tools, as subcommands.
#[derive(Debug, Clone, Parser)]
#[command(name = "routeiq", version, about = "RouteIQ: LLM gateway and tools")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `routeiq`'s subcommands. A new tool is one more variant with its own `clap::Args` struct
/// and one more arm in `main`.
#[derive(Debug, Clone, clap::Subcommand)]
enum Command {
    /// Run the gateway (the same as the `routeiq-gateway` binary).
    Serve(Args),
    /// Validate a config (and with --validate-env the environment) without starting; prints
    /// every problem with its path and exits non-zero on errors.
    Check(CheckArgs),
    /// Train the llmrouter-* routers from routing data (LLMRouter JSON or RouteLLM CSVs) into
    /// router artifacts with a manifest (optionally signed).
    Train(routeiq_trainer::cli::TrainArgs),
    /// Evaluate router artifacts on the held-out split: quality, cost, quality/cost curves,
    /// AIQ, APGR; writes eval.md, eval.json and eval.png.
    Eval(routeiq_trainer::cli::EvalArgs),
    /// Train the edge Worker's tier classifier (hashed n-grams + cheap signals, int8) from
    /// routing data; writes the model file, manifest.json and eval.md.
    TrainEdge(routeiq_trainer::edge::EdgeTrainArgs),
    /// Sign the router artifacts a manifest lists (checked against it first).
    Sign(routeiq_trainer::cli::SignArgs),
    /// Generate an ed25519 key for signing router artifacts (prints the public key).
    Keygen(routeiq_trainer::cli::KeygenArgs),
}

/// `routeiq check`.
#[derive(Debug, Clone, clap::Args)]
struct CheckArgs {
    /// Path to a LiteLLM config.yaml.
    #[arg(long, short = 'c', env = "LITELLM_CONFIG_PATH")]
    config: PathBuf,

    /// Also check the environment: every `os.environ/` reference and provider key variable a
    /// deployment needs is set, `api_base` URLs parse, and RouteIQ's own variables are valid.
    #[arg(long)]
    validate_env: bool,

    /// Every warning (keys RouteIQ ignores, deployments it cannot call) is an error, as with
    /// `ROUTEIQ_STRICT_CONFIG=true` on the server: for CI.
    #[arg(long)]
    strict: bool,
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::Serve(args) => {
            startup::run(&args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check(args) => {
            let env = |name: &str| std::env::var(name).ok();
            let options = check::CheckOptions {
                validate_env: args.validate_env,
                strict: args.strict,
            };
            let report = check::check_file(&args.config, options, &env);
            print!("{}", report.render(&args.config));
            Ok(if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Train(args) => {
            routeiq_trainer::cli::run_train(&args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval(args) => {
            print!("{}", routeiq_trainer::cli::run_eval(&args)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::TrainEdge(args) => {
            let report = routeiq_trainer::edge::run(&args)?;
            print!("{}", routeiq_trainer::edge::markdown(&report));
            eprintln!("wrote {}", args.out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Sign(args) => {
            let (public, files) = routeiq_trainer::cli::run_sign(&args)?;
            println!(
                "signed {} artifacts in {} with {public}",
                files.len(),
                args.models.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Keygen(args) => {
            let public = routeiq_trainer::cli::run_keygen(&args)?;
            println!("{public}");
            eprintln!(
                "secret key seed written to {}; trust the public key with LLMROUTER_MODEL_PUBLIC_KEYS={public}",
                args.out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
