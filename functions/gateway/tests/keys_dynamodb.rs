//! `DynamoDbKeyStore` against a real DynamoDB API (moto's server, started by `tests/run.sh`,
//! reached through `AWS_ENDPOINT_URL_DYNAMODB`), with the real AWS SDK: records, alias
//! uniqueness across instances, spend that updates never overwrite, exact concurrent charges,
//! a budget period restarted once, and the spend log against `MemoryKeyStore` as the oracle.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Timelike, Utc};
use routeiq_gateway::keys::dynamodb::DynamoDbKeyStore;
use routeiq_gateway::keys::memory::MemoryKeyStore;
use routeiq_gateway::keys::model::{
    Charge, ChargeSequence, Entity, KeyRecord, SpendLog, TeamRecord, UserRecord,
};
use routeiq_gateway::keys::store::{KeyQuery, SpendLogQuery};
use routeiq_gateway::keys::{KeyStore, KeyStoreError};

const TABLE: &str = "routeiq-keys-test";

fn require_emulator() {
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL_DYNAMODB").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL").is_some(),
        "no DynamoDB endpoint: run the tests with `bash tests/run.sh`, which starts the emulator \
         and sets AWS_ENDPOINT_URL_DYNAMODB"
    );
}

/// A store on the shared test table under a prefix of its own (tests do not see each
/// other's records); two stores on one prefix are two instances.
async fn store(prefix: &str) -> DynamoDbKeyStore {
    require_emulator();
    let s = DynamoDbKeyStore::from_env(TABLE, format!("{prefix}#")).await;
    s.create_table_if_missing().await.expect("create table");
    s
}

fn unique(name: &str) -> String {
    format!(
        "{name}-{}-{}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap()
    )
}

fn key(token: &str, alias: Option<&str>) -> KeyRecord {
    KeyRecord {
        token: token.into(),
        key_alias: alias.map(str::to_string),
        ..KeyRecord::default()
    }
}

/// A raw client on the emulator (to look at items as stored).
async fn raw_client() -> aws_sdk_dynamodb::Client {
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(routeiq_gateway::s3::aws_http_client())
        .load()
        .await;
    aws_sdk_dynamodb::Client::new(&shared)
}

#[tokio::test]
async fn keys_crud_aliases_and_listing() {
    let s = store(&unique("keys")).await;
    let mut a = key("a", Some("app"));
    a.models = vec!["gpt-4o".into()];
    a.metadata.insert("owner".into(), serde_json::json!("ops"));
    a.limits.max_budget = Some(10.0);
    a.limits.spend = 0.5;
    a.limits.budget_duration = Some("1d".into());
    a.limits.budget_reset_at = Some(Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap());
    s.insert_key(&a).await.unwrap();
    assert_eq!(s.get_key("a").await.unwrap(), Some(a.clone()));
    assert_eq!(s.get_key("missing").await.unwrap(), None);
    assert_eq!(s.key_by_alias("app").await.unwrap(), Some(a.clone()));
    assert_eq!(s.key_by_alias("nope").await.unwrap(), None);

    let conflict = |r: Result<(), KeyStoreError>| matches!(r, Err(KeyStoreError::Conflict(_)));
    assert!(conflict(s.insert_key(&key("a", None)).await));
    assert!(conflict(s.insert_key(&key("b", Some("app"))).await));
    // The refused insert left nothing behind.
    assert_eq!(s.get_key("b").await.unwrap(), None);
    s.insert_key(&key("b", Some("other"))).await.unwrap();

    // Renaming frees the old alias and takes the new one; another key's alias is refused.
    assert!(conflict(s.update_key(&key("b", Some("app"))).await));
    let mut renamed = a.clone();
    renamed.key_alias = Some("app2".into());
    s.update_key(&renamed).await.unwrap();
    assert_eq!(s.key_by_alias("app").await.unwrap(), None);
    assert_eq!(s.key_by_alias("app2").await.unwrap().unwrap().token, "a");
    s.update_key(&key("b", Some("app"))).await.unwrap();
    assert_eq!(s.key_by_alias("app").await.unwrap().unwrap().token, "b");
    assert_eq!(s.key_by_alias("other").await.unwrap(), None);
    // Dropping an alias frees it.
    s.update_key(&key("b", None)).await.unwrap();
    assert_eq!(s.key_by_alias("app").await.unwrap(), None);
    assert!(matches!(
        s.update_key(&key("zz", None)).await,
        Err(KeyStoreError::NotFound(_))
    ));

    assert!(s.delete_key("a").await.unwrap());
    assert!(!s.delete_key("a").await.unwrap());
    assert_eq!(s.get_key("a").await.unwrap(), None);
    assert_eq!(s.key_by_alias("app2").await.unwrap(), None);
    // Its alias is free again.
    s.insert_key(&key("c", Some("app2"))).await.unwrap();
}

#[tokio::test]
async fn listing_keys_filters_pages_and_counts() {
    let s = store(&unique("list")).await;
    let oracle = MemoryKeyStore::new();
    for i in 0..7 {
        let mut k = key(
            &format!("k{i}"),
            (i % 3 == 0).then(|| format!("alias{i}")).as_deref(),
        );
        k.team_id = Some(if i % 2 == 0 { "even" } else { "odd" }.into());
        k.user_id = (i < 4).then(|| "u1".to_string());
        k.created_at = (i != 5).then(|| Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, i).unwrap());
        s.insert_key(&k).await.unwrap();
        oracle.insert_key(&k).await.unwrap();
    }
    s.add_spend(
        &Charge::each(&[(Entity::Key("k2".into()), 1.5)]),
        Utc::now(),
    )
    .await
    .unwrap();
    oracle
        .add_spend(
            &Charge::each(&[(Entity::Key("k2".into()), 1.5)]),
            Utc::now(),
        )
        .await
        .unwrap();
    let queries = [
        KeyQuery {
            page: 1,
            size: 100,
            ..KeyQuery::default()
        },
        KeyQuery {
            page: 1,
            size: 2,
            ..KeyQuery::default()
        },
        KeyQuery {
            page: 4,
            size: 2,
            ..KeyQuery::default()
        },
        KeyQuery {
            page: 9,
            size: 2,
            ..KeyQuery::default()
        },
        KeyQuery {
            team_id: Some("even".into()),
            page: 1,
            size: 2,
            ..KeyQuery::default()
        },
        KeyQuery {
            team_id: Some("even".into()),
            page: 2,
            size: 2,
            ..KeyQuery::default()
        },
        KeyQuery {
            user_id: Some("u1".into()),
            page: 1,
            size: 10,
            ..KeyQuery::default()
        },
        KeyQuery {
            key_alias: Some("alias3".into()),
            page: 1,
            size: 10,
            ..KeyQuery::default()
        },
        KeyQuery {
            team_id: Some("odd".into()),
            user_id: Some("u1".into()),
            page: 1,
            size: 10,
            ..KeyQuery::default()
        },
        KeyQuery {
            team_id: Some("none".into()),
            page: 1,
            size: 10,
            ..KeyQuery::default()
        },
    ];
    for q in &queries {
        assert_eq!(
            s.list_keys(q).await.unwrap(),
            oracle.list_keys(q).await.unwrap(),
            "{q:?}"
        );
    }
    let all = s.list_keys(&queries[0]).await.unwrap();
    assert_eq!(all.total, 7);
    assert_eq!(
        all.items
            .iter()
            .find(|k| k.token == "k2")
            .unwrap()
            .limits
            .spend,
        1.5
    );
    // A deleted key leaves the listing.
    s.delete_key("k6").await.unwrap();
    assert_eq!(s.list_keys(&queries[0]).await.unwrap().total, 6);
}

#[tokio::test]
async fn teams_and_users() {
    let s = store(&unique("teams")).await;
    let mut t = TeamRecord {
        team_id: "t1".into(),
        team_alias: Some("Team One".into()),
        members: vec!["u1".into()],
        ..TeamRecord::default()
    };
    t.limits.max_budget = Some(100.0);
    s.insert_team(&t).await.unwrap();
    s.insert_team(&TeamRecord {
        team_id: "t0".into(),
        ..TeamRecord::default()
    })
    .await
    .unwrap();
    assert!(matches!(
        s.insert_team(&t).await,
        Err(KeyStoreError::Conflict(_))
    ));
    assert_eq!(s.get_team("t1").await.unwrap(), Some(t.clone()));
    assert_eq!(s.get_team("nope").await.unwrap(), None);
    let ids: Vec<String> = s
        .list_teams()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.team_id)
        .collect();
    assert_eq!(ids, ["t0", "t1"]);
    let mut t2 = t.clone();
    t2.team_alias = Some("Renamed".into());
    t2.blocked = true;
    s.update_team(&t2).await.unwrap();
    assert_eq!(s.get_team("t1").await.unwrap(), Some(t2));
    assert!(matches!(
        s.update_team(&TeamRecord {
            team_id: "nope".into(),
            ..TeamRecord::default()
        })
        .await,
        Err(KeyStoreError::NotFound(_))
    ));
    assert!(s.delete_team("t1").await.unwrap());
    assert!(!s.delete_team("t1").await.unwrap());
    let ids: Vec<String> = s
        .list_teams()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.team_id)
        .collect();
    assert_eq!(ids, ["t0"]);

    let u = UserRecord {
        user_id: "u1".into(),
        user_email: Some("u1@example.com".into()),
        teams: vec!["t0".into()],
        ..UserRecord::default()
    };
    s.insert_user(&u).await.unwrap();
    assert!(matches!(
        s.insert_user(&u).await,
        Err(KeyStoreError::Conflict(_))
    ));
    assert_eq!(s.get_user("u1").await.unwrap(), Some(u.clone()));
    let mut u2 = u.clone();
    u2.user_role = Some("internal_user".into());
    s.update_user(&u2).await.unwrap();
    assert_eq!(s.get_user("u1").await.unwrap(), Some(u2));
    assert!(matches!(
        s.update_user(&UserRecord {
            user_id: "nope".into(),
            ..UserRecord::default()
        })
        .await,
        Err(KeyStoreError::NotFound(_))
    ));
    assert!(s.delete_user("u1").await.unwrap());
    assert!(!s.delete_user("u1").await.unwrap());
    assert_eq!(s.get_user("u1").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_alias_two_concurrent_inserts_one_wins() {
    let prefix = unique("alias-race");
    let (s1, s2) = (
        Arc::new(store(&prefix).await),
        Arc::new(store(&prefix).await),
    );
    for round in 0..5 {
        let alias = format!("shared{round}");
        let (t1, t2) = (format!("x{round}"), format!("y{round}"));
        let (k1, k2) = (key(&t1, Some(&alias)), key(&t2, Some(&alias)));
        let (r1, r2) = tokio::join!(s1.insert_key(&k1), s2.insert_key(&k2));
        let won: Vec<&str> = [(&r1, t1.as_str()), (&r2, t2.as_str())]
            .iter()
            .filter(|(r, _)| r.is_ok())
            .map(|(_, t)| *t)
            .collect();
        assert_eq!(won.len(), 1, "round {round}: {r1:?} {r2:?}");
        let lost = if r1.is_ok() { &r2 } else { &r1 };
        assert!(matches!(lost, Err(KeyStoreError::Conflict(_))), "{lost:?}");
        assert_eq!(
            s1.key_by_alias(&alias).await.unwrap().unwrap().token,
            won[0]
        );
        let loser = if won[0] == t1 { &t2 } else { &t1 };
        assert_eq!(s1.get_key(loser).await.unwrap(), None);
    }
    // Two concurrent renames to one free alias: one wins.
    s1.insert_key(&key("p", None)).await.unwrap();
    s1.insert_key(&key("q", None)).await.unwrap();
    let (p, q) = (key("p", Some("prize")), key("q", Some("prize")));
    let (r1, r2) = tokio::join!(s1.update_key(&p), s2.update_key(&q));
    assert!(r1.is_ok() ^ r2.is_ok(), "{r1:?} {r2:?}");
    let winner = if r1.is_ok() { "p" } else { "q" };
    assert_eq!(
        s2.key_by_alias("prize").await.unwrap().unwrap().token,
        winner
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_never_overwrite_spend() {
    let s = Arc::new(store(&unique("clobber")).await);
    let now = Utc::now();
    let mut k = key("k", None);
    k.limits.spend = 2.0;
    s.insert_key(&k).await.unwrap();
    s.insert_team(&TeamRecord {
        team_id: "t".into(),
        ..TeamRecord::default()
    })
    .await
    .unwrap();
    s.insert_user(&UserRecord {
        user_id: "u".into(),
        ..UserRecord::default()
    })
    .await
    .unwrap();
    let charges = [
        (Entity::Key("k".into()), 0.5),
        (Entity::Team("t".into()), 0.5),
        (Entity::User("u".into()), 0.5),
    ];
    assert_eq!(
        s.add_spend(&Charge::each(&charges), now).await.unwrap(),
        vec![Some(2.5), Some(0.5), Some(0.5)]
    );
    // Stale copies with other spend: the updates keep the stored figure.
    let mut stale = k.clone();
    stale.limits.spend = 99.0;
    stale.key_alias = Some("renamed".into());
    s.update_key(&stale).await.unwrap();
    let mut team = TeamRecord {
        team_id: "t".into(),
        ..TeamRecord::default()
    };
    team.limits.spend = 99.0;
    s.update_team(&team).await.unwrap();
    let mut user = UserRecord {
        user_id: "u".into(),
        ..UserRecord::default()
    };
    user.limits.spend = 99.0;
    s.update_user(&user).await.unwrap();
    let got = s.get_key("k").await.unwrap().unwrap();
    assert_eq!(
        (got.limits.spend, got.key_alias.as_deref()),
        (2.5, Some("renamed"))
    );
    assert_eq!(s.get_team("t").await.unwrap().unwrap().limits.spend, 0.5);
    assert_eq!(s.get_user("u").await.unwrap().unwrap().limits.spend, 0.5);

    // Updates racing with charges lose none of them.
    let charger = {
        let s = s.clone();
        tokio::spawn(async move {
            for _ in 0..40 {
                s.add_spend(&Charge::each(&[(Entity::Key("k".into()), 0.25)]), now)
                    .await
                    .unwrap();
            }
        })
    };
    for i in 0..20 {
        let mut k = stale.clone();
        k.metadata.insert("i".into(), serde_json::json!(i));
        s.update_key(&k).await.unwrap();
    }
    charger.await.unwrap();
    assert_eq!(s.get_key("k").await.unwrap().unwrap().limits.spend, 12.5);

    // reset_spend sets both figures; on a missing entity it is NotFound.
    let at = Utc.with_ymd_and_hms(2030, 6, 1, 0, 0, 0).unwrap();
    s.reset_spend(&Entity::Key("k".into()), 0.0, Some(at))
        .await
        .unwrap();
    let got = s.get_key("k").await.unwrap().unwrap();
    assert_eq!(
        (got.limits.spend, got.limits.budget_reset_at),
        (0.0, Some(at))
    );
    s.reset_spend(&Entity::Team("t".into()), 3.0, None)
        .await
        .unwrap();
    assert_eq!(s.get_team("t").await.unwrap().unwrap().limits.spend, 3.0);
    assert!(matches!(
        s.reset_spend(&Entity::User("ghost".into()), 0.0, None)
            .await,
        Err(KeyStoreError::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_charges_sum_exactly() {
    let prefix = unique("charges");
    let (s1, s2) = (
        Arc::new(store(&prefix).await),
        Arc::new(store(&prefix).await),
    );
    s1.insert_key(&key("k", None)).await.unwrap();
    s1.insert_team(&TeamRecord {
        team_id: "t".into(),
        ..TeamRecord::default()
    })
    .await
    .unwrap();
    s1.insert_user(&UserRecord {
        user_id: "u".into(),
        ..UserRecord::default()
    })
    .await
    .unwrap();
    let charges = vec![
        (Entity::Key("k".into()), 0.25),
        (Entity::Team("t".into()), 0.25),
        (Entity::User("u".into()), 0.25),
        // Not there: skipped, and not created.
        (Entity::Team("ghost".into()), 0.25),
    ];
    let now = Utc::now();
    let task = |s: Arc<DynamoDbKeyStore>, charges: Vec<(Entity, f64)>| {
        tokio::spawn(async move {
            // One writer per instance, as a gateway's spend writer.
            let writer = ChargeSequence::new();
            let mut last = 0.0;
            for _ in 0..100 {
                let batch: Vec<Charge> = charges
                    .iter()
                    .map(|(e, a)| writer.next(e.clone(), *a))
                    .collect();
                let totals = s.add_spend(&batch, now).await.unwrap();
                assert_eq!(totals.len(), 4);
                assert_eq!(totals[3], None);
                let k = totals[0].unwrap();
                assert!(k > last, "totals grow: {k} after {last}");
                last = k;
            }
        })
    };
    let (a, b) = (task(s1.clone(), charges.clone()), task(s2.clone(), charges));
    a.await.unwrap();
    b.await.unwrap();
    assert_eq!(s2.get_key("k").await.unwrap().unwrap().limits.spend, 50.0);
    assert_eq!(s2.get_team("t").await.unwrap().unwrap().limits.spend, 50.0);
    assert_eq!(s2.get_user("u").await.unwrap().unwrap().limits.spend, 50.0);
    assert_eq!(s2.get_team("ghost").await.unwrap(), None);
    // Decimal arithmetic: 0.1 + 0.2 is 0.3.
    s1.reset_spend(&Entity::Key("k".into()), 0.1, None)
        .await
        .unwrap();
    let t = s1
        .add_spend(&Charge::each(&[(Entity::Key("k".into()), 0.2)]), now)
        .await
        .unwrap();
    assert_eq!(t, vec![Some(0.3)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_period_restarts_once_under_concurrent_charges() {
    let prefix = unique("period");
    let (s1, s2) = (
        Arc::new(store(&prefix).await),
        Arc::new(store(&prefix).await),
    );
    let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let mut k = key("k", None);
    k.limits.budget_duration = Some("1h".into());
    k.limits.budget_reset_at = Some(start + Duration::hours(1));
    k.limits.spend = 3.0;
    s1.insert_key(&k).await.unwrap();
    let mut t = TeamRecord {
        team_id: "t".into(),
        ..TeamRecord::default()
    };
    // A period without a duration restarts once and then never resets again.
    t.limits.budget_reset_at = Some(start + Duration::hours(1));
    t.limits.spend = 7.0;
    s1.insert_team(&t).await.unwrap();
    let later = start + Duration::minutes(90);
    let charges = vec![
        (Entity::Key("k".into()), 0.5),
        (Entity::Team("t".into()), 0.5),
    ];
    let task = |s: Arc<DynamoDbKeyStore>, charges: Vec<(Entity, f64)>| {
        tokio::spawn(async move {
            for _ in 0..20 {
                s.add_spend(&Charge::each(&charges), later).await.unwrap();
            }
        })
    };
    let (a, b) = (task(s1.clone(), charges.clone()), task(s2.clone(), charges));
    a.await.unwrap();
    b.await.unwrap();
    // Had the period restarted twice, charges would have been lost.
    let got = s1.get_key("k").await.unwrap().unwrap();
    assert_eq!(got.limits.spend, 20.0);
    assert_eq!(got.limits.budget_reset_at, Some(start + Duration::hours(2)));
    let got = s1.get_team("t").await.unwrap().unwrap();
    assert_eq!((got.limits.spend, got.limits.budget_reset_at), (20.0, None));
    // Past the new reset time the next charge starts another period.
    let t = s2
        .add_spend(
            &Charge::each(&[(Entity::Key("k".into()), 0.25)]),
            start + Duration::hours(2),
        )
        .await
        .unwrap();
    assert_eq!(t, vec![Some(0.25)]);
    assert_eq!(
        s2.get_key("k")
            .await
            .unwrap()
            .unwrap()
            .limits
            .budget_reset_at,
        Some(start + Duration::hours(3))
    );
}

fn row(id: &str, at: DateTime<Utc>, key: &str, user: Option<&str>, team: Option<&str>) -> SpendLog {
    SpendLog {
        request_id: id.into(),
        call_type: "acompletion".into(),
        api_key: key.into(),
        spend: 0.001,
        total_tokens: 30,
        prompt_tokens: 10,
        completion_tokens: 20,
        start_time: at,
        end_time: at + Duration::milliseconds(250),
        model: "gpt-4o-mini".into(),
        model_group: Some("gpt".into()),
        user: user.map(str::to_string),
        team_id: team.map(str::to_string),
        status: "success".into(),
        ..SpendLog::default()
    }
}

#[tokio::test]
async fn spend_logs_write_and_query() {
    let prefix = unique("logs");
    // A week's retention: queries without a start read 9 days, not 92.
    let s = store(&prefix).await.with_spend_log_ttl_days(7);
    let oracle = MemoryKeyStore::new();
    // Rows over the last three UTC days (and a few at one instant), several keys, users, teams.
    let now = Utc::now().with_nanosecond(123_456_789).unwrap();
    let mut rows = Vec::new();
    for i in 0..60i64 {
        let at = now - Duration::minutes(73 * i);
        rows.push(row(
            &format!("req-{i:03}"),
            at,
            ["ka", "kb", "kc"][i as usize % 3],
            [Some("u1"), Some("u2"), None][i as usize % 3 / 2 + i as usize % 2],
            [Some("t1"), None][i as usize % 2],
        ));
    }
    for id in ["tie-b", "tie-a", "tie-c"] {
        rows.push(row(
            id,
            now - Duration::minutes(5),
            "ka",
            Some("u1"),
            Some("t1"),
        ));
    }
    s.write_spend_logs(&rows).await.unwrap();
    oracle.write_spend_logs(&rows).await.unwrap();
    // Idempotent: written again (as a retried flush would), and one row rewritten with
    // another start time, nothing is duplicated.
    s.write_spend_logs(&rows[..10]).await.unwrap();
    let mut moved = rows[4].clone();
    moved.start_time = now - Duration::days(2) - Duration::minutes(1);
    moved.spend = 0.5;
    s.write_spend_logs(&[moved.clone()]).await.unwrap();
    oracle.write_spend_logs(&[moved.clone()]).await.unwrap();

    let all = SpendLogQuery::default();
    let got = s.spend_logs(&all).await.unwrap();
    assert_eq!(got.len(), 63);
    assert_eq!(got, oracle.spend_logs(&all).await.unwrap());
    let q = |f: &dyn Fn(&mut SpendLogQuery)| {
        let mut q = SpendLogQuery::default();
        f(&mut q);
        q
    };
    let queries = [
        q(&|q| q.api_key = Some("ka".into())),
        q(&|q| q.api_key = Some("nobody".into())),
        q(&|q| q.user_id = Some("u2".into())),
        q(&|q| q.team_id = Some("t1".into())),
        q(&|q| q.request_id = Some("req-007".into())),
        q(&|q| q.request_id = Some("req-004".into())),
        q(&|q| q.request_id = Some("missing".into())),
        q(&|q| {
            q.request_id = Some("req-007".into());
            q.api_key = Some("kc".into());
        }),
        q(&|q| {
            q.start = Some(now - Duration::hours(30));
            q.end = Some(now - Duration::hours(5));
        }),
        // Bounds at a row's exact start time: start inclusive, end exclusive.
        q(&|q| {
            q.start = Some(rows[10].start_time);
            q.end = Some(rows[2].start_time);
        }),
        q(&|q| q.start = Some(now - Duration::days(1))),
        q(&|q| q.end = Some(now - Duration::days(1))),
        q(&|q| q.limit = 5),
        q(&|q| q.limit = 2),
        q(&|q| {
            q.api_key = Some("kb".into());
            q.limit = 4;
        }),
        q(&|q| {
            q.team_id = Some("t1".into());
            q.user_id = Some("u1".into());
            q.start = Some(now - Duration::days(2));
            q.limit = 7;
        }),
        q(&|q| {
            q.start = Some(now);
            q.end = Some(now - Duration::hours(1));
        }),
    ];
    for q in &queries {
        let want = oracle.spend_logs(q).await.unwrap();
        assert_eq!(s.spend_logs(q).await.unwrap(), want, "{q:?}");
    }
    assert_eq!(
        s.spend_logs(&queries[5]).await.unwrap(),
        vec![moved.clone()],
        "the moved row is found by its request id"
    );

    // Rows and their pointers expire ROUTEIQ_SPEND_LOG_TTL_DAYS after their start time.
    let client = raw_client().await;
    let pointer = client
        .get_item()
        .table_name(TABLE)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("{prefix}#spendlog#req-001")),
        )
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("#".into()))
        .send()
        .await
        .unwrap()
        .item
        .expect("pointer item");
    let ttl: i64 = pointer["ttl"].as_n().unwrap().parse().unwrap();
    assert_eq!(ttl, (rows[1].start_time + Duration::days(7)).timestamp());
}

#[tokio::test]
async fn unreadable_items_and_a_table_without_sort_key_are_refused() {
    let prefix = unique("corrupt");
    let s = store(&prefix).await;
    let client = raw_client().await;
    use aws_sdk_dynamodb::types::AttributeValue as V;
    client
        .put_item()
        .table_name(TABLE)
        .item("pk", V::S(format!("{prefix}#key#bad")))
        .item("sk", V::S("#".into()))
        .item("doc", V::S("not json".into()))
        .send()
        .await
        .unwrap();
    client
        .put_item()
        .table_name(TABLE)
        .item("pk", V::S(format!("{prefix}#team#bad")))
        .item("sk", V::S("#".into()))
        .item("doc", V::S(r#"{"team_id":"bad"}"#.into()))
        .item("spend", V::S("lots".into()))
        .send()
        .await
        .unwrap();
    assert!(matches!(
        s.get_key("bad").await,
        Err(KeyStoreError::Corrupt(_))
    ));
    assert!(matches!(
        s.get_team("bad").await,
        Err(KeyStoreError::Corrupt(_))
    ));
}

#[tokio::test]
async fn a_store_that_does_not_answer_is_unavailable() {
    // A port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(routeiq_gateway::s3::aws_http_client())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_initial_backoff(std::time::Duration::from_millis(10)),
        )
        .load()
        .await;
    let config = aws_sdk_dynamodb::config::Builder::from(&shared)
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .build();
    let s = DynamoDbKeyStore::new(aws_sdk_dynamodb::Client::from_conf(config), TABLE, "x#");
    let unavailable = |r: Result<(), KeyStoreError>| match r {
        Err(KeyStoreError::Unavailable(m)) => assert!(m.contains("dynamodb"), "{m}"),
        other => panic!("expected Unavailable, got {other:?}"),
    };
    unavailable(s.get_key("k").await.map(|_| ()));
    unavailable(s.insert_key(&key("k", Some("a"))).await);
    unavailable(
        s.add_spend(&Charge::each(&[(Entity::Key("k".into()), 1.0)]), Utc::now())
            .await
            .map(|_| ()),
    );
    unavailable(s.list_keys(&KeyQuery::default()).await.map(|_| ()));
    unavailable(
        s.write_spend_logs(&[row("r", Utc::now(), "k", None, None)])
            .await,
    );
    unavailable(s.spend_logs(&SpendLogQuery::default()).await.map(|_| ()));
    unavailable(s.create_table_if_missing().await);
}

/// A charge sent again (a retry of a write whose answer was lost) is applied once, from
/// either instance, also when its period restarts.
#[tokio::test]
async fn a_charge_is_applied_once_however_often_it_is_sent() {
    let prefix = unique("once");
    let (a, b) = (store(&prefix).await, store(&prefix).await);
    a.insert_key(&key("k", None)).await.unwrap();
    let c = Charge::new(Entity::Key("k".into()), 0.75);
    let now = Utc::now();
    assert_eq!(
        a.add_spend(std::slice::from_ref(&c), now).await.unwrap(),
        vec![Some(0.75)]
    );
    assert_eq!(
        a.add_spend(std::slice::from_ref(&c), now).await.unwrap(),
        vec![Some(0.75)]
    );
    assert_eq!(
        b.add_spend(std::slice::from_ref(&c), now).await.unwrap(),
        vec![Some(0.75)]
    );
    // One writer's next charge is applied; its earlier ones, sent again, are not.
    let writer = ChargeSequence::new();
    let (d1, d2) = (
        writer.next(Entity::Key("k".into()), 0.25),
        writer.next(Entity::Key("k".into()), 0.125),
    );
    assert!(d2.seq > d1.seq);
    assert_eq!(
        a.add_spend(std::slice::from_ref(&d1), now).await.unwrap(),
        vec![Some(1.0)]
    );
    assert_eq!(b.add_spend(&[d2], now).await.unwrap(), vec![Some(1.125)]);
    assert_eq!(a.add_spend(&[d1], now).await.unwrap(), vec![Some(1.125)]);
    assert_eq!(a.get_key("k").await.unwrap().unwrap().limits.spend, 1.125);
    // A period that ended: the charge that restarts it is not applied again either.
    let mut k = a.get_key("k").await.unwrap().unwrap();
    k.limits.budget_duration = Some("1h".into());
    k.limits.budget_reset_at = Some(now - Duration::minutes(1));
    a.update_key(&k).await.unwrap();
    let e = Charge::new(Entity::Key("k".into()), 0.5);
    assert_eq!(
        a.add_spend(std::slice::from_ref(&e), now).await.unwrap(),
        vec![Some(0.5)]
    );
    assert_eq!(b.add_spend(&[e], now).await.unwrap(), vec![Some(0.5)]);
    let got = b.get_key("k").await.unwrap().unwrap();
    assert_eq!(got.limits.spend, 0.5);
    assert!(got.limits.budget_reset_at.unwrap() > now);
}

/// Charge marks older than the retention are removed by the next charge; the one a charge
/// writes stays.
#[tokio::test]
async fn old_charge_marks_are_forgotten() {
    type Item = std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;
    let prefix = unique("marks");
    let s = store(&prefix).await;
    s.insert_key(&key("k", None)).await.unwrap();
    let long_ago = Charge {
        seq: u64::try_from((Utc::now() - Duration::days(30)).timestamp_micros()).unwrap(),
        ..Charge::new(Entity::Key("k".into()), 1.0)
    };
    let recent = Charge::new(Entity::Key("k".into()), 1.0);
    let marks = |item: Item| {
        let mut m: Vec<String> = item
            .keys()
            .filter_map(|k| k.strip_prefix("chg_").map(str::to_string))
            .collect();
        m.sort();
        m
    };
    let get = || async {
        let pk = aws_sdk_dynamodb::types::AttributeValue::S(format!("{prefix}#key#k"));
        let sk = aws_sdk_dynamodb::types::AttributeValue::S("#".into());
        let out = raw_client()
            .await
            .get_item()
            .table_name(TABLE)
            .key("pk", pk)
            .key("sk", sk)
            .send()
            .await
            .unwrap();
        out.item.unwrap()
    };
    s.add_spend(std::slice::from_ref(&long_ago), Utc::now())
        .await
        .unwrap();
    assert_eq!(marks(get().await), vec![long_ago.writer.to_string()]);
    s.add_spend(std::slice::from_ref(&recent), Utc::now())
        .await
        .unwrap();
    s.add_spend(std::slice::from_ref(&recent), Utc::now())
        .await
        .unwrap();
    assert_eq!(marks(get().await), vec![recent.writer.to_string()]);
    assert_eq!(s.get_key("k").await.unwrap().unwrap().limits.spend, 2.0);
}
