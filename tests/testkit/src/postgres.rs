//! PostgreSQL for the key-store tests: the throwaway cluster `tests/run.sh` starts, with
//! LiteLLM's schema loaded (`tests/fixtures/litellm_schema.sql`), and a TCP relay a test can
//! cut to lose the database mid-run.
//!
//! - [`shared_postgres_url`]: the run's database (`sslmode=disable`); fails the test (not
//!   skips it) when unset. [`postgres_test_ca`]: the CA of its TLS certificate (for
//!   `localhost`).
//! - [`TcpRelay`]: forwards a loopback port to the database until [`TcpRelay::cut`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// The database `tests/run.sh` started for this run (`ROUTEIQ_TEST_POSTGRES_URL`).
///
/// # Panics
/// When the variable is unset: the tests that need PostgreSQL fail rather than pass unchecked.
pub fn shared_postgres_url() -> String {
    std::env::var("ROUTEIQ_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "no PostgreSQL: run the tests with `bash tests/run.sh`, which starts a throwaway \
             cluster with LiteLLM's schema and sets ROUTEIQ_TEST_POSTGRES_URL"
        )
    })
}

/// The CA that signed the run's server certificate (`ROUTEIQ_TEST_POSTGRES_CA`).
///
/// # Panics
/// When the variable is unset (see [`shared_postgres_url`]).
pub fn postgres_test_ca() -> PathBuf {
    std::env::var_os("ROUTEIQ_TEST_POSTGRES_CA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "no PostgreSQL CA: run the tests with `bash tests/run.sh`, which sets \
                 ROUTEIQ_TEST_POSTGRES_CA"
            )
        })
}

/// A loopback port relayed to `target` (see the module docs).
pub struct TcpRelay {
    port: u16,
    target: SocketAddr,
    /// The accept loop and every relayed connection.
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
}

impl TcpRelay {
    /// Relays a free loopback port to `target`.
    pub async fn start(target: SocketAddr) -> TcpRelay {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a relay");
        let port = listener.local_addr().expect("relay address").port();
        let relay = TcpRelay {
            port,
            target,
            tasks: Arc::new(Mutex::new(Vec::new())),
        };
        relay.serve(listener);
        relay
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn serve(&self, listener: TcpListener) {
        let tasks = self.tasks.clone();
        let target = self.target;
        let accept = tokio::spawn({
            let tasks = tasks.clone();
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    let conn = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    tasks.lock().unwrap().push(conn.abort_handle());
                }
            }
        });
        tasks.lock().unwrap().push(accept.abort_handle());
    }

    /// Closes the port and every relayed connection, as a database that went away.
    pub async fn cut(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
        // Let the aborted tasks drop their sockets.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    /// Serves the same port again.
    pub async fn restore(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("rebind the relay's port");
        self.serve(listener);
    }
}

impl Drop for TcpRelay {
    fn drop(&mut self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}
