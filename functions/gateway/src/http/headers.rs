//! Every `x-routeiq-*` header the gateway reads or writes, by name.
//!
//! Read from clients: [`PROFILE`], [`CONVERSATION_ID`], and the edge Worker's signed
//! [`HINT`] and [`HINT_SIGNATURE`]. Written on routed responses: the rest (see the README's
//! header table).

pub use routeiq::edge::{HINT_HEADER as HINT, SIGNATURE_HEADER as HINT_SIGNATURE};

/// The deployment that answered.
pub const MODEL: &str = "x-routeiq-model";
/// The model group that answered (after aliases and fallbacks).
pub const MODEL_GROUP: &str = "x-routeiq-model-group";
/// The routing strategy.
pub const STRATEGY: &str = "x-routeiq-strategy";
/// Time spent in the gateway itself, excluding upstream time.
pub const OVERHEAD_MS: &str = "x-routeiq-overhead-ms";
/// Upstream calls made.
pub const ATTEMPTS: &str = "x-routeiq-attempts";
/// `true` when a fallback group answered.
pub const FALLBACK: &str = "x-routeiq-fallback";
/// USD cost of a non-streamed call.
pub const RESPONSE_COST: &str = "x-routeiq-response-cost";
/// Time to choose the deployment.
pub const DECISION_MS: &str = "x-routeiq-decision-ms";
/// ML strategies: the answering deployment's predicted quality.
pub const PREDICTED_QUALITY: &str = "x-routeiq-predicted-quality";
/// ML strategies: its expected USD cost.
pub const PREDICTED_COST: &str = "x-routeiq-predicted-cost";
/// ML strategies: `router`, `centroid`, `size`, `cost`, `edge-hint`.
pub const DECISION_METHOD: &str = "x-routeiq-decision-method";
/// ML strategies: the router artifact's version.
pub const ROUTER_VERSION: &str = "x-routeiq-router-version";
/// ML strategies: the prompt's centroid tier.
pub const TIER: &str = "x-routeiq-tier";
/// Client: the routing profile for ML strategies.
pub const PROFILE: &str = "x-routeiq-profile";
/// Client: the conversation, for affinity and experiment assignment.
pub const CONVERSATION_ID: &str = "x-routeiq-conversation-id";
/// `<experiment>/<arm>` when the request took part in the A/B experiment.
pub const EXPERIMENT: &str = "x-routeiq-experiment";
/// What conversation affinity did: `hit`, `miss`, `set`.
pub const AFFINITY: &str = "x-routeiq-affinity";
/// What happened to the edge hint: `used`, `advisory`, `ignored:<reason>`.
pub const HINT_STATUS: &str = "x-routeiq-hint-status";
/// The auto router the request named (LiteLLM's `auto_router/...` models).
pub const AUTO_ROUTER: &str = "x-routeiq-auto-router";
/// What the auto router read the prompt as: the route, the tier or the request type.
pub const AUTO_ROUTE: &str = "x-routeiq-auto-route";
/// LiteLLM's header naming the group its adaptive router chose (the one that answered).
pub const ADAPTIVE_ROUTER_MODEL: &str = "x-litellm-adaptive-router-model";
/// Client: the least `quality_tier` the adaptive auto router may pick (LiteLLM's header).
pub const MIN_QUALITY_TIER: &str = "x-litellm-min-quality-tier";
