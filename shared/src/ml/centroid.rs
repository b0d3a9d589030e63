//! Centroid routing: zero-config tiers and routing profiles.
//!
//! A prompt is classified into a tier — `simple`, `medium`, `complex`, `reasoning` — by
//! cosine similarity to per-tier centroids, each the normalised mean embedding of labelled
//! seed prompts written for RouteIQ (`centroid_seeds.txt`, built in). The confidence is the
//! margin between the best and the second-best similarity; below the threshold
//! (`ROUTEIQ_CONFIDENCE_THRESHOLD`, default 0.06) the prompt is treated as `medium`.
//!
//! The tier and the routing profile (`ROUTEIQ_ROUTING_PROFILE`, or per request the
//! `x-routeiq-profile` header or `metadata.routeiq_profile`) decide how much cost counts
//! against strength when ordering the candidates:
//!
//! | tier | λ (auto) | | profile | effect |
//! | --- | --- | --- | --- | --- |
//! | simple | 3.0 | | `auto` | λ by tier |
//! | medium | 0.3 | | `eco` | λ + 1.0 (cheapest that is good enough) |
//! | complex | 0.05 | | `premium` | λ = 0 (strongest first) |
//! | reasoning | 0.0, reasoning-capable +0.2 | | `free` | free models first (+1.0), then λ + 1.0 |
//! | | | | `reasoning` | tier forced to `reasoning` |
//!
//! A candidate's strength is its `quality_score` (from `model_info` or
//! `llm_candidates.json`); without one it is estimated from its price rank among the
//! candidates (the cheapest 0.5, the priciest 0.9, on a log scale), else from its size, else
//! 0.7. The same profile rules adjust the ML strategies' own cost weight.

use serde::Serialize;

use super::choice::{CandidateModel, CostPolicy, RankedCandidate, rank_by_utility};
use super::embed::{EmbedError, Embedder, cosine, l2_normalize};

/// The built-in seed prompts.
pub const SEEDS: &str = include_str!("centroid_seeds.txt");
/// Default `ROUTEIQ_CONFIDENCE_THRESHOLD`.
pub const DEFAULT_CONFIDENCE_THRESHOLD: f32 = 0.06;

/// A prompt's difficulty tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Simple,
    Medium,
    Complex,
    Reasoning,
}

impl Tier {
    pub const ALL: [Tier; 4] = [Tier::Simple, Tier::Medium, Tier::Complex, Tier::Reasoning];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Simple => "simple",
            Tier::Medium => "medium",
            Tier::Complex => "complex",
            Tier::Reasoning => "reasoning",
        }
    }

    pub fn parse(s: &str) -> Option<Tier> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// λ on relative cost under the `auto` profile.
    fn cost_weight(self) -> f64 {
        match self {
            Tier::Simple => 3.0,
            Tier::Medium => 0.3,
            Tier::Complex => 0.05,
            Tier::Reasoning => 0.0,
        }
    }
}

/// A routing profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    #[default]
    Auto,
    Eco,
    Premium,
    Free,
    Reasoning,
}

impl Profile {
    pub const ALL: [Profile; 5] = [
        Profile::Auto,
        Profile::Eco,
        Profile::Premium,
        Profile::Free,
        Profile::Reasoning,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Auto => "auto",
            Profile::Eco => "eco",
            Profile::Premium => "premium",
            Profile::Free => "free",
            Profile::Reasoning => "reasoning",
        }
    }

    /// Parses a profile name (case-insensitive).
    pub fn parse(s: &str) -> Result<Profile, String> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!(
                    "unknown routing profile '{s}'; valid profiles: auto, eco, premium, free, reasoning"
                )
            })
    }

    /// The cost weight and per-candidate bonus this profile applies on top of `base`.
    pub fn adjust(
        self,
        base: f64,
        cands: &[CandidateModel],
        costs: &[Option<f64>],
    ) -> (f64, Vec<f64>) {
        let mut bonus = vec![0.0; cands.len()];
        let weight = match self {
            Profile::Auto => base,
            Profile::Eco => base + 1.0,
            Profile::Premium => 0.0,
            Profile::Free => {
                for (b, (c, cost)) in bonus.iter_mut().zip(cands.iter().zip(costs)) {
                    if cost.is_some_and(|x| x <= 0.0) || c.has_capability("free") {
                        *b += 1.0;
                    }
                }
                base + 1.0
            }
            Profile::Reasoning => {
                for (b, c) in bonus.iter_mut().zip(cands) {
                    if c.has_capability("reasoning") {
                        *b += 0.2;
                    }
                }
                0.0
            }
        };
        (weight, bonus)
    }
}

/// The tier a prompt was classified into.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TierChoice {
    pub tier: Tier,
    /// Margin between the best and second-best centroid similarity.
    pub confidence: f32,
    /// The best-matching tier before the confidence threshold was applied.
    pub matched: Tier,
    /// Cosine similarity to each tier's centroid, in [`Tier::ALL`] order.
    pub similarities: Vec<f32>,
}

/// Centroids of labelled seed texts in one embedding space: each label's centroid is the
/// normalised mean embedding of its texts, after removing the centre of all labels (the
/// direction every text shares, e.g. function words, which otherwise dominates short texts).
/// Tiers, request types and auto-router routes are all classified this way.
#[derive(Debug, Clone)]
pub struct LabelCentroids<L> {
    embedder_id: String,
    /// Mean of the label means, subtracted before comparing.
    mean: Vec<f32>,
    centroids: Vec<(L, Vec<f32>)>,
}

impl<L: Copy + PartialEq> LabelCentroids<L> {
    /// Embeds `pairs` with `embedder`; labels keep their first-seen order. At least two
    /// labels are needed (one label has nothing to be told apart from).
    pub fn build(embedder: &dyn Embedder, pairs: &[(L, &str)]) -> Result<Self, EmbedError> {
        let texts: Vec<&str> = pairs.iter().map(|(_, p)| *p).collect();
        let vecs = embedder.embed_batch(&texts)?;
        let mut labels: Vec<L> = Vec::new();
        for (l, _) in pairs {
            if !labels.contains(l) {
                labels.push(*l);
            }
        }
        let label_means: Vec<(L, Vec<f32>)> = labels
            .into_iter()
            .map(|label| {
                let mut c = vec![0f32; embedder.dim()];
                let mut n = 0usize;
                for ((l, _), v) in pairs.iter().zip(&vecs) {
                    if *l == label {
                        c.iter_mut().zip(v).for_each(|(a, b)| *a += b);
                        n += 1;
                    }
                }
                c.iter_mut().for_each(|a| *a /= n.max(1) as f32);
                (label, c)
            })
            .collect();
        if label_means.len() < 2 {
            return Err(EmbedError::Load {
                path: "centroid seeds".into(),
                message: "seed texts must cover at least two labels".into(),
            });
        }
        // The centre is the mean of the label means, so a label with more seeds does not pull it.
        let mut mean = vec![0f32; embedder.dim()];
        for (_, c) in &label_means {
            mean.iter_mut()
                .zip(c)
                .for_each(|(m, x)| *m += x / label_means.len() as f32);
        }
        let centroids = label_means
            .into_iter()
            .map(|(l, mut c)| {
                c.iter_mut().zip(&mean).for_each(|(x, m)| *x -= m);
                l2_normalize(&mut c);
                (l, c)
            })
            .collect();
        Ok(LabelCentroids {
            embedder_id: embedder.id().to_string(),
            mean,
            centroids,
        })
    }

    /// The embedding space the centroids live in.
    pub fn embedder_id(&self) -> &str {
        &self.embedder_id
    }

    /// Cosine similarity of `embedding` (centred like the seeds) to each label's centroid,
    /// in label order.
    pub fn similarities(&self, embedding: &[f32]) -> Vec<(L, f32)> {
        let centred: Vec<f32> = embedding
            .iter()
            .zip(&self.mean)
            .map(|(x, m)| x - m)
            .collect();
        self.centroids
            .iter()
            .map(|(l, c)| (*l, cosine(c, &centred)))
            .collect()
    }

    /// The best label, its similarity and its margin over the second best.
    pub fn best(&self, embedding: &[f32]) -> (L, f32, f32) {
        let sims = self.similarities(embedding);
        let mut order: Vec<usize> = (0..sims.len()).collect();
        order.sort_by(|a, b| sims[*b].1.total_cmp(&sims[*a].1));
        let (best, top) = sims[order[0]];
        let second = order.get(1).map_or(-1.0, |&i| sims[i].1);
        (best, top, top - second)
    }
}

/// Per-tier centroids in one embedding space.
#[derive(Debug, Clone)]
pub struct CentroidClassifier {
    centroids: LabelCentroids<Tier>,
    threshold: f32,
}

/// Parses seed text (see `centroid_seeds.txt`) into `(tier, prompt)` pairs.
pub fn parse_seeds(text: &str) -> Result<Vec<(Tier, String)>, String> {
    parse_labelled(text, "tier", Tier::parse)
}

/// Parses labelled seed text: one text per line under a `## label` heading; blank lines and
/// lines starting with `#` (but not `##`) are skipped. `what` names a label in errors.
pub fn parse_labelled<L: Copy>(
    text: &str,
    what: &str,
    parse: impl Fn(&str) -> Option<L>,
) -> Result<Vec<(L, String)>, String> {
    let mut label = None;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("##") {
            label = Some(
                parse(name.trim())
                    .ok_or_else(|| format!("line {}: unknown {what} '{}'", i + 1, name.trim()))?,
            );
        } else if line.is_empty() || line.starts_with('#') {
            continue;
        } else {
            let l = label
                .ok_or_else(|| format!("line {}: text before any '## {what}' heading", i + 1))?;
            out.push((l, line.to_string()));
        }
    }
    Ok(out)
}

impl CentroidClassifier {
    /// Builds centroids from `seeds` (the built-in [`SEEDS`] unless given) with `embedder`.
    pub fn build(
        embedder: &dyn Embedder,
        seeds: Option<&str>,
        threshold: f32,
    ) -> Result<CentroidClassifier, EmbedError> {
        let pairs = parse_seeds(seeds.unwrap_or(SEEDS)).map_err(|m| EmbedError::Load {
            path: "centroid seeds".into(),
            message: m,
        })?;
        let pairs: Vec<(Tier, &str)> = pairs.iter().map(|(t, p)| (*t, p.as_str())).collect();
        Ok(CentroidClassifier {
            centroids: LabelCentroids::build(embedder, &pairs)?,
            threshold,
        })
    }

    /// The embedding space the centroids live in.
    pub fn embedder_id(&self) -> &str {
        self.centroids.embedder_id()
    }

    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// Classifies a prompt embedding (cosine similarities after removing the seeds' centre).
    pub fn classify(&self, embedding: &[f32]) -> TierChoice {
        let by_tier = self.centroids.similarities(embedding);
        let sims: Vec<f32> = Tier::ALL
            .iter()
            .map(|t| {
                by_tier
                    .iter()
                    .find(|(ct, _)| ct == t)
                    .map_or(-1.0, |(_, s)| *s)
            })
            .collect();
        let (matched, _, confidence) = self.centroids.best(embedding);
        let tier = if confidence >= self.threshold {
            matched
        } else {
            Tier::Medium
        };
        TierChoice {
            tier,
            confidence,
            matched,
            similarities: sims,
        }
    }
}

/// Each candidate's strength (see the module docs).
pub fn strengths(cands: &[CandidateModel]) -> Vec<f64> {
    let log_range = |vals: Vec<Option<f64>>| -> Option<Vec<Option<f64>>> {
        let known: Vec<f64> = vals
            .iter()
            .flatten()
            .copied()
            .filter(|v| *v > 0.0)
            .collect();
        let lo = known.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = known.iter().copied().fold(0f64, f64::max);
        if known.len() < 2 || hi <= lo {
            return None;
        }
        Some(
            vals.iter()
                .map(|v| {
                    v.map(|v| {
                        let v = v.max(lo);
                        0.5 + 0.4 * (v.ln() - lo.ln()) / (hi.ln() - lo.ln())
                    })
                })
                .collect(),
        )
    };
    let by_price = log_range(
        cands
            .iter()
            .map(|c| Some(c.input_cost_per_token? + c.output_cost_per_token?))
            .collect(),
    );
    let by_size = log_range(cands.iter().map(|c| c.size_b).collect());
    cands
        .iter()
        .enumerate()
        .map(|(i, c)| {
            c.quality_score
                .or_else(|| by_price.as_ref().and_then(|v| v[i]))
                .or_else(|| by_size.as_ref().and_then(|v| v[i]))
                .unwrap_or(0.7)
        })
        .collect()
}

/// Orders candidates for a tier under a profile.
pub fn rank_for_tier(
    tier: Tier,
    profile: Profile,
    cands: &[CandidateModel],
    costs: &[Option<f64>],
    output_tokens: u64,
) -> Vec<RankedCandidate> {
    let tier = if profile == Profile::Reasoning {
        Tier::Reasoning
    } else {
        tier
    };
    let quality: Vec<Option<f64>> = strengths(cands).into_iter().map(Some).collect();
    let (weight, mut bonus) = profile.adjust(tier.cost_weight(), cands, costs);
    if tier == Tier::Reasoning && profile != Profile::Reasoning {
        for (b, c) in bonus.iter_mut().zip(cands) {
            if c.has_capability("reasoning") {
                *b += 0.2;
            }
        }
    }
    let policy = CostPolicy {
        cost_weight: weight,
        willingness_to_pay: None,
        expected_output_tokens: output_tokens,
    };
    rank_by_utility(cands, &quality, costs, &bonus, &policy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::hashed::HashedNgramEmbedder;

    fn cand(name: &str, price_per_m: f64, caps: &[&str]) -> CandidateModel {
        CandidateModel {
            deployment: name.into(),
            model: name.into(),
            input_cost_per_token: Some(price_per_m / 1e6),
            output_cost_per_token: Some(price_per_m / 1e6),
            capabilities: caps.iter().map(|s| s.to_string()).collect(),
            ..CandidateModel::default()
        }
    }

    #[test]
    fn seeds_parse_into_every_tier() {
        let pairs = parse_seeds(SEEDS).unwrap();
        for t in Tier::ALL {
            assert!(
                pairs.iter().filter(|(pt, _)| *pt == t).count() >= 15,
                "{t:?}"
            );
        }
        assert!(parse_seeds("## nope\nx").is_err());
        assert!(parse_seeds("orphan prompt").is_err());
    }

    #[test]
    fn classifies_prompts_like_the_seeds() {
        let e = HashedNgramEmbedder::new(512).unwrap();
        let c = CentroidClassifier::build(&e, None, 0.0).unwrap();
        let t = |p: &str| c.classify(&e.embed(p).unwrap()).matched;
        assert_eq!(t("hello, how are you?"), Tier::Simple);
        assert_eq!(
            t(
                "Prove by induction that the sum of the first n cubes is a square; show your reasoning step by step."
            ),
            Tier::Reasoning
        );
        assert_eq!(
            t(
                "Design a distributed, multi-region architecture for a payments ledger with consistency guarantees, failure modes and a migration plan."
            ),
            Tier::Complex
        );
    }

    #[test]
    fn low_confidence_falls_back_to_medium() {
        let e = HashedNgramEmbedder::new(256).unwrap();
        let c = CentroidClassifier::build(&e, None, 2.0).unwrap();
        let choice = c.classify(&e.embed("What is the capital of France?").unwrap());
        assert_eq!(choice.tier, Tier::Medium);
        assert_eq!(choice.matched, Tier::Simple);
    }

    #[test]
    fn profiles_order_candidates() {
        let cands = [
            cand("cheap", 0.1, &[]),
            cand("mid", 1.0, &[]),
            cand("strong", 10.0, &[]),
            cand("thinker", 5.0, &["reasoning"]),
            cand("gratis", 0.0, &[]),
        ];
        let costs: Vec<Option<f64>> = cands.iter().map(|c| c.expected_cost(100, 200)).collect();
        let first = |tier, profile| {
            rank_for_tier(tier, profile, &cands, &costs, 200)[0]
                .model
                .clone()
        };
        assert_eq!(first(Tier::Complex, Profile::Auto), "strong");
        assert_eq!(first(Tier::Complex, Profile::Premium), "strong");
        // A free model is the cheapest of all: simple prompts go there.
        assert_eq!(first(Tier::Simple, Profile::Auto), "gratis");
        // Medium under auto: λ = 0.3 lets the strong-but-dearer reasoning model win;
        // eco adds 1.0 to λ and the cheap, decent one wins.
        assert_eq!(first(Tier::Medium, Profile::Auto), "thinker");
        assert_eq!(first(Tier::Medium, Profile::Eco), "mid");
        assert_eq!(first(Tier::Complex, Profile::Free), "gratis");
        assert_eq!(first(Tier::Simple, Profile::Reasoning), "thinker");
        assert_eq!(first(Tier::Reasoning, Profile::Auto), "thinker");
        assert_eq!(Profile::parse("ECO"), Ok(Profile::Eco));
        assert!(Profile::parse("turbo").is_err());
    }
}
