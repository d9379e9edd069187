//! Matching end to end: events in over HTTP, attributions and explanations out, whatever the
//! arrival order; goal changes re-evaluated.

use serde_json::{Value, json};
use support::fixtures::{batch, time_ago};
use support::{Account, TestApp, eventually};

/// Scan to purchase on the session token, one minute window, confidence 0.5.
fn goal() -> Value {
    json!({"name": "Scan to purchase", "detection_labels": ["barcode"], "conversion_name": "purchase",
           "key": "session_token", "window_seconds": 60, "min_confidence": 0.5})
}

fn detection(event_id: &str, session: &str, seconds_ago: i64) -> Value {
    json!({"type": "detection", "event_id": event_id, "event_time": time_ago(seconds_ago),
           "keys": {"session_token": session}, "label": "barcode", "confidence": 0.9,
           "model_version": "v3", "entity_id": format!("sku-{event_id}")})
}

fn conversion(event_id: &str, session: &str, seconds_ago: i64) -> Value {
    json!({"type": "conversion", "event_id": event_id, "event_time": time_ago(seconds_ago),
           "keys": {"session_token": session}, "name": "purchase", "value": 12.5})
}

struct Tenant {
    owner: Account,
    key: String,
    goal_id: String,
}

async fn tenant_with_goal(app: &TestApp) -> Tenant {
    let owner = app.signup().await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest", "read"]).await;
    let goal_id = app.create_goal(&owner.token, &goal()).await;
    Tenant {
        owner,
        key,
        goal_id,
    }
}

async fn send(app: &TestApp, key: &str, events: Vec<Value>) {
    let answer = app
        .post("/v1/events", Some(key), &batch(events))
        .await
        .expect(202);
    assert_eq!(answer.body["rejected"], 0, "{}", answer.text);
}

#[actix_web::test]
async fn the_latest_qualifying_detection_gets_the_direct_attribution() {
    let app = TestApp::spawn().await;
    let t = tenant_with_goal(&app).await;
    send(
        &app,
        &t.key,
        vec![
            detection("d-early", "s-1", 50),
            detection("d-late", "s-1", 20),
            conversion("c-1", "s-1", 10),
        ],
    )
    .await;
    app.await_credits(
        &t.key,
        "c-1",
        &[("d-early", "assisted"), ("d-late", "direct")],
    )
    .await;

    let row = app
        .get(
            &format!("/v1/attributions?goal={}", t.goal_id),
            Some(&t.key),
        )
        .await
        .expect(200)
        .body["attributions"][0]
        .clone();
    assert_eq!(row["goal_id"], t.goal_id.as_str());
    assert_eq!(row["conversion_event_id"], "c-1");
    assert_eq!(row["kind"], "direct", "the direct one is listed first");
    assert_eq!(row["detection_event_id"], "d-late");
    assert_eq!(row["label"], "barcode");
    assert_eq!(row["entity_id"], "sku-d-late");
    assert_eq!(row["model_version"], "v3");
    assert_eq!(row["value"], 12.5);
    assert!(row["conversion_time"].as_str().unwrap().ends_with('Z'));
    assert!(row["detection_time"].as_str().unwrap().ends_with('Z'));
}

#[actix_web::test]
async fn a_detection_arriving_after_its_conversion_is_matched_as_if_it_came_first() {
    let app = TestApp::spawn().await;
    let t = tenant_with_goal(&app).await;
    send(&app, &t.key, vec![conversion("c-1", "s-1", 10)]).await;
    send(&app, &t.key, vec![detection("d-early", "s-1", 50)]).await;
    app.await_credits(&t.key, "c-1", &[("d-early", "direct")])
        .await;

    // A later arrival that is closer to the conversion takes the direct credit.
    send(&app, &t.key, vec![detection("d-late", "s-1", 20)]).await;
    app.await_credits(
        &t.key,
        "c-1",
        &[("d-early", "assisted"), ("d-late", "direct")],
    )
    .await;
    assert_eq!(
        app.count("SELECT count(*) FROM attributions WHERE kind = 'direct'")
            .await,
        1
    );
}

#[actix_web::test]
async fn events_of_other_sessions_and_other_test_ness_do_not_match() {
    let app = TestApp::spawn().await;
    let t = tenant_with_goal(&app).await;
    let mut test_detection = detection("d-test", "s-1", 30);
    test_detection["test"] = json!(true);
    let mut test_conversion = conversion("c-test", "s-1", 10);
    test_conversion["test"] = json!(true);
    send(
        &app,
        &t.key,
        vec![
            detection("d-other", "s-2", 30),
            test_detection,
            detection("d-live", "s-1", 40),
            conversion("c-1", "s-1", 10),
            test_conversion,
        ],
    )
    .await;
    app.await_credits(&t.key, "c-1", &[("d-live", "direct")])
        .await;
    app.await_credits(&t.key, "c-test", &[("d-test", "direct")])
        .await;
}

#[actix_web::test]
async fn explain_gives_every_related_detection_its_verdict() {
    let app = TestApp::spawn().await;
    let t = tenant_with_goal(&app).await;
    let mut wrong_label = detection("d-label", "s-1", 30);
    wrong_label["label"] = json!("face_match");
    let mut unsure = detection("d-unsure", "s-1", 30);
    unsure["confidence"] = json!(0.2);
    let mut filtered = detection("d-filtered", "s-1", 30);
    filtered["filtered"] = json!(true);
    let mut other_key = detection("d-device", "s-other", 30);
    other_key["keys"] = json!({"session_token": "s-other", "device_id": "cam-1"});
    let mut purchase = conversion("c-1", "s-1", 10);
    purchase["keys"] = json!({"session_token": "s-1", "device_id": "cam-1"});
    send(
        &app,
        &t.key,
        vec![
            detection("d-old", "s-1", 200),
            detection("d-after", "s-1", 5),
            detection("d-direct", "s-1", 15),
            detection("d-assist", "s-1", 40),
            wrong_label,
            unsure,
            filtered,
            other_key,
            detection("d-unrelated", "s-9", 30),
            purchase,
        ],
    )
    .await;
    app.await_credits(
        &t.key,
        "c-1",
        &[("d-assist", "assisted"), ("d-direct", "direct")],
    )
    .await;

    let explanation = app
        .get("/v1/conversions/c-1/explain", Some(&t.key))
        .await
        .expect(200)
        .body;
    assert_eq!(explanation["conversion_event_id"], "c-1");
    let goals = explanation["goals"].as_array().unwrap();
    assert_eq!(goals.len(), 1);
    assert_eq!(goals[0]["goal_id"], t.goal_id.as_str());
    assert_eq!(goals[0]["name"], "Scan to purchase");
    let mut verdicts: Vec<(String, String)> = goals[0]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["detection_event_id"].as_str().unwrap().to_owned(),
                c["verdict"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    verdicts.sort();
    let expected: Vec<(String, String)> = [
        ("d-after", "after_conversion"),
        ("d-assist", "assisted"),
        ("d-device", "different_key"),
        ("d-direct", "direct"),
        ("d-filtered", "filtered"),
        ("d-label", "label_not_in_goal"),
        ("d-old", "outside_window"),
        ("d-unsure", "below_threshold"),
    ]
    .iter()
    .map(|(d, v)| ((*d).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(verdicts, expected);
    let candidate = &goals[0]["candidates"][0];
    for field in ["event_time", "label", "entity_id", "confidence"] {
        assert!(!candidate[field].is_null(), "{field} is shown");
    }

    app.get("/v1/conversions/no-such/explain", Some(&t.key))
        .await
        .expect(404);
}

#[actix_web::test]
async fn goal_changes_re_evaluate_stored_events() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest", "read"]).await;
    let mut unsure = detection("d-unsure", "s-1", 20);
    unsure["confidence"] = json!(0.55);
    send(
        &app,
        &key,
        vec![
            detection("d-sure", "s-1", 40),
            unsure,
            conversion("c-1", "s-1", 10),
        ],
    )
    .await;

    // A goal created after the events covers them.
    let created = app
        .post("/v1/goals", Some(&owner.token), &goal())
        .await
        .expect(201)
        .body;
    let goal_id = created["id"].as_str().unwrap().to_owned();
    app.await_credits(
        &key,
        "c-1",
        &[("d-sure", "assisted"), ("d-unsure", "direct")],
    )
    .await;
    let progress = eventually("re-evaluation done", || async {
        let goal = app
            .get(&format!("/v1/goals/{goal_id}"), Some(&owner.token))
            .await
            .expect(200)
            .body;
        (goal["reevaluation"]["status"] == "done").then_some(goal["reevaluation"].clone())
    })
    .await;
    assert_eq!(progress["sessions_total"], 1);
    assert_eq!(progress["sessions_done"], 1);

    // A higher threshold leaves the surer detection alone.
    let mut stricter = goal();
    stricter["min_confidence"] = json!(0.8);
    let path = format!("/v1/goals/{goal_id}");
    app.put(&path, Some(&owner.token), &stricter)
        .await
        .expect(200);
    app.await_credits(&key, "c-1", &[("d-sure", "direct")])
        .await;

    // Deactivated: nothing; reactivated: back again.
    stricter["active"] = json!(false);
    app.put(&path, Some(&owner.token), &stricter)
        .await
        .expect(200);
    app.await_credits(&key, "c-1", &[]).await;
    let explained = app
        .get("/v1/conversions/c-1/explain", Some(&key))
        .await
        .expect(200)
        .body;
    assert_eq!(
        explained["goals"],
        json!([]),
        "an inactive goal is left out of explain"
    );
    stricter["active"] = json!(true);
    app.put(&path, Some(&owner.token), &stricter)
        .await
        .expect(200);
    app.await_credits(&key, "c-1", &[("d-sure", "direct")])
        .await;

    // Deleted: its attributions go with it, and new events make none.
    app.delete(&format!("/v1/goals/{goal_id}"), Some(&owner.token))
        .await
        .expect(204);
    assert_eq!(app.credits(&key, "c-1").await, vec![]);
    send(&app, &key, vec![detection("d-new", "s-1", 12)]).await;
    actix_web::rt::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(app.count("SELECT count(*) FROM attributions").await, 0);
}

#[actix_web::test]
async fn events_sent_while_no_goal_used_their_key_count_once_one_does_again() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest", "read"]).await;
    let created = app
        .post("/v1/goals", Some(&owner.token), &goal())
        .await
        .expect(201)
        .body;
    let path = format!("/v1/goals/{}", created["id"].as_str().unwrap());
    send(
        &app,
        &key,
        vec![detection("d-1", "s-1", 40), conversion("c-1", "s-1", 10)],
    )
    .await;
    app.await_credits(&key, "c-1", &[("d-1", "direct")]).await;

    // The session stays in memory while its goal is off; a later detection comes meanwhile.
    let mut body = goal();
    body["active"] = json!(false);
    app.put(&path, Some(&owner.token), &body).await.expect(200);
    app.await_credits(&key, "c-1", &[]).await;
    send(&app, &key, vec![detection("d-2", "s-1", 20)]).await;
    body["active"] = json!(true);
    app.put(&path, Some(&owner.token), &body).await.expect(200);
    app.await_credits(&key, "c-1", &[("d-1", "assisted"), ("d-2", "direct")])
        .await;
}

#[actix_web::test]
async fn a_goal_on_another_key_uses_that_key_s_sessions() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest", "read"]).await;
    let mut by_user = goal();
    by_user["key"] = json!("user_id");
    app.post("/v1/goals", Some(&owner.token), &by_user)
        .await
        .expect(201);
    let mut seen = detection("d-1", "s-1", 40);
    seen["keys"] = json!({"session_token": "s-1", "user_id": "u-1"});
    let mut bought = conversion("c-1", "s-2", 10);
    bought["keys"] = json!({"session_token": "s-2", "user_id": "u-1"});
    send(&app, &key, vec![seen, bought]).await;
    app.await_credits(&key, "c-1", &[("d-1", "direct")]).await;
}

#[actix_web::test]
async fn viewers_and_ingest_only_keys_cannot_read_attributions_or_explanations() {
    let app = TestApp::spawn().await;
    let t = tenant_with_goal(&app).await;
    let (_, viewer) = app.add_member(&t.owner.token, "viewer").await;
    let (_, analyst) = app.add_member(&t.owner.token, "analyst").await;
    let (_, ingest_only) = app.create_api_key(&t.owner.token, &["ingest"]).await;
    send(&app, &t.key, vec![conversion("c-1", "s-1", 10)]).await;
    for path in ["/v1/attributions", "/v1/conversions/c-1/explain"] {
        app.get(path, Some(&viewer)).await.expect(403);
        app.get(path, Some(&ingest_only)).await.expect(403);
        app.get(path, None).await.expect(401);
        app.get(path, Some(&analyst)).await.expect(200);
    }
    app.get("/v1/attributions?limit=0", Some(&analyst))
        .await
        .expect(400);
    app.get("/v1/attributions?goal=not-a-uuid", Some(&analyst))
        .await
        .expect(400);
}

/// The hot copies of the tenant's evicted sessions in Redis.
fn session_copies(app: &TestApp, tenant_id: &str) -> usize {
    let client = redis::Client::open(support::test_redis_url()).unwrap();
    let mut connection = client.get_connection().unwrap();
    let pattern = format!("{}:t:{tenant_id}:session:*", app.settings.redis_prefix);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(pattern)
        .query(&mut connection)
        .unwrap();
    keys.len()
}

#[actix_web::test]
async fn sessions_pushed_out_of_memory_come_back_from_their_hot_copy() {
    // A budget of one byte: every session leaves memory after every round.
    let app = TestApp::spawn_with(|settings| settings.matching_memory_bytes = 1).await;
    let t = tenant_with_goal(&app).await;
    send(&app, &t.key, vec![detection("d-early", "s-1", 50)]).await;
    eventually("the evicted session's copy", || async {
        (session_copies(&app, &t.owner.tenant_id) == 1).then_some(())
    })
    .await;

    // Gone from the database, the detection can only come back through the copy.
    let gone = "WITH gone AS (DELETE FROM detections WHERE event_id = 'd-early' RETURNING 1) \
                SELECT count(*) FROM gone";
    assert_eq!(app.count(gone).await, 1);
    send(&app, &t.key, vec![conversion("c-1", "s-1", 10)]).await;
    app.await_credits(&t.key, "c-1", &[("d-early", "direct")])
        .await;

    // And the copy keeps what was stored: a later detection moves the direct credit once.
    send(&app, &t.key, vec![detection("d-late", "s-1", 20)]).await;
    app.await_credits(
        &t.key,
        "c-1",
        &[("d-early", "assisted"), ("d-late", "direct")],
    )
    .await;
    assert_eq!(
        app.count("SELECT count(*) FROM attributions WHERE kind = 'direct'")
            .await,
        1
    );
}
