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

/// The attributions and explain verdicts of conversion `c-1` after `events`, under a goal
/// with `requires_consent` and the consent policy `policy`.
async fn consent_outcome(
    policy: serde_json::Value,
    requires_consent: bool,
    events: Vec<serde_json::Value>,
) -> (usize, Vec<String>) {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest", "read"]).await;
    app.create_goal(
        &owner.token,
        &json!({"name": "Scan to purchase", "detection_labels": ["barcode"],
                "conversion_name": "purchase", "key": "session_token", "window_seconds": 3600,
                "requires_consent": requires_consent}),
    )
    .await;
    app.put("/v1/consent-policy", Some(&owner.token), &policy)
        .await
        .expect(200);
    let answer = app.post("/v1/events", Some(&key), &batch(events)).await;
    assert_eq!(answer.expect(202).body["rejected"], 0);
    // Matching has seen every event once the checkpoint ("everything received before it is
    // matched") passes the last one received; only then does "no credit" mean something.
    support::eventually("the events matched", || async {
        let passed = app
            .count(
                "SELECT count(*) FROM matching_checkpoint WHERE received_before > \
                 (SELECT max(received_time) FROM conversions)",
            )
            .await;
        (passed == 1).then_some(())
    })
    .await;
    let credits = app
        .get("/v1/attributions?conversion_event_id=c-1", Some(&key))
        .await
        .expect(200)
        .body["attributions"]
        .as_array()
        .map_or(0, Vec::len);
    let explained = app
        .get("/v1/conversions/c-1/explain", Some(&key))
        .await
        .expect(200)
        .body;
    let verdicts = explained["goals"][0]["candidates"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["verdict"].as_str().unwrap_or_default().to_owned())
        .collect();
    (credits, verdicts)
}

fn pair() -> Vec<serde_json::Value> {
    vec![
        detection("d-1", "s-1"),
        support::fixtures::conversion("c-1", "s-1"),
    ]
}

#[actix_web::test]
async fn with_consent_denied_by_default_nothing_links_under_a_goal_that_requires_it() {
    // Keys kept: the detection is a candidate, refused for consent.
    let kept = json!({"default": "denied", "strip_keys_without_consent": false});
    assert_eq!(
        consent_outcome(kept.clone(), true, pair()).await,
        (0, vec!["no_consent".to_owned()])
    );
    // Keys stripped: nothing can even be found to link.
    let stripped = json!({"default": "denied", "strip_keys_without_consent": true});
    assert_eq!(
        consent_outcome(stripped.clone(), true, pair()).await,
        (0, vec![])
    );
    // A goal that does not require consent links denied events whose keys were kept, and
    // cannot link those stored without them.
    assert_eq!(
        consent_outcome(kept, false, pair()).await,
        (1, vec!["direct".to_owned()])
    );
    assert_eq!(consent_outcome(stripped, false, pair()).await, (0, vec![]));
}

#[actix_web::test]
async fn consent_sent_with_the_events_overrides_a_denying_default() {
    let mut events = pair();
    for event in &mut events {
        event["consent"] = json!("granted");
    }
    let stripped = json!({"default": "denied", "strip_keys_without_consent": true});
    assert_eq!(
        consent_outcome(stripped, true, events).await,
        (1, vec!["direct".to_owned()])
    );
}
