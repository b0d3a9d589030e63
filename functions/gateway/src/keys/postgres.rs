//! [`PostgresKeyStore`]: the control plane in LiteLLM's own PostgreSQL tables, so a team moving
//! from LiteLLM keeps its keys, budgets and spend (and LiteLLM reads what RouteIQ writes).
//!
//! - Prisma's tables and columns (`"LiteLLM_VerificationToken"`, `"LiteLLM_TeamTable"`,
//!   `"LiteLLM_UserTable"`, `"LiteLLM_SpendLogs"`; `"LiteLLM_BudgetTable"` read only); every
//!   statement names its columns, so the ones a newer LiteLLM adds are left alone. Timestamps
//!   are `TIMESTAMP(3)` holding UTC; `created_at` and `updated_at` are set here, as Prisma's
//!   client does.
//! - A key with a `budget_id` takes its budget's limits where its own column is NULL
//!   (LiteLLM's rule); an update keeps such a column NULL while the value is the budget's.
//! - Spend moves only in `add_spend` (one transaction: rows locked `FOR UPDATE` in one global
//!   order, so instances neither lose charges nor deadlock, and an ended period restarts
//!   once) and `reset_spend`. Key aliases are kept unique under an advisory lock.
//! - Charges are idempotent through RouteIQ's one table of its own, `"RouteIQ_SpendCharges"`
//!   (charge id, time; created when first needed, beside LiteLLM's, rows pruned after
//!   [`CHARGE_ID_RETENTION`]): the transaction claims each charge's id and applies only the
//!   ones it claimed, so a retry of a commit whose answer was lost is not applied twice.
//! - The pool connects lazily: a store made while the database is down answers `Unavailable`
//!   until it is back. The URL is LiteLLM's `DATABASE_URL` ([`ConnectUrl`]: Prisma's `schema`,
//!   `connection_limit` and `pool_timeout` honoured; libpq's `sslmode`, over rustls with ring).

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Timelike, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use routeiq::config::SecretString;
use serde_json::{Map, Value};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, ToSql};

use super::memory::charge;
use super::model::{Charge, Entity, KeyRecord, Limits, SpendLog, TeamRecord, UserRecord};
use super::store::{CHARGE_ID_RETENTION, KeyQuery, KeyStore, KeyStoreError, Page, SpendLogQuery};

/// Pool and time limits (the URL's `connection_limit` and `pool_timeout` take precedence).
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Longest wait for a pooled connection.
    pub pool_timeout: Duration,
    /// Longest a store call may take, connecting included; past it the call is `Unavailable`.
    pub timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            max_connections: 10,
            pool_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
        }
    }
}

/// How far a TLS connection checks the server (libpq's `sslmode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsVerify {
    /// `disable`: plain TCP.
    Disable,
    /// `prefer` (the default; plain when the server has no TLS) and `require`: encrypted, the
    /// certificate not checked (as libpq does without `sslrootcert`).
    Encrypt { required: bool },
    /// `verify-ca` (and `require` with `sslrootcert`): the chain, not the host name.
    VerifyCa { root: Option<PathBuf> },
    /// `verify-full`: the chain and the host name.
    VerifyFull { root: Option<PathBuf> },
}

/// A `DATABASE_URL` taken apart: what tokio-postgres reads, and what RouteIQ handles itself.
/// Prisma's `schema` qualifies the tables, `connection_limit` and `pool_timeout` size the
/// pool; `sslmode` and `sslrootcert` are libpq's (`sslaccept=strict`, Prisma's, is
/// `verify-full`); Prisma's tuning parameters (`pgbouncer`, `statement_cache_size`,
/// `socket_timeout`) are ignored (statements are prepared and cached per connection: a pooler
/// in transaction mode must support that, as PgBouncer >= 1.21 with `max_prepared_statements`
/// does); client certificates (`sslcert`, `sslkey`, `sslidentity`) are refused.
#[derive(Debug)]
pub struct ConnectUrl {
    pub config: tokio_postgres::Config,
    pub tls: TlsVerify,
    pub schema: Option<String>,
    pub connection_limit: Option<usize>,
    pub pool_timeout: Option<Duration>,
}

impl ConnectUrl {
    pub fn parse(url: &str) -> Result<ConnectUrl, String> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut kept: Vec<&str> = Vec::new();
        let mut sslmode: Option<String> = None;
        let mut root: Option<PathBuf> = None;
        let mut strict = false;
        let mut schema = None;
        let mut connection_limit = None;
        let mut pool_timeout = None;
        let mut has_app_name = false;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let value = || percent_decode(v);
            match k {
                "sslmode" => sslmode = Some(value()?),
                "sslrootcert" => root = Some(PathBuf::from(value()?)),
                "sslaccept" => strict = value()? == "strict",
                "schema" => schema = Some(value()?).filter(|s| !s.is_empty()),
                "connection_limit" => {
                    connection_limit = Some(
                        value()?
                            .parse::<usize>()
                            .ok()
                            .filter(|n| *n > 0)
                            .ok_or("connection_limit must be a whole number above 0")?,
                    );
                }
                "pool_timeout" => {
                    let secs = value()?
                        .parse::<f64>()
                        .ok()
                        .filter(|s| s.is_finite() && *s > 0.0 && *s < 86_400.0)
                        .ok_or("pool_timeout must be a number of seconds above 0")?;
                    pool_timeout = Some(Duration::from_secs_f64(secs));
                }
                "pgbouncer" | "statement_cache_size" | "socket_timeout" => {}
                "sslcert" | "sslkey" | "sslidentity" | "sslpassword" => {
                    return Err(format!(
                        "{k}: client certificates are not supported (for the server's CA, use \
                         sslrootcert)"
                    ));
                }
                _ => {
                    has_app_name |= k == "application_name";
                    kept.push(pair);
                }
            }
        }
        let tls = match sslmode.as_deref().unwrap_or("prefer") {
            "disable" => TlsVerify::Disable,
            "allow" | "prefer" if root.is_none() && !strict => {
                TlsVerify::Encrypt { required: false }
            }
            "require" if root.is_none() && !strict => TlsVerify::Encrypt { required: true },
            "allow" | "prefer" | "require" | "verify-ca" if !strict => TlsVerify::VerifyCa { root },
            "allow" | "prefer" | "require" | "verify-ca" | "verify-full" => {
                TlsVerify::VerifyFull { root }
            }
            other => {
                return Err(format!(
                    "sslmode '{other}': use disable, prefer, require, verify-ca or verify-full"
                ));
            }
        };
        let pg_mode = match tls {
            TlsVerify::Disable => "disable",
            TlsVerify::Encrypt { required: false } => "prefer",
            _ => "require",
        };
        let mut rebuilt = format!("{base}?sslmode={pg_mode}");
        for pair in kept {
            rebuilt.push('&');
            rebuilt.push_str(pair);
        }
        let mut config = tokio_postgres::Config::from_str(&rebuilt)
            // tokio-postgres's messages name the option, never the password.
            .map_err(|e| format!("not a PostgreSQL URL: {}", describe(&e)))?;
        if !has_app_name {
            config.application_name("routeiq");
        }
        Ok(ConnectUrl {
            config,
            tls,
            schema,
            connection_limit,
            pool_timeout,
        })
    }
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or("a bad %-escape in the URL's parameters")?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| "the URL's parameters are not UTF-8".to_string())
}

/// TLS over rustls with ring, checking the server as [`TlsVerify`] says.
mod tls {
    use std::path::Path;
    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::CryptoProvider;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};

    use super::TlsVerify;

    pub(super) fn connector(
        verify: &TlsVerify,
    ) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match verify {
            TlsVerify::Disable | TlsVerify::Encrypt { .. } => {
                Arc::new(AnyCertificate(provider.clone()))
            }
            TlsVerify::VerifyCa { root } => {
                Arc::new(AnyHostName(chain_verifier(root.as_deref(), &provider)?))
            }
            TlsVerify::VerifyFull { root } => chain_verifier(root.as_deref(), &provider)?,
        };
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        // What libpq sends (PostgreSQL 17 checks it when a client offers ALPN).
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
    }

    /// The roots of `sslrootcert`, else the system's (the platform verifier).
    fn chain_verifier(
        root: Option<&Path>,
        provider: &Arc<CryptoProvider>,
    ) -> Result<Arc<dyn ServerCertVerifier>, String> {
        let Some(path) = root.filter(|p| p.as_os_str() != "system") else {
            return rustls_platform_verifier::Verifier::new(provider.clone())
                .map(|v| Arc::new(v) as Arc<dyn ServerCertVerifier>)
                .map_err(|e| format!("TLS: the system's certificates: {e}"));
        };
        let what = || format!("sslrootcert {}", path.display());
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| format!("{}: {e}", what()))? {
            let cert = cert.map_err(|e| format!("{}: {e}", what()))?;
            roots.add(cert).map_err(|e| format!("{}: {e}", what()))?;
        }
        if roots.is_empty() {
            return Err(format!("{}: no PEM certificate in it", what()));
        }
        rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .map(|v| v as Arc<dyn ServerCertVerifier>)
        .map_err(|e| format!("{}: {e}", what()))
    }

    /// `prefer`/`require`: any certificate (libpq's behaviour without a root certificate);
    /// the handshake's signatures are still checked, and SCRAM binds to the certificate.
    #[derive(Debug)]
    struct AnyCertificate(Arc<CryptoProvider>);

    impl ServerCertVerifier for AnyCertificate {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    /// `verify-ca`: the chain is checked, a certificate for another name accepted.
    #[derive(Debug)]
    struct AnyHostName(Arc<dyn ServerCertVerifier>);

    impl ServerCertVerifier for AnyHostName {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            server_name: &ServerName<'_>,
            ocsp_response: &[u8],
            now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            match self.0.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ) {
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                )) => Ok(ServerCertVerified::assertion()),
                other => other,
            }
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.0.verify_tls12_signature(message, cert, dss)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.0.verify_tls13_signature(message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.supported_verify_schemes()
        }
    }
}

/// The statements, with the tables' names (schema-qualified when the URL names one).
struct Sql {
    key_select: String,
    key_by_token: String,
    key_by_alias: String,
    alias_lock: &'static str,
    alias_taken: String,
    key_insert: String,
    key_update: String,
    key_delete: String,
    key_count: String,
    key_page: String,
    team_select: String,
    team_insert: String,
    team_update: String,
    team_delete: String,
    team_list: String,
    user_select: String,
    user_insert: String,
    user_update: String,
    user_delete: String,
    /// Per kind (key, team, user): lock and read, then write back.
    spend_lock: [String; 3],
    spend_write: [String; 3],
    spend_reset: [String; 3],
    /// RouteIQ's charge-id table: create, claim ids, prune.
    charges_create: String,
    charge_claim: String,
    charges_prune: String,
    log_insert: String,
    log_select: String,
}

const KEY_COLUMNS: &str = "k.token, k.key_name, k.key_alias, k.spend, \
    COALESCE(k.max_budget, b.max_budget) AS max_budget, \
    COALESCE(k.budget_duration, b.budget_duration) AS budget_duration, \
    COALESCE(k.budget_reset_at, b.budget_reset_at) AS budget_reset_at, \
    COALESCE(k.rpm_limit, b.rpm_limit) AS rpm_limit, \
    COALESCE(k.tpm_limit, b.tpm_limit) AS tpm_limit, \
    COALESCE(k.max_parallel_requests, b.max_parallel_requests) AS max_parallel_requests, \
    k.expires, k.models, k.aliases, k.config, k.user_id, k.team_id, k.permissions, k.metadata, \
    k.blocked, k.allowed_routes, k.created_at, k.created_by, k.updated_at, k.updated_by";

const TEAM_COLUMNS: &str = "team_id, team_alias, organization_id, admins, members, \
    members_with_roles, metadata, spend, max_budget, budget_duration, budget_reset_at, \
    rpm_limit, tpm_limit, max_parallel_requests, models, blocked, created_at, updated_at";

const USER_COLUMNS: &str = "user_id, user_alias, team_id, teams, user_role, user_email, spend, \
    max_budget, budget_duration, budget_reset_at, rpm_limit, tpm_limit, max_parallel_requests, \
    models, metadata, created_at, updated_at";

const LOG_COLUMNS: &str = "request_id, call_type, api_key, spend, total_tokens, prompt_tokens, \
    completion_tokens, \"startTime\", \"endTime\", model, model_id, model_group, \
    custom_llm_provider, \"user\", team_id, end_user, metadata, status";

/// A limit column of a key: the new value, or NULL while the key's own is NULL and the value
/// is its budget's (so it keeps following the budget).
fn inherited(column: &str, param: &str, budgets: &str) -> String {
    format!(
        "{column} = CASE WHEN k.{column} IS NULL AND {param} IS NOT DISTINCT FROM \
         (SELECT b.{column} FROM {budgets} b WHERE b.budget_id = k.budget_id) \
         THEN NULL ELSE {param} END"
    )
}

impl Sql {
    fn new(schema: Option<&str>) -> Sql {
        let table = |name: &str| match schema {
            Some(s) => format!("{}.\"{name}\"", quote_ident(s)),
            None => format!("\"{name}\""),
        };
        let keys = table("LiteLLM_VerificationToken");
        let budgets = table("LiteLLM_BudgetTable");
        let teams = table("LiteLLM_TeamTable");
        let users = table("LiteLLM_UserTable");
        let logs = table("LiteLLM_SpendLogs");
        let charges = table("RouteIQ_SpendCharges");
        let key_select = format!(
            "SELECT {KEY_COLUMNS} FROM {keys} k LEFT JOIN {budgets} b ON b.budget_id = k.budget_id"
        );
        let key_filter = "($1::text IS NULL OR k.user_id = $1) AND ($2::text IS NULL OR \
                          k.team_id = $2) AND ($3::text IS NULL OR k.key_alias = $3)";
        let limits = [
            inherited("max_budget", "$4::float8", &budgets),
            inherited("budget_duration", "$5::text", &budgets),
            inherited("budget_reset_at", "$6::timestamp", &budgets),
            inherited("rpm_limit", "$7::int8", &budgets),
            inherited("tpm_limit", "$8::int8", &budgets),
            inherited("max_parallel_requests", "$9::int4", &budgets),
        ]
        .join(", ");
        let spend_write = |table: &str, id: &str| {
            format!(
                "UPDATE {table} AS t SET spend = v.spend, budget_reset_at = CASE WHEN v.restarted \
                 THEN v.reset_at ELSE t.budget_reset_at END FROM unnest($1::text[], \
                 $2::float8[], $3::bool[], $4::timestamp[]) AS v(id, spend, restarted, reset_at) \
                 WHERE t.{id} = v.id"
            )
        };
        let spend_reset = |table: &str, id: &str| {
            format!("UPDATE {table} SET spend = $2, budget_reset_at = $3 WHERE {id} = $1")
        };
        Sql {
            key_by_token: format!("{key_select} WHERE k.token = $1"),
            key_by_alias: format!(
                "{key_select} WHERE k.key_alias = $1 ORDER BY k.created_at DESC NULLS LAST, \
                 k.token LIMIT 1"
            ),
            alias_lock: "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            alias_taken: format!(
                "SELECT 1 FROM {keys} WHERE key_alias = $1 AND token <> $2 LIMIT 1"
            ),
            key_insert: format!(
                "INSERT INTO {keys} (token, key_name, key_alias, spend, max_budget, \
                 budget_duration, budget_reset_at, rpm_limit, tpm_limit, max_parallel_requests, \
                 expires, models, aliases, config, user_id, team_id, permissions, metadata, \
                 blocked, allowed_routes, created_at, created_by, updated_at, updated_by) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
                 $18, $19, $20, $21, $22, $23, $24) ON CONFLICT (token) DO NOTHING"
            ),
            key_update: format!(
                "UPDATE {keys} AS k SET key_name = $2, key_alias = $3, {limits}, expires = $10, \
                 models = $11, aliases = $12, config = $13, user_id = $14, team_id = $15, \
                 permissions = $16, metadata = $17, blocked = $18, allowed_routes = $19, \
                 created_by = COALESCE($20, k.created_by), updated_at = $21, updated_by = $22 \
                 WHERE k.token = $1"
            ),
            key_delete: format!("DELETE FROM {keys} WHERE token = $1"),
            key_count: format!("SELECT count(*) FROM {keys} k WHERE {key_filter}"),
            key_page: format!(
                "{key_select} WHERE {key_filter} ORDER BY k.created_at DESC NULLS LAST, k.token \
                 LIMIT $4 OFFSET $5"
            ),
            key_select,
            team_select: format!("SELECT {TEAM_COLUMNS} FROM {teams} WHERE team_id = $1"),
            team_insert: format!(
                "INSERT INTO {teams} ({TEAM_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
                 $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) ON CONFLICT (team_id) DO NOTHING"
            ),
            team_update: format!(
                "UPDATE {teams} SET team_alias = $2, organization_id = $3, admins = $4, \
                 members = $5, members_with_roles = $6, metadata = $7, max_budget = $8, \
                 budget_duration = $9, budget_reset_at = $10, rpm_limit = $11, tpm_limit = $12, \
                 max_parallel_requests = $13, models = $14, blocked = $15, updated_at = $16 \
                 WHERE team_id = $1"
            ),
            team_delete: format!("DELETE FROM {teams} WHERE team_id = $1"),
            team_list: format!("SELECT {TEAM_COLUMNS} FROM {teams} ORDER BY team_id"),
            user_select: format!("SELECT {USER_COLUMNS} FROM {users} WHERE user_id = $1"),
            user_insert: format!(
                "INSERT INTO {users} ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
                 $9, $10, $11, $12, $13, $14, $15, $16, $17) ON CONFLICT (user_id) DO NOTHING"
            ),
            user_update: format!(
                "UPDATE {users} SET user_alias = $2, team_id = $3, teams = $4, user_role = $5, \
                 user_email = $6, max_budget = $7, budget_duration = $8, budget_reset_at = $9, \
                 rpm_limit = $10, tpm_limit = $11, max_parallel_requests = $12, models = $13, \
                 metadata = $14, updated_at = $15 WHERE user_id = $1"
            ),
            user_delete: format!("DELETE FROM {users} WHERE user_id = $1"),
            spend_lock: [
                format!(
                    "SELECT k.token AS id, k.spend, COALESCE(k.budget_duration, \
                     b.budget_duration) AS budget_duration, COALESCE(k.budget_reset_at, \
                     b.budget_reset_at) AS budget_reset_at FROM {keys} k LEFT JOIN {budgets} b \
                     ON b.budget_id = k.budget_id WHERE k.token = ANY($1) ORDER BY k.token \
                     FOR UPDATE OF k"
                ),
                format!(
                    "SELECT team_id AS id, spend, budget_duration, budget_reset_at FROM {teams} \
                     WHERE team_id = ANY($1) ORDER BY team_id FOR UPDATE"
                ),
                format!(
                    "SELECT user_id AS id, spend, budget_duration, budget_reset_at FROM {users} \
                     WHERE user_id = ANY($1) ORDER BY user_id FOR UPDATE"
                ),
            ],
            spend_write: [
                spend_write(&keys, "token"),
                spend_write(&teams, "team_id"),
                spend_write(&users, "user_id"),
            ],
            spend_reset: [
                spend_reset(&keys, "token"),
                spend_reset(&teams, "team_id"),
                spend_reset(&users, "user_id"),
            ],
            charges_create: format!(
                "CREATE TABLE IF NOT EXISTS {charges} (charge_id TEXT PRIMARY KEY, \
                 charged_at TIMESTAMP(3) NOT NULL); CREATE INDEX IF NOT EXISTS \
                 \"RouteIQ_SpendCharges_charged_at_idx\" ON {charges} (charged_at)"
            ),
            charge_claim: format!(
                "INSERT INTO {charges} (charge_id, charged_at) SELECT unnest($1::text[]), \
                 $2::timestamp ON CONFLICT (charge_id) DO NOTHING RETURNING charge_id"
            ),
            charges_prune: format!("DELETE FROM {charges} WHERE charged_at < $1"),
            log_insert: format!(
                "INSERT INTO {logs} ({LOG_COLUMNS}, request_duration_ms) SELECT * FROM unnest(\
                 $1::text[], $2::text[], $3::text[], $4::float8[], $5::int4[], $6::int4[], \
                 $7::int4[], $8::timestamp[], $9::timestamp[], $10::text[], $11::text[], \
                 $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::jsonb[], \
                 $18::text[], $19::int4[]) ON CONFLICT (request_id) DO NOTHING"
            ),
            log_select: format!(
                "SELECT {LOG_COLUMNS} FROM {logs} WHERE ($1::text IS NULL OR api_key = $1) AND \
                 ($2::text IS NULL OR \"user\" = $2) AND ($3::text IS NULL OR team_id = $3) AND \
                 ($4::text IS NULL OR request_id = $4) AND ($5::timestamp IS NULL OR \
                 \"startTime\" >= $5) AND ($6::timestamp IS NULL OR \"startTime\" < $6) \
                 ORDER BY \"startTime\" DESC, request_id LIMIT $7"
            ),
        }
    }
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Spend-log rows per INSERT (19 arrays of this many elements).
const LOG_CHUNK: usize = 500;
/// Tries of a spend transaction ([`Attempt::Retry`]), 20-50 ms apart times the try.
const SPEND_TRIES: usize = 5;

/// See the module docs.
pub struct PostgresKeyStore {
    pool: Pool,
    sql: Sql,
    timeout: Duration,
    /// `"RouteIQ_SpendCharges"` is known to exist.
    charges_ready: std::sync::atomic::AtomicBool,
}

impl PostgresKeyStore {
    /// A store on the database at `url` (LiteLLM's `DATABASE_URL`, see [`ConnectUrl`]). Does
    /// not connect: a database that is down now makes the calls `Unavailable` until it is up.
    /// Fails (as `Unavailable`, naming the problem) only when the URL or its TLS settings are
    /// unusable.
    pub async fn connect(
        url: &SecretString,
        options: PostgresOptions,
    ) -> Result<PostgresKeyStore, KeyStoreError> {
        let bad = |e: String| KeyStoreError::Unavailable(format!("DATABASE_URL: {e}"));
        let mut parsed = ConnectUrl::parse(url.expose()).map_err(bad)?;
        if parsed.config.get_connect_timeout().is_none() {
            parsed.config.connect_timeout(options.timeout);
        }
        let tls = tls::connector(&parsed.tls).map_err(bad)?;
        let manager = Manager::from_config(
            parsed.config,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(parsed.connection_limit.unwrap_or(options.max_connections))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(parsed.pool_timeout.unwrap_or(options.pool_timeout)))
            .create_timeout(Some(options.timeout))
            .recycle_timeout(Some(options.timeout))
            .build()
            .map_err(|e| bad(e.to_string()))?;
        Ok(PostgresKeyStore {
            pool,
            sql: Sql::new(parsed.schema.as_deref()),
            timeout: options.timeout,
            charges_ready: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Whether the database answers and has LiteLLM's tables (readiness).
    pub async fn ping(&self) -> Result<(), KeyStoreError> {
        self.bounded("ping", async {
            let c = self.client().await?;
            let sql = format!("{} WHERE false", self.sql.key_select);
            c.query(sql.as_str(), &[]).await.map_err(db_error)?;
            Ok(())
        })
        .await
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, KeyStoreError> {
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => db_error(e),
            other => KeyStoreError::Unavailable(format!("postgres: {other}")),
        })
    }

    /// Runs `f` within the store's timeout.
    async fn bounded<T>(
        &self,
        what: &str,
        f: impl Future<Output = Result<T, KeyStoreError>>,
    ) -> Result<T, KeyStoreError> {
        tokio::time::timeout(self.timeout, f)
            .await
            .unwrap_or_else(|_| {
                Err(KeyStoreError::Unavailable(format!(
                    "postgres: {what} took longer than {:?}",
                    self.timeout
                )))
            })
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, KeyStoreError> {
        let c = self.client().await?;
        let stmt = c.prepare_cached(sql).await.map_err(db_error)?;
        c.query(&stmt, params).await.map_err(db_error)
    }

    async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, KeyStoreError> {
        let c = self.client().await?;
        let stmt = c.prepare_cached(sql).await.map_err(db_error)?;
        c.execute(&stmt, params).await.map_err(db_error)
    }

    /// `insert_key` and `update_key`: in one transaction, under an advisory lock on the alias
    /// (held to the commit, so two instances cannot both take it), refuses an alias another
    /// key has, then runs `sql`; its row count.
    async fn write_key(
        &self,
        key: &KeyRecord,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, KeyStoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db_error)?;
        if let Some(alias) = &key.key_alias {
            let lock = format!("routeiq:key_alias:{alias}");
            let stmt = tx
                .prepare_cached(self.sql.alias_lock)
                .await
                .map_err(db_error)?;
            tx.execute(&stmt, &[&lock]).await.map_err(db_error)?;
            let stmt = tx
                .prepare_cached(&self.sql.alias_taken)
                .await
                .map_err(db_error)?;
            if !tx
                .query(&stmt, &[alias, &key.token])
                .await
                .map_err(db_error)?
                .is_empty()
            {
                return Err(KeyStoreError::Conflict(format!(
                    "key_alias '{alias}' is taken by another key"
                )));
            }
        }
        let stmt = tx.prepare_cached(sql).await.map_err(db_error)?;
        let n = tx.execute(&stmt, params).await.map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(n)
    }

    /// Creates `"RouteIQ_SpendCharges"` when this store has not seen it yet.
    async fn ensure_charges_table(&self) -> Result<(), KeyStoreError> {
        use std::sync::atomic::Ordering;
        if self.charges_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let c = self.client().await?;
        match c.batch_execute(&self.sql.charges_create).await {
            Ok(()) => {}
            // Two instances creating it at once: one of them gets this, and the table is there.
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {}
            Err(e) => return Err(db_error(e)),
        }
        self.charges_ready.store(true, Ordering::Release);
        Ok(())
    }

    /// One try of `add_spend`: every entity's row locked (keys, teams, users, each in id
    /// order: one global order), the charges' ids claimed, the claimed charges applied in
    /// order, the rows written back. Nothing is written unless it all commits.
    async fn add_spend_once(
        &self,
        charges: &[Charge],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<f64>>, Attempt> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // Per kind: id → (limits, restarted).
        let mut rows: [BTreeMap<String, (Limits, bool)>; 3] = Default::default();
        for (kind, table) in rows.iter_mut().enumerate() {
            let mut ids: Vec<&str> = charges
                .iter()
                .filter(|c| kind_index(&c.entity) == kind)
                .map(|c| c.entity.id())
                .collect();
            if ids.is_empty() {
                continue;
            }
            ids.sort_unstable();
            ids.dedup();
            let stmt = tx.prepare_cached(&self.sql.spend_lock[kind]).await?;
            for row in tx.query(&stmt, &[&ids]).await? {
                let limits = Limits {
                    spend: get(&row, "spend")?,
                    budget_duration: get(&row, "budget_duration")?,
                    budget_reset_at: timestamp(&row, "budget_reset_at")?,
                    ..Limits::default()
                };
                table.insert(get(&row, "id")?, (limits, false));
            }
        }
        // The ids of charges to entities that exist; the ones already there were applied.
        let ids: Vec<String> = charges
            .iter()
            .filter(|c| rows[kind_index(&c.entity)].contains_key(c.entity.id()))
            .map(Charge::id)
            .collect();
        let mut claimed: HashSet<String> = if ids.is_empty() {
            HashSet::new()
        } else {
            let stmt = tx.prepare_cached(&self.sql.charge_claim).await?;
            tx.query(&stmt, &[&ids, &naive(now)])
                .await?
                .iter()
                .map(|r| get::<String>(r, "charge_id"))
                .collect::<Result<_, _>>()?
        };
        let totals = charges
            .iter()
            .map(|c| {
                rows[kind_index(&c.entity)]
                    .get_mut(c.entity.id())
                    .map(|(limits, restarted)| {
                        // Removed: a charge given twice is applied once.
                        if claimed.remove(&c.id()) {
                            let before = limits.budget_reset_at;
                            charge(limits, c.amount, now);
                            limits.budget_reset_at = limits.budget_reset_at.map(millis);
                            *restarted |= before != limits.budget_reset_at;
                        }
                        limits.spend
                    })
            })
            .collect();
        for (kind, table) in rows.iter().enumerate() {
            if table.is_empty() {
                continue;
            }
            let ids: Vec<&str> = table.keys().map(String::as_str).collect();
            let spends: Vec<f64> = table.values().map(|(l, _)| l.spend).collect();
            let restarted: Vec<bool> = table.values().map(|(_, r)| *r).collect();
            let resets: Vec<Option<NaiveDateTime>> = table
                .values()
                .map(|(l, _)| l.budget_reset_at.map(naive))
                .collect();
            let stmt = tx.prepare_cached(&self.sql.spend_write[kind]).await?;
            tx.execute(&stmt, &[&ids, &spends, &restarted, &resets])
                .await?;
        }
        tx.commit().await?;
        Ok(totals)
    }

    /// Forgets charge ids older than [`CHARGE_ID_RETENTION`] (one call in a hundred).
    async fn maybe_prune_charges(&self, now: DateTime<Utc>) {
        if fastrand::u32(0..100) != 0 {
            return;
        }
        if let Err(e) = self
            .execute(
                &self.sql.charges_prune,
                &[&naive(now - CHARGE_ID_RETENTION)],
            )
            .await
        {
            tracing::warn!(error = %e, "postgres: old charge ids not pruned");
        }
    }

    async fn write_log_chunk(&self, rows: &[&SpendLog]) -> Result<(), KeyStoreError> {
        let text = |f: fn(&SpendLog) -> &str| rows.iter().map(|r| f(r)).collect::<Vec<&str>>();
        // LiteLLM writes '' where these are unknown.
        let or_empty = |f: fn(&SpendLog) -> &Option<String>| {
            rows.iter()
                .map(|r| f(r).as_deref().unwrap_or(""))
                .collect::<Vec<&str>>()
        };
        let tokens = |f: fn(&SpendLog) -> u64| {
            rows.iter()
                .map(|r| i32::try_from(f(r)).unwrap_or(i32::MAX))
                .collect::<Vec<i32>>()
        };
        let request_id = text(|r| &r.request_id);
        let call_type = text(|r| &r.call_type);
        let api_key = text(|r| &r.api_key);
        let spend: Vec<f64> = rows.iter().map(|r| r.spend).collect();
        let total = tokens(|r| r.total_tokens);
        let prompt = tokens(|r| r.prompt_tokens);
        let completion = tokens(|r| r.completion_tokens);
        let start: Vec<NaiveDateTime> = rows.iter().map(|r| naive(r.start_time)).collect();
        let end: Vec<NaiveDateTime> = rows.iter().map(|r| naive(r.end_time)).collect();
        let model = text(|r| &r.model);
        let model_id = or_empty(|r| &r.model_id);
        let model_group = or_empty(|r| &r.model_group);
        let provider = or_empty(|r| &r.custom_llm_provider);
        let user = or_empty(|r| &r.user);
        let team_id: Vec<Option<&str>> = rows.iter().map(|r| r.team_id.as_deref()).collect();
        let end_user = or_empty(|r| &r.end_user);
        let metadata: Vec<Value> = rows
            .iter()
            .map(|r| Value::Object(r.metadata.clone()))
            .collect();
        let status = text(|r| &r.status);
        let duration: Vec<i32> = rows
            .iter()
            .map(|r| {
                let ms = (r.end_time - r.start_time).num_milliseconds().max(0);
                i32::try_from(ms).unwrap_or(i32::MAX)
            })
            .collect();
        self.execute(
            &self.sql.log_insert,
            &[
                &request_id,
                &call_type,
                &api_key,
                &spend,
                &total,
                &prompt,
                &completion,
                &start,
                &end,
                &model,
                &model_id,
                &model_group,
                &provider,
                &user,
                &team_id,
                &end_user,
                &metadata,
                &status,
                &duration,
            ],
        )
        .await
        .map(|_| ())
    }
}

fn kind_index(e: &Entity) -> usize {
    match e {
        Entity::Key(_) => 0,
        Entity::Team(_) => 1,
        Entity::User(_) => 2,
    }
}

/// A driver error as the store's: duplicates are conflicts, a schema that lacks what is asked
/// of it makes records unreadable, the rest is the database being unavailable.
fn db_error(e: tokio_postgres::Error) -> KeyStoreError {
    let detail = describe(&e);
    match e.code() {
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => {
            KeyStoreError::Conflict(format!("already exists ({detail})"))
        }
        Some(c)
            if *c == SqlState::UNDEFINED_TABLE
                || *c == SqlState::UNDEFINED_COLUMN
                || *c == SqlState::DATATYPE_MISMATCH
                || *c == SqlState::INVALID_SCHEMA_NAME =>
        {
            KeyStoreError::Corrupt(format!("postgres: not LiteLLM's schema ({detail})"))
        }
        _ => KeyStoreError::Unavailable(format!("postgres: {detail}")),
    }
}

/// The error and its cause (tokio-postgres's own message is only the kind of failure).
fn describe(e: &tokio_postgres::Error) -> String {
    match (e.as_db_error(), std::error::Error::source(e)) {
        (Some(db), _) => format!("{}: {}", db.code().code(), db.message()),
        (None, Some(cause)) => format!("{e}: {cause}"),
        (None, None) => e.to_string(),
    }
}

/// How a try of a transaction failed: worth another try (PostgreSQL aborted it for a deadlock
/// with another writer, such as LiteLLM itself, or a serialization failure), or not.
enum Attempt {
    Retry(KeyStoreError),
    Fail(KeyStoreError),
}

impl From<KeyStoreError> for Attempt {
    fn from(e: KeyStoreError) -> Attempt {
        Attempt::Fail(e)
    }
}

impl From<tokio_postgres::Error> for Attempt {
    fn from(e: tokio_postgres::Error) -> Attempt {
        let retry = e.code().is_some_and(|c| {
            *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
        });
        if retry {
            Attempt::Retry(db_error(e))
        } else {
            Attempt::Fail(db_error(e))
        }
    }
}

fn get<'a, T: FromSql<'a>>(row: &'a Row, column: &str) -> Result<T, KeyStoreError> {
    row.try_get(column)
        .map_err(|e| KeyStoreError::Corrupt(format!("column {column}: {e}")))
}

fn timestamp(row: &Row, column: &str) -> Result<Option<DateTime<Utc>>, KeyStoreError> {
    Ok(get::<Option<NaiveDateTime>>(row, column)?.map(|t| t.and_utc()))
}

/// A `TEXT[]` (NULL and NULL elements: none).
fn strings(row: &Row, column: &str) -> Result<Vec<String>, KeyStoreError> {
    Ok(get::<Option<Vec<Option<String>>>>(row, column)?
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect())
}

/// A JSONB object (NULL: empty).
fn object(row: &Row, column: &str) -> Result<Map<String, Value>, KeyStoreError> {
    match get::<Option<Value>>(row, column)? {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m),
        Some(other) => Err(KeyStoreError::Corrupt(format!(
            "column {column}: a JSON object expected, found {}",
            json_kind(&other)
        ))),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn bigint(row: &Row, column: &str) -> Result<Option<u64>, KeyStoreError> {
    get::<Option<i64>>(row, column)?
        .map(|v| {
            u64::try_from(v)
                .map_err(|_| KeyStoreError::Corrupt(format!("column {column}: {v} is negative")))
        })
        .transpose()
}

fn integer(row: &Row, column: &str) -> Result<Option<u64>, KeyStoreError> {
    get::<Option<i32>>(row, column)?
        .map(|v| {
            u64::try_from(v)
                .map_err(|_| KeyStoreError::Corrupt(format!("column {column}: {v} is negative")))
        })
        .transpose()
}

/// '' (LiteLLM's "none" in spend logs) and NULL: `None`.
fn text_or_none(row: &Row, column: &str) -> Result<Option<String>, KeyStoreError> {
    Ok(get::<Option<String>>(row, column)?.filter(|s| !s.is_empty()))
}

/// `TIMESTAMP(3)` keeps milliseconds: what is written is what is read back.
fn millis(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(t)
}

fn naive(t: DateTime<Utc>) -> NaiveDateTime {
    millis(t).naive_utc()
}

fn to_bigint(v: Option<u64>) -> Option<i64> {
    v.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
}

fn to_integer(v: Option<u64>) -> Option<i32> {
    v.map(|v| i32::try_from(v).unwrap_or(i32::MAX))
}

fn limits(row: &Row) -> Result<Limits, KeyStoreError> {
    Ok(Limits {
        spend: get(row, "spend")?,
        max_budget: get(row, "max_budget")?,
        budget_duration: get(row, "budget_duration")?,
        budget_reset_at: timestamp(row, "budget_reset_at")?,
        rpm_limit: bigint(row, "rpm_limit")?,
        tpm_limit: bigint(row, "tpm_limit")?,
        max_parallel_requests: integer(row, "max_parallel_requests")?,
        ..Limits::default()
    })
}

/// Where RouteIQ's request windows that LiteLLM's tables have no column for (`rph_limit`,
/// `rpd_limit`, `burst_limit`) are kept: an object under this name in the row's `metadata`.
const WINDOWS_IN_METADATA: &str = "routeiq_limits";

/// `metadata` as stored: the record's, with its extra request windows when it has any.
fn stored_metadata(metadata: &Map<String, Value>, l: &Limits) -> Value {
    let mut m = metadata.clone();
    m.remove(WINDOWS_IN_METADATA);
    let mut windows = Map::new();
    for (name, v) in [
        ("rph_limit", l.rph_limit),
        ("rpd_limit", l.rpd_limit),
        ("burst_limit", l.burst_limit),
    ] {
        if let Some(v) = v {
            windows.insert(name.into(), Value::from(v));
        }
    }
    if !windows.is_empty() {
        m.insert(WINDOWS_IN_METADATA.into(), Value::Object(windows));
    }
    Value::Object(m)
}

/// Moves the request windows kept in `metadata` into `l`.
fn take_windows(metadata: &mut Map<String, Value>, l: &mut Limits) -> Result<(), KeyStoreError> {
    let Some(windows) = metadata.remove(WINDOWS_IN_METADATA) else {
        return Ok(());
    };
    let bad =
        |why: String| KeyStoreError::Corrupt(format!("metadata.{WINDOWS_IN_METADATA}: {why}"));
    let Value::Object(w) = windows else {
        return Err(bad("an object expected".into()));
    };
    let get = |name: &str| -> Result<Option<u64>, KeyStoreError> {
        match w.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| bad(format!("{name} is not a whole number"))),
        }
    };
    l.rph_limit = get("rph_limit")?;
    l.rpd_limit = get("rpd_limit")?;
    l.burst_limit = get("burst_limit")?;
    Ok(())
}

fn key_from(row: &Row) -> Result<KeyRecord, KeyStoreError> {
    let mut k = KeyRecord {
        token: get(row, "token")?,
        key_name: get(row, "key_name")?,
        key_alias: get(row, "key_alias")?,
        limits: limits(row)?,
        expires: timestamp(row, "expires")?,
        models: strings(row, "models")?,
        aliases: object(row, "aliases")?,
        config: object(row, "config")?,
        user_id: get(row, "user_id")?,
        team_id: get(row, "team_id")?,
        permissions: object(row, "permissions")?,
        metadata: object(row, "metadata")?,
        blocked: get(row, "blocked")?,
        allowed_routes: strings(row, "allowed_routes")?,
        created_at: timestamp(row, "created_at")?,
        created_by: get(row, "created_by")?,
        updated_at: timestamp(row, "updated_at")?,
        updated_by: get(row, "updated_by")?,
    };
    take_windows(&mut k.metadata, &mut k.limits)?;
    Ok(k)
}

fn team_from(row: &Row) -> Result<TeamRecord, KeyStoreError> {
    // A list of {"role", "user_id", "user_email"}; the column's default is `{}`.
    let members_with_roles = match get::<Option<Value>>(row, "members_with_roles")? {
        Some(Value::Array(a)) => a,
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(o)) if o.is_empty() => Vec::new(),
        Some(other) => {
            return Err(KeyStoreError::Corrupt(format!(
                "column members_with_roles: a JSON array expected, found {}",
                json_kind(&other)
            )));
        }
    };
    let mut t = TeamRecord {
        team_id: get(row, "team_id")?,
        team_alias: get(row, "team_alias")?,
        organization_id: get(row, "organization_id")?,
        admins: strings(row, "admins")?,
        members: strings(row, "members")?,
        members_with_roles,
        metadata: object(row, "metadata")?,
        limits: limits(row)?,
        models: strings(row, "models")?,
        blocked: get(row, "blocked")?,
        created_at: timestamp(row, "created_at")?,
        updated_at: timestamp(row, "updated_at")?,
    };
    take_windows(&mut t.metadata, &mut t.limits)?;
    Ok(t)
}

fn user_from(row: &Row) -> Result<UserRecord, KeyStoreError> {
    let mut u = UserRecord {
        user_id: get(row, "user_id")?,
        user_alias: get(row, "user_alias")?,
        team_id: get(row, "team_id")?,
        teams: strings(row, "teams")?,
        user_role: get(row, "user_role")?,
        user_email: get(row, "user_email")?,
        limits: limits(row)?,
        models: strings(row, "models")?,
        metadata: object(row, "metadata")?,
        created_at: timestamp(row, "created_at")?,
        updated_at: timestamp(row, "updated_at")?,
    };
    take_windows(&mut u.metadata, &mut u.limits)?;
    Ok(u)
}

fn log_from(row: &Row) -> Result<SpendLog, KeyStoreError> {
    let tokens =
        |column: &str| -> Result<u64, KeyStoreError> { Ok(integer(row, column)?.unwrap_or(0)) };
    let time = |column: &str| -> Result<DateTime<Utc>, KeyStoreError> {
        Ok(get::<NaiveDateTime>(row, column)?.and_utc())
    };
    Ok(SpendLog {
        request_id: get(row, "request_id")?,
        call_type: get(row, "call_type")?,
        api_key: get(row, "api_key")?,
        spend: get(row, "spend")?,
        total_tokens: tokens("total_tokens")?,
        prompt_tokens: tokens("prompt_tokens")?,
        completion_tokens: tokens("completion_tokens")?,
        start_time: time("startTime")?,
        end_time: time("endTime")?,
        model: get(row, "model")?,
        model_id: text_or_none(row, "model_id")?,
        model_group: text_or_none(row, "model_group")?,
        custom_llm_provider: text_or_none(row, "custom_llm_provider")?,
        user: text_or_none(row, "user")?,
        team_id: text_or_none(row, "team_id")?,
        end_user: text_or_none(row, "end_user")?,
        metadata: object(row, "metadata")?,
        // Rows from LiteLLM versions that did not record it were successes.
        status: get::<Option<String>>(row, "status")?.unwrap_or_else(|| "success".into()),
    })
}

fn first<T>(
    rows: Vec<Row>,
    read: fn(&Row) -> Result<T, KeyStoreError>,
) -> Result<Option<T>, KeyStoreError> {
    rows.first().map(read).transpose()
}

#[async_trait]
impl KeyStore for PostgresKeyStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn get_key(&self, token: &str) -> Result<Option<KeyRecord>, KeyStoreError> {
        self.bounded("get_key", async {
            first(
                self.query(&self.sql.key_by_token, &[&token]).await?,
                key_from,
            )
        })
        .await
    }

    async fn key_by_alias(&self, alias: &str) -> Result<Option<KeyRecord>, KeyStoreError> {
        self.bounded("key_by_alias", async {
            first(
                self.query(&self.sql.key_by_alias, &[&alias]).await?,
                key_from,
            )
        })
        .await
    }

    async fn insert_key(&self, key: &KeyRecord) -> Result<(), KeyStoreError> {
        let now = Utc::now();
        let l = &key.limits;
        let created_at = naive(key.created_at.unwrap_or(now));
        let updated_at = naive(key.updated_at.unwrap_or(now));
        let n = self
            .bounded(
                "insert_key",
                self.write_key(
                    key,
                    &self.sql.key_insert,
                    &[
                        &key.token,
                        &key.key_name,
                        &key.key_alias,
                        &l.spend,
                        &l.max_budget,
                        &l.budget_duration,
                        &l.budget_reset_at.map(naive),
                        &to_bigint(l.rpm_limit),
                        &to_bigint(l.tpm_limit),
                        &to_integer(l.max_parallel_requests),
                        &key.expires.map(naive),
                        &key.models,
                        &Value::Object(key.aliases.clone()),
                        &Value::Object(key.config.clone()),
                        &key.user_id,
                        &key.team_id,
                        &Value::Object(key.permissions.clone()),
                        &stored_metadata(&key.metadata, &key.limits),
                        &key.blocked,
                        &key.allowed_routes,
                        &created_at,
                        &key.created_by,
                        &updated_at,
                        &key.updated_by,
                    ],
                ),
            )
            .await?;
        if n == 0 {
            return Err(KeyStoreError::Conflict("this key already exists".into()));
        }
        Ok(())
    }

    /// Also sets `updated_at` to now (Prisma's `@updatedAt`); `created_at` stays.
    async fn update_key(&self, key: &KeyRecord) -> Result<(), KeyStoreError> {
        let l = &key.limits;
        let n = self
            .bounded(
                "update_key",
                self.write_key(
                    key,
                    &self.sql.key_update,
                    &[
                        &key.token,
                        &key.key_name,
                        &key.key_alias,
                        &l.max_budget,
                        &l.budget_duration,
                        &l.budget_reset_at.map(naive),
                        &to_bigint(l.rpm_limit),
                        &to_bigint(l.tpm_limit),
                        &to_integer(l.max_parallel_requests),
                        &key.expires.map(naive),
                        &key.models,
                        &Value::Object(key.aliases.clone()),
                        &Value::Object(key.config.clone()),
                        &key.user_id,
                        &key.team_id,
                        &Value::Object(key.permissions.clone()),
                        &stored_metadata(&key.metadata, &key.limits),
                        &key.blocked,
                        &key.allowed_routes,
                        &key.created_by,
                        &naive(Utc::now()),
                        &key.updated_by,
                    ],
                ),
            )
            .await?;
        if n == 0 {
            return Err(KeyStoreError::NotFound("key not found".into()));
        }
        Ok(())
    }

    async fn delete_key(&self, token: &str) -> Result<bool, KeyStoreError> {
        self.bounded("delete_key", async {
            Ok(self.execute(&self.sql.key_delete, &[&token]).await? > 0)
        })
        .await
    }

    async fn list_keys(&self, q: &KeyQuery) -> Result<Page<KeyRecord>, KeyStoreError> {
        let size = q.size.max(1);
        let limit = i64::try_from(size).unwrap_or(i64::MAX);
        let offset =
            i64::try_from(q.page.saturating_sub(1).saturating_mul(size)).unwrap_or(i64::MAX);
        self.bounded("list_keys", async {
            let c = self.client().await?;
            let count = c
                .prepare_cached(&self.sql.key_count)
                .await
                .map_err(db_error)?;
            let page = c
                .prepare_cached(&self.sql.key_page)
                .await
                .map_err(db_error)?;
            let filters: [&(dyn ToSql + Sync); 3] = [&q.user_id, &q.team_id, &q.key_alias];
            let total: i64 = get(
                &c.query_one(&count, &filters).await.map_err(db_error)?,
                "count",
            )?;
            let rows = c
                .query(
                    &page,
                    &[filters[0], filters[1], filters[2], &limit, &offset],
                )
                .await
                .map_err(db_error)?;
            Ok(Page {
                items: rows.iter().map(key_from).collect::<Result<_, _>>()?,
                total: usize::try_from(total).unwrap_or(0),
            })
        })
        .await
    }

    async fn get_team(&self, team_id: &str) -> Result<Option<TeamRecord>, KeyStoreError> {
        self.bounded("get_team", async {
            first(
                self.query(&self.sql.team_select, &[&team_id]).await?,
                team_from,
            )
        })
        .await
    }

    async fn insert_team(&self, team: &TeamRecord) -> Result<(), KeyStoreError> {
        let now = Utc::now();
        let l = &team.limits;
        let n = self
            .bounded(
                "insert_team",
                self.execute(
                    &self.sql.team_insert,
                    &[
                        &team.team_id,
                        &team.team_alias,
                        &team.organization_id,
                        &team.admins,
                        &team.members,
                        &Value::Array(team.members_with_roles.clone()),
                        &stored_metadata(&team.metadata, &team.limits),
                        &l.spend,
                        &l.max_budget,
                        &l.budget_duration,
                        &l.budget_reset_at.map(naive),
                        &to_bigint(l.rpm_limit),
                        &to_bigint(l.tpm_limit),
                        &to_integer(l.max_parallel_requests),
                        &team.models,
                        &team.blocked,
                        &naive(team.created_at.unwrap_or(now)),
                        &naive(team.updated_at.unwrap_or(now)),
                    ],
                ),
            )
            .await?;
        if n == 0 {
            return Err(KeyStoreError::Conflict(format!(
                "team_id '{}' already exists",
                team.team_id
            )));
        }
        Ok(())
    }

    /// Also sets `updated_at` to now; `created_at` stays.
    async fn update_team(&self, team: &TeamRecord) -> Result<(), KeyStoreError> {
        let l = &team.limits;
        let n = self
            .bounded(
                "update_team",
                self.execute(
                    &self.sql.team_update,
                    &[
                        &team.team_id,
                        &team.team_alias,
                        &team.organization_id,
                        &team.admins,
                        &team.members,
                        &Value::Array(team.members_with_roles.clone()),
                        &stored_metadata(&team.metadata, &team.limits),
                        &l.max_budget,
                        &l.budget_duration,
                        &l.budget_reset_at.map(naive),
                        &to_bigint(l.rpm_limit),
                        &to_bigint(l.tpm_limit),
                        &to_integer(l.max_parallel_requests),
                        &team.models,
                        &team.blocked,
                        &naive(Utc::now()),
                    ],
                ),
            )
            .await?;
        if n == 0 {
            return Err(KeyStoreError::NotFound(format!(
                "team_id '{}' not found",
                team.team_id
            )));
        }
        Ok(())
    }

    async fn delete_team(&self, team_id: &str) -> Result<bool, KeyStoreError> {
        self.bounded("delete_team", async {
            Ok(self.execute(&self.sql.team_delete, &[&team_id]).await? > 0)
        })
        .await
    }

    async fn list_teams(&self) -> Result<Vec<TeamRecord>, KeyStoreError> {
        self.bounded("list_teams", async {
            self.query(&self.sql.team_list, &[])
                .await?
                .iter()
                .map(team_from)
                .collect()
        })
        .await
    }

    async fn get_user(&self, user_id: &str) -> Result<Option<UserRecord>, KeyStoreError> {
        self.bounded("get_user", async {
            first(
                self.query(&self.sql.user_select, &[&user_id]).await?,
                user_from,
            )
        })
        .await
    }

    async fn insert_user(&self, user: &UserRecord) -> Result<(), KeyStoreError> {
        let now = Utc::now();
        let l = &user.limits;
        let n = self
            .bounded(
                "insert_user",
                self.execute(
                    &self.sql.user_insert,
                    &[
                        &user.user_id,
                        &user.user_alias,
                        &user.team_id,
                        &user.teams,
                        &user.user_role,
                        &user.user_email,
                        &l.spend,
                        &l.max_budget,
                        &l.budget_duration,
                        &l.budget_reset_at.map(naive),
                        &to_bigint(l.rpm_limit),
                        &to_bigint(l.tpm_limit),
                        &to_integer(l.max_parallel_requests),
                        &user.models,
                        &stored_metadata(&user.metadata, &user.limits),
                        &naive(user.created_at.unwrap_or(now)),
                        &naive(user.updated_at.unwrap_or(now)),
                    ],
                ),
            )
            .await?;
        if n == 0 {
            return Err(KeyStoreError::Conflict(format!(
                "user_id '{}' already exists",
                user.user_id
            )));
        }
        Ok(())
    }

    /// Also sets `updated_at` to now; `created_at` stays.
    async fn update_user(&self, user: &UserRecord) -> Result<(), KeyStoreError> {
        let l = &user.limits;
        let n = self
            .bounded(
                "update_user",
                self.execute(
                    &self.sql.user_update,
                    &[
                        &user.user_id,
                        &user.user_alias,
                        &user.team_id,
                        &user.teams,
                        &user.user_role,
                        &user.user_email,
                        &l.max_budget,
                        &l.budget_duration,
                        &l.budget_reset_at.map(naive),
                        &to_bigint(l.rpm_limit),
                        &to_bigint(l.tpm_limit),
                        &to_integer(l.max_parallel_requests),
                        &user.models,
                        &stored_metadata(&user.metadata, &user.limits),
                        &naive(Utc::now()),
                    ],
                ),
            )
            .await?;
        if n == 0 {
            return Err(KeyStoreError::NotFound(format!(
                "user_id '{}' not found",
                user.user_id
            )));
        }
        Ok(())
    }

    async fn delete_user(&self, user_id: &str) -> Result<bool, KeyStoreError> {
        self.bounded("delete_user", async {
            Ok(self.execute(&self.sql.user_delete, &[&user_id]).await? > 0)
        })
        .await
    }

    async fn add_spend(
        &self,
        charges: &[Charge],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<f64>>, KeyStoreError> {
        if charges.is_empty() {
            return Ok(Vec::new());
        }
        let totals = self
            .bounded("add_spend", async {
                self.ensure_charges_table().await?;
                let mut tries = 0;
                loop {
                    tries += 1;
                    match self.add_spend_once(charges, now).await {
                        Ok(totals) => return Ok(totals),
                        Err(Attempt::Retry(_)) if tries < SPEND_TRIES => {
                            // Time for the writer that won to finish (a try at once can take
                            // the row before it and deadlock again).
                            let ms = fastrand::u64(20..=50) * tries as u64;
                            tokio::time::sleep(Duration::from_millis(ms)).await;
                        }
                        Err(Attempt::Retry(e) | Attempt::Fail(e)) => return Err(e),
                    }
                }
            })
            .await?;
        self.maybe_prune_charges(now).await;
        Ok(totals)
    }

    async fn reset_spend(
        &self,
        entity: &Entity,
        spend: f64,
        budget_reset_at: Option<DateTime<Utc>>,
    ) -> Result<(), KeyStoreError> {
        let id = entity.id();
        let reset = budget_reset_at.map(naive);
        let n = self
            .bounded(
                "reset_spend",
                self.execute(
                    &self.sql.spend_reset[kind_index(entity)],
                    &[&id, &spend, &reset],
                ),
            )
            .await?;
        if n == 0 {
            return Err(KeyStoreError::NotFound(format!(
                "{} '{}' not found",
                entity.kind(),
                id
            )));
        }
        Ok(())
    }

    async fn write_spend_logs(&self, rows: &[SpendLog]) -> Result<(), KeyStoreError> {
        // One row per request id (the first), as ON CONFLICT keeps the stored one.
        let mut seen = HashSet::new();
        let unique: Vec<&SpendLog> = rows
            .iter()
            .filter(|r| seen.insert(r.request_id.as_str()))
            .collect();
        self.bounded("write_spend_logs", async {
            for chunk in unique.chunks(LOG_CHUNK) {
                self.write_log_chunk(chunk).await?;
            }
            Ok(())
        })
        .await
    }

    async fn spend_logs(&self, q: &SpendLogQuery) -> Result<Vec<SpendLog>, KeyStoreError> {
        let start = q.start.map(naive);
        let end = q.end.map(naive);
        let limit = (q.limit > 0).then(|| i64::try_from(q.limit).unwrap_or(i64::MAX));
        self.bounded("spend_logs", async {
            self.query(
                &self.sql.log_select,
                &[
                    &q.api_key,
                    &q.user_id,
                    &q.team_id,
                    &q.request_id,
                    &start,
                    &end,
                    &limit,
                ],
            )
            .await?
            .iter()
            .map(log_from)
            .collect()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn litellm_urls_are_taken_apart() {
        let u = ConnectUrl::parse(
            "postgresql://llm:p%40ss@db.internal:6543/litellm?schema=proxy&connection_limit=20\
             &pool_timeout=3&pgbouncer=true&connect_timeout=7",
        )
        .unwrap();
        assert_eq!(u.schema.as_deref(), Some("proxy"));
        assert_eq!(u.connection_limit, Some(20));
        assert_eq!(u.pool_timeout, Some(Duration::from_secs(3)));
        assert_eq!(u.tls, TlsVerify::Encrypt { required: false });
        assert_eq!(u.config.get_user(), Some("llm"));
        assert_eq!(u.config.get_password(), Some(&b"p@ss"[..]));
        assert_eq!(u.config.get_dbname(), Some("litellm"));
        assert_eq!(u.config.get_ports(), &[6543]);
        assert_eq!(
            u.config.get_connect_timeout(),
            Some(&Duration::from_secs(7))
        );
        assert_eq!(u.config.get_application_name(), Some("routeiq"));
        assert_eq!(
            u.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Prefer
        );
    }

    #[test]
    fn sslmodes_are_libpqs() {
        let tls = |q: &str| ConnectUrl::parse(&format!("postgres://u@h/d?{q}")).map(|u| u.tls);
        assert_eq!(tls("sslmode=disable"), Ok(TlsVerify::Disable));
        assert_eq!(
            tls("sslmode=require"),
            Ok(TlsVerify::Encrypt { required: true })
        );
        assert_eq!(
            tls("sslmode=require&sslrootcert=%2Fca.pem"),
            Ok(TlsVerify::VerifyCa {
                root: Some("/ca.pem".into())
            })
        );
        assert_eq!(
            tls("sslmode=verify-full"),
            Ok(TlsVerify::VerifyFull { root: None })
        );
        assert_eq!(
            tls("sslmode=require&sslaccept=strict"),
            Ok(TlsVerify::VerifyFull { root: None })
        );
        assert!(tls("sslmode=sometimes").is_err());
        assert!(tls("sslcert=client.pem").is_err());
        assert!(tls("connection_limit=0").is_err());
        assert!(tls("frobnicate=1").is_err());
        let u = ConnectUrl::parse("postgres://u@h/d?sslmode=verify-ca&application_name=x").unwrap();
        assert_eq!(u.config.get_application_name(), Some("x"));
        assert_eq!(
            u.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
    }

    #[test]
    fn a_bad_url_never_shows_its_password() {
        let e = ConnectUrl::parse("postgres://u:hunter2@h:notaport/d").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn schemas_qualify_every_table() {
        let sql = Sql::new(Some("my\"schema"));
        assert!(
            sql.key_by_token
                .contains("\"my\"\"schema\".\"LiteLLM_VerificationToken\"")
        );
        assert!(
            sql.key_by_token
                .contains("\"my\"\"schema\".\"LiteLLM_BudgetTable\"")
        );
        let plain = Sql::new(None);
        assert!(plain.log_select.contains("FROM \"LiteLLM_SpendLogs\""));
        // No statement reads every column.
        for s in [&plain.key_by_token, &plain.team_list, &plain.log_select] {
            assert!(!s.contains('*'), "{s}");
        }
    }

    #[test]
    fn timestamps_keep_milliseconds() {
        let t = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
        assert_eq!(millis(t).nanosecond(), 123_000_000);
        assert_eq!(naive(t).and_utc(), millis(t));
    }

    #[tokio::test]
    async fn a_store_is_made_while_the_database_is_down() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let url = SecretString::new(format!(
            "postgresql://u:pw@127.0.0.1:{port}/litellm?sslmode=disable"
        ));
        let s = PostgresKeyStore::connect(&url, PostgresOptions::default())
            .await
            .unwrap();
        assert_eq!(s.backend(), "postgres");
        for r in [
            s.get_key("x").await.map(|_| ()),
            s.ping().await,
            s.add_spend(&[Charge::new(Entity::Key("x".into()), 1.0)], Utc::now())
                .await
                .map(|_| ()),
        ] {
            match r {
                Err(KeyStoreError::Unavailable(m)) => assert!(!m.contains("pw@"), "{m}"),
                other => panic!("{other:?}"),
            }
        }
    }
}
