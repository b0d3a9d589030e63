//! Conversation affinity (LiteLLM's `deployment_affinity_ttl_seconds`): later requests of a
//! conversation to the same model group go to the deployment that answered it before, so
//! upstream prompt caches keep working.
//!
//! The pin lives in the [`StateStore`](crate::state::StateStore) (so every instance sharing
//! the DynamoDB table honours it) under `affinity:{group}:{sha256(conversation key)[..16]}`
//! (hex; the key itself, often a user id, is never stored), with value
//! `{deployment id}@{written at, epoch ms}` and expiry `deployment_affinity_ttl_seconds`.
//! The read rides in the routing decision's cooldown `BatchGetItem` (no extra round trip);
//! a write happens when a pin is created or moved, and to slide the expiry once more than
//! half the TTL has passed (so a busy conversation costs one write per TTL/2, not one per
//! request).
//!
//! A pinned deployment is used first only while it is a candidate (supported, not cooling
//! down, circuit not open, and kept by the strategy, e.g. under its rpm limit); the rest of the
//! strategy's order follows it. Otherwise routing is normal and the pin moves to whichever
//! deployment answers.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::state::Versioned;

/// What affinity did for a request (`x-routeiq-affinity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AffinityOutcome {
    /// The pinned deployment answered.
    Hit,
    /// A pin existed but another deployment answered (the pinned one was unavailable or
    /// failed); the pin moves to it.
    Miss,
    /// No pin existed; one was created for the deployment that answered.
    Set,
}

impl AffinityOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AffinityOutcome::Hit => "hit",
            AffinityOutcome::Miss => "miss",
            AffinityOutcome::Set => "set",
        }
    }
}

/// The affinity state of one routing decision, to commit once a deployment has answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AffinityPin {
    /// State key of the pin.
    pub key: String,
    /// The deployment pinned before this request (if the pin was live).
    pub pinned: Option<String>,
    /// Whether the pinned deployment was put first.
    pub applied: bool,
    /// When the live pin was written (epoch ms).
    pub written_ms: u64,
    pub ttl: Duration,
}

impl AffinityPin {
    /// The outcome once `answered` has answered.
    pub fn outcome(&self, answered: &str) -> AffinityOutcome {
        match &self.pinned {
            None => AffinityOutcome::Set,
            Some(p) if p == answered => AffinityOutcome::Hit,
            Some(_) => AffinityOutcome::Miss,
        }
    }

    /// Whether the pin must be written after `answered` answered at `now_ms`: it is new or
    /// moves, or more than half its TTL has passed.
    pub fn needs_write(&self, answered: &str, now_ms: u64) -> bool {
        self.outcome(answered) != AffinityOutcome::Hit
            || now_ms.saturating_sub(self.written_ms) > (self.ttl.as_millis() as u64) / 2
    }
}

/// The state key of the pin of `conversation` in `group`.
pub fn pin_key(group: &str, conversation: &str) -> String {
    let digest = Sha256::digest(conversation.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("affinity:{group}:{hex}")
}

/// The value stored for a pin.
pub fn pin_value(deployment: &str, now_ms: u64) -> String {
    format!("{deployment}@{now_ms}")
}

/// Reads a stored pin: `(deployment, written_ms)`.
pub fn parse_pin(v: &Versioned) -> Option<(String, u64)> {
    let (deployment, at) = v.value.rsplit_once('@')?;
    Some((deployment.to_string(), at.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hide_the_conversation_and_values_round_trip() {
        let k = pin_key("gpt", "user@example.com");
        assert!(k.starts_with("affinity:gpt:"), "{k}");
        assert!(!k.contains("example"), "{k}");
        assert_eq!(k.len(), "affinity:gpt:".len() + 32);
        assert_ne!(k, pin_key("other", "user@example.com"));
        let v = Versioned {
            value: pin_value("dep@a", 42),
            version: 1,
        };
        assert_eq!(parse_pin(&v), Some(("dep@a".to_string(), 42)));
    }

    #[test]
    fn outcomes_and_writes() {
        let ttl = Duration::from_secs(100);
        let fresh = AffinityPin {
            key: "k".into(),
            pinned: None,
            applied: false,
            written_ms: 0,
            ttl,
        };
        assert_eq!(fresh.outcome("a"), AffinityOutcome::Set);
        assert!(fresh.needs_write("a", 1));
        let pinned = AffinityPin {
            pinned: Some("a".into()),
            applied: true,
            written_ms: 1_000_000,
            ..fresh
        };
        assert_eq!(pinned.outcome("a"), AffinityOutcome::Hit);
        assert!(!pinned.needs_write("a", 1_000_000 + 10_000));
        // Past half the TTL: slide the expiry.
        assert!(pinned.needs_write("a", 1_000_000 + 60_000));
        assert_eq!(pinned.outcome("b"), AffinityOutcome::Miss);
        assert!(pinned.needs_write("b", 1_000_001));
    }
}
