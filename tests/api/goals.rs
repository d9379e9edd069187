//! Goals: create, read, replace, delete; validation; who may do what.

use serde_json::{Value, json};
use support::TestApp;

fn goal() -> Value {
    json!({"name": "Scan to purchase", "detection_labels": ["barcode"], "conversion_name": "purchase",
           "key": "session_token", "window_seconds": 86400, "min_confidence": 0.6, "dedup_seconds": 30,
           "requires_consent": true, "active": true})
}

#[actix_web::test]
async fn a_goal_is_created_read_replaced_and_deleted() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let mut created = app
        .post("/v1/goals", Some(&owner.token), &goal())
        .await
        .expect(201)
        .body;
    let id = created["id"].as_str().unwrap().to_owned();
    // The re-evaluation runs on in the background; its progress is checked in matching.rs.
    let status = created["reevaluation"]["status"].as_str().unwrap();
    assert!(["running", "done"].contains(&status), "{status}");
    created["reevaluation"] = json!(null);
    for (field, value) in goal().as_object().unwrap() {
        assert_eq!(&created[field], value, "{field}");
    }
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));

    let mut read = app
        .get(&format!("/v1/goals/{id}"), Some(&owner.token))
        .await
        .expect(200)
        .body;
    read["reevaluation"] = json!(null);
    assert_eq!(read, created);
    let mut listed = app
        .get("/v1/goals", Some(&owner.token))
        .await
        .expect(200)
        .body;
    listed["goals"][0]["reevaluation"] = json!(null);
    assert_eq!(listed["goals"], json!([created]));

    // PUT replaces: omitted optional fields take their defaults; read-only fields are ignored.
    let mut replacement = json!({"name": "Scan to cart", "detection_labels": ["barcode", "product"],
        "conversion_name": "add_to_cart", "key": "user_id", "window_seconds": 3600,
        "id": "00000000-0000-0000-0000-000000000000", "created_at": "2020-01-01T00:00:00Z"});
    let replaced = app
        .send(
            actix_web::http::Method::PUT,
            &format!("/v1/goals/{id}"),
            Some(&owner.token),
            Some(&replacement),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(replaced["id"], id.as_str());
    assert_eq!(replaced["created_at"], created["created_at"]);
    assert_eq!(replaced["min_confidence"], 0.0);
    assert_eq!(replaced["requires_consent"], false);
    assert_eq!(replaced["active"], true);
    assert_eq!(replaced["detection_labels"], json!(["barcode", "product"]));
    replacement["active"] = json!(false);
    let deactivated = app
        .send(
            actix_web::http::Method::PUT,
            &format!("/v1/goals/{id}"),
            Some(&owner.token),
            Some(&replacement),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(deactivated["active"], false);

    app.delete(&format!("/v1/goals/{id}"), Some(&owner.token))
        .await
        .expect(204);
    app.get(&format!("/v1/goals/{id}"), Some(&owner.token))
        .await
        .expect(404);
    app.delete(&format!("/v1/goals/{id}"), Some(&owner.token))
        .await
        .expect(404);
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE action IN ('goal.create', 'goal.update', 'goal.delete')").await,
        4
    );
}

#[actix_web::test]
async fn invalid_goals_are_explained_field_by_field() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let cases: Vec<(&str, Value, &str)> = vec![
        ("name", json!(null), "missing_field"),
        ("detection_labels", json!([]), "missing_field"),
        ("detection_labels", json!("barcode"), "invalid_type"),
        ("detection_labels", json!(["x".repeat(129)]), "too_long"),
        ("conversion_name", json!(""), "invalid_format"),
        ("key", json!("Session Token"), "invalid_format"),
        ("window_seconds", json!(0), "out_of_range"),
        ("window_seconds", json!(90 * 86400 + 1), "out_of_range"),
        ("window_seconds", json!("1d"), "invalid_type"),
        ("min_confidence", json!(1.01), "out_of_range"),
        ("dedup_seconds", json!(86401), "out_of_range"),
        ("requires_consent", json!("yes"), "invalid_type"),
    ];
    for (field, value, code) in cases {
        let mut body = goal();
        body[field] = value.clone();
        let response = app
            .post("/v1/goals", Some(&owner.token), &body)
            .await
            .expect(400);
        assert_eq!(
            response.body["error"]["errors"][0]["field"], field,
            "{field}={value}"
        );
        assert_eq!(
            response.body["error"]["errors"][0]["code"], code,
            "{field}={value}"
        );
    }
    let mut typo = goal();
    typo["windw_seconds"] = json!(5);
    let response = app
        .post("/v1/goals", Some(&owner.token), &typo)
        .await
        .expect(400);
    assert_eq!(response.body["error"]["errors"][0]["code"], "unknown_field");
    assert_eq!(app.count("SELECT count(*) FROM goals").await, 0);
}

#[actix_web::test]
async fn owners_and_admins_change_goals_and_analysts_read_them() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let (_, admin) = app.add_member(&owner.token, "admin").await;
    let (_, analyst) = app.add_member(&owner.token, "analyst").await;
    let (_, viewer) = app.add_member(&owner.token, "viewer").await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest", "read"]).await;
    let id = app
        .post("/v1/goals", Some(&admin), &goal())
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/goals/{id}");

    app.get("/v1/goals", Some(&analyst)).await.expect(200);
    app.get(&path, Some(&analyst)).await.expect(200);
    for token in [&analyst, &viewer, &key] {
        app.post("/v1/goals", Some(token), &goal())
            .await
            .expect(403);
        app.send(
            actix_web::http::Method::PUT,
            &path,
            Some(token),
            Some(&goal()),
        )
        .await
        .expect(403);
        app.delete(&path, Some(token)).await.expect(403);
    }
    for token in [&viewer, &key] {
        app.get("/v1/goals", Some(token)).await.expect(403);
        app.get(&path, Some(token)).await.expect(403);
    }
    app.get("/v1/goals", None).await.expect(401);
    app.post("/v1/goals", None, &goal()).await.expect(401);
    // The role is checked before the body.
    app.post("/v1/goals", Some(&viewer), &json!({"name": 5}))
        .await
        .expect(403);
    app.send(
        actix_web::http::Method::PUT,
        &path,
        Some(&owner.token),
        Some(&goal()),
    )
    .await
    .expect(200);
}
