//! `DELETE /v1/identities/{key}/{value}`: an identity's events, attributions and invalid
//! events are erased, for that tenant only; what remains is matched again as if the erased
//! events had never come; nothing brings them back (resident sessions, hot copies, recovery).

use serde_json::{Value, json};
use support::fixtures::{batch, time_ago};
use support::{Account, TestApp, eventually};

const SERVER: &str = env!("CARGO_BIN_EXE_sightline-server");

/// A value with a space, a `%` and non-ASCII letters, and its path form.
const ODD_VALUE: &str = "Jörg 100% ü";
const ODD_VALUE_IN_PATH: &str = "J%C3%B6rg%20100%25%20%C3%BC";

fn goal() -> Value {
    json!({"name": "Scan to purchase", "detection_labels": ["barcode"], "conversion_name": "purchase",
           "key": "session_token", "window_seconds": 3600})
}

fn detection(event_id: &str, keys: Value, seconds_ago: i64) -> Value {
    json!({"type": "detection", "event_id": event_id, "event_time": time_ago(seconds_ago),
           "keys": keys, "label": "barcode", "confidence": 0.9,
           "model_version": "v3", "entity_id": format!("sku-{event_id}")})
}

fn conversion(event_id: &str, keys: Value, seconds_ago: i64) -> Value {
    json!({"type": "conversion", "event_id": event_id, "event_time": time_ago(seconds_ago),
           "keys": keys, "name": "purchase", "value": 10})
}

struct Tenant {
    owner: Account,
    key: String,
}

async fn tenant_with_goal(app: &TestApp) -> Tenant {
    let owner = app.signup().await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest", "read"]).await;
    app.create_goal(&owner.token, &goal()).await;
    Tenant { owner, key }
}

async fn send(app: &TestApp, key: &str, events: Vec<Value>) -> Value {
    app.post("/v1/events", Some(key), &batch(events))
        .await
        .expect(202)
        .body
}

async fn erase(app: &TestApp, token: &str, key: &str, value_in_path: &str) -> Value {
    app.delete(
        &format!("/v1/identities/{key}/{value_in_path}"),
        Some(token),
    )
    .await
    .expect(200)
    .body
}

fn deleted(detections: u64, conversions: u64, attributions: u64, invalid_events: u64) -> Value {
    json!({"deleted": {"detections": detections, "conversions": conversions,
                       "attributions": attributions, "invalid_events": invalid_events}})
}

/// Rows of `table` for the tenant, optionally narrowed by `and`.
async fn rows(app: &TestApp, tenant: &Account, table: &str, and: &str) -> i64 {
    app.count(&format!(
        "SELECT count(*) FROM {table} WHERE tenant_id = '{}' {and}",
        tenant.tenant_id
    ))
    .await
}

/// The same events for a tenant: an identity (`user_id` = [`ODD_VALUE`]) on s-1 with its
/// purchase, and another user on s-2 with theirs; one invalid event of each user.
async fn send_two_users(app: &TestApp, t: &Tenant) {
    let erased = json!({"session_token": "s-1", "user_id": ODD_VALUE});
    let kept = json!({"session_token": "s-2", "user_id": "u-2"});
    let answer = send(
        app,
        &t.key,
        vec![
            detection("d-erased", erased.clone(), 50),
            conversion("c-erased", erased.clone(), 10),
            detection("d-kept", kept.clone(), 50),
            conversion("c-kept", kept.clone(), 10),
            // Rejected (confidence out of range), each with a user's keys.
            json!({"type": "detection", "event_id": "bad-erased", "event_time": time_ago(5),
                   "keys": {"user_id": ODD_VALUE}, "label": "barcode", "confidence": 7,
                   "model_version": "v3", "entity_id": "sku"}),
            json!({"type": "detection", "event_id": "bad-kept", "event_time": time_ago(5),
                   "keys": {"user_id": "u-2"}, "label": "barcode", "confidence": 7,
                   "model_version": "v3", "entity_id": "sku"}),
        ],
    )
    .await;
    assert_eq!(answer["rejected"], 2, "{answer}");
    app.await_credits(&t.key, "c-erased", &[("d-erased", "direct")])
        .await;
    app.await_credits(&t.key, "c-kept", &[("d-kept", "direct")])
        .await;
}

#[actix_web::test]
async fn erasing_an_identity_deletes_its_rows_for_that_tenant_only_and_answers_the_counts() {
    let app = TestApp::spawn().await;
    let a = tenant_with_goal(&app).await;
    let b = tenant_with_goal(&app).await;
    send_two_users(&app, &a).await;
    send_two_users(&app, &b).await;

    assert_eq!(
        erase(&app, &a.owner.token, "user_id", ODD_VALUE_IN_PATH).await,
        deleted(1, 1, 1, 1)
    );
    for table in [
        "detections",
        "conversions",
        "attributions",
        "invalid_events",
    ] {
        assert_eq!(rows(&app, &a.owner, table, "").await, 1, "{table} of A");
        assert_eq!(rows(&app, &b.owner, table, "").await, 2, "{table} of B");
    }
    assert_eq!(
        rows(&app, &a.owner, "detections", "AND event_id = 'd-kept'").await,
        1
    );
    assert_eq!(
        rows(&app, &a.owner, "conversions", "AND event_id = 'c-kept'").await,
        1
    );
    assert_eq!(
        rows(
            &app,
            &a.owner,
            "invalid_events",
            "AND event_id = 'bad-kept'"
        )
        .await,
        1
    );
    assert_eq!(
        rows(
            &app,
            &a.owner,
            "report_detection_days",
            "AND entity_id = 'sku-d-erased'"
        )
        .await,
        0,
        "the report rollup forgets the detection too"
    );
    assert_eq!(
        app.credits(&a.key, "c-kept").await,
        support::pairs(&[("d-kept", "direct")])
    );
    assert_eq!(
        app.credits(&b.key, "c-erased").await,
        support::pairs(&[("d-erased", "direct")]),
        "the other tenant's identical value is untouched"
    );

    // A second call finds nothing.
    assert_eq!(
        erase(&app, &a.owner.token, "user_id", ODD_VALUE_IN_PATH).await,
        deleted(0, 0, 0, 0)
    );

    // The audit log names who, the key and the counts, never the value.
    let log = app
        .get("/v1/audit-log", Some(&a.owner.token))
        .await
        .expect(200);
    let entry = &log.body["entries"][1];
    assert_eq!(entry["action"], "identity.erase");
    assert_eq!(entry["target"], "user_id");
    assert_eq!(entry["actor"]["id"], a.owner.user_id.as_str());
    assert_eq!(entry["after"]["deleted"], deleted(1, 1, 1, 1)["deleted"]);
    assert!(!log.text.contains("Jörg") && !log.text.contains("J\\u00f6rg"));
    assert_eq!(
        rows(
            &app,
            &a.owner,
            "audit_log",
            "AND after::text LIKE '%rg 100%'"
        )
        .await,
        0
    );
}

/// s-1 holds d-user (of user u-1, the latest) and d-anon, then the purchase c-1.
async fn shared_session(app: &TestApp, t: &Tenant) {
    send(
        app,
        &t.key,
        vec![
            detection("d-anon", json!({"session_token": "s-1"}), 50),
            detection(
                "d-user",
                json!({"session_token": "s-1", "user_id": "u-1"}),
                20,
            ),
            conversion("c-1", json!({"session_token": "s-1"}), 10),
        ],
    )
    .await;
    app.await_credits(
        &t.key,
        "c-1",
        &[("d-anon", "assisted"), ("d-user", "direct")],
    )
    .await;
}

/// After erasing u-1: c-1 goes to d-anon at once; later events of the session never bring
/// d-user back.
async fn erase_and_check_nothing_comes_back(app: &TestApp, t: &Tenant) {
    assert_eq!(
        erase(app, &t.owner.token, "user_id", "u-1").await,
        deleted(1, 0, 1, 0)
    );
    // Complete when answered: no waiting.
    assert_eq!(
        app.credits(&t.key, "c-1").await,
        support::pairs(&[("d-anon", "direct")])
    );

    // A detection between the two: it takes the direct credit; d-user stays gone (it would
    // be the latest, and direct, if anything still held it).
    send(
        app,
        &t.key,
        vec![detection("d-new", json!({"session_token": "s-1"}), 30)],
    )
    .await;
    app.await_credits(
        &t.key,
        "c-1",
        &[("d-anon", "assisted"), ("d-new", "direct")],
    )
    .await;
    send(
        app,
        &t.key,
        vec![conversion("c-2", json!({"session_token": "s-1"}), 1)],
    )
    .await;
    app.await_credits(
        &t.key,
        "c-2",
        &[("d-anon", "assisted"), ("d-new", "direct")],
    )
    .await;
    assert_eq!(
        rows(
            app,
            &t.owner,
            "attributions",
            "AND detection_event_id = 'd-user'"
        )
        .await,
        0
    );
    assert_eq!(
        rows(app, &t.owner, "detections", "AND event_id = 'd-user'").await,
        0
    );
}

#[actix_web::test]
async fn a_conversion_whose_direct_detection_is_erased_goes_to_the_next_one_and_stays_there() {
    let app = TestApp::spawn().await;
    let t = tenant_with_goal(&app).await;
    // The session is resident when the erasure comes.
    shared_session(&app, &t).await;
    erase_and_check_nothing_comes_back(&app, &t).await;
}

/// The session copies of the test's Redis prefix, with their contents.
fn session_copies(app: &TestApp) -> Vec<String> {
    let client = redis::Client::open(support::test_redis_url()).unwrap();
    let mut connection = client.get_connection().unwrap();
    let pattern = format!("{}:t:*:session:*", app.settings.redis_prefix);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(pattern)
        .query(&mut connection)
        .unwrap();
    keys.iter()
        .filter_map(|key| {
            redis::cmd("GET")
                .arg(key)
                .query::<Option<String>>(&mut connection)
                .unwrap()
        })
        .collect()
}

#[actix_web::test]
async fn an_erased_event_never_comes_back_from_a_hot_copy() {
    // A budget of one byte: every session leaves memory, as a hot copy, after every round.
    let app = TestApp::spawn_with(|settings| settings.matching_memory_bytes = 1).await;
    let t = tenant_with_goal(&app).await;
    shared_session(&app, &t).await;
    eventually("a hot copy holding d-user", || async {
        session_copies(&app)
            .iter()
            .any(|copy| copy.contains("d-user"))
            .then_some(())
    })
    .await;
    erase_and_check_nothing_comes_back(&app, &t).await;
    assert!(
        session_copies(&app)
            .iter()
            .all(|copy| !copy.contains("d-user")),
        "no hot copy holds the erased detection"
    );
}

#[actix_web::test]
async fn an_erased_event_is_not_brought_back_by_start_up_recovery() {
    let mut app = TestApp::spawn_process(SERVER).await;
    let t = tenant_with_goal(&app).await;
    shared_session(&app, &t).await;
    assert_eq!(
        erase(&app, &t.owner.token, "user_id", "u-1").await,
        deleted(1, 0, 1, 0)
    );
    app.kill_process();
    // As if nothing had been matched: the restart re-matches every stored event.
    app.count(
        "WITH gone AS (DELETE FROM matching_checkpoint RETURNING 1) SELECT count(*) FROM gone",
    )
    .await;
    app.restart_process(SERVER);
    send(
        &app,
        &t.key,
        vec![conversion("c-2", json!({"session_token": "s-1"}), 1)],
    )
    .await;
    app.await_credits(&t.key, "c-2", &[("d-anon", "direct")])
        .await;
    assert_eq!(
        app.credits(&t.key, "c-1").await,
        support::pairs(&[("d-anon", "direct")])
    );
    assert_eq!(
        rows(
            &app,
            &t.owner,
            "attributions",
            "AND detection_event_id = 'd-user'"
        )
        .await,
        0
    );
}

#[actix_web::test]
async fn only_owners_and_admins_erase_and_the_identity_is_checked() {
    let app = TestApp::spawn().await;
    let t = tenant_with_goal(&app).await;
    let (_, admin) = app.add_member(&t.owner.token, "admin").await;
    let (_, analyst) = app.add_member(&t.owner.token, "analyst").await;
    let (_, viewer) = app.add_member(&t.owner.token, "viewer").await;
    let path = "/v1/identities/user_id/u-1";

    app.delete(path, None).await.expect(401);
    app.delete("/v1/identities/Bad-Key/u-1", None)
        .await
        .expect(401);
    for token in [&analyst, &viewer, &t.key] {
        app.delete(path, Some(token)).await.expect(403);
        app.delete("/v1/identities/Bad-Key/u-1", Some(token))
            .await
            .expect(403);
    }
    app.delete(path, Some(&admin)).await.expect(200);

    let too_long = "x".repeat(257);
    for bad in [
        "/v1/identities/Bad-Key/u-1".to_owned(),
        "/v1/identities/1user/u-1".to_owned(),
        format!("/v1/identities/{}/u-1", "k".repeat(33)),
        "/v1/identities/user_id/".to_owned(),
        format!("/v1/identities/user_id/{too_long}"),
        "/v1/identities/user_id/%FF".to_owned(),
    ] {
        let answer = app.delete(&bad, Some(&t.owner.token)).await.expect(400);
        assert!(
            answer.body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("key")),
            "{bad}: {}",
            answer.text
        );
    }
    // 256 characters (not bytes) is the longest value, as in events.
    let longest = "ü".repeat(256);
    let encoded: String = longest.bytes().map(|b| format!("%{b:02X}")).collect();
    app.delete(
        &format!("/v1/identities/user_id/{encoded}"),
        Some(&t.owner.token),
    )
    .await
    .expect(200);
}

#[actix_web::test]
async fn a_value_with_a_slash_can_be_erased() {
    let app = TestApp::spawn().await;
    let t = tenant_with_goal(&app).await;
    send(
        &app,
        &t.key,
        vec![
            detection("d-1", json!({"order_id": "2026/12/1"}), 5),
            detection("d-2", json!({"order_id": "2026/12/2"}), 5),
        ],
    )
    .await;
    assert_eq!(
        erase(&app, &t.owner.token, "order_id", "2026%2F12%2F1").await,
        deleted(1, 0, 0, 0)
    );
    assert_eq!(
        erase(&app, &t.owner.token, "order_id", "2026/12/2").await,
        deleted(1, 0, 0, 0)
    );
    assert_eq!(rows(&app, &t.owner, "detections", "").await, 0);
}
