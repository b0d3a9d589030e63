//! Edge pre-classification: what the Cloudflare Worker runs (compiled to wasm32) and what
//! the gateway checks.
//!
//! The Worker reads a request ([`prompt::PromptView`]), scores cheap [`signals`], runs the
//! small learned [`model`] (a linear classifier over hashed n-grams, trained by
//! `routeiq train-edge`), picks the nearest provider [`region`], and writes an
//! [`hint::EdgeHint`] into `X-RouteIQ-Hint`, signed over the body and a timestamp with a
//! secret shared with the gateway ([`sign`]). The gateway verifies the signature and uses
//! the hint as its `edge_hint` mode says (`ignore`, `advisory`, `trust`).
//!
//! Everything here is plain Rust with no I/O and no clock (the caller passes the time), so
//! it builds for `wasm32-unknown-unknown` with default features.

pub mod hint;
pub mod model;
pub mod prompt;
pub mod region;
pub mod sign;
pub mod signals;

use std::collections::BTreeMap;

pub use hint::{EdgeHint, HINT_HEADER, HintError, SIGNATURE_HEADER, Signal};
pub use model::{EdgeModel, ModelError};
pub use prompt::PromptView;
pub use region::{ClientGeo, nearest_region};
pub use sign::SignatureError;
pub use signals::Signals;

use crate::ml::centroid::{Profile, Tier};

/// What the edge is configured with (Worker vars).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EdgeConfig {
    /// A model group (or deployment) to suggest per tier (`ROUTEIQ_TIER_MODELS`).
    pub tier_models: BTreeMap<Tier, String>,
    /// The regions deployments exist in (`ROUTEIQ_EDGE_REGIONS`); empty means any.
    pub regions: Vec<String>,
    /// The profile to suggest when the request names none (`ROUTEIQ_ROUTING_PROFILE`).
    pub default_profile: Option<Profile>,
}

impl EdgeConfig {
    /// Reads the Worker's vars: `tier_models` as `simple=gpt-4o-mini,complex=gpt-4o`,
    /// `regions` as a comma list, `profile` a profile name. Errors name the var.
    pub fn from_vars(
        tier_models: Option<&str>,
        regions: Option<&str>,
        profile: Option<&str>,
    ) -> Result<EdgeConfig, String> {
        let mut cfg = EdgeConfig::default();
        for item in tier_models
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let (t, m) = item.split_once('=').ok_or_else(|| {
                format!("ROUTEIQ_TIER_MODELS: '{item}' is not tier=model (e.g. simple=gpt-4o-mini)")
            })?;
            let tier = Tier::parse(t).ok_or_else(|| {
                format!(
                    "ROUTEIQ_TIER_MODELS: unknown tier '{}'; tiers: simple, medium, complex, reasoning",
                    t.trim()
                )
            })?;
            cfg.tier_models.insert(tier, m.trim().to_string());
        }
        cfg.regions = regions
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        for r in &cfg.regions {
            if !region::REGIONS.iter().any(|(name, _, _)| name == r) {
                return Err(format!("ROUTEIQ_EDGE_REGIONS: unknown region '{r}'"));
            }
        }
        if let Some(p) = profile.map(str::trim).filter(|p| !p.is_empty()) {
            cfg.default_profile =
                Some(Profile::parse(p).map_err(|e| format!("ROUTEIQ_ROUTING_PROFILE: {e}"))?);
        }
        Ok(cfg)
    }
}

/// The edge classifier: model + config. See the module docs.
#[derive(Debug, Clone)]
pub struct EdgeClassifier {
    model: EdgeModel,
    config: EdgeConfig,
}

impl EdgeClassifier {
    pub fn new(model: EdgeModel, config: EdgeConfig) -> Self {
        EdgeClassifier { model, config }
    }

    pub fn model(&self) -> &EdgeModel {
        &self.model
    }

    /// Classifies a request body; `None` when the body is not a chat or completion request
    /// the edge can read (the Worker then forwards it unclassified).
    pub fn classify(&self, body: &[u8], geo: &ClientGeo) -> Option<EdgeHint> {
        PromptView::parse(body).map(|v| self.classify_view(&v, geo))
    }

    /// Classifies a parsed request. The model's most likely tier is the hint's tier and its
    /// probability the confidence; a request that offers tools is at least `medium` (small
    /// models call tools badly), keeping the model's confidence.
    pub fn classify_view(&self, view: &PromptView, geo: &ClientGeo) -> EdgeHint {
        let signals = Signals::of(view);
        let p = self.model.predict(&view.text, &signals);
        let (mut tier, confidence) = model::argmax(&p);
        if signals.tools && tier == Tier::Simple {
            tier = Tier::Medium;
        }
        let profile = view
            .profile
            .as_deref()
            .and_then(|p| Profile::parse(p).ok())
            .or(self.config.default_profile);
        EdgeHint {
            tier,
            confidence,
            profile,
            model: self.config.tier_models.get(&tier).cloned(),
            region: nearest_region(geo, &self.config.regions),
            colo: geo.colo.clone(),
            estimated_tokens: Some(signals.estimated_tokens),
            signals: signals.fired(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::model::{CLASSES, FloatWeights};

    /// A model that only reads the signals: maths -> reasoning, code -> complex,
    /// else simple.
    fn signal_model() -> EdgeModel {
        let mut signal_w = vec![[0f32; CLASSES]; signals::N_FEATURES];
        signal_w[1] = [0.0, 0.0, 8.0, 0.0];
        signal_w[2] = [0.0, 0.0, 0.0, 8.0];
        EdgeModel::from_bytes(
            &FloatWeights {
                buckets: 64,
                bias: [2.0, 0.0, 0.0, 0.0],
                signal_w,
                ngram_w: vec![[0.0; CLASSES]; 64],
            }
            .to_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn config_from_vars() {
        let c = EdgeConfig::from_vars(
            Some("simple=gpt-4o-mini, complex = gpt-4o"),
            Some("us-east-1,eu-west-1"),
            Some("eco"),
        )
        .unwrap();
        assert_eq!(c.tier_models[&Tier::Simple], "gpt-4o-mini");
        assert_eq!(c.tier_models[&Tier::Complex], "gpt-4o");
        assert_eq!(c.regions, ["us-east-1", "eu-west-1"]);
        assert_eq!(c.default_profile, Some(Profile::Eco));
        assert_eq!(
            EdgeConfig::from_vars(None, None, None).unwrap(),
            EdgeConfig::default()
        );
        for (t, r, p, needle) in [
            (Some("simple"), None, None, "tier=model"),
            (Some("hard=x"), None, None, "unknown tier 'hard'"),
            (None, Some("mars-1"), None, "unknown region"),
            (None, None, Some("turbo"), "ROUTEIQ_ROUTING_PROFILE"),
        ] {
            let e = EdgeConfig::from_vars(t, r, p).unwrap_err();
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn classifies_into_a_hint() {
        let cfg = EdgeConfig::from_vars(
            Some("simple=small,complex=big,reasoning=thinker"),
            None,
            None,
        )
        .unwrap();
        let c = EdgeClassifier::new(signal_model(), cfg);
        let geo = ClientGeo {
            country: Some("DE".into()),
            colo: Some("FRA".into()),
            ..ClientGeo::default()
        };
        let h = c
            .classify(
                br#"{"model":"m","messages":[{"role":"user","content":"hi there"}]}"#,
                &geo,
            )
            .unwrap();
        assert_eq!(h.tier, Tier::Simple);
        assert_eq!(h.model.as_deref(), Some("small"));
        assert_eq!(h.region.as_deref(), Some("eu-central-1"));
        assert_eq!(h.colo.as_deref(), Some("FRA"));
        let h = c
            .classify(
                br#"{"model":"m","messages":[{"role":"user","content":"Solve 3x + 7 = 22 and compute the sum of the first 100 primes"}]}"#,
                &geo,
            )
            .unwrap();
        assert_eq!(h.tier, Tier::Reasoning, "{h:?}");
        assert_eq!(h.model.as_deref(), Some("thinker"));
        assert!(h.has(Signal::Math));
        // Tools lift a simple prompt to medium; a profile in metadata is carried.
        let h = c
            .classify(
                br#"{"model":"m","metadata":{"routing_profile":"premium"},"tools":[{"type":"function","function":{"name":"f"}}],"messages":[{"role":"user","content":"hi"}]}"#,
                &ClientGeo::default(),
            )
            .unwrap();
        assert_eq!(h.tier, Tier::Medium);
        assert_eq!(h.profile, Some(Profile::Premium));
        assert_eq!(h.region, None);
        assert!(c.classify(b"{not json", &geo).is_none());
    }

    #[test]
    fn a_hint_survives_encode_sign_verify_parse() {
        let c = EdgeClassifier::new(signal_model(), EdgeConfig::default());
        let body = br#"{"model":"m","prompt":"write a rust fn that sorts a vec: fn sort(v: &mut Vec<i32>) {}"}"#;
        let hint = c.classify(body, &ClientGeo::default()).unwrap().encode();
        let sig = sign::sign(b"k", &hint, 100, body);
        assert_eq!(
            sign::verify(b"k", &hint, Some(&sig), body, 100, sign::DEFAULT_MAX_AGE),
            Ok(())
        );
        assert_eq!(EdgeHint::parse(&hint).unwrap().tier, Tier::Complex);
    }
}
