//! The outbound URL guard (SSRF): which addresses the gateway may connect to.
//!
//! Checked on every outbound connection, after DNS resolution: the gateway's HTTP client
//! ([`crate::upstream::client::HttpClient`]) resolves names through [`GuardedResolver`], which drops
//! refused addresses (a name that resolves only to refused addresses fails with
//! [`OutboundBlocked`]). Hosts written as IP literals never reach a resolver, so
//! [`OutboundPolicy::check_url`] checks them before a call.
//!
//! - Cloud metadata and link-local addresses (`169.254.0.0/16` with `169.254.169.254`,
//!   `fe80::/10`, `fd00:ec2::254`) are refused for every URL unless allow-listed.
//! - URLs a request or an API call can influence ([`Trust::Untrusted`]) are also refused on
//!   private, loopback, CGNAT, unique-local and unspecified addresses unless
//!   `ROUTEIQ_SSRF_ALLOW_PRIVATE` is on or they are allow-listed. Deployments the operator
//!   configured ([`Trust::Operator`]) may use private and loopback hosts (ollama, vLLM).
//!
//! RouteIQ does not accept a client-supplied `api_base` at all (see
//! [`crate::http::client_params`]): the only URLs it calls come from the config.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

/// Who controls a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Configured by the operator (config file deployments): only metadata and link-local
    /// addresses are refused.
    Operator,
    /// Influenced by a request or an API call: private and loopback ranges are refused too.
    Untrusted,
}

/// Why an address is refused; also the `reason` label of `routeiq_outbound_blocked_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockReason {
    /// Cloud metadata endpoints and the rest of link-local.
    LinkLocal,
    /// Loopback (`127.0.0.0/8`, `::1`).
    Loopback,
    /// Private, CGNAT, unique-local or unspecified addresses.
    Private,
}

impl BlockReason {
    /// `link_local`, `loopback`, `private`.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockReason::LinkLocal => "link_local",
            BlockReason::Loopback => "loopback",
            BlockReason::Private => "private",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            BlockReason::LinkLocal => "a link-local / cloud metadata address",
            BlockReason::Loopback => "a loopback address",
            BlockReason::Private => "a private address",
        }
    }
}

/// An outbound connection the guard refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "outbound connection to '{host}' ({addr}) refused by the SSRF guard: {} is not allowed{}",
    .reason.describe(),
    match .reason {
        BlockReason::LinkLocal => " (allow-list it with ROUTEIQ_SSRF_HOST_ALLOWLIST or ROUTEIQ_SSRF_CIDR_ALLOWLIST)",
        _ => " for this URL (set ROUTEIQ_SSRF_ALLOW_PRIVATE or allow-list it)",
    }
)]
pub struct OutboundBlocked {
    pub host: String,
    pub addr: IpAddr,
    pub reason: BlockReason,
}

/// What the guard allows (`ROUTEIQ_SSRF_*` / `LLMROUTER_SSRF_*`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutboundPolicy {
    /// Untrusted URLs may reach private and loopback ranges.
    pub allow_private: bool,
    /// Host names (lower-case) always allowed: exact, or `*.example.com` / `.example.com` for
    /// a domain and its subdomains.
    pub host_allowlist: Vec<String>,
    /// Addresses always allowed.
    pub cidr_allowlist: Vec<IpNet>,
}

/// Parses `10.0.0.0/8` or a bare address (as a /32 or /128).
pub fn parse_cidr(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

/// The AWS IPv6 metadata endpoint (it lies in unique-local `fc00::/7`, refused always).
const AWS_METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254);

fn classify_v4(ip: Ipv4Addr) -> Option<BlockReason> {
    let o = ip.octets();
    if ip.is_link_local() {
        Some(BlockReason::LinkLocal)
    } else if ip.is_loopback() {
        Some(BlockReason::Loopback)
    } else if ip.is_private()
        || ip.is_unspecified()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64)
    {
        Some(BlockReason::Private)
    } else {
        None
    }
}

/// The class of an address the guard cares about, if any.
pub fn classify(ip: IpAddr) -> Option<BlockReason> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return classify_v4(v4);
            }
            let seg0 = v6.segments()[0];
            if v6 == AWS_METADATA_V6 || (seg0 & 0xffc0) == 0xfe80 {
                Some(BlockReason::LinkLocal)
            } else if v6.is_loopback() {
                Some(BlockReason::Loopback)
            } else if v6.is_unspecified() || (seg0 & 0xfe00) == 0xfc00 {
                Some(BlockReason::Private)
            } else {
                None
            }
        }
    }
}

impl OutboundPolicy {
    fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.host_allowlist.iter().any(|entry| {
            if let Some(domain) = entry.strip_prefix("*.").or_else(|| entry.strip_prefix('.')) {
                host == domain || host.ends_with(&format!(".{domain}"))
            } else {
                host == *entry
            }
        })
    }

    /// Whether `host`, resolved to `addr`, may be connected to for a URL of this trust.
    pub fn check(&self, host: &str, addr: IpAddr, trust: Trust) -> Result<(), OutboundBlocked> {
        let Some(reason) = classify(addr) else {
            return Ok(());
        };
        if self.host_allowed(host) || self.cidr_allowlist.iter().any(|n| n.contains(&addr)) {
            return Ok(());
        }
        let refused = match reason {
            BlockReason::LinkLocal => true,
            BlockReason::Loopback | BlockReason::Private => {
                trust == Trust::Untrusted && !self.allow_private
            }
        };
        if refused {
            Err(OutboundBlocked {
                host: host.to_string(),
                addr,
                reason,
            })
        } else {
            Ok(())
        }
    }

    /// Checks a URL whose host is an IP literal (names are checked by the resolver).
    pub fn check_url(&self, url: &http::Uri, trust: Trust) -> Result<(), OutboundBlocked> {
        let Some(host) = url.host() else {
            return Ok(());
        };
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<IpAddr>() {
            Ok(ip) => self.check(bare, ip, trust),
            Err(_) => Ok(()),
        }
    }
}

/// Called for every refusal (to count it).
pub type BlockObserver = Arc<dyn Fn(&OutboundBlocked) + Send + Sync>;

/// A DNS resolver that drops the addresses [`OutboundPolicy`] refuses.
pub struct GuardedResolver {
    policy: Arc<OutboundPolicy>,
    trust: Trust,
    observer: Option<BlockObserver>,
}

impl GuardedResolver {
    pub fn new(policy: Arc<OutboundPolicy>, trust: Trust, observer: Option<BlockObserver>) -> Self {
        GuardedResolver {
            policy,
            trust,
            observer,
        }
    }

    /// Filters resolved addresses; fails when every one of them is refused.
    pub fn filter(
        &self,
        host: &str,
        addrs: impl IntoIterator<Item = SocketAddr>,
    ) -> Result<Vec<SocketAddr>, OutboundBlocked> {
        let mut allowed = Vec::new();
        let mut refused = None;
        for a in addrs {
            match self.policy.check(host, a.ip(), self.trust) {
                Ok(()) => allowed.push(a),
                Err(b) => {
                    refused.get_or_insert(b);
                }
            }
        }
        match (allowed.is_empty(), refused) {
            (true, Some(b)) => {
                tracing::warn!(host, addr = %b.addr, reason = b.reason.as_str(), "outbound connection refused by the SSRF guard");
                if let Some(o) = &self.observer {
                    o(&b);
                }
                Err(b)
            }
            _ => Ok(allowed),
        }
    }
}

/// The refusal in an error's source chain, if the guard refused the connection.
pub fn blocked_in(e: &(dyn std::error::Error + 'static)) -> Option<OutboundBlocked> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(b) = err.downcast_ref::<OutboundBlocked>() {
            return Some(b.clone());
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::upstream::client::HttpClient;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn classifies_ranges() {
        assert_eq!(
            classify(ip("169.254.169.254")),
            Some(BlockReason::LinkLocal)
        );
        assert_eq!(classify(ip("169.254.1.1")), Some(BlockReason::LinkLocal));
        assert_eq!(classify(ip("fd00:ec2::254")), Some(BlockReason::LinkLocal));
        assert_eq!(classify(ip("fe80::1")), Some(BlockReason::LinkLocal));
        assert_eq!(
            classify(ip("::ffff:169.254.169.254")),
            Some(BlockReason::LinkLocal)
        );
        assert_eq!(classify(ip("127.0.0.1")), Some(BlockReason::Loopback));
        assert_eq!(classify(ip("::1")), Some(BlockReason::Loopback));
        for p in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.0.1",
            "100.64.0.1",
            "0.0.0.0",
            "fd12::1",
            "::",
        ] {
            assert_eq!(classify(ip(p)), Some(BlockReason::Private), "{p}");
        }
        for p in ["8.8.8.8", "172.32.0.1", "2606:4700::1", "100.128.0.1"] {
            assert_eq!(classify(ip(p)), None, "{p}");
        }
    }

    #[test]
    fn metadata_is_refused_even_for_operator_urls() {
        let p = OutboundPolicy::default();
        let e = p
            .check("169.254.169.254", ip("169.254.169.254"), Trust::Operator)
            .unwrap_err();
        assert_eq!(e.reason, BlockReason::LinkLocal);
        assert!(e.to_string().contains("SSRF guard"), "{e}");
        assert!(
            p.check("ollama", ip("127.0.0.1"), Trust::Operator).is_ok(),
            "operator deployments may be local"
        );
        assert!(p.check("vllm", ip("10.0.0.5"), Trust::Operator).is_ok());
    }

    #[test]
    fn untrusted_urls_are_refused_private_ranges_unless_allowed() {
        let mut p = OutboundPolicy::default();
        assert_eq!(
            p.check("x", ip("127.0.0.1"), Trust::Untrusted)
                .unwrap_err()
                .reason,
            BlockReason::Loopback
        );
        assert!(p.check("x", ip("10.0.0.1"), Trust::Untrusted).is_err());
        assert!(p.check("x", ip("1.1.1.1"), Trust::Untrusted).is_ok());
        p.allow_private = true;
        assert!(p.check("x", ip("10.0.0.1"), Trust::Untrusted).is_ok());
        assert!(
            p.check("x", ip("169.254.169.254"), Trust::Untrusted)
                .is_err(),
            "allow_private does not open metadata"
        );
    }

    #[test]
    fn allowlists_open_specific_hosts_and_ranges() {
        let p = OutboundPolicy {
            allow_private: false,
            host_allowlist: vec!["metadata.internal".into(), "*.corp.example".into()],
            cidr_allowlist: vec![
                parse_cidr("169.254.170.0/24").unwrap(),
                parse_cidr("10.1.1.1").unwrap(),
            ],
        };
        assert!(
            p.check("metadata.internal", ip("169.254.169.254"), Trust::Operator)
                .is_ok()
        );
        assert!(
            p.check("a.b.corp.example", ip("10.9.9.9"), Trust::Untrusted)
                .is_ok()
        );
        assert!(
            p.check("corp.example.evil", ip("10.9.9.9"), Trust::Untrusted)
                .is_err()
        );
        assert!(p.check("x", ip("169.254.170.2"), Trust::Operator).is_ok());
        assert!(
            p.check("x", ip("169.254.169.254"), Trust::Operator)
                .is_err()
        );
        assert!(p.check("x", ip("10.1.1.1"), Trust::Untrusted).is_ok());
        assert!(p.check("x", ip("10.1.1.2"), Trust::Untrusted).is_err());
    }

    #[test]
    fn ip_literal_urls_are_checked() {
        let p = OutboundPolicy::default();
        let url = |s: &str| s.parse::<http::Uri>().unwrap();
        assert!(
            p.check_url(
                &url("http://169.254.169.254/latest/meta-data"),
                Trust::Operator
            )
            .is_err()
        );
        assert!(
            p.check_url(&url("http://[fd00:ec2::254]/"), Trust::Operator)
                .is_err()
        );
        assert!(
            p.check_url(&url("http://[::ffff:a9fe:a9fe]/"), Trust::Operator)
                .is_err()
        );
        assert!(
            p.check_url(&url("http://127.0.0.1:8000/v1"), Trust::Operator)
                .is_ok()
        );
        assert!(
            p.check_url(&url("http://127.0.0.1:8000/v1"), Trust::Untrusted)
                .is_err()
        );
        assert!(
            p.check_url(&url("https://api.openai.com/v1"), Trust::Untrusted)
                .is_ok()
        );
    }

    #[test]
    fn resolver_filters_and_reports() {
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        let observer: BlockObserver = Arc::new(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
        });
        let r = GuardedResolver::new(
            Arc::new(OutboundPolicy::default()),
            Trust::Operator,
            Some(observer),
        );
        let addrs = |list: &[&str]| -> Vec<SocketAddr> {
            list.iter().map(|a| SocketAddr::new(ip(a), 80)).collect()
        };
        // Mixed answers keep the allowed addresses.
        let kept = r
            .filter("h", addrs(&["169.254.169.254", "93.184.216.34"]))
            .unwrap();
        assert_eq!(kept, addrs(&["93.184.216.34"]));
        assert_eq!(count.load(Ordering::SeqCst), 0);
        // A name that resolves only to metadata is refused, and counted.
        let err = r
            .filter("evil.example", addrs(&["169.254.169.254"]))
            .unwrap_err();
        assert_eq!(err.host, "evil.example");
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn untrusted_client_cannot_reach_loopback_names_or_literals() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let app = axum::Router::new().fallback(|| async { "ok" });
            let _ = axum::serve(listener, app).await;
        });
        let policy = Arc::new(OutboundPolicy::default());
        let url: http::Uri = format!("http://localhost:{port}/").parse().unwrap();
        let headers = http::HeaderMap::new();
        let untrusted = HttpClient::new(policy.clone(), Trust::Untrusted, None, 1).unwrap();
        let err = untrusted
            .post_json(&url, &headers, bytes::Bytes::from_static(b"{}"))
            .await
            .unwrap_err();
        let blocked = blocked_in(&err).expect("the guard's refusal is in the error chain");
        assert_eq!(blocked.reason, BlockReason::Loopback);
        // The operator client reaches the same local server.
        let operator = HttpClient::new(policy, Trust::Operator, None, 1).unwrap();
        let ok = operator
            .post_json(&url, &headers, bytes::Bytes::from_static(b"{}"))
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
    }
}
