//! Request types: what kind of task a prompt is (code generation, technical design, writing,
//! ...), for the adaptive auto router (`auto_router/adaptive_router`), whose deployments
//! declare the types they are strong at (`model_info.adaptive_router_preferences.strengths`).
//!
//! - The types are LiteLLM's adaptive-router taxonomy, so its configs' `strengths` read as is.
//! - A prompt's type is its nearest centroid of RouteIQ's own seed prompts
//!   (`request_type_seeds.txt`), like centroid tiers; a margin under
//!   [`DEFAULT_MARGIN`] over the second-best type means `general`.

use serde::Serialize;

use super::centroid::{LabelCentroids, parse_labelled};
use super::embed::{EmbedError, Embedder};

/// The built-in seed prompts.
pub const SEEDS: &str = include_str!("request_type_seeds.txt");
/// The least margin between the best and second-best type for a prompt to get the best one
/// rather than `general`.
pub const DEFAULT_MARGIN: f32 = 0.02;

/// What kind of task a prompt is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestType {
    CodeGeneration,
    CodeUnderstanding,
    TechnicalDesign,
    AnalyticalReasoning,
    Writing,
    FactualLookup,
    General,
}

impl RequestType {
    pub const ALL: [RequestType; 7] = [
        RequestType::CodeGeneration,
        RequestType::CodeUnderstanding,
        RequestType::TechnicalDesign,
        RequestType::AnalyticalReasoning,
        RequestType::Writing,
        RequestType::FactualLookup,
        RequestType::General,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestType::CodeGeneration => "code_generation",
            RequestType::CodeUnderstanding => "code_understanding",
            RequestType::TechnicalDesign => "technical_design",
            RequestType::AnalyticalReasoning => "analytical_reasoning",
            RequestType::Writing => "writing",
            RequestType::FactualLookup => "factual_lookup",
            RequestType::General => "general",
        }
    }

    /// The type a name means (case-insensitive).
    pub fn parse(s: &str) -> Option<RequestType> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// Every type's name, for messages.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|t| t.as_str()).collect()
    }
}

/// A prompt's type, as classified.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RequestTypeChoice {
    pub request_type: RequestType,
    /// The nearest type before the margin rule.
    pub matched: RequestType,
    /// Its margin over the second-best type.
    pub confidence: f32,
}

/// Classifies prompts into [`RequestType`]s.
#[derive(Debug, Clone)]
pub struct RequestTypeClassifier {
    centroids: LabelCentroids<RequestType>,
    margin: f32,
}

impl RequestTypeClassifier {
    /// Builds the type centroids from the built-in seeds with `embedder`.
    pub fn build(embedder: &dyn Embedder) -> Result<RequestTypeClassifier, EmbedError> {
        let pairs = parse_labelled(SEEDS, "request type", RequestType::parse).map_err(|m| {
            EmbedError::Load {
                path: "request type seeds".into(),
                message: m,
            }
        })?;
        let pairs: Vec<(RequestType, &str)> = pairs.iter().map(|(t, p)| (*t, p.as_str())).collect();
        Ok(RequestTypeClassifier {
            centroids: LabelCentroids::build(embedder, &pairs)?,
            margin: DEFAULT_MARGIN,
        })
    }

    /// The embedding space the centroids live in.
    pub fn embedder_id(&self) -> &str {
        self.centroids.embedder_id()
    }

    /// The type of a prompt embedding.
    pub fn classify(&self, embedding: &[f32]) -> RequestTypeChoice {
        let (matched, _, confidence) = self.centroids.best(embedding);
        RequestTypeChoice {
            request_type: if confidence >= self.margin {
                matched
            } else {
                RequestType::General
            },
            matched,
            confidence,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::hashed::HashedNgramEmbedder;

    #[test]
    fn seeds_cover_every_type() {
        let pairs = parse_labelled(SEEDS, "request type", RequestType::parse).unwrap();
        for t in RequestType::ALL {
            assert!(
                pairs.iter().filter(|(pt, _)| *pt == t).count() >= 10,
                "{t:?}"
            );
        }
        assert_eq!(RequestType::parse("Writing"), Some(RequestType::Writing));
        assert_eq!(RequestType::parse("poetry"), None);
    }

    #[test]
    fn classifies_prompts_unlike_the_seeds() {
        let e = HashedNgramEmbedder::new(512).unwrap();
        let c = RequestTypeClassifier::build(&e).unwrap();
        let t = |p: &str| c.classify(&e.embed(p).unwrap()).request_type;
        assert_eq!(
            t("Write a Rust function that parses a semver string and returns its parts."),
            RequestType::CodeGeneration
        );
        assert_eq!(
            t("Draft an email to the team announcing the office move next month."),
            RequestType::Writing
        );
        assert_eq!(t("Who painted the Mona Lisa?"), RequestType::FactualLookup);
        assert_eq!(
            t("Prove that there are infinitely many prime numbers."),
            RequestType::AnalyticalReasoning
        );
        assert_eq!(t("hello there"), RequestType::General);
        assert_eq!(
            t(
                "Compare Cassandra and MongoDB for storing user activity events; which should I use?"
            ),
            RequestType::TechnicalDesign
        );
    }
}
