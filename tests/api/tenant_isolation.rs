//! Tenant isolation is a security boundary: another tenant's ids answer 404, exactly like ids
//! that do not exist, and lists never show another tenant's rows. Every endpoint family adds
//! its cases here.

use serde_json::json;
use support::TestApp;

#[actix_web::test]
async fn tenant_b_cannot_see_or_revoke_tenant_a_api_keys() {
    let app = TestApp::spawn().await;
    let a = app.signup().await;
    let b = app.signup().await;
    let (a_key_id, a_key) = app.create_api_key(&a.token, &["read"]).await;
    app.create_api_key(&b.token, &["read"]).await;

    let b_keys = app
        .get("/v1/api-keys", Some(&b.token))
        .await
        .expect(200)
        .body;
    assert_eq!(b_keys["api_keys"].as_array().unwrap().len(), 1);
    assert_ne!(b_keys["api_keys"][0]["id"], a_key_id.as_str());

    let cross = app
        .delete(&format!("/v1/api-keys/{a_key_id}"), Some(&b.token))
        .await
        .expect(404);
    let missing = app
        .delete(
            &format!("/v1/api-keys/{}", uuid::Uuid::new_v4()),
            Some(&b.token),
        )
        .await
        .expect(404);
    assert_eq!(cross.text, missing.text);
    // A's key still works.
    app.get("/v1/api-keys", Some(&a_key)).await.expect(403);
}

#[actix_web::test]
async fn tenant_b_cannot_see_change_or_remove_tenant_a_members() {
    let app = TestApp::spawn().await;
    let a = app.signup().await;
    let b = app.signup().await;
    let (a_member, a_member_token) = app.add_member(&a.token, "analyst").await;

    let b_members = app
        .get("/v1/members", Some(&b.token))
        .await
        .expect(200)
        .body;
    assert_eq!(b_members["members"].as_array().unwrap().len(), 1);
    assert_eq!(b_members["members"][0]["user_id"], b.user_id.as_str());

    for id in [&a_member, &a.user_id] {
        let path = format!("/v1/members/{id}");
        app.patch(&path, Some(&b.token), &json!({"role": "viewer"}))
            .await
            .expect(404);
        app.delete(&path, Some(&b.token)).await.expect(404);
    }
    // Nothing changed in A.
    let a_members = app
        .get("/v1/members", Some(&a.token))
        .await
        .expect(200)
        .body;
    assert_eq!(a_members["members"].as_array().unwrap().len(), 2);
    assert_eq!(a_members["members"][1]["role"], "analyst");
    app.login(&a.email, &a.password).await;
    let _ = a_member_token;
}

#[actix_web::test]
async fn a_token_for_one_tenant_cannot_be_replayed_for_another() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    let app = TestApp::spawn().await;
    let a = app.signup().await;
    let b = app.signup().await;
    // A's user, claiming B's tenant, correctly signed: A is not a member of B.
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"sub": a.user_id, "tid": b.tenant_id, "sv": 0, "iat": now, "exp": now + 600,
                        "iss": "sightline", "aud": "sightline-api"});
    let token = encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(support::TEST_JWT_SECRET.as_bytes()),
    )
    .unwrap();
    app.get("/v1/members", Some(&token)).await.expect(401);
}

#[actix_web::test]
async fn tenant_b_never_sees_tenant_a_invalid_events_or_policies() {
    use support::fixtures::{batch, detection};
    let app = TestApp::spawn().await;
    let a = app.signup().await;
    let b = app.signup().await;
    let (_, a_key) = app.create_api_key(&a.token, &["ingest", "read"]).await;
    let (_, b_key) = app.create_api_key(&b.token, &["ingest", "read"]).await;
    let mut bad = detection("a-bad", "s");
    bad["label"] = json!("");
    app.post("/v1/events", Some(&a_key), &batch(vec![bad]))
        .await
        .expect(202);
    let b_log = app
        .get("/v1/invalid-events", Some(&b_key))
        .await
        .expect(200)
        .body;
    assert_eq!(b_log["invalid_events"], json!([]));

    app.send(
        actix_web::http::Method::PUT,
        "/v1/consent-policy",
        Some(&a.token),
        Some(&json!({"default": "denied", "strip_keys_without_consent": true})),
    )
    .await
    .expect(200);
    let b_policy = app
        .get("/v1/consent-policy", Some(&b.token))
        .await
        .expect(200)
        .body;
    assert_eq!(b_policy["default"], "granted");
    // B's events are not stripped by A's policy.
    app.post(
        "/v1/events",
        Some(&b_key),
        &batch(vec![detection("b-1", "s")]),
    )
    .await
    .expect(202);
    assert_eq!(
        app.count(
            "SELECT count(*) FROM detections WHERE event_id = 'b-1' AND \"keys\" IS NOT NULL"
        )
        .await,
        1
    );
}

#[actix_web::test]
async fn tenant_b_cannot_read_change_or_delete_tenant_a_goals() {
    let app = TestApp::spawn().await;
    let a = app.signup().await;
    let b = app.signup().await;
    let goal = json!({"name": "A's goal", "detection_labels": ["barcode"], "conversion_name": "purchase",
                      "key": "session_token", "window_seconds": 3600});
    let id = app.create_goal(&a.token, &goal).await;
    let path = format!("/v1/goals/{id}");
    let missing = format!("/v1/goals/{}", uuid::Uuid::new_v4());

    let cross = app.get(&path, Some(&b.token)).await.expect(404);
    assert_eq!(
        cross.text,
        app.get(&missing, Some(&b.token)).await.expect(404).text
    );
    app.send(
        actix_web::http::Method::PUT,
        &path,
        Some(&b.token),
        Some(&goal),
    )
    .await
    .expect(404);
    app.delete(&path, Some(&b.token)).await.expect(404);
    assert_eq!(
        app.get("/v1/goals", Some(&b.token)).await.expect(200).body["goals"],
        json!([])
    );
    // A's goal is untouched.
    assert_eq!(
        app.get(&path, Some(&a.token)).await.expect(200).body["name"],
        "A's goal"
    );
}

#[actix_web::test]
async fn tenant_b_never_sees_tenant_a_attributions_or_explanations() {
    let app = TestApp::spawn().await;
    let a = app.signup().await;
    let b = app.signup().await;
    let goal = json!({"name": "g", "detection_labels": ["barcode"], "conversion_name": "purchase",
                      "key": "session_token", "window_seconds": 3600});
    let a_goal = app.create_goal(&a.token, &goal).await;
    app.create_goal(&b.token, &goal).await;
    let (_, a_key) = app.create_api_key(&a.token, &["ingest", "read"]).await;
    let (_, b_key) = app.create_api_key(&b.token, &["ingest", "read"]).await;
    // The same session token in both tenants: the sessions must still be apart.
    let events = support::fixtures::batch(vec![
        support::fixtures::detection("d-a", "shared-session"),
        support::fixtures::conversion("c-a", "shared-session"),
    ]);
    app.post("/v1/events", Some(&a_key), &events)
        .await
        .expect(202);
    let b_events =
        support::fixtures::batch(vec![support::fixtures::conversion("c-b", "shared-session")]);
    app.post("/v1/events", Some(&b_key), &b_events)
        .await
        .expect(202);
    app.await_attributions(&a_key, 1).await;

    let cross = app
        .get("/v1/conversions/c-a/explain", Some(&b_key))
        .await
        .expect(404);
    assert_eq!(
        cross.text,
        app.get("/v1/conversions/missing/explain", Some(&b_key))
            .await
            .expect(404)
            .text
    );
    app.get(&format!("/v1/attributions?goal={a_goal}"), Some(&b_key))
        .await
        .expect(404);
    assert_eq!(
        app.get("/v1/attributions?conversion_event_id=c-a", Some(&b_key))
            .await
            .expect(200)
            .body["attributions"],
        json!([])
    );
    // B's conversion met no detection of A's, though they share the session token.
    let b_explained = app
        .get("/v1/conversions/c-b/explain", Some(&b_key))
        .await
        .expect(200)
        .body;
    assert_eq!(b_explained["goals"][0]["candidates"], json!([]));
    assert_eq!(
        app.get("/v1/attributions", Some(&b_key))
            .await
            .expect(200)
            .body["attributions"],
        json!([])
    );
}

#[actix_web::test]
async fn tenant_b_never_sees_tenant_a_report_rows_or_goals() {
    use support::fixtures::{batch, conversion, detection};
    let app = TestApp::spawn().await;
    let a = app.signup().await;
    let b = app.signup().await;
    let goal = json!({"name": "g", "detection_labels": ["barcode"], "conversion_name": "purchase",
                      "key": "session_token", "window_seconds": 3600});
    let a_goal = app.create_goal(&a.token, &goal).await;
    let b_goal = app.create_goal(&b.token, &goal).await;
    let (_, a_key) = app.create_api_key(&a.token, &["ingest", "read"]).await;
    let (_, b_key) = app.create_api_key(&b.token, &["ingest", "read"]).await;
    // The same event ids, session token, label and entity in both tenants.
    let events = batch(vec![
        detection("d-1", "shared-session"),
        conversion("c-1", "shared-session"),
    ]);
    app.post("/v1/events", Some(&a_key), &events)
        .await
        .expect(202);
    app.post(
        "/v1/events",
        Some(&a_key),
        &batch(vec![detection("d-2", "other-session")]),
    )
    .await
    .expect(202);
    app.post(
        "/v1/events",
        Some(&b_key),
        &batch(vec![detection("d-1", "shared-session")]),
    )
    .await
    .expect(202);
    app.await_attributions(&a_key, 1).await;

    let a_report = app
        .get("/v1/reports/labels", Some(&a_key))
        .await
        .expect(200)
        .body;
    assert_eq!(a_report["totals"]["detections"], 2);
    assert_eq!(a_report["totals"]["matched_conversions"], 1);
    // B sees its one detection and none of A's conversions, under any filter.
    for query in ["", "?group_by=category", &format!("?goal={b_goal}")] {
        let b_report = app
            .get(&format!("/v1/reports/labels{query}"), Some(&b_key))
            .await
            .expect(200)
            .body;
        assert_eq!(
            b_report["totals"],
            json!({"detections": 1, "matched_conversions": 0, "assisted_conversions": 0,
                   "conversion_value": 0.0}),
            "{query}"
        );
        assert_eq!(b_report["rows"].as_array().unwrap().len(), 1, "{query}");
    }
    // A's goal id answers B exactly as an unknown id does.
    let cross = app
        .get(&format!("/v1/reports/labels?goal={a_goal}"), Some(&b.token))
        .await
        .expect(404);
    let missing = app
        .get(
            &format!("/v1/reports/labels?goal={}", uuid::Uuid::new_v4()),
            Some(&b.token),
        )
        .await
        .expect(404);
    assert_eq!(cross.text, missing.text);
}
