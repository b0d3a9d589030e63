//! `PostgresKeyStore` against a real PostgreSQL with LiteLLM's schema: the throwaway cluster
//! `tests/run.sh` starts (`ROUTEIQ_TEST_POSTGRES_URL`; without it these tests fail). Every
//! test uses ids of its own, so they run in parallel on the one database; rows LiteLLM would
//! write are written with raw SQL, and what RouteIQ writes is read back the same way.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Duration as ChronoDuration, NaiveDateTime, TimeZone, Timelike, Utc};
use routeiq::config::SecretString;
use routeiq_gateway::keys::model::{
    Charge, Entity, KeyRecord, Limits, Period, SpendLog, TeamRecord, UserRecord, hash_key,
};
use routeiq_gateway::keys::postgres::{PostgresKeyStore, PostgresOptions};
use routeiq_gateway::keys::store::{KeyQuery, KeyStore, KeyStoreError, SpendLogQuery};
use routeiq_testkit::{TcpRelay, postgres_test_ca, shared_postgres_url};
use serde_json::{Map, Value, json};

/// An id no other test (or earlier run on the same cluster) uses.
fn unique(name: &str) -> String {
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    format!("{name}-{}-{nanos}", std::process::id())
}

async fn store_at(url: &str) -> PostgresKeyStore {
    PostgresKeyStore::connect(&SecretString::new(url), PostgresOptions::default())
        .await
        .expect("store")
}

async fn store() -> PostgresKeyStore {
    store_at(&shared_postgres_url()).await
}

/// A plain connection, to look behind the store (and to write as LiteLLM does).
async fn raw() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&shared_postgres_url(), tokio_postgres::NoTls)
        .await
        .expect("connect to the test database");
    tokio::spawn(conn);
    client
}

/// A time as `TIMESTAMP(3)` keeps it.
fn ms(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap()
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn full_key(token: &str, alias: Option<&str>) -> KeyRecord {
    let now = ms(Utc::now());
    KeyRecord {
        token: token.into(),
        key_name: Some("sk-...abcd".into()),
        key_alias: alias.map(str::to_string),
        limits: Limits {
            spend: 1.5,
            max_budget: Some(10.0),
            budget_duration: Some("30d".into()),
            budget_reset_at: Some(now + ChronoDuration::days(3)),
            rpm_limit: Some(60),
            tpm_limit: Some(10_000),
            max_parallel_requests: Some(4),
            // Kept in metadata.routeiq_limits (no LiteLLM column).
            rph_limit: Some(600),
            rpd_limit: Some(5_000),
            burst_limit: Some(5),
        },
        expires: Some(now + ChronoDuration::days(90)),
        models: vec!["gpt-4o".into(), "claude-sonnet".into()],
        aliases: obj(json!({"fast": "gpt-4o-mini"})),
        config: obj(json!({"x": 1})),
        user_id: Some("u-1".into()),
        team_id: Some("t-1".into()),
        permissions: obj(json!({"admin": false})),
        metadata: obj(json!({"owner": "ana", "tags": ["a", "b"]})),
        blocked: Some(false),
        allowed_routes: vec!["/chat/completions".into()],
        created_at: Some(now),
        created_by: Some("admin".into()),
        updated_at: Some(now),
        updated_by: Some("admin".into()),
    }
}

#[tokio::test]
async fn keys_round_trip_conflict_and_delete() {
    let s = store().await;
    let token = hash_key(&unique("sk-roundtrip"));
    let alias = unique("alias-rt");
    let k = full_key(&token, Some(&alias));
    s.insert_key(&k).await.unwrap();
    assert_eq!(s.get_key(&token).await.unwrap(), Some(k.clone()));
    assert_eq!(s.key_by_alias(&alias).await.unwrap(), Some(k.clone()));
    assert!(matches!(
        s.insert_key(&KeyRecord {
            key_alias: None,
            ..k.clone()
        })
        .await,
        Err(KeyStoreError::Conflict(_))
    ));
    // A minimal key: NULL limits, empty arrays and objects.
    let bare = KeyRecord {
        token: hash_key(&unique("sk-bare")),
        ..KeyRecord::default()
    };
    s.insert_key(&bare).await.unwrap();
    let got = s.get_key(&bare.token).await.unwrap().unwrap();
    assert_eq!(got.limits, Limits::default());
    assert_eq!(got.blocked, None);
    assert!(got.models.is_empty() && got.metadata.is_empty());
    assert!(got.created_at.is_some() && got.updated_at.is_some());
    assert!(s.delete_key(&token).await.unwrap());
    assert!(!s.delete_key(&token).await.unwrap());
    assert_eq!(s.get_key(&token).await.unwrap(), None);
    assert_eq!(s.key_by_alias(&alias).await.unwrap(), None);
    assert!(s.delete_key(&bare.token).await.unwrap());
}

#[tokio::test]
async fn key_aliases_stay_unique() {
    let s = store().await;
    let (a, b) = (hash_key(&unique("sk-a")), hash_key(&unique("sk-b")));
    let alias = unique("alias");
    s.insert_key(&full_key(&a, Some(&alias))).await.unwrap();
    assert!(matches!(
        s.insert_key(&full_key(&b, Some(&alias))).await,
        Err(KeyStoreError::Conflict(m)) if m.contains(&alias)
    ));
    s.insert_key(&full_key(&b, None)).await.unwrap();
    assert!(matches!(
        s.update_key(&full_key(&b, Some(&alias))).await,
        Err(KeyStoreError::Conflict(_))
    ));
    // A key keeps its own alias.
    s.update_key(&full_key(&a, Some(&alias))).await.unwrap();
    assert!(matches!(
        s.update_key(&full_key(&hash_key(&unique("sk-none")), None))
            .await,
        Err(KeyStoreError::NotFound(_))
    ));

    // Two instances racing for one alias: exactly one wins, every round.
    let other = Arc::new(store().await);
    let s = Arc::new(s);
    for round in 0..10 {
        let alias = unique(&format!("race{round}"));
        let ka = full_key(&hash_key(&unique("sk-ra")), Some(&alias));
        let kb = full_key(&hash_key(&unique("sk-rb")), Some(&alias));
        let (s1, s2) = (s.clone(), other.clone());
        let (ra, rb) = tokio::join!(
            tokio::spawn(async move { s1.insert_key(&ka).await }),
            tokio::spawn(async move { s2.insert_key(&kb).await })
        );
        let results = [ra.unwrap(), rb.unwrap()];
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "{results:?}"
        );
        assert!(
            results
                .iter()
                .any(|r| matches!(r, Err(KeyStoreError::Conflict(_))))
        );
    }
}

#[tokio::test]
async fn updates_never_overwrite_spend() {
    let s = store().await;
    let now = Utc::now();
    let token = hash_key(&unique("sk-upd"));
    let team_id = unique("team-upd");
    let user_id = unique("user-upd");
    let mut k = full_key(&token, None);
    k.limits.spend = 0.0;
    k.created_at = Some(ms(now - ChronoDuration::days(1)));
    k.updated_at = k.created_at;
    s.insert_key(&k).await.unwrap();
    s.insert_team(&TeamRecord {
        team_id: team_id.clone(),
        ..TeamRecord::default()
    })
    .await
    .unwrap();
    s.insert_user(&UserRecord {
        user_id: user_id.clone(),
        ..UserRecord::default()
    })
    .await
    .unwrap();
    let charges = [
        (Entity::Key(token.clone()), 0.25),
        (Entity::Team(team_id.clone()), 0.5),
        (Entity::User(user_id.clone()), 0.75),
    ];
    assert_eq!(
        s.add_spend(&Charge::each(&charges), now).await.unwrap(),
        vec![Some(0.25), Some(0.5), Some(0.75)]
    );

    // Records read before the charge (spend 0), or with a made-up spend: written back, the
    // stored spend stays.
    k.limits.spend = 99.0;
    k.key_alias = Some(unique("renamed"));
    k.models = vec!["only-this".into()];
    s.update_key(&k).await.unwrap();
    let got = s.get_key(&token).await.unwrap().unwrap();
    assert_eq!(got.limits.spend, 0.25);
    assert_eq!(got.key_alias, k.key_alias);
    assert_eq!(got.models, ["only-this"]);
    assert_eq!(got.created_at, k.created_at);
    assert!(got.updated_at > k.updated_at, "updated_at is bumped");

    let mut t = s.get_team(&team_id).await.unwrap().unwrap();
    t.limits.spend = 99.0;
    t.team_alias = Some("renamed".into());
    t.members_with_roles = vec![json!({"role": "admin", "user_id": user_id})];
    s.update_team(&t).await.unwrap();
    let got = s.get_team(&team_id).await.unwrap().unwrap();
    assert_eq!(got.limits.spend, 0.5);
    assert_eq!(got.team_alias.as_deref(), Some("renamed"));
    assert_eq!(got.members_with_roles, t.members_with_roles);

    let mut u = s.get_user(&user_id).await.unwrap().unwrap();
    u.limits.spend = 99.0;
    u.user_email = Some("u@example.com".into());
    s.update_user(&u).await.unwrap();
    let got = s.get_user(&user_id).await.unwrap().unwrap();
    assert_eq!(got.limits.spend, 0.75);
    assert_eq!(got.user_email.as_deref(), Some("u@example.com"));
}

#[tokio::test]
async fn teams_and_users_round_trip() {
    let s = store().await;
    let now = ms(Utc::now());
    let team = TeamRecord {
        team_id: unique("team-rt"),
        team_alias: Some("Search".into()),
        organization_id: Some("org-1".into()),
        admins: vec!["ana".into()],
        members: vec!["ana".into(), "bo".into()],
        members_with_roles: vec![json!({"role": "admin", "user_id": "ana", "user_email": null})],
        metadata: obj(json!({"cost_center": 7})),
        limits: Limits {
            spend: 2.0,
            max_budget: Some(100.0),
            budget_duration: Some("1mo".into()),
            budget_reset_at: Some(now + ChronoDuration::days(10)),
            rpm_limit: Some(1000),
            tpm_limit: Some(1_000_000),
            max_parallel_requests: Some(20),
            rpd_limit: Some(50_000),
            ..Limits::default()
        },
        models: vec!["gpt-4o".into()],
        blocked: true,
        created_at: Some(now),
        updated_at: Some(now),
    };
    s.insert_team(&team).await.unwrap();
    assert_eq!(s.get_team(&team.team_id).await.unwrap(), Some(team.clone()));
    assert!(matches!(
        s.insert_team(&team).await,
        Err(KeyStoreError::Conflict(_))
    ));
    let listed = s.list_teams().await.unwrap();
    assert!(listed.contains(&team));
    assert!(listed.windows(2).all(|w| w[0].team_id <= w[1].team_id));
    assert!(matches!(
        s.update_team(&TeamRecord {
            team_id: unique("team-none"),
            ..TeamRecord::default()
        })
        .await,
        Err(KeyStoreError::NotFound(_))
    ));

    let user = UserRecord {
        user_id: unique("user-rt"),
        user_alias: Some("Ana".into()),
        team_id: Some(team.team_id.clone()),
        teams: vec![team.team_id.clone()],
        user_role: Some("internal_user".into()),
        user_email: Some("ana@example.com".into()),
        limits: Limits {
            max_budget: Some(5.0),
            ..Limits::default()
        },
        models: vec![],
        metadata: obj(json!({"sso": true})),
        created_at: Some(now),
        updated_at: Some(now),
    };
    s.insert_user(&user).await.unwrap();
    assert_eq!(s.get_user(&user.user_id).await.unwrap(), Some(user.clone()));
    assert!(matches!(
        s.insert_user(&user).await,
        Err(KeyStoreError::Conflict(_))
    ));
    assert!(matches!(
        s.update_user(&UserRecord {
            user_id: unique("user-none"),
            ..UserRecord::default()
        })
        .await,
        Err(KeyStoreError::NotFound(_))
    ));
    assert!(s.delete_user(&user.user_id).await.unwrap());
    assert!(!s.delete_user(&user.user_id).await.unwrap());
    assert!(s.delete_team(&team.team_id).await.unwrap());
    assert_eq!(s.get_team(&team.team_id).await.unwrap(), None);
}

#[tokio::test]
async fn list_keys_filters_and_pages() {
    let s = store().await;
    let even = unique("even");
    let odd = unique("odd");
    let prefix = unique("sk-list");
    let base = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    for i in 0..5 {
        let mut k = KeyRecord {
            token: hash_key(&format!("{prefix}-{i}")),
            ..KeyRecord::default()
        };
        k.team_id = Some(if i % 2 == 0 { &even } else { &odd }.clone());
        k.user_id = Some(format!("{prefix}-user"));
        k.created_at = Some(base + ChronoDuration::seconds(i));
        s.insert_key(&k).await.unwrap();
    }
    let q = KeyQuery {
        team_id: Some(even.clone()),
        page: 1,
        size: 2,
        ..KeyQuery::default()
    };
    let p = s.list_keys(&q).await.unwrap();
    assert_eq!(p.total, 3);
    let want = |i: i32| hash_key(&format!("{prefix}-{i}"));
    let tokens: Vec<_> = p.items.iter().map(|k| k.token.clone()).collect();
    assert_eq!(tokens, [want(4), want(2)]);
    let p2 = s
        .list_keys(&KeyQuery {
            page: 2,
            ..q.clone()
        })
        .await
        .unwrap();
    assert_eq!(p2.items.len(), 1);
    assert_eq!(p2.items[0].token, want(0));
    assert_eq!(p2.total, 3);
    let past = s.list_keys(&KeyQuery { page: 9, ..q }).await.unwrap();
    assert!(past.items.is_empty());
    assert_eq!(past.total, 3);
    let by_user = s
        .list_keys(&KeyQuery {
            user_id: Some(format!("{prefix}-user")),
            page: 1,
            size: 100,
            ..KeyQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(by_user.total, 5);
    assert_eq!(by_user.items.len(), 5);
}

#[tokio::test]
async fn concurrent_charges_from_two_instances_add_up_exactly() {
    let (a, b) = (Arc::new(store().await), Arc::new(store().await));
    let token = hash_key(&unique("sk-conc"));
    let team_id = unique("team-conc");
    let user_id = unique("user-conc");
    a.insert_key(&KeyRecord {
        token: token.clone(),
        ..KeyRecord::default()
    })
    .await
    .unwrap();
    a.insert_team(&TeamRecord {
        team_id: team_id.clone(),
        ..TeamRecord::default()
    })
    .await
    .unwrap();
    a.insert_user(&UserRecord {
        user_id: user_id.clone(),
        ..UserRecord::default()
    })
    .await
    .unwrap();
    let forward = vec![
        (Entity::Key(token.clone()), 0.25),
        (Entity::Team(team_id.clone()), 0.25),
        (Entity::User(user_id.clone()), 0.25),
    ];
    // The other instance charges in the opposite order: no deadlock either way.
    let backward: Vec<_> = forward.iter().rev().cloned().collect();
    let run = |s: Arc<PostgresKeyStore>, charges: Vec<(Entity, f64)>| {
        tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..200 {
                let totals = s
                    .add_spend(&Charge::each(&charges), Utc::now())
                    .await
                    .unwrap();
                seen.push(totals[0].unwrap());
            }
            seen
        })
    };
    let (sa, sb) = tokio::join!(run(a.clone(), forward), run(b.clone(), backward));
    for seen in [sa.unwrap(), sb.unwrap()] {
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "totals only grow");
    }
    assert_eq!(
        a.get_key(&token).await.unwrap().unwrap().limits.spend,
        100.0
    );
    assert_eq!(
        a.get_team(&team_id).await.unwrap().unwrap().limits.spend,
        100.0
    );
    assert_eq!(
        b.get_user(&user_id).await.unwrap().unwrap().limits.spend,
        100.0
    );
}

#[tokio::test]
async fn an_ended_period_restarts_once_under_concurrency() {
    let (a, b) = (Arc::new(store().await), Arc::new(store().await));
    let now = ms(Utc::now());
    let token = hash_key(&unique("sk-period"));
    let team_id = unique("team-period");
    let limits = Limits {
        spend: 50.0,
        budget_duration: Some("1h".into()),
        budget_reset_at: Some(now - ChronoDuration::minutes(1)),
        ..Limits::default()
    };
    a.insert_key(&KeyRecord {
        token: token.clone(),
        limits: limits.clone(),
        ..KeyRecord::default()
    })
    .await
    .unwrap();
    a.insert_team(&TeamRecord {
        team_id: team_id.clone(),
        limits,
        ..TeamRecord::default()
    })
    .await
    .unwrap();
    let charges = vec![
        (Entity::Key(token.clone()), 0.5),
        (Entity::Team(team_id.clone()), 0.5),
    ];
    let run = |s: Arc<PostgresKeyStore>, charges: Vec<(Entity, f64)>| {
        tokio::spawn(async move {
            for _ in 0..20 {
                s.add_spend(&Charge::each(&charges), now).await.unwrap();
            }
        })
    };
    let (ra, rb) = tokio::join!(run(a.clone(), charges.clone()), run(b, charges));
    ra.unwrap();
    rb.unwrap();
    // One restart: the 40 charges alone, not the 50 before, and no charge lost to a second.
    let next = Period::parse("1h").unwrap().next_reset(now);
    let key = a.get_key(&token).await.unwrap().unwrap();
    assert_eq!(key.limits.spend, 20.0);
    assert_eq!(key.limits.budget_reset_at, Some(next));
    let team = a.get_team(&team_id).await.unwrap().unwrap();
    assert_eq!(team.limits.spend, 20.0);
    assert_eq!(team.limits.budget_reset_at, Some(next));
}

#[tokio::test]
async fn add_spend_in_order_skipping_missing_entities_and_reset_spend() {
    let s = store().await;
    let token = hash_key(&unique("sk-order"));
    s.insert_key(&KeyRecord {
        token: token.clone(),
        ..KeyRecord::default()
    })
    .await
    .unwrap();
    let key = Entity::Key(token.clone());
    let totals = s
        .add_spend(
            &Charge::each(&[
                (key.clone(), 1.0),
                (Entity::Team(unique("team-missing")), 1.0),
                (key.clone(), 2.0),
                (Entity::User(unique("user-missing")), 1.0),
            ]),
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(totals, vec![Some(1.0), None, Some(3.0), None]);
    assert_eq!(s.add_spend(&[], Utc::now()).await.unwrap(), vec![]);

    let at = ms(Utc::now() + ChronoDuration::days(1));
    s.reset_spend(&key, 0.5, Some(at)).await.unwrap();
    let got = s.get_key(&token).await.unwrap().unwrap();
    assert_eq!(
        (got.limits.spend, got.limits.budget_reset_at),
        (0.5, Some(at))
    );
    assert!(matches!(
        s.reset_spend(&Entity::Team(unique("team-missing")), 0.0, None)
            .await,
        Err(KeyStoreError::NotFound(_))
    ));
}

/// A key as LiteLLM's proxy writes it (Prisma: sha256 token, TEXT[] models, JSONB metadata,
/// NULL `blocked`, a `budget_id` whose limits apply where the key's own are NULL), read by
/// RouteIQ; then what RouteIQ writes, read as LiteLLM would.
#[tokio::test]
async fn keys_written_by_litellm_are_read_and_keep_their_budget() {
    let s = store().await;
    let db = raw().await;
    let raw_key = unique("sk-litellm");
    let token = hash_key(&raw_key);
    let budget_id = unique("budget");
    let alias = unique("litellm-alias");
    db.execute(
        "INSERT INTO \"LiteLLM_BudgetTable\" (budget_id, max_budget, rpm_limit, tpm_limit, \
         max_parallel_requests, budget_duration, budget_reset_at, created_by, updated_by) \
         VALUES ($1, 25.0, 7, 700, 3, '30d', '2030-01-01 00:00:00', 'admin', 'admin')",
        &[&budget_id],
    )
    .await
    .unwrap();
    db.execute(
        "INSERT INTO \"LiteLLM_VerificationToken\" (token, key_name, key_alias, spend, models, \
         metadata, aliases, user_id, team_id, rpm_limit, budget_id, expires, created_at, \
         updated_at, created_by) VALUES ($1, 'sk-...abcd', $2, 1.25, \
         ARRAY['gpt-4o', 'claude-3-5-sonnet'], '{\"team\": \"search\", \"n\": 1}'::jsonb, \
         '{\"fast\": \"gpt-4o-mini\"}'::jsonb, 'ana', 'search', 99, $3, \
         '2031-02-03 04:05:06.789', '2025-06-01 12:00:00.123', '2025-06-01 12:00:00.123', \
         'ana')",
        &[&token, &alias, &budget_id],
    )
    .await
    .unwrap();

    let k = s.get_key(&hash_key(&raw_key)).await.unwrap().unwrap();
    assert_eq!(k.token, token);
    assert_eq!(k.key_alias.as_deref(), Some(alias.as_str()));
    assert_eq!(k.models, ["gpt-4o", "claude-3-5-sonnet"]);
    assert_eq!(k.metadata, obj(json!({"team": "search", "n": 1})));
    assert_eq!(k.aliases, obj(json!({"fast": "gpt-4o-mini"})));
    assert_eq!(k.blocked, None);
    assert!(!k.is_blocked());
    assert!(k.allowed_routes.is_empty());
    assert_eq!(
        k.expires,
        Some(
            Utc.with_ymd_and_hms(2031, 2, 3, 4, 5, 6).unwrap() + ChronoDuration::milliseconds(789)
        )
    );
    assert_eq!(
        k.limits,
        Limits {
            spend: 1.25,
            max_budget: Some(25.0),
            budget_duration: Some("30d".into()),
            budget_reset_at: Some(Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()),
            rpm_limit: Some(99),
            tpm_limit: Some(700),
            max_parallel_requests: Some(3),
            ..Limits::default()
        }
    );

    // Written back with a change elsewhere, the key still follows its budget.
    let mut edited = k.clone();
    edited.metadata.insert("edited".into(), json!(true));
    s.update_key(&edited).await.unwrap();
    let own = db
        .query_one(
            "SELECT max_budget, tpm_limit, budget_duration, rpm_limit, metadata, budget_id \
             FROM \"LiteLLM_VerificationToken\" WHERE token = $1",
            &[&token],
        )
        .await
        .unwrap();
    assert_eq!(own.get::<_, Option<f64>>(0), None);
    assert_eq!(own.get::<_, Option<i64>>(1), None);
    assert_eq!(own.get::<_, Option<String>>(2), None);
    assert_eq!(own.get::<_, Option<i64>>(3), Some(99));
    assert_eq!(own.get::<_, Value>(4)["edited"], true);
    assert_eq!(own.get::<_, Option<String>>(5), Some(budget_id.clone()));
    db.execute(
        "UPDATE \"LiteLLM_BudgetTable\" SET max_budget = 30 WHERE budget_id = $1",
        &[&budget_id],
    )
    .await
    .unwrap();
    let k = s.get_key(&token).await.unwrap().unwrap();
    assert_eq!(k.limits.max_budget, Some(30.0));
    // A limit of the key's own replaces the budget's.
    let mut own_budget = k.clone();
    own_budget.limits.max_budget = Some(40.0);
    s.update_key(&own_budget).await.unwrap();
    assert_eq!(
        s.get_key(&token).await.unwrap().unwrap().limits.max_budget,
        Some(40.0)
    );

    // A key RouteIQ creates, as LiteLLM reads it.
    let mine = full_key(&hash_key(&unique("sk-mine")), None);
    s.insert_key(&mine).await.unwrap();
    let row = db
        .query_one(
            "SELECT spend, models, metadata, blocked, created_at, soft_budget_cooldown, \
             model_spend, total_spend, budget_reset_at FROM \"LiteLLM_VerificationToken\" \
             WHERE token = $1",
            &[&mine.token],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, f64>(0), 1.5);
    assert_eq!(row.get::<_, Vec<String>>(1), mine.models);
    // The request windows LiteLLM has no column for ride in metadata.
    let mut metadata = mine.metadata.clone();
    metadata.insert(
        "routeiq_limits".into(),
        json!({"rph_limit": 600, "rpd_limit": 5000, "burst_limit": 5}),
    );
    assert_eq!(row.get::<_, Value>(2), Value::Object(metadata));
    assert_eq!(row.get::<_, Option<bool>>(3), Some(false));
    // UTC in a server that runs on New York time.
    assert_eq!(
        row.get::<_, NaiveDateTime>(4),
        mine.created_at.unwrap().naive_utc()
    );
    assert!(!row.get::<_, bool>(5));
    assert_eq!(row.get::<_, Value>(6), json!({}));
    assert_eq!(row.get::<_, f64>(7), 0.0);
    assert_eq!(
        row.get::<_, Option<NaiveDateTime>>(8),
        mine.limits.budget_reset_at.map(|t| t.naive_utc())
    );
}

#[tokio::test]
async fn a_budget_period_of_a_keys_budget_restarts_on_the_key() {
    let s = store().await;
    let db = raw().await;
    let now = ms(Utc::now());
    let budget_id = unique("budget-period");
    let token = hash_key(&unique("sk-budget-period"));
    db.execute(
        "INSERT INTO \"LiteLLM_BudgetTable\" (budget_id, max_budget, budget_duration, \
         budget_reset_at, created_by, updated_by) VALUES ($1, 5.0, '1d', $2, 'a', 'a')",
        &[&budget_id, &(now - ChronoDuration::hours(1)).naive_utc()],
    )
    .await
    .unwrap();
    db.execute(
        "INSERT INTO \"LiteLLM_VerificationToken\" (token, spend, budget_id) VALUES ($1, 4.0, $2)",
        &[&token, &budget_id],
    )
    .await
    .unwrap();
    let totals = s
        .add_spend(&Charge::each(&[(Entity::Key(token.clone()), 0.5)]), now)
        .await
        .unwrap();
    assert_eq!(totals, vec![Some(0.5)]);
    let next = Period::parse("1d").unwrap().next_reset(now);
    let k = s.get_key(&token).await.unwrap().unwrap();
    assert_eq!(k.limits.budget_reset_at, Some(next));
    // The key keeps its own period from now on; the budget row, shared, is not touched.
    let b: Option<NaiveDateTime> = db
        .query_one(
            "SELECT budget_reset_at FROM \"LiteLLM_BudgetTable\" WHERE budget_id = $1",
            &[&budget_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(b, Some((now - ChronoDuration::hours(1)).naive_utc()));
    s.add_spend(&Charge::each(&[(Entity::Key(token.clone()), 0.5)]), now)
        .await
        .unwrap();
    assert_eq!(s.get_key(&token).await.unwrap().unwrap().limits.spend, 1.0);
}

fn log(
    id: &str,
    key: &str,
    user: Option<&str>,
    team: Option<&str>,
    start: DateTime<Utc>,
) -> SpendLog {
    SpendLog {
        request_id: id.into(),
        call_type: "acompletion".into(),
        api_key: key.into(),
        spend: 0.125,
        total_tokens: 30,
        prompt_tokens: 10,
        completion_tokens: 20,
        start_time: start,
        end_time: start + ChronoDuration::milliseconds(1500),
        model: "gpt-4o-2024-08-06".into(),
        model_id: Some("dep-1".into()),
        model_group: Some("gpt-4o".into()),
        custom_llm_provider: Some("openai".into()),
        user: user.map(str::to_string),
        team_id: team.map(str::to_string),
        end_user: None,
        metadata: obj(json!({"user_api_key_alias": "app"})),
        status: "success".into(),
    }
}

#[tokio::test]
async fn spend_logs_are_written_once_and_queried() {
    let s = store().await;
    let db = raw().await;
    let p = unique("req");
    let key_a = hash_key(&unique("sk-log-a"));
    let key_b = hash_key(&unique("sk-log-b"));
    let team = unique("team-log");
    let t0 = ms(Utc::now()) - ChronoDuration::hours(1);
    let rows: Vec<SpendLog> = (0..5)
        .map(|i| {
            log(
                &format!("{p}-{i}"),
                if i < 3 { &key_a } else { &key_b },
                (i % 2 == 0).then_some("ana"),
                (i != 4).then_some(team.as_str()),
                t0 + ChronoDuration::minutes(i),
            )
        })
        .collect();
    s.write_spend_logs(&rows).await.unwrap();
    // Retried: nothing doubles, the first row stays.
    let mut again = rows.clone();
    again[0].spend = 9.0;
    s.write_spend_logs(&again).await.unwrap();

    let by_key = s
        .spend_logs(&SpendLogQuery {
            api_key: Some(key_a.clone()),
            ..SpendLogQuery::default()
        })
        .await
        .unwrap();
    let ids: Vec<_> = by_key.iter().map(|r| r.request_id.clone()).collect();
    assert_eq!(ids, [format!("{p}-2"), format!("{p}-1"), format!("{p}-0")]);
    assert_eq!(by_key[2], rows[0]);
    assert_eq!(by_key[1].user, None);

    let q = SpendLogQuery {
        team_id: Some(team.clone()),
        ..SpendLogQuery::default()
    };
    assert_eq!(s.spend_logs(&q).await.unwrap().len(), 4);
    let mut limited = q.clone();
    limited.limit = 2;
    let newest: Vec<_> = s
        .spend_logs(&limited)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.request_id)
        .collect();
    assert_eq!(newest, [format!("{p}-3"), format!("{p}-2")]);
    let window = SpendLogQuery {
        team_id: Some(team.clone()),
        user_id: Some("ana".into()),
        start: Some(t0 + ChronoDuration::minutes(1)),
        end: Some(t0 + ChronoDuration::minutes(3)),
        ..SpendLogQuery::default()
    };
    let got = s.spend_logs(&window).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].request_id, format!("{p}-2"));
    let one = SpendLogQuery {
        request_id: Some(format!("{p}-4")),
        ..SpendLogQuery::default()
    };
    assert_eq!(s.spend_logs(&one).await.unwrap(), vec![rows[4].clone()]);

    // The columns LiteLLM's UI reads.
    let r = db
        .query_one(
            "SELECT \"user\", end_user, request_duration_ms, \"startTime\", call_type, status, \
             metadata->>'user_api_key_alias', team_id FROM \"LiteLLM_SpendLogs\" \
             WHERE request_id = $1",
            &[&format!("{p}-3")],
        )
        .await
        .unwrap();
    assert_eq!(r.get::<_, Option<String>>(0).as_deref(), Some(""));
    assert_eq!(r.get::<_, Option<String>>(1).as_deref(), Some(""));
    assert_eq!(r.get::<_, Option<i32>>(2), Some(1500));
    assert_eq!(
        r.get::<_, NaiveDateTime>(3),
        (t0 + ChronoDuration::minutes(3)).naive_utc()
    );
    assert_eq!(r.get::<_, String>(4), "acompletion");
    assert_eq!(r.get::<_, Option<String>>(5).as_deref(), Some("success"));
    assert_eq!(r.get::<_, Option<String>>(6).as_deref(), Some("app"));
    assert_eq!(r.get::<_, Option<String>>(7), Some(team));

    // A row of an older LiteLLM: no status, NULL metadata.
    let old = format!("{p}-old");
    db.execute(
        "INSERT INTO \"LiteLLM_SpendLogs\" (request_id, call_type, api_key, \"startTime\", \
         \"endTime\", metadata) VALUES ($1, 'completion', $2, '2024-01-01', '2024-01-01', NULL)",
        &[&old, &key_b],
    )
    .await
    .unwrap();
    let got = s
        .spend_logs(&SpendLogQuery {
            request_id: Some(old),
            ..SpendLogQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(got[0].status, "success");
    assert!(got[0].metadata.is_empty());
    assert_eq!(got[0].model_id, None);
}

#[tokio::test]
async fn a_lost_database_is_unavailable_until_it_is_back() {
    let url = shared_postgres_url();
    let target: SocketAddr = {
        let cfg: tokio_postgres::Config = url.parse().unwrap();
        let port = cfg.get_ports()[0];
        ([127, 0, 0, 1], port).into()
    };
    let relay = TcpRelay::start(target).await;
    let relayed = url.replacen(
        &format!(":{}/", target.port()),
        &format!(":{}/", relay.port()),
        1,
    );
    let s = PostgresKeyStore::connect(
        &SecretString::new(relayed),
        PostgresOptions {
            timeout: Duration::from_secs(3),
            pool_timeout: Duration::from_secs(2),
            ..PostgresOptions::default()
        },
    )
    .await
    .unwrap();
    let token = hash_key(&unique("sk-lost"));
    s.insert_key(&KeyRecord {
        token: token.clone(),
        ..KeyRecord::default()
    })
    .await
    .unwrap();
    s.ping().await.unwrap();

    relay.cut().await;
    let unavailable = |r: Result<(), KeyStoreError>| match r {
        Err(KeyStoreError::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    };
    unavailable(s.get_key(&token).await.map(|_| ()));
    unavailable(
        s.add_spend(
            &Charge::each(&[(Entity::Key(token.clone()), 1.0)]),
            Utc::now(),
        )
        .await
        .map(|_| ()),
    );
    unavailable(
        s.write_spend_logs(&[log(&unique("r"), &token, None, None, Utc::now())])
            .await,
    );
    unavailable(s.ping().await);

    relay.restore().await;
    let mut back = None;
    for _ in 0..50 {
        if let Ok(k) = s.get_key(&token).await {
            back = k;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        back.map(|k| k.limits.spend),
        Some(0.0),
        "no charge landed while it was down"
    );
}

#[tokio::test]
async fn tls_modes_check_what_libpq_checks() {
    let url = shared_postgres_url();
    let cfg: tokio_postgres::Config = url.parse().unwrap();
    let port = cfg.get_ports()[0];
    let password = String::from_utf8(cfg.get_password().unwrap().to_vec()).unwrap();
    let ca = postgres_test_ca();
    let ca = ca.to_str().unwrap();
    let at = |host: &str, params: &str| {
        format!("postgresql://routeiq:{password}@{host}:{port}/litellm?{params}")
    };
    let ok = [
        // Encrypted (the server has TLS, so `require` succeeds only over it), SCRAM bound
        // to the certificate.
        at("127.0.0.1", "sslmode=require&channel_binding=require"),
        at("127.0.0.1", "sslmode=prefer"),
        // The certificate is for localhost, from the test CA.
        at(
            "localhost",
            &format!("sslmode=verify-full&sslrootcert={ca}&hostaddr=127.0.0.1"),
        ),
        at("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={ca}")),
        at("127.0.0.1", &format!("sslmode=require&sslrootcert={ca}")),
    ];
    for u in ok {
        store_at(&u)
            .await
            .ping()
            .await
            .unwrap_or_else(|e| panic!("{u}: {e}"));
    }
    let refused = [
        // Not the name on the certificate.
        at(
            "127.0.0.1",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        ),
        // Not a CA the system trusts.
        at("localhost", "sslmode=verify-full&hostaddr=127.0.0.1"),
    ];
    for u in refused {
        match store_at(&u).await.ping().await {
            Err(KeyStoreError::Unavailable(m)) => assert!(m.contains("certificate"), "{u}: {m}"),
            other => panic!("{u}: {other:?}"),
        }
    }
    // A missing CA file is a configuration error at once.
    assert!(matches!(
        PostgresKeyStore::connect(
            &SecretString::new(at("localhost", "sslmode=verify-full&sslrootcert=/nonexistent.pem")),
            PostgresOptions::default()
        )
        .await,
        Err(KeyStoreError::Unavailable(m)) if m.contains("sslrootcert")
    ));
}

#[tokio::test]
async fn a_missing_table_is_reported_not_hidden() {
    // A schema without LiteLLM's tables: the store says the records cannot be read.
    let db = raw().await;
    let schema = unique("empty").replace('-', "_");
    db.execute(&format!("CREATE SCHEMA \"{schema}\""), &[])
        .await
        .unwrap();
    let s = store_at(&format!("{}&schema={schema}", shared_postgres_url())).await;
    assert!(matches!(
        s.get_key("x").await,
        Err(KeyStoreError::Corrupt(_))
    ));
    assert!(matches!(s.ping().await, Err(KeyStoreError::Corrupt(_))));
    db.execute(&format!("DROP SCHEMA \"{schema}\""), &[])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_deadlock_with_another_writer_is_retried() {
    // Another writer (LiteLLM's own spend updates) locking team then key, while the store
    // locks key then team: PostgreSQL aborts the store's transaction (the other writer checks
    // for deadlocks only after 30 s), and the store's charge lands on a later try.
    let s = Arc::new(store().await);
    let token = hash_key(&unique("sk-deadlock"));
    let team_id = unique("team-deadlock");
    s.insert_key(&KeyRecord {
        token: token.clone(),
        ..KeyRecord::default()
    })
    .await
    .unwrap();
    s.insert_team(&TeamRecord {
        team_id: team_id.clone(),
        ..TeamRecord::default()
    })
    .await
    .unwrap();
    let other = raw().await;
    let other_pid: i32 = other
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    other
        .batch_execute(&format!(
            "BEGIN; SET LOCAL deadlock_timeout = '30s'; UPDATE \"LiteLLM_TeamTable\" SET \
             spend = spend + 1 WHERE team_id = '{team_id}'"
        ))
        .await
        .unwrap();
    let charge = tokio::spawn({
        let s = s.clone();
        let charges = vec![
            (Entity::Key(token.clone()), 0.25),
            (Entity::Team(team_id.clone()), 0.25),
        ];
        async move { s.add_spend(&Charge::each(&charges), Utc::now()).await }
    });
    // Once the store holds the key and waits for the team (the one row the other writer's
    // transaction holds), the other writer wants the key, and commits as soon as it has it.
    let watcher = raw().await;
    let mut blocked = false;
    for _ in 0..500 {
        let n: i64 = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
                &[&other_pid],
            )
            .await
            .unwrap()
            .get(0);
        if n > 0 {
            blocked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(blocked, "the store never waited for the team's row");
    other
        .batch_execute(&format!(
            "UPDATE \"LiteLLM_VerificationToken\" SET spend = spend + 1 WHERE token = \
             '{token}'; COMMIT"
        ))
        .await
        .expect("the store's transaction is the one aborted");
    assert_eq!(charge.await.unwrap().unwrap(), vec![Some(1.25), Some(1.25)]);
}

/// A charge sent again (a retry of a commit whose answer was lost) is applied once, from
/// either instance; its id lands in RouteIQ's charge table beside LiteLLM's.
#[tokio::test]
async fn a_charge_is_applied_once_however_often_it_is_sent() {
    let (a, b) = (store().await, store().await);
    let token = hash_key(&unique("sk-once"));
    a.insert_key(&KeyRecord {
        token: token.clone(),
        ..KeyRecord::default()
    })
    .await
    .unwrap();
    let c = Charge::new(Entity::Key(token.clone()), 0.75);
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
    // Given twice in one call: once. A new charge beside an old one: only the new.
    let d = Charge::new(Entity::Key(token.clone()), 0.25);
    assert_eq!(
        b.add_spend(&[c.clone(), d.clone(), d.clone()], now)
            .await
            .unwrap(),
        vec![Some(0.75), Some(1.0), Some(1.0)]
    );
    assert_eq!(a.get_key(&token).await.unwrap().unwrap().limits.spend, 1.0);
    let ids: i64 = raw()
        .await
        .query_one(
            "SELECT count(*) FROM \"RouteIQ_SpendCharges\" WHERE charge_id = ANY($1)",
            &[&vec![c.id(), d.id()]],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(ids, 2);
}
