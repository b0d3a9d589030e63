//! The names of the ML routing strategies (`router_settings.routing_strategy: llmrouter-*`).

use serde::{Deserialize, Serialize};

/// An ML routing strategy RouteIQ runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MlStrategyName {
    /// k nearest training prompts; a model's predicted quality is its mean over them.
    Knn,
    /// One linear SVM per model ("does this model answer well?"), Platt-scaled.
    Svm,
    /// A multi-layer perceptron predicting every model's quality at once.
    Mlp,
    /// Matrix factorisation: learned model vectors against a projected prompt embedding.
    Mf,
    /// Elo ratings fitted from per-prompt wins; prompt-independent.
    Elo,
    /// Small vs large model by the predicted quality gap.
    Hybrid,
    /// The smallest model (by parameter count).
    Smallest,
    /// The largest model (by parameter count).
    Largest,
    /// A user's own ONNX router: embedding in, per-model scores out. The artifact's
    /// `custom_onnx` params name the file and its sha256; the scores are read as predicted
    /// qualities in the artifact's model order (`custom_onnx::OnnxScorer`, feature `onnx`).
    Custom,
}

impl MlStrategyName {
    pub const ALL: [MlStrategyName; 9] = [
        MlStrategyName::Knn,
        MlStrategyName::Svm,
        MlStrategyName::Mlp,
        MlStrategyName::Mf,
        MlStrategyName::Elo,
        MlStrategyName::Hybrid,
        MlStrategyName::Smallest,
        MlStrategyName::Largest,
        MlStrategyName::Custom,
    ];

    /// The strategies `routeiq train` produces (custom routers are brought by the user).
    pub const TRAINABLE: [MlStrategyName; 8] = [
        MlStrategyName::Knn,
        MlStrategyName::Svm,
        MlStrategyName::Mlp,
        MlStrategyName::Mf,
        MlStrategyName::Elo,
        MlStrategyName::Hybrid,
        MlStrategyName::Smallest,
        MlStrategyName::Largest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MlStrategyName::Knn => "llmrouter-knn",
            MlStrategyName::Svm => "llmrouter-svm",
            MlStrategyName::Mlp => "llmrouter-mlp",
            MlStrategyName::Mf => "llmrouter-mf",
            MlStrategyName::Elo => "llmrouter-elo",
            MlStrategyName::Hybrid => "llmrouter-hybrid",
            MlStrategyName::Smallest => "llmrouter-smallest",
            MlStrategyName::Largest => "llmrouter-largest",
            MlStrategyName::Custom => "llmrouter-custom",
        }
    }

    /// The short name (`knn`, `svm`, …): artifact file stems and CLI arguments.
    pub fn short(self) -> &'static str {
        &self.as_str()["llmrouter-".len()..]
    }

    /// Whether the strategy needs the prompt's embedding (size-ordered and Elo routers do not).
    pub fn needs_embedding(self) -> bool {
        !matches!(
            self,
            MlStrategyName::Smallest | MlStrategyName::Largest | MlStrategyName::Elo
        )
    }

    /// Parses `llmrouter-knn`, `knn`, `LLMRouter_KNN`…; names of LLMRouter strategies that
    /// need an LLM or a GPU get an error saying so.
    pub fn parse(name: &str) -> Result<MlStrategyName, String> {
        let n = name.trim().to_ascii_lowercase().replace('_', "-");
        let short = n.strip_prefix("llmrouter-").unwrap_or(&n);
        if let Some(s) = Self::ALL.iter().find(|s| s.short() == short) {
            return Ok(*s);
        }
        if let Some(why) = unsupported_reason(short) {
            return Err(format!(
                "routing strategy '{name}' is not supported by RouteIQ: {why}; supported ML \
                 strategies: {}",
                Self::names().join(", ")
            ));
        }
        Err(format!(
            "unknown ML routing strategy '{name}'; supported: {}",
            Self::names().join(", ")
        ))
    }

    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|s| s.as_str()).collect()
    }
}

/// LLMRouter strategies that need an LLM call or a GPU per decision, which RouteIQ does not
/// run (its decision budget is a millisecond on a CPU).
pub const UNSUPPORTED: [(&str, &str); 8] = [
    (
        "routerdc",
        "RouterDC fine-tunes a transformer encoder and needs a GPU",
    ),
    ("causallm", "the causal-LM router runs an LLM per decision"),
    (
        "graph",
        "GraphRouter trains a graph neural network on a GPU",
    ),
    ("automix", "AutoMix asks an LLM to self-verify each answer"),
    ("r1", "Router-R1 runs a reasoning LLM per decision"),
    (
        "knn-multiround",
        "multi-round routing calls an LLM between rounds",
    ),
    (
        "llm-multiround",
        "multi-round routing calls an LLM between rounds",
    ),
    ("gmt", "GMTRouter needs a GPU-trained graph model"),
];

fn unsupported_reason(short: &str) -> Option<&'static str> {
    let short = short.strip_suffix("-router").unwrap_or(short);
    UNSUPPORTED
        .iter()
        .find(|(n, _)| *n == short)
        .map(|(_, why)| *why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names() {
        assert_eq!(
            MlStrategyName::parse("llmrouter-knn"),
            Ok(MlStrategyName::Knn)
        );
        assert_eq!(
            MlStrategyName::parse("LLMRouter_MF"),
            Ok(MlStrategyName::Mf)
        );
        assert_eq!(MlStrategyName::parse("hybrid"), Ok(MlStrategyName::Hybrid));
        for s in MlStrategyName::ALL {
            assert_eq!(MlStrategyName::parse(s.as_str()), Ok(s));
        }
        let e = MlStrategyName::parse("llmrouter-routerdc").unwrap_err();
        assert!(e.contains("not supported") && e.contains("GPU"), "{e}");
        let e = MlStrategyName::parse("llmrouter-automix").unwrap_err();
        assert!(e.contains("LLM"), "{e}");
        assert!(
            MlStrategyName::parse("llmrouter-knn-multiround")
                .unwrap_err()
                .contains("not supported")
        );
        assert!(
            MlStrategyName::parse("llmrouter-foo")
                .unwrap_err()
                .contains("unknown")
        );
    }
}
