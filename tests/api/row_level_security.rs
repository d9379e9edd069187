//! Defence in depth on PostgreSQL: row-level security on every tenant-owned table, and the
//! request paths really run under it (migration 000007, `storage::scoped`).

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};
use serde_json::json;
use support::TestApp;
use support::fixtures::{batch, conversion, detection};

async fn rows(db: &impl ConnectionTrait, sql: &str) -> Vec<sea_orm::QueryResult> {
    db.query_all_raw(Statement::from_string(DbBackend::Postgres, sql.to_owned()))
        .await
        .unwrap_or_else(|err| panic!("{sql}: {err}"))
}

async fn number(db: &impl ConnectionTrait, sql: &str) -> i64 {
    rows(db, sql).await[0]
        .try_get_by_index(0)
        .expect("a number")
}

/// Every table with a `tenant_id` column, found in the catalogue (so a table added later is
/// checked too), and `tenants`.
async fn tenant_tables(db: &DatabaseConnection) -> Vec<String> {
    let mut tables: Vec<String> = rows(
        db,
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' \
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1",
    )
    .await
    .iter()
    .map(|row| row.try_get_by_index(0).expect("a name"))
    .collect();
    tables.push("tenants".into());
    tables
}

#[actix_web::test]
async fn every_tenant_table_has_row_level_security_enabled_forced_and_both_policies() {
    let app = TestApp::spawn().await;
    let db = app.db().await;
    let tables = tenant_tables(&db).await;
    assert!(tables.len() >= 12, "tenant tables found: {tables:?}");
    for table in &tables {
        let row = &rows(
            &db,
            &format!(
                "SELECT relrowsecurity, relforcerowsecurity FROM pg_class \
                 WHERE relname = '{table}' AND relnamespace = 'public'::regnamespace"
            ),
        )
        .await[0];
        let enabled: bool = row.try_get_by_index(0).unwrap();
        let forced: bool = row.try_get_by_index(1).unwrap();
        assert!(
            enabled && forced,
            "{table}: enabled {enabled}, forced {forced}"
        );
        let policies: Vec<String> = rows(
            &db,
            &format!(
                "SELECT policyname || ' to ' || array_to_string(roles, ',') FROM pg_policies \
                 WHERE schemaname = 'public' AND tablename = '{table}' ORDER BY 1"
            ),
        )
        .await
        .iter()
        .map(|row| row.try_get_by_index(0).unwrap())
        .collect();
        assert_eq!(
            policies,
            [
                "background_jobs to sightline_worker",
                "tenant_isolation to sightline_app"
            ],
            "{table}"
        );
    }
}

/// The request role, with a tenant named, sees and writes only that tenant's rows, and with
/// none named sees nothing; the setting ends with the transaction.
#[actix_web::test]
async fn the_request_role_sees_and_writes_only_the_named_tenant() {
    let app = TestApp::spawn().await;
    let a = app.signup().await;
    let b = app.signup().await;
    for owner in [&a, &b] {
        app.create_goal(
            &owner.token,
            &json!({"name": "g", "detection_labels": ["barcode"], "conversion_name": "purchase",
                    "key": "session_token", "window_seconds": 60}),
        )
        .await;
    }
    let db = app.db().await;
    let as_request = |tenant: &str| {
        format!(
            "SELECT set_config('role', 'sightline_app', true), \
             set_config('sightline.tenant_id', '{tenant}', true)"
        )
    };

    let txn = db.begin().await.unwrap();
    rows(&txn, &as_request(&a.tenant_id)).await;
    assert_eq!(number(&txn, "SELECT count(*) FROM goals").await, 1);
    assert_eq!(
        number(
            &txn,
            &format!(
                "SELECT count(*) FROM goals WHERE tenant_id = '{}'",
                b.tenant_id
            )
        )
        .await,
        0
    );
    assert_eq!(number(&txn, "SELECT count(*) FROM tenants").await, 1);
    let planted = txn
        .execute_unprepared(&format!(
            "UPDATE goals SET name = 'planted' WHERE tenant_id = '{}'",
            b.tenant_id
        ))
        .await
        .unwrap();
    assert_eq!(
        planted.rows_affected(),
        0,
        "another tenant's rows are invisible"
    );
    let err = txn
        .execute_unprepared(&format!(
            "INSERT INTO retention_purges \
             (tenant_id, class, last_run_at, last_run_deleted, total_deleted) \
             VALUES ('{}', 'planted', now(), 0, 0)",
            b.tenant_id
        ))
        .await
        .expect_err("a row for another tenant is refused");
    assert!(err.to_string().contains("row-level security"), "{err}");
    txn.rollback().await.unwrap();

    let txn = db.begin().await.unwrap();
    rows(&txn, "SELECT set_config('role', 'sightline_app', true)").await;
    assert_eq!(number(&txn, "SELECT count(*) FROM goals").await, 0);
    txn.commit().await.unwrap();
    // Back outside the transaction: the login role again, which sees both.
    assert_eq!(number(&db, "SELECT count(*) FROM goals").await, 2);
    assert_eq!(
        rows(&db, "SELECT current_setting('sightline.tenant_id', true)").await[0]
            .try_get_by_index::<Option<String>>(0)
            .unwrap()
            .unwrap_or_default(),
        ""
    );
}

/// Each family's requests read through the policy: with the policy made to hide every row,
/// the same requests find nothing, though each query also filters by tenant.
#[actix_web::test]
async fn request_paths_read_through_the_tenant_policy() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let goal_id = app
        .create_goal(
            &owner.token,
            &json!({"name": "g", "detection_labels": ["barcode"], "conversion_name": "purchase",
                    "key": "session_token", "window_seconds": 3600}),
        )
        .await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest", "read"]).await;
    app.post(
        "/v1/events",
        Some(&key),
        &batch(vec![detection("d-1", "s-1"), conversion("c-1", "s-1")]),
    )
    .await
    .expect(202);
    app.await_attributions(&key, 1).await;

    let families: [(&str, String, &str); 6] = [
        ("goals", "/v1/goals".into(), "/goals"),
        ("goals", format!("/v1/goals/{goal_id}"), ""),
        ("api_keys", "/v1/api-keys".into(), "/api_keys"),
        ("memberships", "/v1/members".into(), "/members"),
        ("attributions", "/v1/attributions".into(), "/attributions"),
        ("audit_log", "/v1/audit-log".into(), "/entries"),
    ];
    let db = app.db().await;
    for (table, path, list) in &families {
        let before = app.get(path, Some(&owner.token)).await;
        assert_eq!(before.status, 200, "{path}: {}", before.text);
        if !list.is_empty() {
            let shown = before
                .body
                .pointer(list)
                .and_then(|v| v.as_array())
                .map_or(0, Vec::len);
            assert!(shown > 0, "{path} shows rows before: {}", before.text);
        }
        db.execute_unprepared(&format!(
            "ALTER POLICY tenant_isolation ON {table} USING (false)"
        ))
        .await
        .unwrap();
        let after = app.get(path, Some(&owner.token)).await;
        if list.is_empty() {
            assert_eq!(after.status, 404, "{path}: {}", after.text);
        } else {
            assert_eq!(after.status, 200, "{path}: {}", after.text);
            let shown = after
                .body
                .pointer(list)
                .and_then(|v| v.as_array())
                .map(Vec::len);
            assert_eq!(
                shown,
                Some(0),
                "{path} under a policy hiding every row: {}",
                after.text
            );
        }
        db.execute_unprepared(&format!(
            "ALTER POLICY tenant_isolation ON {table} \
             USING (tenant_id = NULLIF(current_setting('sightline.tenant_id', true), '')::uuid)"
        ))
        .await
        .unwrap();
    }

    // The report reads attributions and the rollup through it too.
    let report = app
        .get("/v1/reports/labels", Some(&key))
        .await
        .expect(200)
        .body;
    assert_eq!(report["totals"]["matched_conversions"], 1, "{report}");
    db.execute_unprepared("ALTER POLICY tenant_isolation ON attributions USING (false)")
        .await
        .unwrap();
    let hidden = app
        .get("/v1/reports/labels", Some(&key))
        .await
        .expect(200)
        .body;
    assert_eq!(hidden["totals"]["matched_conversions"], 0, "{hidden}");
}
