//! Where the shared Redis is: LiteLLM's `router_settings.redis_*` keys, or its `REDIS_*`
//! environment variables when the config sets none.
//!
//! - [`RedisSettings`]: the validated address (a `redis://`/`rediss://` URL, or host and port),
//!   password and database; the URL and the password are [`SecretString`]s (a URL may carry
//!   credentials), and [`RedisSettings::endpoint`] is the form that may be logged.
//! - [`RedisSettings::from_env`]: `REDIS_URL`, else `REDIS_HOST` (+ `REDIS_PORT`,
//!   `REDIS_PASSWORD`, `REDIS_DB`, `REDIS_SSL`), checked with the same rules as the config.
//! - The config's `load` part, with problems at their paths and a warning for keys that do
//!   nothing (a port without a host, a host beside a URL).

use super::super::load::Loader;
use super::super::schema::join;
use super::super::{ConfigProblem, SecretString, WarningKind, coerce};
use super::RS;

/// Redis's default port.
pub const DEFAULT_REDIS_PORT: u16 = 6379;

/// Where a Redis server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// `redis://[user:password@]host[:port][/db]` or `rediss://` (TLS). Secret: it may hold
    /// a password.
    Url(SecretString),
    /// A host and port; `tls` from `REDIS_SSL`.
    Host { host: String, port: u16, tls: bool },
}

/// The shared Redis for routing state (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSettings {
    pub target: RedisTarget,
    /// Used when the URL carries no password of its own.
    pub password: Option<SecretString>,
    /// Database number; used when the URL names none. `None`: 0.
    pub db: Option<u32>,
}

/// The parts of a Redis URL that may be shown (no credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UrlParts {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub db: Option<u32>,
    pub has_password: bool,
}

/// Checks a Redis URL. The messages never contain the URL (it may hold a password).
pub(crate) fn parse_url(url: &str) -> Result<UrlParts, &'static str> {
    const BAD_SCHEME: &str = "must be a redis:// or rediss:// URL";
    let s = url.trim();
    let lower = s.get(..9).map(str::to_ascii_lowercase).unwrap_or_default();
    let (tls, rest) = if lower.starts_with("rediss://") {
        (true, &s[9..])
    } else if lower.starts_with("redis://") {
        (false, &s[8..])
    } else {
        return Err(BAD_SCHEME);
    };
    if s.chars().any(char::is_whitespace) {
        return Err("must be a redis:// or rediss:// URL without spaces");
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let has_password =
        userinfo.is_some_and(|u| u.split_once(':').is_some_and(|(_, p)| !p.is_empty()));
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or("has an unterminated [IPv6] host")?;
        (host, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err("must name a host (redis://host:port)");
    }
    let port = match port {
        None | Some("") => DEFAULT_REDIS_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or("has an invalid port (1-65535)")?,
    };
    let path = tail.split(['?', '#']).next().unwrap_or("");
    let db = match path.trim_start_matches('/') {
        "" => None,
        n => Some(
            n.parse::<u32>()
                .map_err(|_| "has a path that is not a database number (redis://host:port/0)")?,
        ),
    };
    Ok(UrlParts {
        tls,
        host: host.to_string(),
        port,
        db,
        has_password,
    })
}

/// A host name or IP as `redis_host`/`REDIS_HOST` take it.
fn check_host(host: &str) -> Result<(), &'static str> {
    if host.trim().is_empty() {
        return Err("must not be empty");
    }
    if host.contains("://") {
        return Err("must be a host name or IP; put a URL in redis_url (REDIS_URL)");
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c == '/' || c == '@')
    {
        return Err("must be a host name or IP");
    }
    if host.contains(':') && host.trim().parse::<std::net::Ipv6Addr>().is_err() {
        return Err("must be a host name or IP without a port; put the port in redis_port");
    }
    Ok(())
}

fn check_port(port: u32) -> Result<u16, String> {
    u16::try_from(port)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("must be a port number from 1 to 65535, got {port}"))
}

/// A non-empty secret (an empty `os.environ/` value means no password).
fn non_empty(s: Option<SecretString>) -> Option<SecretString> {
    s.filter(|s| !s.expose().trim().is_empty())
}

impl RedisSettings {
    /// `scheme://host:port/db`: where it connects, without credentials (for logs and
    /// readiness).
    pub fn endpoint(&self) -> String {
        let (tls, host, port, url_db) = match &self.target {
            RedisTarget::Url(url) => match parse_url(url.expose()) {
                Ok(p) => (p.tls, p.host, p.port, p.db),
                Err(_) => return "redis://<invalid url>".to_string(),
            },
            RedisTarget::Host { host, port, tls } => (*tls, host.clone(), *port, None),
        };
        let scheme = if tls { "rediss" } else { "redis" };
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        let db = url_db.or(self.db).unwrap_or(0);
        format!("{scheme}://{host}:{port}/{db}")
    }

    /// The database to select: the URL's, else `db`, else 0.
    pub fn effective_db(&self) -> u32 {
        let url_db = match &self.target {
            RedisTarget::Url(url) => parse_url(url.expose()).ok().and_then(|p| p.db),
            RedisTarget::Host { .. } => None,
        };
        url_db.or(self.db).unwrap_or(0)
    }

    /// The password to send when the URL carries none of its own (`None`: the URL's, or no
    /// password).
    pub fn extra_password(&self) -> Option<&SecretString> {
        let url_has_one = match &self.target {
            RedisTarget::Url(url) => parse_url(url.expose()).is_ok_and(|p| p.has_password),
            RedisTarget::Host { .. } => false,
        };
        self.password.as_ref().filter(|_| !url_has_one)
    }

    /// Redis from `REDIS_URL`, else `REDIS_HOST` with `REDIS_PORT` (default 6379),
    /// `REDIS_PASSWORD`, `REDIS_DB` and `REDIS_SSL` (LiteLLM's variables); `None` when neither
    /// is set. Problems name the variable and never echo a URL or password.
    pub fn from_env(
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<RedisSettings>, Vec<ConfigProblem>> {
        let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let mut problems = Vec::new();
        let password = get("REDIS_PASSWORD").map(SecretString::new);
        let db = get("REDIS_DB").and_then(|v| match v.trim().parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                problems.push(ConfigProblem::new(
                    "REDIS_DB",
                    format!("must be a database number (0, 1, ...), got '{v}'"),
                ));
                None
            }
        });
        let target = if let Some(url) = get("REDIS_URL") {
            match parse_url(&url) {
                Ok(_) => Some(RedisTarget::Url(SecretString::new(url.trim()))),
                Err(m) => {
                    problems.push(ConfigProblem::new("REDIS_URL", m));
                    None
                }
            }
        } else if let Some(host) = get("REDIS_HOST") {
            if let Err(m) = check_host(&host) {
                problems.push(ConfigProblem::new("REDIS_HOST", m));
            }
            let port = match get("REDIS_PORT") {
                None => Some(DEFAULT_REDIS_PORT),
                Some(p) => match p.trim().parse::<u32>() {
                    Ok(n) => check_port(n)
                        .map_err(|m| problems.push(ConfigProblem::new("REDIS_PORT", m)))
                        .ok(),
                    Err(_) => {
                        problems.push(ConfigProblem::new(
                            "REDIS_PORT",
                            format!("must be a port number from 1 to 65535, got '{p}'"),
                        ));
                        None
                    }
                },
            };
            let tls = match get("REDIS_SSL") {
                None => false,
                Some(v) => coerce::parse_bool(&v).unwrap_or_else(|| {
                    problems.push(ConfigProblem::new(
                        "REDIS_SSL",
                        format!("must be true or false, got '{v}'"),
                    ));
                    false
                }),
            };
            port.map(|port| RedisTarget::Host {
                host: host.trim().to_string(),
                port,
                tls,
            })
        } else {
            return Ok(None);
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(target.map(|target| RedisSettings {
            target,
            password,
            db,
        }))
    }
}

/// The `redis_*` keys of `router_settings`, as deserialized.
#[derive(Debug, Default)]
pub(in crate::config) struct RawRedis {
    pub url: Option<SecretString>,
    pub host: Option<String>,
    pub port: Option<u32>,
    pub password: Option<SecretString>,
    pub db: Option<u32>,
}

impl RawRedis {
    /// Validated settings (`None` without `redis_url` or `redis_host`), problems and
    /// warnings at their paths.
    pub(in crate::config) fn load(self, cx: &mut Loader) -> Option<RedisSettings> {
        let path = |k: &str| join(RS, k);
        let password = non_empty(self.password);
        let url = non_empty(self.url);
        let host = self.host.filter(|h| !h.is_empty());
        let port = self.port.and_then(|p| {
            check_port(p)
                .map_err(|m| cx.problem(path("redis_port"), m))
                .ok()
        });
        if let Some(url) = url {
            if let Err(m) = parse_url(url.expose()) {
                cx.problem(path("redis_url"), m);
                return None;
            }
            for (key, set) in [
                ("redis_host", host.is_some()),
                ("redis_port", port.is_some()),
            ] {
                if set {
                    cx.warn(path(key), WarningKind::Caveat, "ignored: redis_url is set");
                }
            }
            return Some(RedisSettings {
                target: RedisTarget::Url(SecretString::new(url.expose().trim())),
                password,
                db: self.db,
            });
        }
        let Some(host) = host else {
            for (key, set) in [
                ("redis_port", port.is_some()),
                ("redis_password", password.is_some()),
                ("redis_db", self.db.is_some()),
            ] {
                if set {
                    cx.warn(
                        path(key),
                        WarningKind::Caveat,
                        "ignored without redis_host or redis_url",
                    );
                }
            }
            return None;
        };
        if let Err(m) = check_host(&host) {
            cx.problem(path("redis_host"), m);
            return None;
        }
        Some(RedisSettings {
            target: RedisTarget::Host {
                host: host.trim().to_string(),
                port: port.unwrap_or(DEFAULT_REDIS_PORT),
                tls: false,
            },
            password,
            db: self.db,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load::testing::{BASIC, env_of, load, problems};

    #[test]
    fn urls_are_checked_without_echoing_them() {
        let p = parse_url("rediss://user:s3cret@cache.example.com:6380/2?protocol=resp3").unwrap();
        assert_eq!(
            p,
            UrlParts {
                tls: true,
                host: "cache.example.com".into(),
                port: 6380,
                db: Some(2),
                has_password: true,
            }
        );
        let p = parse_url("redis://[::1]").unwrap();
        assert_eq!((p.host.as_str(), p.port, p.db), ("::1", 6379, None));
        assert!(!p.has_password);
        for bad in [
            "http://h:1",
            "redis://:pw@:6379",
            "redis://h:0",
            "redis://h:99999",
            "redis://h/x",
            "redis://h 1",
            "h:6379",
        ] {
            let e = parse_url(bad).unwrap_err();
            assert!(!e.contains(bad), "{e}");
        }
    }

    #[test]
    fn config_keys_load_and_are_checked_at_their_paths() {
        let l = load(&format!(
            "{BASIC}router_settings:\n  redis_host: cache.internal\n  redis_port: '6380'\n  \
             redis_password: pw\n  redis_db: 3\n"
        ))
        .unwrap();
        let r = l.config.router_settings.redis.unwrap();
        assert_eq!(
            r.target,
            RedisTarget::Host {
                host: "cache.internal".into(),
                port: 6380,
                tls: false
            }
        );
        assert_eq!(r.password.as_ref().map(|p| p.expose()), Some("pw"));
        assert_eq!(r.endpoint(), "redis://cache.internal:6380/3");
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);

        let l = load(&format!(
            "{BASIC}router_settings:\n  redis_url: rediss://:topsecret@r.example:6390/1\n  redis_host: x\n"
        ))
        .unwrap();
        let r = l.config.router_settings.redis.unwrap();
        assert_eq!(r.endpoint(), "rediss://r.example:6390/1");
        assert!(!format!("{r:?}").contains("topsecret"));
        assert_eq!(l.warnings[0].path, "router_settings.redis_host");

        let p = problems(&format!(
            "{BASIC}router_settings:\n  redis_url: http://:topsecret@r.example\n  redis_port: 70000\n"
        ));
        let paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            ["router_settings.redis_port", "router_settings.redis_url"]
        );
        assert!(p.iter().all(|p| !p.message.contains("topsecret")), "{p:?}");
        let p = problems(&format!(
            "{BASIC}router_settings:\n  redis_host: 'cache:6380'\n"
        ));
        assert!(p[0].message.contains("redis_port"), "{p:?}");
        let l = load(&format!("{BASIC}router_settings:\n  redis_host: '::1'\n")).unwrap();
        assert_eq!(
            l.config.router_settings.redis.unwrap().endpoint(),
            "redis://[::1]:6379/0"
        );
        let p = problems(&format!(
            "{BASIC}router_settings:\n  redis_host: 'redis://h'\n  redis_password: {{a: topsecret}}\n"
        ));
        let paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "router_settings.redis_password",
                "router_settings.redis_host"
            ]
        );
        assert!(p.iter().all(|p| !p.message.contains("topsecret")), "{p:?}");

        // A port alone does nothing: a warning, no Redis.
        let l = load(&format!("{BASIC}router_settings:\n  redis_port: 6379\n")).unwrap();
        assert!(l.config.router_settings.redis.is_none());
        assert_eq!(l.warnings[0].path, "router_settings.redis_port");
    }

    #[test]
    fn environment_variables() {
        assert_eq!(RedisSettings::from_env(&env_of(&[])).unwrap(), None);
        let r = RedisSettings::from_env(&env_of(&[
            ("REDIS_HOST", "10.0.0.5"),
            ("REDIS_PASSWORD", "pw"),
            ("REDIS_SSL", "True"),
            ("REDIS_DB", "4"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(r.endpoint(), "rediss://10.0.0.5:6379/4");
        // REDIS_URL wins over REDIS_HOST.
        let r = RedisSettings::from_env(&env_of(&[
            ("REDIS_URL", "redis://127.0.0.1:7000"),
            ("REDIS_HOST", "ignored"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(r.endpoint(), "redis://127.0.0.1:7000/0");
        let e = RedisSettings::from_env(&env_of(&[
            ("REDIS_HOST", "h"),
            ("REDIS_PORT", "0"),
            ("REDIS_SSL", "maybe"),
            ("REDIS_DB", "-1"),
        ]))
        .unwrap_err();
        let vars: Vec<&str> = e.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(vars, ["REDIS_DB", "REDIS_PORT", "REDIS_SSL"]);
        let e = RedisSettings::from_env(&env_of(&[("REDIS_URL", "tcp://:pw@h")])).unwrap_err();
        assert_eq!(e[0].path, "REDIS_URL");
        assert!(!e[0].message.contains("pw@h"));
    }
}
