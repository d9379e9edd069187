//! The consent policy: read and changed through the API, applied to events accepted after it.

use serde_json::json;
use support::TestApp;
use support::fixtures::{batch, detection};

#[actix_web::test]
async fn a_new_tenant_grants_by_default_and_keeps_keys() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let policy = app
        .get("/v1/consent-policy", Some(&owner.token))
        .await
        .expect(200)
        .body;
    assert_eq!(
        policy,
        json!({"default": "granted", "strip_keys_without_consent": false})
    );
}

#[actix_web::test]
async fn events_take_the_policy_in_force_when_they_are_accepted() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest"]).await;
    app.post(
        "/v1/events",
        Some(&key),
        &batch(vec![detection("before", "s")]),
    )
    .await
    .expect(202);

    let policy = json!({"default": "denied", "strip_keys_without_consent": true});
    let answer = app
        .send(
            actix_web::http::Method::PUT,
            "/v1/consent-policy",
            Some(&owner.token),
            Some(&policy),
        )
        .await
        .expect(200);
    assert_eq!(answer.body, policy);
    assert_eq!(
        app.get("/v1/consent-policy", Some(&owner.token))
            .await
            .expect(200)
            .body,
        policy
    );

    let mut granted = detection("granted", "s");
    granted["consent"] = json!("granted");
    app.post(
        "/v1/events",
        Some(&key),
        &batch(vec![detection("after", "s"), granted]),
    )
    .await
    .expect(202);

    // Accepted before the change: untouched.
    assert_eq!(app.count("SELECT count(*) FROM detections WHERE event_id = 'before' AND consent = 'granted' AND \"keys\" IS NOT NULL").await, 1);
    // No consent sent: the new default, denied, and stored without keys.
    assert_eq!(app.count("SELECT count(*) FROM detections WHERE event_id = 'after' AND consent = 'denied' AND \"keys\" IS NULL").await, 1);
    // Consent sent explicitly wins over the default.
    assert_eq!(app.count("SELECT count(*) FROM detections WHERE event_id = 'granted' AND consent = 'granted' AND \"keys\" IS NOT NULL").await, 1);
}

#[actix_web::test]
async fn denied_events_keep_their_keys_when_the_policy_does_not_strip() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest"]).await;
    let mut denied = detection("denied", "s");
    denied["consent"] = json!("denied");
    app.post("/v1/events", Some(&key), &batch(vec![denied]))
        .await
        .expect(202);
    assert_eq!(
        app.count(
            "SELECT count(*) FROM detections WHERE consent = 'denied' AND \"keys\" IS NOT NULL"
        )
        .await,
        1
    );
    assert_eq!(
        app.count(r#"SELECT count(*) FROM detections WHERE "keys" @> '{"session_token": "s"}'"#)
            .await,
        1
    );
}

#[actix_web::test]
async fn policy_changes_are_validated_audited_and_for_managers_only() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let (_, analyst) = app.add_member(&owner.token, "analyst").await;
    let (_, viewer) = app.add_member(&owner.token, "viewer").await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest", "read"]).await;
    let put = |token: Option<String>, body: serde_json::Value| {
        let app = &app;
        async move {
            app.send(
                actix_web::http::Method::PUT,
                "/v1/consent-policy",
                token.as_deref(),
                Some(&body),
            )
            .await
        }
    };
    let good = json!({"default": "denied", "strip_keys_without_consent": false});
    put(Some(analyst.clone()), good.clone()).await.expect(403);
    put(Some(key.clone()), good.clone()).await.expect(403);
    put(None, good.clone()).await.expect(401);
    app.get("/v1/consent-policy", Some(&analyst))
        .await
        .expect(200);
    app.get("/v1/consent-policy", Some(&viewer))
        .await
        .expect(403);
    app.get("/v1/consent-policy", Some(&key)).await.expect(403);

    let invalid = put(Some(owner.token.clone()), json!({"default": "maybe"}))
        .await
        .expect(400);
    let fields: Vec<&str> = invalid.body["error"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["default", "strip_keys_without_consent"]);

    put(Some(owner.token.clone()), good).await.expect(200);
    assert_eq!(app.count("SELECT count(*) FROM audit_log WHERE action = 'consent_policy.update' AND before->>'default' = 'granted' AND after->>'default' = 'denied'").await, 1);
}
