//! The retention policy: read and changed through the API, validated as a whole, audit-logged,
//! and applied by ingestion (the oldest event accepted) and matching (the horizon) at once.

use serde_json::{Value, json};
use support::TestApp;
use support::fixtures::{batch, conversion, detection, time_ago};

const DAY: i64 = 86_400;

fn policy(max_event_age_days: u16) -> Value {
    json!({"detections_days": 90, "conversions_days": 120, "attributions_days": 60,
           "invalid_events_days": 14, "max_event_age_days": max_event_age_days})
}

#[actix_web::test]
async fn a_new_tenant_has_the_default_periods_and_an_owner_replaces_them() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let defaults = app
        .get("/v1/retention-policy", Some(&owner.token))
        .await
        .expect(200)
        .body;
    assert_eq!(
        defaults,
        json!({"detections_days": 395, "conversions_days": 395, "attributions_days": 395,
               "invalid_events_days": 30, "max_event_age_days": 7})
    );

    let answer = app
        .put("/v1/retention-policy", Some(&owner.token), &policy(14))
        .await
        .expect(200);
    assert_eq!(answer.body, policy(14));
    let read = app.get("/v1/retention-policy", Some(&owner.token)).await;
    assert_eq!(read.expect(200).body, policy(14));
    assert_eq!(
        app.count(
            "SELECT count(*) FROM audit_log WHERE action = 'retention_policy.update' \
             AND (\"before\"->>'max_event_age_days') = '7' AND (\"after\"->>'max_event_age_days') = '14'"
        )
        .await,
        1
    );
}

#[actix_web::test]
async fn an_invalid_policy_lists_every_problem_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let response = app
        .put(
            "/v1/retention-policy",
            Some(&owner.token),
            &json!({"detections_days": 0, "conversions_days": 4000, "attributions_days": "60",
                    "invalid_events_days": 14, "max_event_age_days": 7, "forever": true}),
        )
        .await
        .expect(400);
    assert_eq!(response.error_code(), "invalid_fields");
    let fields: Vec<&str> = response.body["error"]["errors"]
        .as_array()
        .expect("a list of problems")
        .iter()
        .map(|p| p["field"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        fields,
        [
            "forever",
            "detections_days",
            "conversions_days",
            "attributions_days"
        ]
    );

    // An event may not be accepted older than what it would match is kept.
    let too_late = app
        .put("/v1/retention-policy", Some(&owner.token), &policy(61))
        .await
        .expect(400);
    assert_eq!(
        too_late.body["error"]["errors"][0]["field"],
        "max_event_age_days"
    );

    let read = app.get("/v1/retention-policy", Some(&owner.token)).await;
    assert_eq!(read.expect(200).body["detections_days"], 395);
}

#[actix_web::test]
async fn analysts_read_the_policy_only_owners_and_admins_change_it() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let (_, analyst) = app.add_member(&owner.token, "analyst").await;
    let (_, viewer) = app.add_member(&owner.token, "viewer").await;
    let (_, admin) = app.add_member(&owner.token, "admin").await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest", "read"]).await;

    app.get("/v1/retention-policy", Some(&analyst))
        .await
        .expect(200);
    app.get("/v1/retention-policy", Some(&viewer))
        .await
        .expect(403);
    app.get("/v1/retention-policy", Some(&key))
        .await
        .expect(403);
    app.get("/v1/retention-policy", None).await.expect(401);
    // The role is checked before the body: a bad body from an analyst is still a 403.
    app.put("/v1/retention-policy", Some(&analyst), &json!({}))
        .await
        .expect(403);
    app.put("/v1/retention-policy", Some(&admin), &policy(7))
        .await
        .expect(200);
}

#[actix_web::test]
async fn changing_one_policy_keeps_the_other() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    app.put("/v1/retention-policy", Some(&owner.token), &policy(10))
        .await
        .expect(200);
    let consent = json!({"default": "denied", "strip_keys_without_consent": true});
    app.put("/v1/consent-policy", Some(&owner.token), &consent)
        .await
        .expect(200);
    let retention = app.get("/v1/retention-policy", Some(&owner.token)).await;
    assert_eq!(retention.expect(200).body, policy(10));
    app.put("/v1/retention-policy", Some(&owner.token), &policy(7))
        .await
        .expect(200);
    let kept = app.get("/v1/consent-policy", Some(&owner.token)).await;
    assert_eq!(kept.expect(200).body, consent);
}

#[actix_web::test]
async fn one_tenants_policy_never_applies_to_another() {
    let app = TestApp::spawn().await;
    let tenant_a = app.signup().await;
    let tenant_b = app.signup().await;
    let (_, key_a) = app.create_api_key(&tenant_a.token, &["ingest"]).await;
    app.put("/v1/retention-policy", Some(&tenant_b.token), &policy(30))
        .await
        .expect(200);

    let read = app.get("/v1/retention-policy", Some(&tenant_a.token)).await;
    assert_eq!(read.expect(200).body["max_event_age_days"], 7);
    let mut old = detection("d-20-days", "s");
    old["event_time"] = json!(time_ago(20 * DAY));
    let answer = app
        .post("/v1/events", Some(&key_a), &batch(vec![old]))
        .await;
    assert_eq!(
        answer.expect(202).body["results"][0]["errors"][0]["code"],
        "too_old"
    );
}

/// A longer `max_event_age_days` admits older events at once, and matching takes them in
/// even into a session that was already in memory under the shorter horizon.
#[actix_web::test]
async fn a_longer_event_age_admits_and_matches_older_events_at_once() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest", "read"]).await;
    app.create_goal(
        &owner.token,
        &json!({"name": "Scan to purchase", "detection_labels": ["barcode"],
                "conversion_name": "purchase", "key": "session_token", "window_seconds": 3600}),
    )
    .await;
    // The session is in memory before the change.
    app.post(
        "/v1/events",
        Some(&key),
        &batch(vec![conversion("c-now", "s")]),
    )
    .await
    .expect(202);

    let mut old_detection = detection("d-old", "s");
    old_detection["event_time"] = json!(time_ago(20 * DAY));
    let mut old_conversion = conversion("c-old", "s");
    old_conversion["event_time"] = json!(time_ago(20 * DAY - 600));
    let refused = app
        .post(
            "/v1/events",
            Some(&key),
            &batch(vec![old_detection.clone()]),
        )
        .await;
    assert_eq!(refused.expect(202).body["results"][0]["status"], "rejected");

    app.put("/v1/retention-policy", Some(&owner.token), &policy(30))
        .await
        .expect(200);
    let answer = app
        .post(
            "/v1/events",
            Some(&key),
            &batch(vec![old_detection, old_conversion]),
        )
        .await
        .expect(202);
    assert_eq!(answer.body["accepted"], 2);
    app.await_attributions(&key, 1).await;
    let attributions = app.get("/v1/attributions", Some(&key)).await.expect(200);
    let only = &attributions.body["attributions"][0];
    assert_eq!(only["conversion_event_id"], "c-old");
    assert_eq!(only["detection_event_id"], "d-old");
    assert_eq!(only["kind"], "direct");
}
