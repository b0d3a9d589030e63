//! What the shared-state backends' tests (`dynamodb_state.rs`, `redis_state.rs`) check the
//! same way: concurrent writers on two clients lose no increment, and two routers on one
//! backend see each other's cooldowns.

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

/// 16 tasks on two clients (`a`, `b`) of one backend add 25 each to one counter: both read 400.
pub async fn concurrent_writers_lose_nothing(a: Arc<dyn StateStore>, b: Arc<dyn StateStore>) {
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                s.incr("hits", 1, Duration::from_secs(300)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let hits = ["hits".to_string()];
    assert_eq!(a.get_counters(&hits).await.unwrap(), vec![400]);
    assert_eq!(b.get_counters(&hits).await.unwrap(), vec![400]);
}
