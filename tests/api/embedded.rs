//! The embedded default (SQLite, no Redis) runs the same code: a smoke test of the main paths.

use serde_json::json;
use support::TestApp;

#[actix_web::test]
async fn the_embedded_setup_serves_accounts_keys_and_members() {
    let app = TestApp::spawn_embedded().await;
    let ready = app.get("/readyz", None).await.expect(200);
    assert_eq!(ready.body["checks"]["redis"], "not_configured");

    let owner = app.signup().await;
    app.login(&owner.email, &owner.password).await;
    let (key_id, key) = app.create_api_key(&owner.token, &["ingest"]).await;
    app.get("/v1/api-keys", Some(&key)).await.expect(403);
    app.delete(&format!("/v1/api-keys/{key_id}"), Some(&owner.token))
        .await
        .expect(204);
    app.get("/v1/api-keys", Some(&key)).await.expect(401);

    let (member_id, member) = app.add_member(&owner.token, "admin").await;
    app.get("/v1/members", Some(&member)).await.expect(200);
    app.patch(
        &format!("/v1/members/{}", owner.user_id),
        Some(&owner.token),
        &json!({"role": "viewer"}),
    )
    .await
    .expect(409);
    app.delete(&format!("/v1/members/{member_id}"), Some(&owner.token))
        .await
        .expect(204);

    let goal = json!({"name": "g", "detection_labels": ["barcode"], "conversion_name": "purchase",
                      "key": "session_token", "window_seconds": 60});
    let goal_id = app.create_goal(&owner.token, &goal).await;
    app.send(
        actix_web::http::Method::PUT,
        &format!("/v1/goals/{goal_id}"),
        Some(&owner.token),
        Some(&goal),
    )
    .await
    .expect(200);
    assert_eq!(
        app.get("/v1/goals", Some(&owner.token))
            .await
            .expect(200)
            .body["goals"][0]["id"],
        goal_id.as_str()
    );

    let other = app.signup().await;
    app.get(&format!("/v1/goals/{goal_id}"), Some(&other.token))
        .await
        .expect(404);
    app.delete(&format!("/v1/api-keys/{key_id}"), Some(&other.token))
        .await
        .expect(404);

    for _ in 0..app.settings.login_max_failures_per_account {
        app.post(
            "/v1/auth/login",
            None,
            &json!({"email": owner.email, "password": "wrong password"}),
        )
        .await
        .expect(401);
    }
    app.post(
        "/v1/auth/login",
        None,
        &json!({"email": owner.email, "password": owner.password}),
    )
    .await
    .expect(429);
}

#[actix_web::test]
async fn the_embedded_setup_ingests_events_idempotently() {
    use support::fixtures::{batch, conversion, detection};
    let app = TestApp::spawn_embedded().await;
    let owner = app.signup().await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest", "read"]).await;
    let mut bad = detection("bad", "s");
    bad["confidence"] = json!(4);
    let events = batch(vec![
        detection("d-1", "s"),
        detection("d-1", "s"),
        conversion("c-1", "s"),
        bad,
    ]);
    let first = app
        .post("/v1/events", Some(&key), &events)
        .await
        .expect(202);
    assert_eq!(
        (
            first.body["accepted"].as_u64(),
            first.body["duplicates"].as_u64(),
            first.body["rejected"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    let retry = app
        .post("/v1/events", Some(&key), &events)
        .await
        .expect(202);
    // The rejected event is rejected again (it was never accepted); the others are duplicates.
    assert_eq!(
        (
            retry.body["accepted"].as_u64(),
            retry.body["duplicates"].as_u64(),
            retry.body["rejected"].as_u64()
        ),
        (Some(0), Some(3), Some(1))
    );
    let log = app
        .get("/v1/invalid-events", Some(&key))
        .await
        .expect(200)
        .body;
    assert_eq!(log["invalid_events"].as_array().unwrap().len(), 2);
    assert_eq!(log["invalid_events"][0]["payload"]["event_id"], "bad");

    app.send(
        actix_web::http::Method::PUT,
        "/v1/consent-policy",
        Some(&owner.token),
        Some(&json!({"default": "denied", "strip_keys_without_consent": true})),
    )
    .await
    .expect(200);
    app.post(
        "/v1/events",
        Some(&key),
        &batch(vec![detection("d-2", "s")]),
    )
    .await
    .expect(202);
    let validated = app
        .post(
            "/v1/events/validate",
            Some(&key),
            &batch(vec![detection("d-2", "s"), detection("d-3", "s")]),
        )
        .await
        .expect(202);
    assert_eq!(validated.body["results"][0]["status"], "duplicate");
    assert_eq!(validated.body["results"][1]["status"], "accepted");
}

#[actix_web::test]
async fn the_embedded_setup_matches_explains_and_re_evaluates() {
    let app = TestApp::spawn_embedded().await;
    let owner = app.signup().await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest", "read"]).await;
    let events = support::fixtures::batch(vec![
        support::fixtures::detection("d-1", "s-1"),
        support::fixtures::conversion("c-1", "s-1"),
    ]);
    // Stored before the goal exists: the goal's creation re-evaluates them.
    app.post("/v1/events", Some(&key), &events)
        .await
        .expect(202);
    let mut goal = json!({"name": "g", "detection_labels": ["barcode"], "conversion_name": "purchase",
                          "key": "session_token", "window_seconds": 3600});
    let goal_id = app.create_goal(&owner.token, &goal).await;
    support::eventually("the attribution", || async {
        let rows = attributions(&app, &key).await;
        (rows.as_array().map(Vec::len) == Some(1)).then_some(())
    })
    .await;
    let explained = app
        .get("/v1/conversions/c-1/explain", Some(&key))
        .await
        .expect(200)
        .body;
    assert_eq!(explained["goals"][0]["candidates"][0]["verdict"], "direct");

    goal["min_confidence"] = json!(0.99);
    app.send(
        actix_web::http::Method::PUT,
        &format!("/v1/goals/{goal_id}"),
        Some(&owner.token),
        Some(&goal),
    )
    .await
    .expect(200);
    support::eventually("no attribution under the stricter goal", || async {
        (attributions(&app, &key).await == json!([])).then_some(())
    })
    .await;
}

async fn attributions(app: &TestApp, key: &str) -> serde_json::Value {
    app.get("/v1/attributions?conversion_event_id=c-1", Some(key))
        .await
        .expect(200)
        .body["attributions"]
        .clone()
}
