//! The `X-RouteIQ-Hint` encoding (version 1).
//!
//! A hint is one header line of `;`-separated fields, the version first:
//!
//! ```text
//! v1;tier=complex;conf=0.82;profile=auto;model=gpt-4o;region=eu-west-1;colo=FRA;tok=412;sig=code+math
//! ```
//!
//! | field | required | value |
//! | --- | --- | --- |
//! | `v1` | yes, first | the encoding version; a gateway ignores versions it does not know |
//! | `tier` | yes | `simple`, `medium`, `complex` or `reasoning` |
//! | `conf` | yes | the classifier's confidence in the tier, `0.00`–`1.00` |
//! | `profile` | no | a routing profile (`auto`, `eco`, `premium`, `free`, `reasoning`) |
//! | `model` | no | a suggested model group or deployment id |
//! | `region` | no | the provider region nearest the client (e.g. `eu-west-1`) |
//! | `colo` | no | the edge location that classified the request (e.g. `FRA`) |
//! | `tok` | no | the estimated prompt tokens |
//! | `sig` | no | the cheap signals that fired, `+`-separated (see [`Signal`]) |
//!
//! Values are restricted to `[A-Za-z0-9._:/@-]` (and `+` in `sig`), so a hint can neither
//! break a header nor smuggle a separator. Unknown fields are skipped (later v1 writers may
//! add some); a repeated field, a missing required one, or a value out of range is an
//! error. A hint is at most [`MAX_HINT_LEN`] bytes.

use std::fmt::Write as _;

use crate::ml::centroid::{Profile, Tier};

/// The request header carrying the hint.
pub const HINT_HEADER: &str = "x-routeiq-hint";
/// The request header carrying the hint's signature (see [`super::sign`]).
pub const SIGNATURE_HEADER: &str = "x-routeiq-hint-signature";
/// The version field this module writes and reads.
pub const VERSION: &str = "v1";
/// The longest hint accepted.
pub const MAX_HINT_LEN: usize = 512;

/// A cheap signal the edge classifier saw in the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// Source code or a programming request.
    Code,
    /// Mathematics: equations, LaTeX, quantities to compute.
    Math,
    /// Reasoning cues ("step by step", "prove", "why").
    Reasoning,
    /// The request offers tools or carries tool results.
    Tools,
    /// A long prompt (over 1,000 estimated tokens).
    Long,
    /// A conversation several turns deep.
    MultiTurn,
    /// Mostly non-Latin script.
    NonLatin,
}

impl Signal {
    pub const ALL: [Signal; 7] = [
        Signal::Code,
        Signal::Math,
        Signal::Reasoning,
        Signal::Tools,
        Signal::Long,
        Signal::MultiTurn,
        Signal::NonLatin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Code => "code",
            Signal::Math => "math",
            Signal::Reasoning => "reasoning",
            Signal::Tools => "tools",
            Signal::Long => "long",
            Signal::MultiTurn => "multiturn",
            Signal::NonLatin => "nonlatin",
        }
    }

    fn parse(s: &str) -> Option<Signal> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// What the edge tells the gateway about a request.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeHint {
    pub tier: Tier,
    /// Confidence in `tier`, in `[0, 1]`.
    pub confidence: f32,
    pub profile: Option<Profile>,
    /// A suggested model group or deployment id.
    pub model: Option<String>,
    /// The provider region nearest the client.
    pub region: Option<String>,
    /// The edge location (Cloudflare colo) that classified the request.
    pub colo: Option<String>,
    pub estimated_tokens: Option<u64>,
    /// The signals that fired, in [`Signal::ALL`] order.
    pub signals: Vec<Signal>,
}

/// Why a hint could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HintError {
    #[error("hint is longer than {MAX_HINT_LEN} bytes")]
    TooLong,
    #[error("unsupported hint version '{0}'")]
    Version(String),
    #[error("hint field '{0}' is malformed")]
    Field(String),
    #[error("hint field '{0}' appears twice")]
    Repeated(String),
    #[error("hint lacks the required field '{0}'")]
    Missing(&'static str),
}

fn valid_value(v: &str, plus: bool) -> bool {
    !v.is_empty()
        && v.len() <= 128
        && v.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'.' | b'_' | b':' | b'/' | b'@' | b'-')
                || (plus && b == b'+')
        })
}

impl EdgeHint {
    /// The header value. Optional text fields that would not survive the encoding (a model
    /// name with a space, say) are left out rather than corrupting the hint.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(96);
        let _ = write!(
            out,
            "{VERSION};tier={};conf={:.2}",
            self.tier.as_str(),
            self.confidence.clamp(0.0, 1.0)
        );
        if let Some(p) = self.profile {
            let _ = write!(out, ";profile={}", p.as_str());
        }
        for (key, value) in [
            ("model", &self.model),
            ("region", &self.region),
            ("colo", &self.colo),
        ] {
            if let Some(v) = value.as_deref().filter(|v| valid_value(v, false)) {
                let _ = write!(out, ";{key}={v}");
            }
        }
        if let Some(t) = self.estimated_tokens {
            let _ = write!(out, ";tok={t}");
        }
        if !self.signals.is_empty() {
            out.push_str(";sig=");
            for (i, s) in self.signals.iter().enumerate() {
                if i > 0 {
                    out.push('+');
                }
                out.push_str(s.as_str());
            }
        }
        out.truncate(MAX_HINT_LEN);
        out
    }

    /// Reads a header value written by [`EdgeHint::encode`] (see the module docs).
    pub fn parse(raw: &str) -> Result<EdgeHint, HintError> {
        if raw.len() > MAX_HINT_LEN {
            return Err(HintError::TooLong);
        }
        let mut parts = raw.trim().split(';');
        let version = parts.next().unwrap_or_default().trim();
        if version != VERSION {
            return Err(HintError::Version(version.chars().take(16).collect()));
        }
        let mut tier = None;
        let mut confidence = None;
        let mut hint = EdgeHint {
            tier: Tier::Medium,
            confidence: 0.0,
            profile: None,
            model: None,
            region: None,
            colo: None,
            estimated_tokens: None,
            signals: Vec::new(),
        };
        let mut seen: Vec<&str> = Vec::new();
        for part in parts {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| HintError::Field(part.chars().take(32).collect()))?;
            let (key, value) = (key.trim(), value.trim());
            if seen.contains(&key) {
                return Err(HintError::Repeated(key.chars().take(32).collect()));
            }
            seen.push(key);
            let bad = || HintError::Field(key.chars().take(32).collect());
            if !valid_value(value, key == "sig") {
                return Err(bad());
            }
            match key {
                "tier" => tier = Some(Tier::parse(value).ok_or_else(bad)?),
                "conf" => {
                    let c: f32 = value.parse().map_err(|_| bad())?;
                    if !(0.0..=1.0).contains(&c) {
                        return Err(bad());
                    }
                    confidence = Some(c);
                }
                "profile" => hint.profile = Some(Profile::parse(value).map_err(|_| bad())?),
                "model" => hint.model = Some(value.to_string()),
                "region" => hint.region = Some(value.to_string()),
                "colo" => hint.colo = Some(value.to_string()),
                "tok" => hint.estimated_tokens = Some(value.parse().map_err(|_| bad())?),
                "sig" => {
                    for s in value.split('+') {
                        let s = Signal::parse(s).ok_or_else(bad)?;
                        if !hint.signals.contains(&s) {
                            hint.signals.push(s);
                        }
                    }
                    hint.signals.sort();
                }
                // Forward compatibility within v1: fields this build does not know.
                _ => {}
            }
        }
        hint.tier = tier.ok_or(HintError::Missing("tier"))?;
        hint.confidence = confidence.ok_or(HintError::Missing("conf"))?;
        Ok(hint)
    }

    /// Whether a signal fired.
    pub fn has(&self, s: Signal) -> bool {
        self.signals.contains(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> EdgeHint {
        EdgeHint {
            tier: Tier::Complex,
            confidence: 0.8234,
            profile: Some(Profile::Eco),
            model: Some("gpt-4o".into()),
            region: Some("eu-west-1".into()),
            colo: Some("FRA".into()),
            estimated_tokens: Some(412),
            signals: vec![Signal::Code, Signal::Math],
        }
    }

    #[test]
    fn encodes_compactly_and_round_trips() {
        let h = sample();
        let s = h.encode();
        assert_eq!(
            s,
            "v1;tier=complex;conf=0.82;profile=eco;model=gpt-4o;region=eu-west-1;colo=FRA;tok=412;sig=code+math"
        );
        let back = EdgeHint::parse(&s).unwrap();
        assert_eq!(back.tier, Tier::Complex);
        assert!((back.confidence - 0.82).abs() < 1e-6);
        assert_eq!(back.profile, Some(Profile::Eco));
        assert_eq!(back.model.as_deref(), Some("gpt-4o"));
        assert_eq!(back.region.as_deref(), Some("eu-west-1"));
        assert_eq!(back.estimated_tokens, Some(412));
        assert_eq!(back.signals, vec![Signal::Code, Signal::Math]);
    }

    #[test]
    fn minimal_hint_and_unknown_fields() {
        let h = EdgeHint::parse("v1;tier=simple;conf=0.5;future=x").unwrap();
        assert_eq!(h.tier, Tier::Simple);
        assert_eq!(h.model, None);
        assert!(h.signals.is_empty());
    }

    #[test]
    fn values_that_would_break_the_header_are_left_out() {
        let mut h = sample();
        h.model = Some("gpt 4o;tier=simple".into());
        let s = h.encode();
        assert!(!s.contains("model="), "{s}");
        assert_eq!(EdgeHint::parse(&s).unwrap().tier, Tier::Complex);
    }

    #[test]
    fn rejects_malformed_hints() {
        let cases = [
            ("", "version"),
            ("v2;tier=simple;conf=0.5", "version"),
            ("v1;conf=0.5", "tier"),
            ("v1;tier=simple", "conf"),
            ("v1;tier=hard;conf=0.5", "tier"),
            ("v1;tier=simple;conf=1.5", "conf"),
            ("v1;tier=simple;conf=NaN", "conf"),
            ("v1;tier=simple;tier=complex;conf=0.5", "twice"),
            ("v1;tier=simple;conf=0.5;junk", "junk"),
            ("v1;tier=simple;conf=0.5;model=a b", "model"),
            ("v1;tier=simple;conf=0.5;sig=code+telepathy", "sig"),
            ("v1;tier=simple;conf=0.5;tok=-3", "tok"),
        ];
        for (raw, needle) in cases {
            let err = EdgeHint::parse(raw).expect_err(raw).to_string();
            assert!(err.contains(needle), "{raw}: {err}");
        }
        let long = format!("v1;tier=simple;conf=0.5;model={}", "a".repeat(600));
        assert_eq!(EdgeHint::parse(&long), Err(HintError::TooLong));
    }
}
