//! Redis for the state tests: the shared server `tests/run.sh` starts (`ROUTEIQ_TEST_REDIS_URL`)
//! and dedicated `redis-server` processes a test can kill and restart on the same port.
//!
//! - [`shared_redis_url`]: the run's server; fails the test (not skips it) when unset.
//! - [`RedisServer`]: a child `redis-server` on a free loopback port, no persistence,
//!   killed on drop.
//! - [`redis_state_env`]: the environment of a gateway on a Redis's routing state.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::gateway::free_port;

/// The Redis `tests/run.sh` started for this run (`ROUTEIQ_TEST_REDIS_URL`).
///
/// # Panics
/// When the variable is unset: the tests that need Redis fail rather than pass unchecked.
pub fn shared_redis_url() -> String {
    std::env::var("ROUTEIQ_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!(
            "no Redis: run the tests with `bash tests/run.sh`, which starts redis-server and \
             sets ROUTEIQ_TEST_REDIS_URL"
        )
    })
}

/// The `redis-server` binary: `ROUTEIQ_TEST_REDIS_SERVER` (set by `tests/run.sh`), else the
/// one on `PATH`.
fn server_binary() -> PathBuf {
    std::env::var_os("ROUTEIQ_TEST_REDIS_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("redis-server"))
}

/// A `redis-server` child process on 127.0.0.1 (see the module docs).
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    args: Vec<String>,
    /// Serving TLS only, on `port`.
    tls: bool,
}

impl RedisServer {
    /// Starts `redis-server` on a free port with `extra_args` (e.g. `--requirepass x`) and
    /// waits until it accepts connections.
    ///
    /// # Panics
    /// If it cannot be started (no `redis-server`: `apt-get install redis-server`).
    pub fn start(extra_args: &[&str]) -> RedisServer {
        let port = free_port().expect("a free port");
        let mut server = RedisServer {
            child: None,
            port,
            args: extra_args.iter().map(|a| a.to_string()).collect(),
            tls: false,
        };
        server.restart();
        server
    }

    /// Starts `redis-server` serving TLS only (`rediss://`) on a free port with this
    /// certificate and key (clients are not asked for certificates), plus `extra_args`.
    pub fn start_tls(cert: &Path, key: &Path, extra_args: &[&str]) -> RedisServer {
        let mut args: Vec<String> = vec![
            "--tls-cert-file".into(),
            cert.display().to_string(),
            "--tls-key-file".into(),
            key.display().to_string(),
            "--tls-auth-clients".into(),
            "no".into(),
        ];
        args.extend(extra_args.iter().map(|a| a.to_string()));
        let mut server = RedisServer {
            child: None,
            port: free_port().expect("a free port"),
            args,
            tls: true,
        };
        server.restart();
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: no goodbye to clients) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (empty: nothing is persisted) and waits
    /// until it accepts connections.
    ///
    /// # Panics
    /// If it does not start or does not listen within 10 s.
    pub fn restart(&mut self) {
        self.kill();
        let bin = server_binary();
        let port = self.port.to_string();
        let ports: &[&str] = if self.tls {
            &["--port", "0", "--tls-port", &port]
        } else {
            &["--port", &port]
        };
        let child = Command::new(&bin)
            .args(ports)
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--protected-mode", "no", "--loglevel", "warning"])
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e} (install redis-server: apt-get install redis-server)",
                    bin.display()
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} did not start listening", self.port);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The environment of a gateway keeping its routing state in the Redis at `url`
/// (`REDIS_URL`, LiteLLM's variable), under key prefix `prefix`.
pub fn redis_state_env(url: &str, prefix: &str) -> Vec<(String, String)> {
    vec![
        ("REDIS_URL".into(), url.into()),
        ("ROUTEIQ_STATE_PREFIX".into(), format!("{prefix}:")),
    ]
}
