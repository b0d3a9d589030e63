//! The router: model groups, aliases, cooldowns and strategies.
//!
//! A request names a model group (`model_name`) or an alias; the router drops the group's
//! deployments that are cooling down or on unsupported providers, asks the strategy to order
//! the rest, and returns them as a [`Selection`]: first choice first, then the order to fall
//! back in. After each upstream call the gateway reports back (`record_*`), which feeds
//! cooldowns, circuit breakers, latency statistics, usage counters and in-flight counts in the
//! [`StateStore`]. Deployments whose [circuit](circuit) is open are not candidates.
//!
//! With `router_settings.deployment_affinity_ttl_seconds`, a request that carries a
//! conversation key goes first to the deployment that answered that conversation before
//! (see [`affinity`]). A request whose `model` is a deployment id (`model_info.id`) is served
//! by that deployment only (LiteLLM's specific-deployment requests); affinity never overrides
//! it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::Error;
use crate::config::{Config, FallbackRule, RouterSettings};
use crate::ml::centroid::DEFAULT_CONFIDENCE_THRESHOLD;
use crate::ml::routing::{Decision, MlContext, MlRouting, MlSetupError};
use crate::state::{Clock, PutCondition, StateStore};

pub mod affinity;
pub mod auto;
pub mod circuit;
mod deployment;
pub mod experiment;
pub mod hint;
pub mod strategy;

pub use affinity::{AffinityOutcome, AffinityPin};

pub use circuit::{Admission, CircuitBreakerSettings, CircuitBreakers, CircuitState, Transition};
pub use deployment::Deployment;
pub use strategy::{Candidate, Needs, RequestFacts, Strategy};

/// The ordered deployments chosen for one request.
#[derive(Debug, Clone)]
pub struct Selection {
    /// The model group the request resolved to (after aliases).
    pub model_group: String,
    /// Strategy name, for the `x-routeiq-strategy` header.
    pub strategy: &'static str,
    /// First choice first; the rest are the fallbacks within the group, in order.
    pub candidates: Vec<Arc<Deployment>>,
    /// The ML strategies' explainable decision (predicted quality and cost per candidate).
    pub decision: Option<Arc<Decision>>,
    /// Conversation affinity for this decision, to commit with [`Router::commit_affinity`]
    /// once a deployment has answered (`None`: affinity off, no conversation key, or an
    /// explicit deployment).
    pub affinity: Option<AffinityPin>,
    /// What the router did with a verified edge hint (`None`: no hint in play).
    pub hint: Option<hint::HintOutcome>,
}

/// How an upstream failure affects a deployment's health (LiteLLM's cooldown rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// Rate limited, bad credentials, unknown model: out of rotation at once.
    Immediate,
    /// Server errors, timeouts, broken connections: count toward `allowed_fails` per minute.
    Counted,
    /// The request's own fault (bad request, context window, content policy): no effect.
    Ignored,
}

/// Which fallback list applies to a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackKind {
    General,
    ContextWindow,
    ContentPolicy,
}

/// The result of a finished upstream call, for statistics.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallOutcome {
    pub latency: Duration,
    /// Time to first token, for streams.
    pub ttft: Option<Duration>,
    pub total_tokens: u64,
}

/// Latency samples kept per deployment (LiteLLM keeps 10).
const LATENCY_SAMPLES: usize = 10;
/// In-flight counters self-heal after this long without a write (a crashed instance).
const IN_FLIGHT_TTL: Duration = Duration::from_secs(600);
/// The longest cooldown an upstream's `Retry-After` can impose on a deployment (a broken or
/// hostile upstream must not take a deployment out for days).
pub const MAX_RETRY_AFTER_COOLDOWN: Duration = Duration::from_secs(3600);
const MINUTE_MS: u64 = 60_000;

/// Routes requests for every model group of a config.
pub struct Router {
    groups: HashMap<String, Vec<Arc<Deployment>>>,
    /// Group names in config order, for `/v1/models`.
    group_order: Vec<String>,
    settings: RouterSettings,
    strategy: Strategy,
    state: Arc<dyn StateStore>,
    clock: Arc<dyn Clock>,
    circuits: CircuitBreakers,
    /// Auto routers (LiteLLM's `auto_router/...` models) by model name.
    auto: auto::AutoRouters,
}

impl Router {
    /// A router over `config`'s model list, with default circuit breaker settings (see
    /// [`Router::with_circuit_breakers`]).
    pub fn new(config: &Config, state: Arc<dyn StateStore>, clock: Arc<dyn Clock>) -> Router {
        let settings = &config.router_settings;
        let strategy =
            Strategy::from_config(settings.routing_strategy, &settings.routing_strategy_args);
        Self::with_strategy(config, state, clock, strategy, DEFAULT_CONFIDENCE_THRESHOLD)
    }

    /// Like [`Router::new`], setting up an ML strategy with `ctx` (environment, artifact
    /// store, embedders); fails when it cannot be set up (see [`MlRouting::build`]).
    pub fn with_ml_context(
        config: &Config,
        state: Arc<dyn StateStore>,
        clock: Arc<dyn Clock>,
        ctx: &MlContext,
    ) -> Result<Router, MlSetupError> {
        let settings = &config.router_settings;
        let strategy = Strategy::from_config_with(
            settings.routing_strategy,
            &settings.routing_strategy_args,
            ctx,
        )?;
        let threshold = ctx.env.confidence_threshold;
        Ok(Self::with_strategy(
            config, state, clock, strategy, threshold,
        ))
    }

    /// Like [`Router::new`] with an ML strategy already set up (a router rebuilt around the
    /// running one keeps its loaded artifact and hot-reload slot).
    pub fn with_ml_routing(
        config: &Config,
        state: Arc<dyn StateStore>,
        clock: Arc<dyn Clock>,
        ml: Arc<MlRouting>,
    ) -> Router {
        let threshold = ml.tier_threshold();
        Self::with_strategy(config, state, clock, Strategy::Ml(ml), threshold)
    }

    fn with_strategy(
        config: &Config,
        state: Arc<dyn StateStore>,
        clock: Arc<dyn Clock>,
        strategy: Strategy,
        tier_threshold: f32,
    ) -> Router {
        let mut groups: HashMap<String, Vec<Arc<Deployment>>> = HashMap::new();
        let mut group_order = Vec::new();
        for (i, d) in config.model_list.iter().enumerate() {
            if d.litellm_params.auto_router.is_some() {
                // Routes to other groups; listed with them (`/v1/models`), never called.
                group_order.push(d.model_name.clone());
                continue;
            }
            let dep = Arc::new(Deployment::from_config(i, d));
            groups
                .entry(dep.model_name.clone())
                .or_insert_with(|| {
                    group_order.push(dep.model_name.clone());
                    Vec::new()
                })
                .push(dep);
        }
        let settings = config.router_settings.clone();
        let auto = auto::AutoRouters::build(config, &groups, tier_threshold);
        let circuits = CircuitBreakers::new(
            CircuitBreakerSettings::default(),
            state.clone(),
            clock.clone(),
        );
        Router {
            groups,
            group_order,
            settings,
            strategy,
            state,
            clock,
            circuits,
            auto,
        }
    }

    /// Decides where a request to `model` goes when `model` is an auto router (`None`
    /// otherwise); see [`auto`].
    pub fn auto_route(
        &self,
        model: &str,
        input: auto::AutoInput<'_>,
    ) -> Option<Result<auto::AutoDecision, auto::AutoError>> {
        // The adaptive router takes a trained router's predicted qualities when there is one.
        let trained = match (
            self.auto
                .get(model)
                .and_then(auto::AutoRouter::adaptive_groups),
            self.strategy.ml(),
            input.prompt,
        ) {
            (Some(groups), Some(ml), Some(prompt)) => {
                auto::trained_quality(ml, &groups, &self.groups, prompt)
            }
            _ => HashMap::new(),
        };
        self.auto.decide(model, input, &trained)
    }

    /// Is `model` an auto router's name?
    pub fn is_auto_router(&self, model: &str) -> bool {
        self.auto.contains(model)
    }

    /// The same router with these circuit breaker settings.
    pub fn with_circuit_breakers(mut self, settings: CircuitBreakerSettings) -> Router {
        self.circuits = CircuitBreakers::new(settings, self.state.clone(), self.clock.clone());
        self
    }

    /// The same router with these deployments (by id) marked unusable, with the reason: the
    /// gateway could not build a client for them (e.g. Azure without an endpoint). They are
    /// skipped like [`Deployment::unusable`] ones.
    pub fn with_unusable(mut self, reasons: &HashMap<String, String>) -> Router {
        if reasons.is_empty() {
            return self;
        }
        for deployments in self.groups.values_mut() {
            for d in deployments.iter_mut() {
                if let Some(why) = reasons.get(&d.id) {
                    let mut marked = Deployment::clone(d);
                    marked.params.unusable = Some(why.clone());
                    *d = Arc::new(marked);
                }
            }
        }
        self
    }

    /// The circuit breakers of every deployment.
    pub fn circuits(&self) -> &CircuitBreakers {
        &self.circuits
    }

    /// The effective circuit state of every deployment, in [`Router::deployments`] order.
    pub async fn circuit_states(&self) -> Vec<(Arc<Deployment>, CircuitState)> {
        let deployments: Vec<Arc<Deployment>> = self.deployments().cloned().collect();
        let ids: Vec<&str> = deployments.iter().map(|d| d.id.as_str()).collect();
        let states = self.circuits.states(&ids).await;
        deployments.into_iter().zip(states).collect()
    }

    pub fn settings(&self) -> &RouterSettings {
        &self.settings
    }

    pub fn strategy(&self) -> &Strategy {
        &self.strategy
    }

    pub fn state(&self) -> &Arc<dyn StateStore> {
        &self.state
    }

    /// Every deployment, in config order within groups.
    pub fn deployments(&self) -> impl Iterator<Item = &Arc<Deployment>> {
        self.group_order
            .iter()
            .filter_map(|g| self.groups.get(g))
            .flatten()
    }

    /// Model names a client may request: groups, then visible aliases.
    pub fn model_names(&self) -> Vec<String> {
        let mut names = self.group_order.clone();
        names.extend(
            self.settings
                .model_group_alias
                .keys()
                .filter(|a| !self.settings.hidden_aliases.contains(a))
                .filter(|a| !self.groups.contains_key(*a))
                .cloned(),
        );
        names
    }

    /// The group a requested model name means (itself, or the group an alias points to).
    pub fn resolve_group<'a>(&'a self, model: &'a str) -> Option<&'a str> {
        if self.groups.contains_key(model) {
            return Some(model);
        }
        self.settings
            .model_group_alias
            .get(model)
            .map(String::as_str)
            .filter(|g| self.groups.contains_key(*g))
    }

    /// What a requested model name means: a group (itself, or the group an alias points
    /// to) and no deployment, else the group of the deployment whose id it is and that
    /// deployment (an explicit deployment request).
    pub fn resolve_target<'a>(&'a self, model: &'a str) -> Option<(&'a str, Option<&'a str>)> {
        if let Some(g) = self.resolve_group(model) {
            return Some((g, None));
        }
        // A deployment id, else a deployment's `litellm_params.model` (LiteLLM routes a
        // request naming one to that deployment, e.g. a fallback to `azure/gpt-4`).
        self.deployments()
            .find(|d| d.id == model)
            .or_else(|| self.deployments().find(|d| d.params.model == model))
            .map(|d| (d.model_name.as_str(), Some(d.id.as_str())))
    }

    /// The conversation affinity TTL (`router_settings.deployment_affinity_ttl_seconds`),
    /// when affinity is on.
    pub fn affinity_ttl(&self) -> Option<Duration> {
        self.settings
            .deployment_affinity_ttl
            .filter(|ttl| !ttl.is_zero())
    }

    /// Chooses and orders the deployments for a request to `model` (a group, an alias, or a
    /// deployment id).
    pub async fn select(
        &self,
        model: &str,
        mut facts: RequestFacts,
        rng: &mut fastrand::Rng,
    ) -> Result<Selection, Error> {
        let (group, deployment) =
            self.resolve_target(model)
                .ok_or_else(|| Error::UnknownModel {
                    model: model.to_string(),
                    available: self.model_names(),
                })?;
        if let Some(id) = deployment {
            facts.deployment = Some(Arc::from(id));
        }
        self.select_group(group, facts, rng).await
    }

    /// Like [`Router::select`] for a group name (fallback groups are named directly).
    pub async fn select_group(
        &self,
        group: &str,
        facts: RequestFacts,
        rng: &mut fastrand::Rng,
    ) -> Result<Selection, Error> {
        let all = self.groups.get(group).ok_or_else(|| Error::UnknownModel {
            model: group.to_string(),
            available: self.model_names(),
        })?;
        // An explicit deployment (of this group) is the only candidate.
        let explicit = facts
            .deployment
            .as_deref()
            .filter(|id| all.iter().any(|d| d.id == *id));
        let targeted: Vec<&Arc<Deployment>> = all
            .iter()
            .filter(|d| explicit.is_none_or(|id| d.id == id))
            .collect();
        let supported: Vec<&Arc<Deployment>> = targeted
            .iter()
            .copied()
            .filter(|d| d.unusable().is_none())
            .collect();
        if supported.is_empty() {
            return Err(Error::NoUsableDeployment {
                group: group.to_string(),
                reasons: targeted
                    .iter()
                    .filter_map(|d| d.unusable().map(|r| format!("{}: {r}", d.id)))
                    .collect(),
            });
        }
        let pin_key = match (explicit, self.affinity_ttl(), facts.conversation.as_deref()) {
            (None, Some(_), Some(conversation)) => Some(affinity::pin_key(group, conversation)),
            _ => None,
        };
        let (available, pin) = self
            .filter_health(group, supported, pin_key.as_deref())
            .await?;
        let mut candidates: Vec<Candidate<'_>> =
            available.iter().map(|d| Candidate::new(d)).collect();
        self.fill_stats(&mut candidates).await;
        let hint_use = facts.hint.clone();
        let (mut order, decision) = self.strategy.rank_explained(&candidates, facts, rng);
        // LiteLLM's `order`: lower orders first, the strategy's ranking within each (stable).
        order.sort_by_key(|&i| available[i].order());
        let hint = hint_use.as_deref().map(|h| {
            let ml_took_tier = decision
                .as_ref()
                .is_some_and(|d| d.method == crate::ml::routing::DecisionMethod::Edge);
            hint::apply(h, &available, &mut order, ml_took_tier)
        });
        let affinity = match (pin_key, self.affinity_ttl()) {
            (Some(key), Some(ttl)) => {
                let (pinned, written_ms) = match pin.as_ref().and_then(affinity::parse_pin) {
                    Some((d, at)) => (Some(d), at),
                    None => (None, 0),
                };
                // The pinned deployment goes first while the strategy still ranks it (it is
                // healthy, not cooling down, circuit closed, under its limits); the strategy's
                // order follows it.
                let at = pinned
                    .as_deref()
                    .and_then(|p| order.iter().position(|&i| available[i].id == p));
                if let Some(pos) = at {
                    let i = order.remove(pos);
                    order.insert(0, i);
                }
                tracing::debug!(
                    model_group = group,
                    pinned = pinned.as_deref(),
                    applied = at.is_some(),
                    "conversation affinity"
                );
                Some(AffinityPin {
                    key,
                    pinned,
                    applied: at.is_some(),
                    written_ms,
                    ttl,
                })
            }
            _ => None,
        };
        if order.is_empty() {
            return Err(Error::NoDeploymentAvailable {
                group: group.to_string(),
                reason: "every deployment is at its rpm/tpm limit for this minute".into(),
                retry_after_ms: Some(MINUTE_MS - self.clock.now_ms() % MINUTE_MS),
            });
        }
        Ok(Selection {
            model_group: group.to_string(),
            strategy: self.strategy.name(),
            candidates: order.into_iter().map(|i| available[i].clone()).collect(),
            decision: decision.map(Arc::new),
            affinity,
            hint,
        })
    }

    /// Writes the conversation's pin after `answered` answered a request routed with `pin`,
    /// when it is new, moves, or is past half its TTL (see [`affinity`]). Returns the
    /// outcome for the `x-routeiq-affinity` header. A failed write is logged, never an error.
    pub async fn commit_affinity(&self, pin: &AffinityPin, answered: &str) -> AffinityOutcome {
        let outcome = pin.outcome(answered);
        let now = self.clock.now_ms();
        if pin.needs_write(answered, now) {
            let written = self
                .state
                .put(
                    &pin.key,
                    affinity::pin_value(answered, now),
                    Some(pin.ttl),
                    PutCondition::Always,
                )
                .await;
            if let Err(e) = written {
                tracing::warn!(key = %pin.key, error = %e, "affinity write failed");
            }
        }
        outcome
    }

    /// Drops deployments that are cooling down, then those whose circuit is open. Cooldowns,
    /// circuits and the conversation pin at `pin_key` are read in one batch (one round trip to
    /// a shared backend); the pin is returned. A failing store routes on without them.
    async fn filter_health<'a>(
        &self,
        group: &str,
        deployments: Vec<&'a Arc<Deployment>>,
        pin_key: Option<&str>,
    ) -> Result<(Vec<&'a Arc<Deployment>>, Option<crate::state::Versioned>), Error> {
        let cooldowns = !self.settings.disable_cooldowns;
        let circuits = self.circuits.settings().enabled();
        let ids: Vec<&str> = deployments.iter().map(|d| d.id.as_str()).collect();
        let mut keys: Vec<String> = Vec::new();
        if cooldowns {
            keys.extend(ids.iter().map(|id| cooldown_key(id)));
        }
        if circuits {
            keys.extend(self.circuits.keys(&ids));
        }
        keys.extend(pin_key.map(str::to_string));
        if keys.is_empty() {
            return Ok((deployments, None));
        }
        let mut fetched = match self.state.get_many(&keys).await {
            Ok(v) => v,
            Err(e) => {
                // The state backend is down: route on without cooldown, circuit or affinity
                // information.
                tracing::warn!(backend = self.state.backend(), error = %e, "routing state lookup failed");
                return Ok((deployments, None));
            }
        };
        let pin = if pin_key.is_some() {
            fetched.pop().flatten()
        } else {
            None
        };
        let n = deployments.len();
        let circuit_states = if circuits {
            fetched.split_off(fetched.len().saturating_sub(n))
        } else {
            vec![None; n]
        };
        let cooling = if cooldowns { fetched } else { vec![None; n] };
        // Not cooling down: the deployment and its stored circuit.
        let mut healthy: Vec<&'a Arc<Deployment>> = Vec::with_capacity(n);
        let mut stored: Vec<Option<crate::state::Versioned>> = Vec::with_capacity(n);
        let mut until: Option<u64> = None;
        for ((d, cooling), circuit) in deployments.iter().zip(cooling).zip(circuit_states) {
            match cooling {
                None => {
                    healthy.push(*d);
                    stored.push(circuit);
                }
                Some(v) => {
                    if let Ok(t) = v.value.parse::<u64>() {
                        until = Some(until.map_or(t, |u| u.min(t)));
                    }
                }
            }
        }
        if healthy.is_empty() {
            let now = self.clock.now_ms();
            return Err(Error::NoDeploymentAvailable {
                group: group.to_string(),
                reason: format!("all {n} deployment(s) are cooling down after failures"),
                retry_after_ms: until.map(|t| t.saturating_sub(now).max(1)),
            });
        }
        if !circuits {
            return Ok((healthy, pin));
        }
        let ids: Vec<&str> = healthy.iter().map(|d| d.id.as_str()).collect();
        let admissions = self.circuits.admit_stored(&ids, &stored).await;
        let mut retry_after_ms: Option<u64> = None;
        let mut closed = Vec::with_capacity(healthy.len());
        for (d, a) in healthy.iter().zip(admissions) {
            match a {
                Admission::Allowed => closed.push(*d),
                Admission::Rejected { retry_after_ms: ms } => {
                    retry_after_ms = Some(retry_after_ms.map_or(ms, |m| m.min(ms)));
                }
            }
        }
        if closed.is_empty() {
            return Err(Error::CircuitOpen {
                group: group.to_string(),
                deployments: healthy.len(),
                retry_after_ms,
            });
        }
        Ok((closed, pin))
    }

    async fn fill_stats(&self, candidates: &mut [Candidate<'_>]) {
        let needs = self.strategy.needs();
        if needs.in_flight {
            let keys: Vec<String> = candidates
                .iter()
                .map(|c| in_flight_key(&c.deployment.id))
                .collect();
            match self.state.get_counters(&keys).await {
                Ok(v) => candidates
                    .iter_mut()
                    .zip(v)
                    .for_each(|(c, n)| c.in_flight = n),
                Err(e) => tracing::warn!(error = %e, "in-flight lookup failed"),
            }
        }
        if needs.latency {
            let mut keys = Vec::with_capacity(candidates.len() * 2);
            for c in candidates.iter() {
                keys.push(latency_key(&c.deployment.id));
                keys.push(ttft_key(&c.deployment.id));
            }
            match self.state.get_many(&keys).await {
                Ok(v) => {
                    for (c, pair) in candidates.iter_mut().zip(v.chunks(2)) {
                        c.latency_ms = pair[0].as_ref().and_then(|s| mean_of(&s.value));
                        c.ttft_ms = pair[1].as_ref().and_then(|s| mean_of(&s.value));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "latency lookup failed"),
            }
        }
        if needs.usage {
            let minute = self.clock.now_ms() / MINUTE_MS;
            let mut keys = Vec::with_capacity(candidates.len() * 2);
            for c in candidates.iter() {
                keys.push(rpm_key(&c.deployment.id, minute));
                keys.push(tpm_key(&c.deployment.id, minute));
            }
            match self.state.get_counters(&keys).await {
                Ok(v) => {
                    for (c, pair) in candidates.iter_mut().zip(v.chunks(2)) {
                        c.rpm_used = pair[0];
                        c.tpm_used = pair[1];
                    }
                }
                Err(e) => tracing::warn!(error = %e, "usage lookup failed"),
            }
        }
    }

    /// Call before sending a request to `d`.
    pub async fn record_start(&self, d: &Deployment) {
        let needs = self.strategy.needs();
        if needs.in_flight {
            self.incr_logged(&in_flight_key(&d.id), 1, IN_FLIGHT_TTL)
                .await;
        }
        if needs.usage {
            let minute = self.clock.now_ms() / MINUTE_MS;
            self.incr_logged(&rpm_key(&d.id, minute), 1, Duration::from_secs(120))
                .await;
        }
    }

    /// A `'static` future that takes back [`Router::record_start`]'s in-flight count for `d`
    /// (`None` when the strategy keeps none): for drop guards, when a call is abandoned because
    /// the client went away and `record_end` never runs.
    pub fn release_in_flight(
        &self,
        d: &Deployment,
    ) -> Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>>> {
        if !self.strategy.needs().in_flight {
            return None;
        }
        let state = self.state.clone();
        let key = in_flight_key(&d.id);
        Some(Box::pin(async move {
            if let Err(e) = state.incr(&key, -1, IN_FLIGHT_TTL).await {
                tracing::warn!(key, error = %e, "state counter update failed");
            }
        }))
    }

    /// Call when a request to `d` has finished, successfully or not (pairs with `record_start`).
    /// A finished call with an outcome counts as a success for `d`'s circuit breaker.
    pub async fn record_end(&self, d: &Deployment, outcome: Option<CallOutcome>) {
        let needs = self.strategy.needs();
        if needs.in_flight {
            self.incr_logged(&in_flight_key(&d.id), -1, IN_FLIGHT_TTL)
                .await;
        }
        let Some(outcome) = outcome else { return };
        self.circuits.on_success(&d.id).await;
        if needs.usage && outcome.total_tokens > 0 {
            let minute = self.clock.now_ms() / MINUTE_MS;
            self.incr_logged(
                &tpm_key(&d.id, minute),
                outcome.total_tokens as i64,
                Duration::from_secs(120),
            )
            .await;
        }
        if needs.latency {
            let ttl = self
                .settings
                .routing_strategy_args
                .ttl
                .max(Duration::from_secs(1));
            self.push_sample(&latency_key(&d.id), outcome.latency, ttl)
                .await;
            if let Some(ttft) = outcome.ttft {
                self.push_sample(&ttft_key(&d.id), ttft, ttl).await;
            }
        }
    }

    /// Call when a request to `d` failed. Returns whether `d` was put in cooldown. Failures
    /// that are not the request's own fault also count toward `d`'s circuit breaker.
    pub async fn record_failure(&self, d: &Deployment, class: FailureClass) -> bool {
        self.record_failure_with(d, class, None).await
    }

    /// [`Router::record_failure`] for a failure that came with the upstream's own wait
    /// (`Retry-After`): `d` cools down for exactly that long, even as the only deployment of
    /// its group (the upstream said it will refuse until then), instead of `cooldown_time`;
    /// at most [`MAX_RETRY_AFTER_COOLDOWN`].
    pub async fn record_failure_with(
        &self,
        d: &Deployment,
        class: FailureClass,
        retry_after: Option<Duration>,
    ) -> bool {
        if class != FailureClass::Ignored {
            self.circuits.on_failure(&d.id).await;
        }
        if self.settings.disable_cooldowns || class == FailureClass::Ignored {
            return false;
        }
        let cooldown = match retry_after.filter(|w| !w.is_zero()) {
            Some(wait) => wait.min(MAX_RETRY_AFTER_COOLDOWN),
            None => {
                // As in LiteLLM: never cool down the only deployment of a group; that would
                // turn one transient error into minutes of "no deployments available".
                if self.groups.get(&d.model_name).is_none_or(|g| g.len() <= 1) {
                    return false;
                }
                let cool = match class {
                    FailureClass::Immediate => true,
                    FailureClass::Counted => {
                        let minute = self.clock.now_ms() / MINUTE_MS;
                        let key = format!("fail:{}:{minute}", d.id);
                        match self.state.incr(&key, 1, Duration::from_secs(60)).await {
                            Ok(n) => n > i64::from(self.settings.allowed_fails),
                            Err(e) => {
                                tracing::warn!(error = %e, "failure counter update failed");
                                false
                            }
                        }
                    }
                    FailureClass::Ignored => false,
                };
                if !cool {
                    return false;
                }
                self.settings.cooldown_time
            }
        };
        let until = self
            .clock
            .now_ms()
            .saturating_add(u64::try_from(cooldown.as_millis()).unwrap_or(u64::MAX));
        let written = self
            .state
            .put(
                &cooldown_key(&d.id),
                until.to_string(),
                Some(cooldown),
                PutCondition::Always,
            )
            .await;
        match written {
            Ok(_) => {
                tracing::warn!(
                    deployment = %d.id,
                    model_group = %d.model_name,
                    cooldown_secs = cooldown.as_secs_f64(),
                    "deployment cooling down"
                );
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "cooldown write failed");
                false
            }
        }
    }

    /// Model groups to fall back to when `group` fails with a failure of `kind`, in order,
    /// at most `max_fallbacks`. Context-window and content-policy failures use their own lists
    /// when set, else the general one; the general list defaults to `default_fallbacks`.
    pub fn fallback_groups(&self, group: &str, kind: FallbackKind) -> Vec<String> {
        let find =
            |rules: &[FallbackRule]| rules.iter().find(|r| r.from == group).map(|r| r.to.clone());
        let specific = match kind {
            FallbackKind::General => None,
            FallbackKind::ContextWindow => find(&self.settings.context_window_fallbacks),
            FallbackKind::ContentPolicy => find(&self.settings.content_policy_fallbacks),
        };
        let mut list = specific
            .or_else(|| find(&self.settings.fallbacks))
            .unwrap_or_else(|| self.settings.default_fallbacks.clone());
        list.retain(|g| g != group);
        list.truncate(self.settings.max_fallbacks as usize);
        list
    }

    async fn incr_logged(&self, key: &str, delta: i64, ttl: Duration) {
        if let Err(e) = self.state.incr(key, delta, ttl).await {
            tracing::warn!(key, error = %e, "state counter update failed");
        }
    }

    async fn push_sample(&self, key: &str, sample: Duration, ttl: Duration) {
        let current = match self.state.get_many(&[key.to_string()]).await {
            Ok(mut v) => v.pop().flatten(),
            Err(e) => {
                tracing::warn!(key, error = %e, "latency read failed");
                return;
            }
        };
        let mut samples: Vec<f64> = current
            .and_then(|v| serde_json::from_str(&v.value).ok())
            .unwrap_or_default();
        samples.push(sample.as_secs_f64() * 1000.0);
        if samples.len() > LATENCY_SAMPLES {
            samples.drain(..samples.len() - LATENCY_SAMPLES);
        }
        let value = serde_json::to_string(&samples).unwrap_or_default();
        // Last writer wins: latency statistics are advisory.
        if let Err(e) = self
            .state
            .put(key, value, Some(ttl), PutCondition::Always)
            .await
        {
            tracing::warn!(key, error = %e, "latency write failed");
        }
    }
}

fn mean_of(samples_json: &str) -> Option<f64> {
    let samples: Vec<f64> = serde_json::from_str(samples_json).ok()?;
    if samples.is_empty() {
        return None;
    }
    Some(samples.iter().sum::<f64>() / samples.len() as f64)
}

fn cooldown_key(id: &str) -> String {
    format!("cooldown:{id}")
}
fn in_flight_key(id: &str) -> String {
    format!("inflight:{id}")
}
fn latency_key(id: &str) -> String {
    format!("latency:{id}")
}
fn ttft_key(id: &str) -> String {
    format!("ttft:{id}")
}
fn rpm_key(id: &str, minute: u64) -> String {
    format!("rpm:{id}:{minute}")
}
fn tpm_key(id: &str, minute: u64) -> String {
    format!("tpm:{id}:{minute}")
}

#[cfg(test)]
mod tests;
