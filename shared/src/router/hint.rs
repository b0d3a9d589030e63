//! Honouring an edge hint (`X-RouteIQ-Hint`, see [`crate::edge`]) when routing.
//!
//! The gateway verifies the hint's signature first; what reaches the router is a
//! [`HintUse`]: the hint and the configured mode (`router_settings.routing_strategy_args.
//! edge_hint` or `ROUTEIQ_EDGE_HINT`):
//!
//! - `ignore`: hints are not read at all.
//! - `advisory`: the hint is a feature. An ML strategy takes the hinted tier instead of
//!   embedding the prompt when the hint's confidence is at least `min_confidence`
//!   (centroid-style ranking for that tier, no embedding, no router); otherwise it decides
//!   as usual. Strategies without features (shuffle, least-busy, …) are unaffected.
//! - `trust`: the hint decides among the allowed deployments (the group's candidates that
//!   are healthy, not cooling down, under their limits): a suggested model that names one
//!   of them (deployment id, upstream model or `base_model`) goes first; else the candidates
//!   are ranked for the hinted tier, whatever the confidence. The strategy's order follows
//!   as the fallbacks. A hint never adds a deployment the request could not reach. When the
//!   hint names a region, the first choice gives way to an equivalent deployment (the same
//!   upstream model) in that region (`region_name`, or `aws_region_name`), so a client far
//!   from the default region is served from the nearest one.

use std::sync::Arc;

use super::Deployment;
use crate::edge::EdgeHint;
use crate::ml::centroid::{Profile, Tier, rank_for_tier};
use crate::ml::routing::basic_candidate;

/// `edge_hint`: how far the router follows a verified edge hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EdgeHintMode {
    #[default]
    Ignore,
    Advisory,
    Trust,
}

impl EdgeHintMode {
    pub fn parse(s: &str) -> Result<EdgeHintMode, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ignore" | "off" => Ok(EdgeHintMode::Ignore),
            "advisory" => Ok(EdgeHintMode::Advisory),
            "trust" => Ok(EdgeHintMode::Trust),
            other => Err(format!(
                "unknown edge_hint mode '{other}'; valid: ignore, advisory, trust"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EdgeHintMode::Ignore => "ignore",
            EdgeHintMode::Advisory => "advisory",
            EdgeHintMode::Trust => "trust",
        }
    }
}

/// A verified hint and how to use it.
#[derive(Debug, Clone)]
pub struct HintUse {
    pub hint: EdgeHint,
    pub mode: EdgeHintMode,
    /// The confidence at which `advisory` takes the hinted tier.
    pub min_confidence: f32,
}

impl HintUse {
    /// The tier routing should take from the hint, if any (see the module docs).
    pub fn tier(&self) -> Option<Tier> {
        match self.mode {
            EdgeHintMode::Trust => Some(self.hint.tier),
            EdgeHintMode::Advisory if self.hint.confidence >= self.min_confidence => {
                Some(self.hint.tier)
            }
            _ => None,
        }
    }
}

/// What the router did with a verified hint (the `x-routeiq-hint-status` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HintOutcome {
    /// The hint decided the first choice (or the tier it was ranked for).
    Used,
    /// Verified and offered to the strategy, which did not act on it.
    Advisory,
}

impl HintOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            HintOutcome::Used => "used",
            HintOutcome::Advisory => "advisory",
        }
    }
}

fn names(d: &Deployment, model: &str) -> bool {
    d.id == model
        || d.upstream_model == model
        || d.info.base_model.as_deref() == Some(model)
        || d.upstream_model.rsplit('/').next() == Some(model)
}

/// Reorders `order` (indices into `available`) for `hint`. `ml_took_tier` says whether an
/// ML strategy already ranked by the hinted tier.
pub fn apply(
    hint: &HintUse,
    available: &[&Arc<Deployment>],
    order: &mut Vec<usize>,
    ml_took_tier: bool,
) -> HintOutcome {
    if hint.mode != EdgeHintMode::Trust {
        return if ml_took_tier {
            HintOutcome::Used
        } else {
            HintOutcome::Advisory
        };
    }
    if let Some(model) = hint.hint.model.as_deref()
        && let Some(pos) = order.iter().position(|&i| names(available[i], model))
    {
        let i = order.remove(pos);
        order.insert(0, i);
    } else if !ml_took_tier {
        let cands: Vec<_> = order
            .iter()
            .map(|&i| basic_candidate(available[i]))
            .collect();
        let tokens = hint.hint.estimated_tokens.unwrap_or(256);
        let costs: Vec<Option<f64>> = cands.iter().map(|c| c.expected_cost(tokens, 256)).collect();
        let profile = hint.hint.profile.unwrap_or(Profile::Auto);
        let ranked = rank_for_tier(hint.hint.tier, profile, &cands, &costs, 256);
        *order = ranked.iter().map(|r| order[r.index]).collect();
    }
    if let Some(region) = hint.hint.region.as_deref() {
        prefer_region(available, order, region);
    }
    HintOutcome::Used
}

/// Moves to the front the deployment in `region` that serves the same upstream model as the
/// first choice, if the first choice is elsewhere and there is one.
fn prefer_region(available: &[&Arc<Deployment>], order: &mut Vec<usize>, region: &str) {
    let Some(&first) = order.first() else { return };
    let in_region = |i: usize| {
        available[i]
            .region()
            .is_some_and(|r| r.eq_ignore_ascii_case(region))
    };
    if in_region(first) {
        return;
    }
    let model = &available[first].upstream_model;
    if let Some(pos) = order
        .iter()
        .position(|&i| in_region(i) && available[i].upstream_model == *model)
    {
        let i = order.remove(pos);
        order.insert(0, i);
    }
}
