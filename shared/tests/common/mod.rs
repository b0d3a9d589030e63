//! What the shared-state backends' tests (`dynamodb_state.rs`, `redis_state.rs`) check the
//! same way: two routers on one backend see each other's cooldowns.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;
use std::time::Duration;

use routeiq::config::{Config, DeploymentConfig, LitellmParams, ModelInfo};
use routeiq::router::{FailureClass, RequestFacts, Router};
use routeiq::state::{Clock, StateStore, SystemClock};

fn deployment(id: &str) -> DeploymentConfig {
    DeploymentConfig {
        model_name: "pool".into(),
        litellm_params: LitellmParams {
            model: format!("openai/{id}"),
            ..LitellmParams::default()
        },
        model_info: ModelInfo {
            id: Some(id.into()),
            ..ModelInfo::default()
        },
    }
}

/// Two router instances, each on its own client (`one`, `two`) of one backend: a cooldown one
/// records takes the deployment out of two's selections.
pub async fn cooldowns_are_shared(one: Arc<dyn StateStore>, two: Arc<dyn StateStore>) {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut config = Config {
        model_list: vec![deployment("x"), deployment("y")],
        ..Config::default()
    };
    config.router_settings.cooldown_time = Duration::from_secs(60);
    let one = Router::new(&config, one, clock.clone());
    let two = Router::new(&config, two, clock);
    let x = one.deployments().find(|d| d.id == "x").unwrap().clone();
    assert!(one.record_failure(&x, FailureClass::Immediate).await);
    let mut rng = fastrand::Rng::with_seed(1);
    for _ in 0..5 {
        let s = two
            .select("pool", RequestFacts::default(), &mut rng)
            .await
            .unwrap();
        let ids: Vec<&str> = s.candidates.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(
            ids,
            vec!["y"],
            "instance two must see instance one's cooldown"
        );
    }
}
