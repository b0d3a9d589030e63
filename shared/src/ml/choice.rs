//! Cost-aware choice: from predicted qualities and prices to an ordered candidate list.
//!
//! A candidate's utility is `quality − λ·cost`, where cost is the expected USD cost of the
//! request on it (`prompt tokens × input price + expected output tokens × output price`).
//! λ comes from `routing_strategy_args`:
//! - `cost_weight` (default 0): cost is taken relative to the most expensive candidate, so
//!   `cost_weight: 0.2` trades 0.2 quality points for going from the priciest candidate to
//!   a free one; 0 ranks by quality alone;
//! - `willingness_to_pay` (USD per request per quality point, overrides `cost_weight`):
//!   utility is `quality − cost / willingness_to_pay`.
//!
//! Candidates with no predicted quality come after those with one, cheapest first; ties go
//! to the cheaper candidate, then to config order, so the ranking is deterministic.

use serde::Serialize;

/// What routing knows about one candidate deployment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CandidateModel {
    /// The deployment id (`model_info.id`).
    pub deployment: String,
    /// The model name the router knows it by.
    pub model: String,
    /// USD per input token.
    pub input_cost_per_token: Option<f64>,
    /// USD per output token.
    pub output_cost_per_token: Option<f64>,
    /// A quality prior (0..1) from `model_info.quality_score` or `llm_candidates.json`.
    pub quality_score: Option<f64>,
    /// Parameters in billions.
    pub size_b: Option<f64>,
    /// Capabilities (`reasoning`, `code`, `vision`, …), lower-case.
    pub capabilities: Vec<String>,
}

impl CandidateModel {
    /// The candidate for a model as a router artifact or routing data describes it (its
    /// name doubles as the deployment id; prices per million tokens become per token).
    pub fn from_spec(m: &super::artifact::ModelSpec) -> CandidateModel {
        CandidateModel {
            deployment: m.name.clone(),
            model: m.name.clone(),
            input_cost_per_token: m.input_price.map(|p| p / 1e6),
            output_cost_per_token: m.output_price.map(|p| p / 1e6),
            size_b: m.size_b,
            ..CandidateModel::default()
        }
    }

    /// Expected USD cost of a request with these token counts, when prices are known.
    pub fn expected_cost(&self, prompt_tokens: u64, output_tokens: u64) -> Option<f64> {
        Some(
            self.input_cost_per_token? * prompt_tokens as f64
                + self.output_cost_per_token? * output_tokens as f64,
        )
    }

    pub fn has_capability(&self, cap: &str) -> bool {
        self.capabilities
            .iter()
            .any(|c| c.eq_ignore_ascii_case(cap))
    }
}

/// How cost weighs against quality.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostPolicy {
    /// λ on cost relative to the priciest candidate.
    pub cost_weight: f64,
    /// USD per request per quality point; overrides `cost_weight` when set.
    pub willingness_to_pay: Option<f64>,
    /// Output tokens assumed for the expected cost.
    pub expected_output_tokens: u64,
}

impl Default for CostPolicy {
    fn default() -> Self {
        CostPolicy {
            cost_weight: 0.0,
            willingness_to_pay: None,
            expected_output_tokens: DEFAULT_OUTPUT_TOKENS,
        }
    }
}

/// Output tokens assumed when `expected_output_tokens` is not configured.
pub const DEFAULT_OUTPUT_TOKENS: u64 = 256;

/// One candidate in a decision, as `/router/explain` and the headers report it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankedCandidate {
    /// Position in the candidate slice the ranking was computed from.
    #[serde(skip)]
    pub index: usize,
    pub deployment: String,
    pub model: String,
    /// Predicted quality (0..1), when the strategy predicts one.
    pub predicted_quality: Option<f64>,
    /// Expected USD cost of this request on it.
    pub predicted_cost: Option<f64>,
    /// The utility it was ranked by (higher first).
    pub score: Option<f64>,
}

/// Orders candidates by `quality − λ·cost` (see the module docs). `quality[i]` and
/// `cost[i]` belong to `cands[i]`; `bonus[i]` (profile preferences) is added to the utility.
pub fn rank_by_utility(
    cands: &[CandidateModel],
    quality: &[Option<f64>],
    cost: &[Option<f64>],
    bonus: &[f64],
    policy: &CostPolicy,
) -> Vec<RankedCandidate> {
    let max_cost = cost.iter().flatten().fold(0f64, |m, c| m.max(*c));
    let utility = |i: usize| -> Option<f64> {
        let q = quality.get(i).copied().flatten()?;
        let penalty = match (policy.willingness_to_pay, cost.get(i).copied().flatten()) {
            (Some(wtp), Some(c)) if wtp > 0.0 => c / wtp,
            (Some(_), None) => 0.0,
            (_, Some(c)) if max_cost > 0.0 => policy.cost_weight * c / max_cost,
            // Unknown price: assume the priciest, so an unpriced model never wins on cost.
            (_, None) => policy.cost_weight,
            _ => 0.0,
        };
        Some(q - penalty + bonus.get(i).copied().unwrap_or(0.0))
    };
    let mut out: Vec<RankedCandidate> = cands
        .iter()
        .enumerate()
        .map(|(i, c)| RankedCandidate {
            index: i,
            deployment: c.deployment.clone(),
            model: c.model.clone(),
            predicted_quality: quality.get(i).copied().flatten(),
            predicted_cost: cost.get(i).copied().flatten(),
            score: utility(i),
        })
        .collect();
    out.sort_by(|a, b| {
        let by_score = match (a.score, b.score) {
            (Some(x), Some(y)) => y.total_cmp(&x),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        };
        by_score
            .then_with(|| {
                let ca = a.predicted_cost.unwrap_or(f64::INFINITY);
                let cb = b.predicted_cost.unwrap_or(f64::INFINITY);
                ca.total_cmp(&cb)
            })
            .then(a.index.cmp(&b.index))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(name: &str, price: Option<f64>) -> CandidateModel {
        CandidateModel {
            deployment: name.into(),
            model: name.into(),
            input_cost_per_token: price,
            output_cost_per_token: price,
            ..CandidateModel::default()
        }
    }

    #[test]
    fn cost_weight_trades_quality_for_price() {
        let cands = [cand("big", Some(10e-6)), cand("small", Some(1e-6))];
        let q = [Some(0.8), Some(0.7)];
        let cost: Vec<Option<f64>> = cands.iter().map(|c| c.expected_cost(100, 100)).collect();
        let names = |p: &CostPolicy| -> Vec<String> {
            rank_by_utility(&cands, &q, &cost, &[0.0; 2], p)
                .into_iter()
                .map(|r| r.model)
                .collect()
        };
        let mut p = CostPolicy::default();
        assert_eq!(names(&p), ["big", "small"]);
        // λ = 0.2: big 0.8 − 0.2 = 0.6, small 0.7 − 0.02 = 0.68.
        p.cost_weight = 0.2;
        assert_eq!(names(&p), ["small", "big"]);
        // Willingness to pay: big costs 0.002 USD; at 1 USD per quality point the 0.1 gap
        // is worth 0.1 USD, so big wins; at 0.01 USD it is worth 0.001 and small wins.
        p.willingness_to_pay = Some(1.0);
        assert_eq!(names(&p), ["big", "small"]);
        p.willingness_to_pay = Some(0.01);
        assert_eq!(names(&p), ["small", "big"]);
    }

    #[test]
    fn unknown_quality_last_cheapest_first() {
        let cands = [
            cand("a", Some(5e-6)),
            cand("b", Some(1e-6)),
            cand("c", None),
            cand("d", Some(2e-6)),
        ];
        let q = [None, None, None, Some(0.1)];
        let cost: Vec<Option<f64>> = cands.iter().map(|c| c.expected_cost(10, 10)).collect();
        let r = rank_by_utility(&cands, &q, &cost, &[0.0; 4], &CostPolicy::default());
        let order: Vec<&str> = r.iter().map(|r| r.model.as_str()).collect();
        assert_eq!(order, ["d", "b", "a", "c"]);
    }
}
