//! `model_list[i].model_info`: what a deployment is (id, mode, prices, token limits).
//! Free-form in LiteLLM: keys RouteIQ does not read are kept in [`ModelInfo::extra`].

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::WarningKind;
use crate::config::coerce;
use crate::config::load::Loader;
use crate::config::schema::{self, MapSchema, Node, Unknown, join};

use super::auto_router::{AdaptivePreferences, RawAdaptivePreferences};

/// Values of `model_info.mode` LiteLLM uses (its model map and health checks). Another value
/// is a warning: RouteIQ routes by it only to pick the endpoint a deployment serves.
const MODES: &[&str] = &[
    "chat",
    "completion",
    "embedding",
    "image_generation",
    "image_edit",
    "audio_transcription",
    "audio_speech",
    "moderation",
    "rerank",
    "batch",
    "responses",
    "realtime",
    "ocr",
    "search",
    "video_generation",
    "vector_store",
];

/// `model_list[i].model_info`: free-form metadata in LiteLLM, so every key is kept.
pub(in crate::config) static MODEL_INFO: MapSchema = MapSchema {
    implemented: &[
        ("id", Node::Any),
        ("mode", Node::Any),
        ("input_cost_per_token", Node::Any),
        ("output_cost_per_token", Node::Any),
        ("max_tokens", Node::Any),
        ("max_input_tokens", Node::Any),
        ("max_output_tokens", Node::Any),
        ("base_model", Node::Any),
        ("metadata", Node::Any),
        (
            "adaptive_router_preferences",
            Node::Map(&super::auto_router::ADAPTIVE_PREFERENCES),
        ),
    ],
    documented: &[],
    free: &[
        "db_model",
        "updated_at",
        "updated_by",
        "created_at",
        "created_by",
        "tier",
        "team_id",
        "team_public_model_name",
        "access_groups",
        "blocked",
        "discoverable",
        "litellm_provider",
        "description",
        "tpm",
        "rpm",
        "supported_openai_params",
        "supports_function_calling",
        "supports_parallel_function_calling",
        "supports_tool_choice",
        "supports_vision",
        "supports_reasoning",
        "supports_web_search",
        "supports_url_context",
        "supports_response_schema",
        "supports_system_messages",
        "supports_prompt_caching",
        "supports_audio_input",
        "supports_audio_output",
        "supports_pdf_input",
        "supports_assistant_prefill",
        "supports_computer_use",
        "supports_embedding_image_input",
        "supports_native_streaming",
        "input_cost_per_second",
        "output_cost_per_second",
        "input_cost_per_pixel",
        "output_cost_per_pixel",
        "input_cost_per_character",
        "output_cost_per_character",
        "input_cost_per_image",
        "output_cost_per_image",
        "input_cost_per_audio_token",
        "output_cost_per_audio_token",
        "output_cost_per_reasoning_token",
        "input_cost_per_token_batches",
        "output_cost_per_token_batches",
        "cache_creation_input_token_cost",
        "cache_read_input_token_cost",
    ],
    unenforceable: &[],
    unknown: Unknown::CollectUnlessTypo,
};

#[derive(Debug, Clone, Default)]
pub struct ModelInfo {
    pub id: Option<String>,
    /// `chat` (default), `completion`, `embedding`.
    pub mode: Option<String>,
    pub input_cost_per_token: Option<f64>,
    pub output_cost_per_token: Option<f64>,
    pub max_tokens: Option<u64>,
    pub max_input_tokens: Option<u64>,
    pub max_output_tokens: Option<u64>,
    pub base_model: Option<String>,
    pub metadata: Map<String, Value>,
    /// How the adaptive auto router rates this deployment's group (its quality tier and
    /// strengths); unset, LiteLLM's default (tier 2, no strengths).
    pub adaptive_router_preferences: Option<AdaptivePreferences>,
    /// Other `model_info` keys, kept for `/v1/model/info`-style reporting.
    pub extra: Map<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of model_info")]
pub(in crate::config) struct RawModelInfo {
    #[serde(default, deserialize_with = "coerce::opt_string")]
    pub id: Option<String>,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default, deserialize_with = "coerce::opt_f64")]
    pub input_cost_per_token: Option<f64>,
    #[serde(default, deserialize_with = "coerce::opt_f64")]
    pub output_cost_per_token: Option<f64>,
    #[serde(default, deserialize_with = "coerce::opt_u64")]
    pub max_tokens: Option<u64>,
    #[serde(default, deserialize_with = "coerce::opt_u64")]
    pub max_input_tokens: Option<u64>,
    #[serde(default, deserialize_with = "coerce::opt_u64")]
    pub max_output_tokens: Option<u64>,
    #[serde(default)]
    pub base_model: Option<String>,
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
    #[serde(default)]
    pub adaptive_router_preferences: Option<RawAdaptivePreferences>,
}

impl RawModelInfo {
    /// Returns the model info and its id (for the duplicate check).
    pub(super) fn load(
        raw: Option<RawModelInfo>,
        path: &str,
        cx: &mut Loader,
    ) -> (ModelInfo, Option<String>) {
        let extra = cx.take_extras(path);
        let Some(raw) = raw else {
            return (
                ModelInfo {
                    extra,
                    ..ModelInfo::default()
                },
                None,
            );
        };
        if let Some(mode) = raw.mode.as_ref().filter(|m| !MODES.contains(&m.as_str())) {
            let mut msg = format!("unknown mode '{mode}'");
            if let Some(s) = schema::suggest(mode, MODES) {
                msg.push_str(&format!("; did you mean '{s}'?"));
            }
            msg.push_str(&format!(" (LiteLLM's: {}); loaded as is", MODES.join(", ")));
            cx.warn(join(path, "mode"), WarningKind::Unknown, msg);
        }
        for (key, v) in [
            ("input_cost_per_token", raw.input_cost_per_token),
            ("output_cost_per_token", raw.output_cost_per_token),
        ] {
            if let Some(c) = v.filter(|c| !(c.is_finite() && *c >= 0.0)) {
                cx.problem(join(path, key), format!("must be >= 0, got {c}"));
            }
        }
        if raw.id.as_deref().is_some_and(|id| id.trim().is_empty()) {
            cx.problem(join(path, "id"), "must not be empty");
        }
        let id = raw.id.clone();
        let adaptive_router_preferences = raw
            .adaptive_router_preferences
            .and_then(|p| p.load(&join(path, "adaptive_router_preferences"), cx));
        (
            ModelInfo {
                id: raw.id,
                mode: raw.mode,
                input_cost_per_token: raw.input_cost_per_token,
                output_cost_per_token: raw.output_cost_per_token,
                max_tokens: raw.max_tokens,
                max_input_tokens: raw.max_input_tokens,
                max_output_tokens: raw.max_output_tokens,
                base_model: raw.base_model,
                metadata: raw.metadata.unwrap_or_default(),
                adaptive_router_preferences,
                extra,
            },
            id,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::{MODEL_INFO, RawModelInfo};
    use crate::config::schema::testing::assert_schema_matches;

    #[test]
    fn schema_matches_raw_type() {
        assert_schema_matches::<RawModelInfo>(&MODEL_INFO);
    }

    use serde_json::Value as JsonValue;

    use crate::config::load::testing::{load, problems};

    #[test]
    fn model_info_checks_and_cost_mapping() {
        let yaml = "model_list:\n  - model_name: a\n    litellm_params:\n      model: gpt-4o\n      \
            input_cost_per_token: 0.001\n      output_cost_per_token: 0.002\n    model_info:\n      \
            id: one\n      output_cost_per_token: 0.5\n      supports_vision: true\n      mode: chat\n\
            \x20 - model_name: a\n    litellm_params: {model: gpt-4o}\n    model_info: {id: 2}\n";
        let l = load(yaml).unwrap();
        let mi = &l.config.model_list[0].model_info;
        assert_eq!(mi.input_cost_per_token, Some(0.001));
        assert_eq!(mi.output_cost_per_token, Some(0.5));
        assert_eq!(mi.extra["supports_vision"], JsonValue::from(true));
        assert_eq!(l.config.model_list[1].model_info.id.as_deref(), Some("2"));

        // Every mode LiteLLM has loads; another one is a warning with a "did you mean".
        let l = load(
            "model_list:\n  - model_name: a\n    litellm_params: {model: gpt-4o}\n    model_info: {mode: batch}\n\
             \x20 - model_name: b\n    litellm_params: {model: gpt-4o}\n    model_info: {mode: chatt}\n",
        )
        .unwrap();
        assert_eq!(
            l.config.model_list[0].model_info.mode.as_deref(),
            Some("batch")
        );
        assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
        assert_eq!(l.warnings[0].path, "model_list[1].model_info.mode");
        assert!(l.warnings[0].message.contains("did you mean 'chat'?"));

        let dup = "model_list:\n  - model_name: a\n    litellm_params: {model: gpt-4o}\n    model_info: {id: x}\n\
            \x20 - model_name: b\n    litellm_params: {model: gpt-4o}\n    model_info: {id: x}\n";
        let p = problems(dup);
        assert_eq!(p[0].path, "model_list[1].model_info.id");
        assert!(p[0].message.contains("also used by model_list[0]"));
    }
}
