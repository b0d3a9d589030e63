//! Signing and verifying hints: `X-RouteIQ-Hint-Signature`.
//!
//! The edge and the gateway share a secret. The signature header is
//! `t=<unix seconds>;s=<base64url HMAC-SHA256, no padding>`, where the MAC covers
//!
//! ```text
//! routeiq-hint/1 \n <hint header value> \n <t> \n <hex sha256 of the request body>
//! ```
//!
//! so a signed hint is bound to the body it classified (it cannot be replayed onto another
//! request) and to a time (the gateway refuses signatures older than its window, and ones
//! dated more than [`MAX_FUTURE_SKEW`] ahead). Verification is constant-time.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Domain-separation prefix of the signed message.
const DOMAIN: &str = "routeiq-hint/1";
/// How far in the future a signature's time may be (clock skew between edge and origin).
pub const MAX_FUTURE_SKEW: Duration = Duration::from_secs(60);
/// The default window a signature stays valid for.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the hint has no signature")]
    Missing,
    #[error("the signature header is malformed")]
    Malformed,
    #[error("the signature does not match the hint and body")]
    Mismatch,
    #[error("the signature is {} s old (window {} s)", .age.as_secs(), .max_age.as_secs())]
    Expired { age: Duration, max_age: Duration },
    #[error("the signature is dated {} s in the future", .ahead.as_secs())]
    Future { ahead: Duration },
}

impl SignatureError {
    /// A short label for metrics and headers.
    pub fn label(&self) -> &'static str {
        match self {
            SignatureError::Missing => "missing-signature",
            SignatureError::Malformed => "malformed-signature",
            SignatureError::Mismatch => "bad-signature",
            SignatureError::Expired { .. } => "expired",
            SignatureError::Future { .. } => "future",
        }
    }
}

/// Hex SHA-256 of a request body.
pub fn body_digest(body: &[u8]) -> String {
    let d = Sha256::digest(body);
    let mut s = String::with_capacity(64);
    for b in d {
        s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(b & 0xf)]));
    }
    s
}

fn mac(secret: &[u8], hint: &str, timestamp: u64, digest: &str) -> HmacSha256 {
    // HMAC accepts keys of any length.
    let mut m = match HmacSha256::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of every length"),
    };
    m.update(DOMAIN.as_bytes());
    m.update(b"\n");
    m.update(hint.as_bytes());
    m.update(b"\n");
    m.update(timestamp.to_string().as_bytes());
    m.update(b"\n");
    m.update(digest.as_bytes());
    m
}

/// The `X-RouteIQ-Hint-Signature` value for `hint` over `body` at `timestamp` (Unix secs).
pub fn sign(secret: &[u8], hint: &str, timestamp: u64, body: &[u8]) -> String {
    let tag = mac(secret, hint, timestamp, &body_digest(body)).finalize();
    format!(
        "t={timestamp};s={}",
        URL_SAFE_NO_PAD.encode(tag.into_bytes())
    )
}

fn parse(header: &str) -> Result<(u64, Vec<u8>), SignatureError> {
    let mut t = None;
    let mut s = None;
    for part in header.trim().split(';') {
        match part.trim().split_once('=') {
            Some(("t", v)) if t.is_none() => {
                t = Some(v.parse::<u64>().map_err(|_| SignatureError::Malformed)?)
            }
            Some(("s", v)) if s.is_none() => {
                s = Some(
                    URL_SAFE_NO_PAD
                        .decode(v)
                        .map_err(|_| SignatureError::Malformed)?,
                )
            }
            _ => return Err(SignatureError::Malformed),
        }
    }
    match (t, s) {
        (Some(t), Some(s)) if s.len() == 32 => Ok((t, s)),
        _ => Err(SignatureError::Malformed),
    }
}

/// Checks a signature header for `hint` over `body` at `now` (Unix seconds) with a window of
/// `max_age_seconds`: the MAC first (constant time), then the age.
pub fn verify(
    secret: &[u8],
    hint: &str,
    header: Option<&str>,
    body: &[u8],
    now: u64,
    max_age: Duration,
) -> Result<(), SignatureError> {
    let max_age_seconds = max_age.as_secs();
    let header = header.ok_or(SignatureError::Missing)?;
    let (timestamp, tag) = parse(header)?;
    mac(secret, hint, timestamp, &body_digest(body))
        .verify_slice(&tag)
        .map_err(|_| SignatureError::Mismatch)?;
    if timestamp > now {
        let ahead = Duration::from_secs(timestamp - now);
        if ahead > MAX_FUTURE_SKEW {
            return Err(SignatureError::Future { ahead });
        }
    } else if now - timestamp > max_age_seconds {
        return Err(SignatureError::Expired {
            age: Duration::from_secs(now - timestamp),
            max_age: Duration::from_secs(max_age_seconds),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"a shared secret of at least 32 bytes!";
    const HINT: &str = "v1;tier=simple;conf=0.91";
    const BODY: &[u8] = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;

    #[test]
    fn digest_is_sha256_hex() {
        assert_eq!(
            body_digest(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn a_signature_verifies_within_its_window() {
        let sig = sign(KEY, HINT, 1_000, BODY);
        assert!(sig.starts_with("t=1000;s="), "{sig}");
        assert_eq!(
            verify(KEY, HINT, Some(&sig), BODY, 1_000, DEFAULT_MAX_AGE),
            Ok(())
        );
        assert_eq!(
            verify(KEY, HINT, Some(&sig), BODY, 1_300, DEFAULT_MAX_AGE),
            Ok(())
        );
        assert_eq!(
            verify(KEY, HINT, Some(&sig), BODY, 1_301, DEFAULT_MAX_AGE),
            Err(SignatureError::Expired {
                age: Duration::from_secs(301),
                max_age: Duration::from_secs(300)
            })
        );
        // A little clock skew is tolerated, a signature from the far future is not.
        assert_eq!(
            verify(KEY, HINT, Some(&sig), BODY, 990, DEFAULT_MAX_AGE),
            Ok(())
        );
        assert_eq!(
            verify(KEY, HINT, Some(&sig), BODY, 900, DEFAULT_MAX_AGE),
            Err(SignatureError::Future {
                ahead: Duration::from_secs(100)
            })
        );
        // The refusals name their ages in whole seconds.
        let refusal = |now| match verify(KEY, HINT, Some(&sig), BODY, now, DEFAULT_MAX_AGE) {
            Err(e) => e.to_string(),
            Ok(()) => String::new(),
        };
        assert_eq!(refusal(1_301), "the signature is 301 s old (window 300 s)");
        assert_eq!(refusal(900), "the signature is dated 100 s in the future");
    }

    #[test]
    fn anything_changed_breaks_the_signature() {
        let sig = sign(KEY, HINT, 1_000, BODY);
        let mismatch = Err(SignatureError::Mismatch);
        assert_eq!(
            verify(
                b"another key",
                HINT,
                Some(&sig),
                BODY,
                1_000,
                DEFAULT_MAX_AGE
            ),
            mismatch
        );
        assert_eq!(
            verify(
                KEY,
                "v1;tier=complex;conf=0.91",
                Some(&sig),
                BODY,
                1_000,
                DEFAULT_MAX_AGE
            ),
            mismatch
        );
        assert_eq!(
            verify(KEY, HINT, Some(&sig), b"{}", 1_000, DEFAULT_MAX_AGE),
            mismatch
        );
        // Moving the timestamp (to dodge the window) breaks the MAC too.
        let moved = sig.replacen("t=1000", "t=2000", 1);
        assert_eq!(
            verify(KEY, HINT, Some(&moved), BODY, 2_000, DEFAULT_MAX_AGE),
            mismatch
        );
    }

    #[test]
    fn malformed_or_missing_signatures() {
        assert_eq!(
            verify(KEY, HINT, None, BODY, 0, DEFAULT_MAX_AGE),
            Err(SignatureError::Missing)
        );
        for bad in [
            "",
            "t=1000",
            "s=AAAA",
            "t=x;s=AAAA",
            "t=1;s=!!",
            "t=1;s=AAAA",
            "t=1;t=2;s=AAAA",
        ] {
            assert_eq!(
                verify(KEY, HINT, Some(bad), BODY, 1, DEFAULT_MAX_AGE),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }
}
