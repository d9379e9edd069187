//! The retention purge: each tenant loses exactly its expired detections, conversions,
//! attributions and invalid events, in batches smaller than the backlog, once across
//! processes (the advisory lock), idempotently, with the run recorded per class.
//!
//! Old rows are written straight into the database: the API refuses events older than
//! `max_event_age_days`, which is the point.

use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::json;
use sightline::actors::purge::{self, TenantPurge};
use sightline::domain::TenantId;
use sightline::domain::retention::DataClass;
use sightline::storage::retention::lock::{PURGE_LOCK_CLASS, purge_lock_key};
use std::time::Duration;
use support::{Account, TestApp};

/// Far longer than a test: the background job never runs on its own during one.
const NEVER: Duration = Duration::from_secs(1800);

/// Writes `count` rows of every class for the tenant, `days_old` days (and a few minutes)
/// old, with ids starting `prefix`.
async fn seed(db: &DatabaseConnection, tenant: &str, prefix: &str, days_old: i64, count: i64) {
    let age = format!("now() - interval '{days_old} days' - i * interval '1 minute'");
    let statements = [
        format!(
            "INSERT INTO detections (tenant_id, event_id, event_time, received_time, consent, \
                 \"keys\", is_test, label, confidence, model_version, entity_id, filtered) \
             SELECT '{tenant}', '{prefix}-d-' || i, {age}, {age}, 'granted', \
                 jsonb_build_object('session_token', 's-' || i), false, 'barcode', 0.9, 'v3', \
                 'sku-42', false FROM generate_series(1, {count}) AS i"
        ),
        format!(
            "INSERT INTO conversions (tenant_id, event_id, event_time, received_time, consent, \
                 \"keys\", is_test, name, value, currency) \
             SELECT '{tenant}', '{prefix}-c-' || i, {age}, {age}, 'granted', \
                 jsonb_build_object('session_token', 's-' || i), false, 'purchase', 10, 'EUR' \
             FROM generate_series(1, {count}) AS i"
        ),
        format!(
            "INSERT INTO attributions (tenant_id, goal_id, conversion_event_id, \
                 detection_event_id, kind, conversion_time, detection_time, label, entity_id, \
                 model_version, value, is_test, created_at) \
             SELECT '{tenant}', gen_random_uuid(), '{prefix}-c-' || i, '{prefix}-d-' || i, \
                 'assisted', {age}, {age}, 'barcode', 'sku-42', 'v3', 10, false, now() \
             FROM generate_series(1, {count}) AS i"
        ),
        format!(
            "INSERT INTO invalid_events (tenant_id, id, received_time, payload, errors) \
             SELECT '{tenant}', gen_random_uuid(), {age}, '{{}}', '[]' \
             FROM generate_series(1, {count}) AS i"
        ),
    ];
    for sql in statements {
        db.execute_unprepared(&sql)
            .await
            .unwrap_or_else(|err| panic!("{sql}: {err}"));
    }
}

/// The tenant's rows per class, in `DataClass::ALL` order.
async fn counts(app: &TestApp, tenant: &str) -> [i64; 4] {
    let mut out = [0; 4];
    for (slot, table) in out.iter_mut().zip(TABLES) {
        *slot = app
            .count(&format!(
                "SELECT count(*) FROM {table} WHERE tenant_id = '{tenant}'"
            ))
            .await;
    }
    out
}

const TABLES: [&str; 4] = [
    "detections",
    "conversions",
    "attributions",
    "invalid_events",
];

fn tenant_id(account: &Account) -> TenantId {
    TenantId::from_uuid(account.tenant_id.parse().expect("a tenant uuid"))
}

fn deleted_of(outcomes: &[(TenantId, TenantPurge)], tenant: TenantId) -> [u64; 4] {
    match outcomes.iter().find(|(t, _)| *t == tenant) {
        Some((_, TenantPurge::Purged(deleted))) => deleted.map(|(_, n)| n),
        other => panic!("the tenant should have been purged: {other:?}"),
    }
}

#[actix_web::test]
async fn each_tenant_loses_exactly_its_expired_rows_of_every_class_and_a_second_run_nothing() {
    let app = TestApp::spawn_with(|settings| settings.retention_purge_interval = NEVER).await;
    let a = app.signup().await;
    let b = app.signup().await;
    app.put(
        "/v1/retention-policy",
        Some(&a.token),
        &json!({"detections_days": 10, "conversions_days": 20, "attributions_days": 30,
                "invalid_events_days": 5, "max_event_age_days": 5}),
    )
    .await
    .expect(200);
    let db = app.db().await;
    // A: 23 rows past every one of its periods (more than three batches of 7), 4 inside them.
    // B keeps the defaults (395 days, 30 for invalid events): the same ages are kept there,
    // and only its own rows past 400 days go.
    for (tenant, prefix, days_old, count) in [
        (&a.tenant_id, "old", 31, 23),
        (&a.tenant_id, "new", 4, 4),
        (&b.tenant_id, "kept", 25, 6),
        (&b.tenant_id, "old", 400, 9),
    ] {
        seed(&db, tenant, prefix, days_old, count).await;
    }
    // A's rows between the shorter and the longer periods: expired for some classes only.
    seed(&db, &a.tenant_id, "mid", 15, 5).await;

    let outcomes = purge::run_once(&db, 7).await.expect("a purge run");
    // Detections (10 d) and invalid events (5 d) lose the 15-day rows too; conversions
    // (20 d) and attributions (30 d) keep them.
    assert_eq!(deleted_of(&outcomes, tenant_id(&a)), [28, 23, 23, 28]);
    assert_eq!(deleted_of(&outcomes, tenant_id(&b)), [9, 9, 9, 9]);
    assert_eq!(counts(&app, &a.tenant_id).await, [4, 9, 9, 4]);
    assert_eq!(counts(&app, &b.tenant_id).await, [6, 6, 6, 6]);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM detections WHERE tenant_id = '{}' AND event_id LIKE 'new-%'",
            a.tenant_id
        ))
        .await,
        4,
        "the rows inside the period are the ones kept"
    );
    // The report rollup stayed exact through its delete trigger.
    for tenant in [&a.tenant_id, &b.tenant_id] {
        assert_eq!(
            app.count(&format!(
                "SELECT coalesce(sum(detections), 0)::bigint FROM report_detection_days \
                 WHERE tenant_id = '{tenant}'"
            ))
            .await,
            app.count(&format!(
                "SELECT count(*) FROM detections WHERE tenant_id = '{tenant}'"
            ))
            .await
        );
    }

    // The run is recorded per tenant and class.
    let recorded = |tenant: &str, column: &str| {
        format!("SELECT {column} FROM retention_purges WHERE tenant_id = '{tenant}' ORDER BY class")
    };
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM retention_purges WHERE tenant_id = '{}' \
             AND last_run_at > now() - interval '1 minute'",
            a.tenant_id
        ))
        .await,
        4
    );
    assert_eq!(
        app.count(&format!(
            "SELECT last_run_deleted FROM retention_purges WHERE tenant_id = '{}' \
             AND class = 'detections'",
            a.tenant_id
        ))
        .await,
        28
    );

    // Idempotent: nothing more has expired, so nothing more goes, and the record says so.
    let again = purge::run_once(&db, 7).await.expect("a second purge run");
    assert_eq!(deleted_of(&again, tenant_id(&a)), [0; 4]);
    assert_eq!(deleted_of(&again, tenant_id(&b)), [0; 4]);
    assert_eq!(counts(&app, &a.tenant_id).await, [4, 9, 9, 4]);
    assert_eq!(counts(&app, &b.tenant_id).await, [6, 6, 6, 6]);
    assert_eq!(
        app.count(&format!(
            "SELECT sum(last_run_deleted)::bigint FROM ({}) r",
            recorded(&a.tenant_id, "last_run_deleted")
        ))
        .await,
        0
    );
    assert_eq!(
        app.count(&format!(
            "SELECT sum(total_deleted)::bigint FROM ({}) r",
            recorded(&a.tenant_id, "total_deleted")
        ))
        .await,
        28 + 23 + 23 + 28
    );
    db.close().await.ok();
}

#[actix_web::test]
async fn a_tenant_another_process_is_purging_is_skipped_until_its_lock_is_free() {
    let app = TestApp::spawn_with(|settings| settings.retention_purge_interval = NEVER).await;
    let a = app.signup().await;
    let db = app.db().await;
    seed(&db, &a.tenant_id, "old", 400, 3).await;
    let tenant = tenant_id(&a);

    // "Another process": a session of its own holding the tenant's purge lock.
    use sqlx::Connection;
    let url = app
        .settings
        .database_url
        .as_ref()
        .expect("a database")
        .expose();
    let mut other = sqlx::PgConnection::connect(url).await.expect("connect");
    let key = (PURGE_LOCK_CLASS, purge_lock_key(tenant));
    sqlx::query("SELECT pg_advisory_lock($1, $2)")
        .bind(key.0)
        .bind(key.1)
        .execute(&mut other)
        .await
        .expect("take the lock");
    let outcome = purge::purge_tenant(&db, tenant, 100, chrono::Utc::now())
        .await
        .expect("a purge attempt");
    assert_eq!(outcome, TenantPurge::Skipped);
    assert_eq!(counts(&app, &a.tenant_id).await, [3, 3, 3, 3]);
    assert_eq!(app.count("SELECT count(*) FROM retention_purges").await, 0);

    sqlx::query("SELECT pg_advisory_unlock($1, $2)")
        .bind(key.0)
        .bind(key.1)
        .execute(&mut other)
        .await
        .expect("release the lock");
    other.close().await.ok();
    let outcome = purge::purge_tenant(&db, tenant, 100, chrono::Utc::now())
        .await
        .expect("a purge");
    assert_eq!(
        outcome,
        TenantPurge::Purged(DataClass::ALL.map(|class| (class, 3)))
    );
    assert_eq!(counts(&app, &a.tenant_id).await, [0; 4]);
    // The lock was released. `pg_locks` is cluster-wide, and tests running beside this one
    // purge their own databases, so only this database's lock counts.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND classid = {PURGE_LOCK_CLASS}"
        ))
        .await,
        0
    );
    db.close().await.ok();
}

#[actix_web::test]
async fn the_background_job_purges_on_its_own_every_interval() {
    let app = TestApp::spawn_with(|settings| {
        settings.retention_purge_interval = Duration::from_secs(1);
        settings.retention_purge_batch_rows = 4;
    })
    .await;
    let a = app.signup().await;
    let db = app.db().await;
    seed(&db, &a.tenant_id, "old", 400, 10).await;
    seed(&db, &a.tenant_id, "new", 1, 2).await;
    support::eventually("the background purge", || async {
        (counts(&app, &a.tenant_id).await == [2, 2, 2, 2]).then_some(())
    })
    .await;
    support::eventually("the recorded run", || async {
        (app.count(&format!(
            "SELECT count(*) FROM retention_purges WHERE tenant_id = '{}' AND total_deleted = 10",
            a.tenant_id
        ))
        .await
            == 4)
            .then_some(())
    })
    .await;
    db.close().await.ok();
}

#[actix_web::test]
async fn the_embedded_database_is_purged_by_the_same_statements() {
    let app = TestApp::spawn_embedded().await;
    let a = app.signup().await;
    let url = format!(
        "sqlite://{}",
        app.settings.data_dir.join("sightline.db").display()
    );
    let db = sea_orm::Database::connect(url)
        .await
        .expect("open the SQLite file");
    // Times bound as parameters, so they are stored the way the server stores them (SQLite
    // compares them as text).
    for (id, days_old) in [("old-1", 400), ("old-2", 401), ("kept", 2)] {
        let time = chrono::Utc::now() - chrono::Duration::days(days_old);
        for sql in [
            "INSERT INTO detections (tenant_id, event_id, event_time, received_time, consent, \
                 \"keys\", is_test, label, confidence, model_version, entity_id, filtered) \
             SELECT id, ?1, ?2, ?2, 'granted', NULL, false, 'barcode', 0.9, 'v3', 'sku-42', \
                 false FROM tenants",
            "INSERT INTO attributions (tenant_id, goal_id, conversion_event_id, \
                 detection_event_id, kind, conversion_time, detection_time, label, entity_id, \
                 model_version, value, is_test, created_at) \
             SELECT id, id, 'c-' || ?1, ?1, 'assisted', ?2, ?2, 'barcode', 'sku-42', 'v3', 1, \
                 false, ?2 FROM tenants",
        ] {
            db.execute_raw(sea_orm::Statement::from_sql_and_values(
                sea_orm::DbBackend::Sqlite,
                sql,
                [id.into(), time.into()],
            ))
            .await
            .unwrap_or_else(|err| panic!("{sql}: {err}"));
        }
    }
    let outcomes = purge::run_once(&db, 1).await.expect("a purge run");
    assert_eq!(deleted_of(&outcomes, tenant_id(&a)), [2, 0, 2, 0]);
    let again = purge::run_once(&db, 1).await.expect("a second run");
    assert_eq!(deleted_of(&again, tenant_id(&a)), [0; 4]);
    db.close().await.ok();
}
