//! `routeiq`: the gateway (`serve`) and its tools (`check`, `train`, `eval`, `keygen`), as
//! subcommands. Logic lives in the libraries; this only dispatches.

use std::process::ExitCode;

use clap::Parser;
use routeiq_gateway::check;
use routeiq_gateway::cli::{Cli, Command};
use routeiq_gateway::startup;

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
