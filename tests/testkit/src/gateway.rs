//! Runs the gateway binary as a child process for end-to-end tests.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;

/// How long [`GatewayProcess::start`] waits for `/health/liveliness`.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long [`GatewayProcess::start_expect_failure`] waits for the process to exit.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(20);

/// The output a child wrote so far.
#[derive(Default)]
struct Output {
    stdout: String,
    stderr: String,
    /// Both, in arrival order (line by line).
    all: String,
}

type Shared = Arc<Mutex<Output>>;

fn lock(o: &Shared) -> std::sync::MutexGuard<'_, Output> {
    o.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running gateway. Dropping it kills the process (and, when the test is panicking, prints its
/// output to stderr for diagnosis).
pub struct GatewayProcess {
    child: Child,
    port: u16,
    config_path: PathBuf,
    output: Shared,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// A unique path in the temp dir.
fn temp_config_path() -> PathBuf {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!(
        "routeiq-test-{}-{}-{}.yaml",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed),
        nanos
    ))
}

/// A port that was free a moment ago (bound to 127.0.0.1:0, read, released).
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0)).context("binding 127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn spawn_reader<R: Read + Send + 'static>(
    src: R,
    output: Shared,
    is_err: bool,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(src);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let text = strip_ansi(&String::from_utf8_lossy(&line));
                    let mut out = lock(&output);
                    if is_err {
                        out.stderr.push_str(&text);
                    } else {
                        out.stdout.push_str(&text);
                    }
                    out.all.push_str(&text);
                    if !text.ends_with('\n') {
                        out.all.push('\n');
                    }
                }
            }
        }
    })
}

/// The text without ANSI escape sequences (colours), so that tests can match log fields.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        // CSI: ESC [ parameters... final byte in '@'..='~'.
        if chars.peek() == Some(&'[') {
            chars.next();
            for f in chars.by_ref() {
                if ('@'..='~').contains(&f) {
                    break;
                }
            }
        } else {
            chars.next();
        }
    }
    out
}

struct Spawned {
    child: Child,
    output: Shared,
    readers: Vec<std::thread::JoinHandle<()>>,
}

fn spawn(
    bin: &Path,
    config_path: &Path,
    port: u16,
    extra_env: &[(&str, &str)],
    extra_args: &[&str],
) -> anyhow::Result<Spawned> {
    let mut cmd = Command::new(bin);
    cmd.arg("--config")
        .arg(config_path)
        .arg("--host")
        .arg("127.0.0.1")
        .arg("--port")
        .arg(port.to_string())
        .args(extra_args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.env("NO_COLOR", "1");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("spawning {}", bin.display()))?;
    let output: Shared = Arc::default();
    let mut readers = Vec::new();
    if let Some(out) = child.stdout.take() {
        readers.push(spawn_reader(out, output.clone(), false));
    }
    if let Some(err) = child.stderr.take() {
        readers.push(spawn_reader(err, output.clone(), true));
    }
    Ok(Spawned {
        child,
        output,
        readers,
    })
}

/// Joins the reader threads (they end at the child's EOF) for at most `limit`.
fn join_readers(readers: &mut Vec<std::thread::JoinHandle<()>>, limit: Duration) {
    let deadline = Instant::now() + limit;
    while readers.iter().any(|r| !r.is_finished()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    for r in readers.drain(..) {
        if r.is_finished() {
            let _ = r.join();
        }
    }
}

fn exit_code(status: ExitStatus) -> i32 {
    status.code().unwrap_or(-1)
}

impl GatewayProcess {
    /// Writes `config_yaml` to a temp file, runs `bin --config FILE --host 127.0.0.1 --port P`
    /// with `NO_COLOR=1` and `extra_env` added to the inherited environment (captured output is
    /// stripped of ANSI colours anyway), and waits until
    /// `GET /health/liveliness` answers 200 (polling every 20 ms, for at most 20 s).
    ///
    /// Fails (with the process's output in the error) if it exits first or never gets healthy.
    pub async fn start(
        bin: &Path,
        config_yaml: &str,
        extra_env: &[(&str, &str)],
    ) -> anyhow::Result<GatewayProcess> {
        Self::start_with_args(bin, config_yaml, extra_env, &[]).await
    }

    /// [`start`](Self::start) with extra command-line arguments after the standard ones.
    pub async fn start_with_args(
        bin: &Path,
        config_yaml: &str,
        extra_env: &[(&str, &str)],
        extra_args: &[&str],
    ) -> anyhow::Result<GatewayProcess> {
        let config_path = temp_config_path();
        std::fs::write(&config_path, config_yaml)
            .with_context(|| format!("writing {}", config_path.display()))?;
        let mut last_err = None;
        // A port picked by bind-and-release can be taken meanwhile: retry on "in use".
        for _ in 0..3 {
            match Self::try_start(bin, &config_path, extra_env, extra_args).await {
                Ok(gw) => return Ok(gw),
                Err((e, retry)) => {
                    if !retry {
                        let _ = std::fs::remove_file(&config_path);
                        return Err(e);
                    }
                    last_err = Some(e);
                }
            }
        }
        let _ = std::fs::remove_file(&config_path);
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("gateway did not start")))
    }

    async fn try_start(
        bin: &Path,
        config_path: &Path,
        extra_env: &[(&str, &str)],
        extra_args: &[&str],
    ) -> Result<GatewayProcess, (anyhow::Error, bool)> {
        let port = free_port().map_err(|e| (e, false))?;
        let Spawned {
            child,
            output,
            readers,
        } = spawn(bin, config_path, port, extra_env, extra_args).map_err(|e| (e, false))?;
        let mut gw = GatewayProcess {
            child,
            port,
            config_path: config_path.to_path_buf(),
            output,
            readers,
        };
        let client = crate::client();
        let url = format!("{}/health/liveliness", gw.base_url());
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = gw.child.try_wait() {
                join_readers(&mut gw.readers, Duration::from_secs(2));
                let logs = gw.logs();
                let retry = logs.contains("in use") || logs.contains("AddrInUse");
                // Keep the config file for the next try; `Drop` would remove it.
                gw.config_path = PathBuf::new();
                return Err((
                    anyhow::anyhow!(
                        "gateway exited before getting healthy ({status}); output:\n{logs}"
                    ),
                    retry,
                ));
            }
            let healthy = client
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .map(|r| r.status().as_u16() == 200)
                .unwrap_or(false);
            if healthy && matches!(gw.child.try_wait(), Ok(None)) {
                return Ok(gw);
            }
            if Instant::now() > deadline {
                let logs = gw.logs();
                gw.config_path = PathBuf::new();
                return Err((
                    anyhow::anyhow!(
                        "gateway not healthy at {url} after {STARTUP_TIMEOUT:?}; output:\n{logs}"
                    ),
                    false,
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Runs the gateway with a config that should be rejected: waits (at most 20 s) for it to
    /// exit and returns its exit code (-1 when killed by a signal) and its stderr. Fails if it
    /// is still running by then (it is killed).
    pub async fn start_expect_failure(
        bin: &Path,
        config_yaml: &str,
        extra_env: &[(&str, &str)],
    ) -> anyhow::Result<(i32, String)> {
        let config_path = temp_config_path();
        std::fs::write(&config_path, config_yaml)
            .with_context(|| format!("writing {}", config_path.display()))?;
        let port = free_port()?;
        let spawned = spawn(bin, &config_path, port, extra_env, &[]);
        let Spawned {
            mut child,
            output,
            mut readers,
        } = match spawned {
            Ok(s) => s,
            Err(e) => {
                let _ = std::fs::remove_file(&config_path);
                return Err(e);
            }
        };
        let deadline = Instant::now() + EXIT_TIMEOUT;
        let result = loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    join_readers(&mut readers, Duration::from_secs(2));
                    break Ok((exit_code(status), lock(&output).stderr.clone()));
                }
                Ok(None) if Instant::now() > deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    join_readers(&mut readers, Duration::from_secs(2));
                    break Err(anyhow::anyhow!(
                        "gateway still running after {EXIT_TIMEOUT:?} (expected it to reject the config); output:\n{}",
                        lock(&output).all
                    ));
                }
                Ok(None) => tokio::time::sleep(POLL).await,
                Err(e) => break Err(anyhow::Error::from(e).context("waiting for the gateway")),
            }
        };
        let _ = std::fs::remove_file(&config_path);
        result
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port the gateway listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The path of the config file written for it.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// stdout and stderr so far, interleaved line by line.
    pub fn logs(&self) -> String {
        lock(&self.output).all.clone()
    }

    /// stdout so far.
    pub fn stdout(&self) -> String {
        lock(&self.output).stdout.clone()
    }

    /// stderr so far.
    pub fn stderr(&self) -> String {
        lock(&self.output).stderr.clone()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits (at most `limit`) until the logs contain `needle`; false on timeout.
    pub async fn wait_for_log(&self, needle: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if lock(&self.output).all.contains(needle) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Kills the process (SIGKILL) and waits for it; returns its exit status if it had one.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        let _ = self.child.kill();
        let status = self.child.wait().ok();
        join_readers(&mut self.readers, Duration::from_secs(1));
        status
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        self.kill();
        if !self.config_path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.config_path);
        }
        if std::thread::panicking() {
            eprintln!(
                "---- gateway (pid {}, port {}) output ----\n{}---- end of gateway output ----",
                self.child.id(),
                self.port,
                lock(&self.output).all
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_paths_are_unique() {
        assert_ne!(temp_config_path(), temp_config_path());
    }

    #[test]
    fn strips_colours() {
        assert_eq!(
            strip_ansi("\u{1b}[2mts\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m a\u{1b}[2m=\u{1b}[0m1"),
            "ts  INFO a=1"
        );
    }

    #[test]
    fn free_port_is_nonzero() {
        assert!(free_port().is_ok_and(|p| p != 0));
    }
}
