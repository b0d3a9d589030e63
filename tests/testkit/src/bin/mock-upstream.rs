//! The mock upstream as a standalone server, for benchmarks and manual tests.
//!
//! `mock-upstream [--port N] [--host ADDR] [--latency-ms X] [--record]`
//!
//! `--config FILE` is accepted and ignored (so that the gateway harness can run it as a stand-in
//! gateway). Prints `mock-upstream listening on http://ADDR:PORT` once it accepts connections.

use std::io::Write;
use std::net::IpAddr;

use routeiq_testkit::mock::{MockOptions, MockUpstream};

const USAGE: &str =
    "usage: mock-upstream [--port N] [--host ADDR] [--latency-ms X] [--record] [--config FILE]";

fn parse_args() -> Result<MockOptions, String> {
    let mut opts = MockOptions {
        record: false,
        ..MockOptions::default()
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let mut value = |what: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{what} needs a value\n{USAGE}"))
        };
        match name.as_str() {
            "--port" | "-p" => {
                opts.port = value("--port")?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?;
            }
            "--host" => {
                opts.host = value("--host")?
                    .parse::<IpAddr>()
                    .map_err(|e| format!("--host: {e}"))?;
            }
            "--latency-ms" => {
                opts.latency_ms = value("--latency-ms")?
                    .parse()
                    .map_err(|e| format!("--latency-ms: {e}"))?;
            }
            "--record" => opts.record = true,
            "--config" => {
                value("--config")?;
            }
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(opts)
}

#[tokio::main]
async fn main() {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let mock = match MockUpstream::start_with(opts).await {
        Ok(m) => m,
        Err(e) => {
            eprintln!("mock-upstream: cannot listen: {e:#}");
            std::process::exit(1);
        }
    };
    println!("mock-upstream listening on {}", mock.base_url());
    let _ = std::io::stdout().flush();
    tokio::select! {
        r = mock.wait() => {
            if let Err(e) = r {
                eprintln!("mock-upstream: {e:#}");
                std::process::exit(1);
            }
        }
        _ = tokio::signal::ctrl_c() => {}
    }
}
