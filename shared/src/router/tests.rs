use std::sync::Arc;
use std::time::Duration;

use futures::executor::block_on;

use super::*;
use crate::config::{
    Config, DeploymentConfig, FallbackRule, LitellmParams, ModelInfo, RoutingStrategyName,
};
use crate::state::{InMemoryStateStore, ManualClock};

fn dep(group: &str, id: &str, model: &str) -> DeploymentConfig {
    DeploymentConfig {
        model_name: group.into(),
        litellm_params: LitellmParams {
            model: model.into(),
            ..LitellmParams::default()
        },
        model_info: ModelInfo {
            id: Some(id.into()),
            ..ModelInfo::default()
        },
    }
}

fn router(config: Config) -> (Arc<ManualClock>, Router) {
    let clock = Arc::new(ManualClock::new(10 * MINUTE_MS));
    let state = Arc::new(InMemoryStateStore::new(clock.clone()));
    (clock.clone(), Router::new(&config, state, clock))
}

fn two_deployments(strategy: RoutingStrategyName) -> Config {
    let mut c = Config {
        model_list: vec![
            dep("gpt", "a", "openai/gpt-4o-mini"),
            dep("gpt", "b", "openai/gpt-4o-mini"),
            dep("claude", "c", "anthropic/claude-3-5-haiku-latest"),
        ],
        ..Config::default()
    };
    c.router_settings.routing_strategy = strategy;
    c
}

fn ids(s: &Selection) -> Vec<&str> {
    s.candidates.iter().map(|d| d.id.as_str()).collect()
}

#[test]
fn resolves_groups_and_aliases() {
    let mut cfg = two_deployments(RoutingStrategyName::SimpleShuffle);
    cfg.router_settings
        .model_group_alias
        .insert("fast".into(), "gpt".into());
    cfg.router_settings
        .model_group_alias
        .insert("secret".into(), "claude".into());
    cfg.router_settings.hidden_aliases.push("secret".into());
    let (_, r) = router(cfg);
    let mut rng = fastrand::Rng::with_seed(1);
    let s = block_on(r.select("fast", RequestFacts::default(), &mut rng)).unwrap();
    assert_eq!(s.model_group, "gpt");
    assert_eq!(s.candidates.len(), 2);
    assert_eq!(s.strategy, "simple-shuffle");
    assert_eq!(r.model_names(), vec!["gpt", "claude", "fast"]);
    let s = block_on(r.select("secret", RequestFacts::default(), &mut rng)).unwrap();
    assert_eq!(ids(&s), vec!["c"]);
    match block_on(r.select("gpt-5", RequestFacts::default(), &mut rng)) {
        Err(Error::UnknownModel { available, .. }) => assert!(available.contains(&"gpt".into())),
        other => panic!("expected UnknownModel, got {other:?}"),
    }
}

#[test]
fn counted_failures_cool_down_after_allowed_fails_then_recover() {
    let mut cfg = two_deployments(RoutingStrategyName::SimpleShuffle);
    cfg.router_settings.allowed_fails = 2;
    cfg.router_settings.cooldown_time = Duration::from_secs(30);
    let (clock, r) = router(cfg);
    let a = r.deployments().find(|d| d.id == "a").unwrap().clone();
    assert!(!block_on(r.record_failure(&a, FailureClass::Counted)));
    assert!(!block_on(r.record_failure(&a, FailureClass::Counted)));
    assert!(block_on(r.record_failure(&a, FailureClass::Counted)));
    let mut rng = fastrand::Rng::with_seed(1);
    for _ in 0..20 {
        let s = block_on(r.select("gpt", RequestFacts::default(), &mut rng)).unwrap();
        assert_eq!(ids(&s), vec!["b"]);
    }
    clock.advance(Duration::from_secs(31));
    let s = block_on(r.select("gpt", RequestFacts::default(), &mut rng)).unwrap();
    assert_eq!(s.candidates.len(), 2);
}

#[test]
fn immediate_and_ignored_failures() {
    let (_, r) = router(two_deployments(RoutingStrategyName::SimpleShuffle));
    let a = r.deployments().find(|d| d.id == "a").unwrap().clone();
    let b = r.deployments().find(|d| d.id == "b").unwrap().clone();
    assert!(!block_on(r.record_failure(&a, FailureClass::Ignored)));
    assert!(block_on(r.record_failure(&a, FailureClass::Immediate)));
    assert!(block_on(r.record_failure(&b, FailureClass::Immediate)));
    let mut rng = fastrand::Rng::with_seed(1);
    match block_on(r.select("gpt", RequestFacts::default(), &mut rng)) {
        Err(Error::NoDeploymentAvailable { retry_after_ms, .. }) => {
            let ms = retry_after_ms.unwrap();
            assert!(ms > 0 && ms <= 5_000, "{ms}");
        }
        other => panic!("expected NoDeploymentAvailable, got {other:?}"),
    }
}

#[test]
fn single_deployment_groups_and_disabled_cooldowns_never_cool() {
    let (_, r) = router(two_deployments(RoutingStrategyName::SimpleShuffle));
    let c = r.deployments().find(|d| d.id == "c").unwrap().clone();
    assert!(!block_on(r.record_failure(&c, FailureClass::Immediate)));

    let mut cfg = two_deployments(RoutingStrategyName::SimpleShuffle);
    cfg.router_settings.disable_cooldowns = true;
    let (_, r) = router(cfg);
    let a = r.deployments().find(|d| d.id == "a").unwrap().clone();
    assert!(!block_on(r.record_failure(&a, FailureClass::Immediate)));
}

#[test]
fn unsupported_providers_are_skipped() {
    let mut cfg = two_deployments(RoutingStrategyName::SimpleShuffle);
    cfg.model_list.push(dep("gpt", "v", "cohere/command-r"));
    cfg.model_list.push(dep("gemini", "g", "cohere/command-r"));
    let (_, r) = router(cfg);
    let mut rng = fastrand::Rng::with_seed(1);
    let s = block_on(r.select("gpt", RequestFacts::default(), &mut rng)).unwrap();
    assert!(!ids(&s).contains(&"v"));
    match block_on(r.select("gemini", RequestFacts::default(), &mut rng)) {
        Err(Error::NoUsableDeployment { group, reasons }) => {
            assert_eq!(group, "gemini");
            assert_eq!(
                reasons,
                ["g: provider 'cohere' is not supported by RouteIQ yet"]
            );
        }
        other => panic!("expected NoUsableDeployment, got {other:?}"),
    }
}

#[test]
fn deployments_with_unset_variables_are_skipped_with_the_reason() {
    let mut cfg = two_deployments(RoutingStrategyName::SimpleShuffle);
    let mut d = dep("azure-eu", "eu", "azure/gpt-4o");
    d.litellm_params.unresolved_env = vec![crate::config::UnresolvedEnv {
        key: "api_key".into(),
        var: "AZURE_EU_KEY".into(),
    }];
    cfg.model_list.push(d);
    let (_, r) = router(cfg);
    let mut rng = fastrand::Rng::with_seed(1);
    let e = block_on(r.select("azure-eu", RequestFacts::default(), &mut rng)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "model group 'azure-eu' has no deployment RouteIQ can call: eu: api_key \
         (os.environ/AZURE_EU_KEY) not set when the config was loaded"
    );
}

#[test]
fn lower_order_deployments_come_first() {
    let mut cfg = two_deployments(RoutingStrategyName::SimpleShuffle);
    for (i, d) in cfg.model_list.iter_mut().enumerate() {
        // b (order 1) before a (order 2), whatever the shuffle says.
        d.litellm_params.order = Some(if i == 0 { 2 } else { 1 });
    }
    cfg.model_list.push(dep("gpt", "d", "openai/gpt-4o"));
    let (_, r) = router(cfg);
    for seed in 0..20 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let s = block_on(r.select("gpt", RequestFacts::default(), &mut rng)).unwrap();
        assert_eq!(ids(&s), ["b", "a", "d"], "seed {seed}");
    }
}

#[test]
fn fallback_lists() {
    let mut cfg = two_deployments(RoutingStrategyName::SimpleShuffle);
    cfg.model_list.push(dep("big", "d", "openai/gpt-4o"));
    cfg.model_list.push(dep("other", "e", "openai/gpt-4o"));
    let s = &mut cfg.router_settings;
    s.fallbacks = vec![FallbackRule {
        from: "gpt".into(),
        to: vec!["claude".into(), "other".into()],
    }];
    s.context_window_fallbacks = vec![FallbackRule {
        from: "gpt".into(),
        to: vec!["big".into()],
    }];
    s.default_fallbacks = vec!["other".into()];
    s.max_fallbacks = 1;
    let (_, r) = router(cfg);
    assert_eq!(
        r.fallback_groups("gpt", FallbackKind::General),
        vec!["claude"]
    );
    assert_eq!(
        r.fallback_groups("gpt", FallbackKind::ContextWindow),
        vec!["big"]
    );
    // No content-policy list: the general one applies.
    assert_eq!(
        r.fallback_groups("gpt", FallbackKind::ContentPolicy),
        vec!["claude"]
    );
    // No rule for `big`: default_fallbacks.
    assert_eq!(
        r.fallback_groups("big", FallbackKind::General),
        vec!["other"]
    );
    // A group never falls back to itself.
    assert!(r.fallback_groups("other", FallbackKind::General).is_empty());
}

#[test]
fn least_busy_tracks_in_flight() {
    let (_, r) = router(two_deployments(RoutingStrategyName::LeastBusy));
    let a = r.deployments().find(|d| d.id == "a").unwrap().clone();
    block_on(r.record_start(&a));
    block_on(r.record_start(&a));
    let mut rng = fastrand::Rng::with_seed(1);
    for _ in 0..10 {
        let s = block_on(r.select("gpt", RequestFacts::default(), &mut rng)).unwrap();
        assert_eq!(ids(&s), vec!["b", "a"]);
    }
    block_on(r.record_end(&a, None));
    block_on(r.record_end(&a, None));
    let b = r.deployments().find(|d| d.id == "b").unwrap().clone();
    block_on(r.record_start(&b));
    let s = block_on(r.select("gpt", RequestFacts::default(), &mut rng)).unwrap();
    assert_eq!(ids(&s), vec!["a", "b"]);
}

#[test]
fn an_abandoned_call_gives_its_in_flight_count_back() {
    let (_, r) = router(two_deployments(RoutingStrategyName::LeastBusy));
    let a = r.deployments().find(|d| d.id == "a").unwrap().clone();
    let mut rng = fastrand::Rng::with_seed(1);
    block_on(r.record_start(&a));
    let s = block_on(r.select("gpt", RequestFacts::default(), &mut rng)).unwrap();
    assert_eq!(ids(&s), vec!["b", "a"]);
    // The call is abandoned (its client went away): `record_end` never runs, the release does.
    let release = r
        .release_in_flight(&a)
        .expect("least-busy counts in-flight calls");
    block_on(release);
    let b = r.deployments().find(|d| d.id == "b").unwrap().clone();
    block_on(r.record_start(&b));
    let s = block_on(r.select("gpt", RequestFacts::default(), &mut rng)).unwrap();
    assert_eq!(ids(&s), vec!["a", "b"]);
    // Strategies that keep no in-flight counts have nothing to give back.
    let (_, shuffle) = router(two_deployments(RoutingStrategyName::SimpleShuffle));
    let a = shuffle.deployments().find(|d| d.id == "a").unwrap().clone();
    assert!(shuffle.release_in_flight(&a).is_none());
}

#[test]
fn an_upstream_retry_after_cools_even_the_only_deployment_for_that_long() {
    let (clock, r) = router(two_deployments(RoutingStrategyName::SimpleShuffle));
    let c = r.deployments().find(|d| d.id == "c").unwrap().clone();
    let mut rng = fastrand::Rng::with_seed(1);
    // Without the upstream's word, the only deployment of a group never cools down.
    assert!(!block_on(r.record_failure(&c, FailureClass::Immediate)));
    assert!(block_on(r.select("claude", RequestFacts::default(), &mut rng)).is_ok());
    // With a Retry-After it does, for exactly that long.
    let wait = Duration::from_secs(40);
    assert!(block_on(r.record_failure_with(
        &c,
        FailureClass::Immediate,
        Some(wait)
    )));
    match block_on(r.select("claude", RequestFacts::default(), &mut rng)) {
        Err(Error::NoDeploymentAvailable { retry_after_ms, .. }) => {
            assert_eq!(retry_after_ms, Some(40_000));
        }
        other => panic!("expected no deployment available, got {other:?}"),
    }
    clock.advance(Duration::from_secs(41));
    assert!(block_on(r.select("claude", RequestFacts::default(), &mut rng)).is_ok());
    // A hostile Retry-After is capped.
    assert!(block_on(r.record_failure_with(
        &c,
        FailureClass::Immediate,
        Some(Duration::from_secs(1_000_000))
    )));
    clock.advance(MAX_RETRY_AFTER_COOLDOWN + Duration::from_secs(1));
    assert!(block_on(r.select("claude", RequestFacts::default(), &mut rng)).is_ok());
}

#[test]
fn latency_based_prefers_measured_fast_deployment() {
    let (_, r) = router(two_deployments(RoutingStrategyName::LatencyBased));
    let a = r.deployments().find(|d| d.id == "a").unwrap().clone();
    let b = r.deployments().find(|d| d.id == "b").unwrap().clone();
    for ms in [400, 500, 450] {
        let o = CallOutcome {
            latency: Duration::from_millis(ms),
            ..CallOutcome::default()
        };
        block_on(r.record_end(&a, Some(o)));
    }
    let fast = CallOutcome {
        latency: Duration::from_millis(50),
        ..CallOutcome::default()
    };
    block_on(r.record_end(&b, Some(fast)));
    let mut rng = fastrand::Rng::with_seed(1);
    for _ in 0..10 {
        let s = block_on(r.select("gpt", RequestFacts::default(), &mut rng)).unwrap();
        assert_eq!(ids(&s), vec!["b", "a"]);
    }
}

#[test]
fn usage_based_enforces_rpm_per_minute() {
    let mut cfg = two_deployments(RoutingStrategyName::UsageBasedV2);
    for d in cfg.model_list.iter_mut().filter(|d| d.model_name == "gpt") {
        d.litellm_params.rpm = Some(2);
    }
    let (clock, r) = router(cfg);
    let mut rng = fastrand::Rng::with_seed(1);
    for _ in 0..4 {
        let s = block_on(r.select("gpt", RequestFacts::default(), &mut rng)).unwrap();
        block_on(r.record_start(&s.candidates[0]));
    }
    match block_on(r.select("gpt", RequestFacts::default(), &mut rng)) {
        Err(Error::NoDeploymentAvailable { retry_after_ms, .. }) => {
            assert!(retry_after_ms.unwrap() <= MINUTE_MS)
        }
        other => panic!("expected rate limit, got {other:?}"),
    }
    clock.advance(Duration::from_secs(60));
    assert!(block_on(r.select("gpt", RequestFacts::default(), &mut rng)).is_ok());
}

#[test]
fn open_circuits_are_skipped_and_all_open_is_circuit_open() {
    let (clock, r) = router(two_deployments(RoutingStrategyName::SimpleShuffle));
    let r = r.with_circuit_breakers(CircuitBreakerSettings {
        failure_threshold: 2,
        success_threshold: 1,
        open_timeout: Duration::from_secs(10),
        window: Duration::from_secs(60),
    });
    let a = r.deployments().find(|d| d.id == "a").unwrap().clone();
    let b = r.deployments().find(|d| d.id == "b").unwrap().clone();
    // Request-side failures never count.
    for _ in 0..5 {
        block_on(r.record_failure(&a, FailureClass::Ignored));
    }
    let mut rng = fastrand::Rng::with_seed(3);
    let s = block_on(r.select("gpt", RequestFacts::default(), &mut rng)).unwrap();
    assert_eq!(s.candidates.len(), 2);
    // `disable_cooldowns` is off, so use a counted failure below `allowed_fails` for `a`.
    block_on(r.record_failure(&a, FailureClass::Counted));
    block_on(r.record_failure(&a, FailureClass::Counted));
    for _ in 0..10 {
        let s = block_on(r.select("gpt", RequestFacts::default(), &mut rng)).unwrap();
        assert_eq!(ids(&s), vec!["b"]);
    }
    block_on(r.record_failure(&b, FailureClass::Counted));
    block_on(r.record_failure(&b, FailureClass::Counted));
    match block_on(r.select("gpt", RequestFacts::default(), &mut rng)) {
        Err(Error::CircuitOpen {
            retry_after_ms,
            deployments,
            ..
        }) => {
            assert_eq!(deployments, 2);
            assert_eq!(retry_after_ms, Some(10_000));
        }
        other => panic!("expected CircuitOpen, got {other:?}"),
    }
    let states: Vec<_> = block_on(r.circuit_states())
        .into_iter()
        .map(|(d, s)| (d.id.clone(), s))
        .collect();
    assert!(states.contains(&("a".to_string(), CircuitState::Open)));
    assert!(states.contains(&("c".to_string(), CircuitState::Closed)));
    // After the timeout, trials go through; a success closes (success_threshold 1).
    clock.advance(Duration::from_secs(10));
    let s = block_on(r.select("gpt", RequestFacts::default(), &mut rng)).unwrap();
    assert_eq!(s.candidates.len(), 2);
    block_on(r.record_end(&a, Some(CallOutcome::default())));
    assert_eq!(
        block_on(r.circuits().states(&["a", "b"])),
        vec![CircuitState::Closed, CircuitState::HalfOpen]
    );
}

fn conversation(key: &str) -> RequestFacts {
    RequestFacts {
        conversation: Some(Arc::from(key)),
        ..RequestFacts::default()
    }
}

fn affinity_router(ttl: Duration) -> (Arc<ManualClock>, Router) {
    let mut cfg = two_deployments(RoutingStrategyName::SimpleShuffle);
    cfg.model_list.push(dep("gpt", "d", "openai/gpt-4o-mini"));
    cfg.router_settings.deployment_affinity_ttl = Some(ttl);
    cfg.router_settings.cooldown_time = Duration::from_secs(30);
    router(cfg)
}

/// Routes one request of `conv` to `gpt` and commits like the gateway does after an answer
/// from the first candidate; returns (order, outcome).
fn routed(r: &Router, conv: &str, seed: u64) -> (Vec<String>, AffinityOutcome) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let s = block_on(r.select("gpt", conversation(conv), &mut rng)).unwrap();
    let order: Vec<String> = s.candidates.iter().map(|d| d.id.clone()).collect();
    let pin = s.affinity.expect("affinity is on");
    let outcome = block_on(r.commit_affinity(&pin, &order[0]));
    (order, outcome)
}

#[test]
fn affinity_keeps_a_conversation_on_its_deployment_and_keeps_the_fallback_order() {
    let (_, r) = affinity_router(Duration::from_secs(600));
    let (first, outcome) = routed(&r, "conv-1", 1);
    assert_eq!(outcome, AffinityOutcome::Set);
    for seed in 2..40 {
        let (order, outcome) = routed(&r, "conv-1", seed);
        assert_eq!(order[0], first[0], "seed {seed}");
        assert_eq!(outcome, AffinityOutcome::Hit);
        // Every other deployment still follows, as fallbacks.
        assert_eq!(order.len(), 3);
    }
    // Without affinity the shuffle spreads first choices.
    let mut firsts = std::collections::BTreeSet::new();
    let mut rng = fastrand::Rng::with_seed(3);
    for _ in 0..40 {
        let s = block_on(r.select("gpt", RequestFacts::default(), &mut rng)).unwrap();
        assert!(s.affinity.is_none());
        firsts.insert(s.candidates[0].id.clone());
    }
    assert!(firsts.len() > 1);
}

#[test]
fn affinity_yields_to_cooldowns_and_rewrites_the_pin_then_expires() {
    let (clock, r) = affinity_router(Duration::from_secs(600));
    let (first, _) = routed(&r, "conv-2", 1);
    let pinned = r.deployments().find(|d| d.id == first[0]).unwrap().clone();
    assert!(block_on(r.record_failure(&pinned, FailureClass::Immediate)));
    // Cooling down: normal routing, and the pin moves to the deployment that answered.
    let (order, outcome) = routed(&r, "conv-2", 2);
    assert_ne!(order[0], first[0]);
    assert!(!order.contains(&first[0]));
    assert_eq!(outcome, AffinityOutcome::Miss);
    let moved = order[0].clone();
    clock.advance(Duration::from_secs(31));
    // The old deployment is back, but the conversation stays on the new one.
    for seed in 3..20 {
        assert_eq!(routed(&r, "conv-2", seed).0[0], moved);
    }
    // After the TTL without requests the pin is gone.
    clock.advance(Duration::from_secs(601));
    assert_eq!(routed(&r, "conv-2", 4).1, AffinityOutcome::Set);
}

#[test]
fn affinity_slides_its_expiry_while_the_conversation_is_active() {
    let (clock, r) = affinity_router(Duration::from_secs(100));
    let (first, _) = routed(&r, "conv-3", 1);
    for seed in 0..10 {
        // 10 × 40 s = 400 s, four TTLs, but never 100 s idle.
        clock.advance(Duration::from_secs(40));
        let (order, outcome) = routed(&r, "conv-3", seed);
        assert_eq!(
            (order[0].as_str(), outcome),
            (first[0].as_str(), AffinityOutcome::Hit)
        );
    }
}

#[test]
fn explicit_deployments_are_served_alone_and_never_overridden_by_affinity() {
    let (_, r) = affinity_router(Duration::from_secs(600));
    let (first, _) = routed(&r, "conv-4", 1);
    let other = ["a", "b", "d"]
        .into_iter()
        .find(|id| *id != first[0])
        .unwrap();
    let mut rng = fastrand::Rng::with_seed(5);
    let s = block_on(r.select(other, conversation("conv-4"), &mut rng)).unwrap();
    assert_eq!(s.model_group, "gpt");
    assert_eq!(ids(&s), vec![other]);
    assert!(s.affinity.is_none());
    assert_eq!(r.resolve_target(other), Some(("gpt", Some(other))));
    assert_eq!(r.resolve_target("gpt"), Some(("gpt", None)));
    assert_eq!(r.resolve_target("nope"), None);
}

fn hinted(mode: hint::EdgeHintMode, tier: &str, model: Option<&str>, conf: f32) -> RequestFacts {
    let mut raw = format!("v1;tier={tier};conf={conf:.2}");
    if let Some(m) = model {
        raw.push_str(&format!(";model={m}"));
    }
    RequestFacts {
        hint: Some(Arc::new(hint::HintUse {
            hint: crate::edge::EdgeHint::parse(&raw).unwrap(),
            mode,
            min_confidence: 0.6,
        })),
        ..RequestFacts::default()
    }
}

/// Three priced deployments in one group under cost-based routing (cheapest first).
fn priced() -> Router {
    let mut cfg = Config {
        model_list: vec![
            dep("g", "mini", "openai/gpt-4o-mini"),
            dep("g", "mid", "openai/gpt-4.1-mini"),
            dep("g", "big", "openai/gpt-4o"),
            dep("other", "elsewhere", "openai/gpt-4o"),
        ],
        ..Config::default()
    };
    let prices = [(0.15, 0.6), (0.4, 1.6), (2.5, 10.0), (2.5, 10.0)];
    for (d, (i, o)) in cfg.model_list.iter_mut().zip(prices) {
        d.model_info.input_cost_per_token = Some(i / 1e6);
        d.model_info.output_cost_per_token = Some(o / 1e6);
    }
    cfg.router_settings.routing_strategy = RoutingStrategyName::CostBased;
    router(cfg).1
}

#[test]
fn trusted_hints_decide_within_the_group() {
    use hint::{EdgeHintMode::*, HintOutcome};
    let r = priced();
    let mut rng = fastrand::Rng::with_seed(3);
    let plain = block_on(r.select("g", RequestFacts::default(), &mut rng)).unwrap();
    assert_eq!(ids(&plain), ["mini", "mid", "big"]);
    assert_eq!(plain.hint, None);

    // A suggested deployment goes first; the strategy's order follows.
    let s = block_on(r.select("g", hinted(Trust, "simple", Some("big"), 0.3), &mut rng)).unwrap();
    assert_eq!(ids(&s), ["big", "mini", "mid"]);
    assert_eq!(s.hint, Some(HintOutcome::Used));
    // An upstream model name works too.
    let s = block_on(r.select(
        "g",
        hinted(Trust, "simple", Some("gpt-4.1-mini"), 0.3),
        &mut rng,
    ))
    .unwrap();
    assert_eq!(ids(&s)[0], "mid");
    // A deployment of another group is not reachable: the tier decides instead.
    let s = block_on(r.select(
        "g",
        hinted(Trust, "reasoning", Some("elsewhere"), 0.3),
        &mut rng,
    ))
    .unwrap();
    assert_eq!(ids(&s)[0], "big");
    assert_eq!(ids(&s).len(), 3);
    let s = block_on(r.select("g", hinted(Trust, "simple", None, 0.3), &mut rng)).unwrap();
    assert_eq!(ids(&s)[0], "mini");

    // Advisory: strategies without features keep their order.
    let s = block_on(r.select(
        "g",
        hinted(Advisory, "reasoning", Some("big"), 0.99),
        &mut rng,
    ))
    .unwrap();
    assert_eq!(ids(&s), ["mini", "mid", "big"]);
    assert_eq!(s.hint, Some(HintOutcome::Advisory));
}

#[test]
fn a_trusted_hint_prefers_the_equivalent_deployment_in_its_region() {
    use hint::EdgeHintMode::Trust;
    let mut cfg = Config {
        model_list: vec![
            dep("g", "us", "openai/gpt-4o"),
            dep("g", "eu", "openai/gpt-4o"),
            dep("g", "mini-eu", "openai/gpt-4o-mini"),
        ],
        ..Config::default()
    };
    cfg.model_list[0].litellm_params.region_name = Some("us-east-1".into());
    cfg.model_list[1].litellm_params.region_name = Some("eu-west-1".into());
    cfg.model_list[2].litellm_params.region_name = Some("eu-west-1".into());
    cfg.router_settings.routing_strategy = RoutingStrategyName::SimpleShuffle;
    let (_, r) = router(cfg);
    let with_region = |region: &str| {
        let mut facts = hinted(Trust, "complex", Some("gpt-4o"), 0.9);
        if let Some(h) = facts.hint.as_mut() {
            Arc::make_mut(h).hint.region = Some(region.into());
        }
        facts
    };
    for seed in 0..20 {
        let mut rng = fastrand::Rng::with_seed(seed);
        // The named model, served from the hinted region; never the other model.
        let s = block_on(r.select("g", with_region("eu-west-1"), &mut rng)).unwrap();
        assert_eq!(ids(&s)[0], "eu");
        let s = block_on(r.select("g", with_region("us-east-1"), &mut rng)).unwrap();
        assert_eq!(ids(&s)[0], "us");
        // A region no deployment is in changes nothing about the model.
        let s = block_on(r.select("g", with_region("ap-south-1"), &mut rng)).unwrap();
        assert!(["us", "eu"].contains(&ids(&s)[0]));
    }
}
