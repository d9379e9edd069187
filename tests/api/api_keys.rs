//! API keys: creation (shown once), listing, revocation at once, and who may do what.

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::json;
use support::TestApp;

#[actix_web::test]
async fn a_created_key_is_shown_once_and_listed_without_its_secret() {
    let app = TestApp::spawn().await;
    let account = app.signup().await;
    let created = app
        .post(
            "/v1/api-keys",
            Some(&account.token),
            &json!({"name": "edge cameras", "scopes": ["read", "ingest"]}),
        )
        .await
        .expect(201)
        .body;
    let key = created["key"].as_str().unwrap();
    assert!(key.starts_with("sl_live_") && key.len() >= 8 + 43);
    assert!(key.starts_with(created["prefix"].as_str().unwrap()));
    assert_eq!(created["name"], "edge cameras");
    assert_eq!(created["scopes"], json!(["ingest", "read"]));
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));

    let listed = app
        .get("/v1/api-keys", Some(&account.token))
        .await
        .expect(200);
    let keys = listed.body["api_keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["id"], created["id"]);
    assert_eq!(keys[0]["prefix"], created["prefix"]);
    assert!(keys[0].get("key").is_none());
    assert!(
        !listed.text.contains(key),
        "the secret must never be listed"
    );
}

#[actix_web::test]
async fn only_the_hash_of_a_key_is_stored() {
    let app = TestApp::spawn().await;
    let account = app.signup().await;
    let (_, key) = app.create_api_key(&account.token, &["ingest"]).await;
    let db = app.db().await;
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT key_hash, prefix FROM api_keys",
        ))
        .await
        .unwrap()
        .unwrap();
    let hash: String = row.try_get("", "key_hash").unwrap();
    assert_eq!(hash, sightline::auth::api_key::hash(&key));
    assert_ne!(hash, key);
}

#[actix_web::test]
async fn revoking_a_key_stops_it_at_once_even_when_cached() {
    let app = TestApp::spawn().await;
    let account = app.signup().await;
    let (id, key) = app.create_api_key(&account.token, &["read"]).await;
    // Authenticate twice so the key is surely in the cache.
    app.get("/v1/api-keys", Some(&key)).await.expect(403);
    app.get("/v1/api-keys", Some(&key)).await.expect(403);
    app.delete(&format!("/v1/api-keys/{id}"), Some(&account.token))
        .await
        .expect(204);
    app.get("/v1/api-keys", Some(&key)).await.expect(401);
    let listed = app
        .get("/v1/api-keys", Some(&account.token))
        .await
        .expect(200)
        .body;
    assert!(listed["api_keys"][0]["revoked_at"].is_string());
    // Revoking again changes nothing.
    app.delete(&format!("/v1/api-keys/{id}"), Some(&account.token))
        .await
        .expect(204);
}

#[actix_web::test]
async fn creating_and_revoking_keys_is_audited() {
    let app = TestApp::spawn().await;
    let account = app.signup().await;
    let (id, _) = app.create_api_key(&account.token, &["read"]).await;
    app.delete(&format!("/v1/api-keys/{id}"), Some(&account.token))
        .await
        .expect(204);
    let db = app.db().await;
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT action, actor, target FROM audit_log ORDER BY created_at, action",
        ))
        .await
        .unwrap();
    let actions: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get("", "action").unwrap(),
                r.try_get("", "actor").unwrap(),
                r.try_get("", "target").unwrap(),
            )
        })
        .collect();
    let actor = format!("user:{}", account.user_id);
    assert_eq!(
        actions,
        vec![
            ("api_key.create".to_owned(), actor.clone(), id.clone()),
            ("api_key.revoke".to_owned(), actor, id),
        ]
    );
}

#[actix_web::test]
async fn invalid_key_requests_are_explained() {
    let app = TestApp::spawn().await;
    let account = app.signup().await;
    let cases = [
        (json!({"scopes": ["read"]}), "name", "missing_field"),
        (json!({"name": "k"}), "scopes", "missing_field"),
        (
            json!({"name": "k", "scopes": []}),
            "scopes",
            "missing_field",
        ),
        (
            json!({"name": "k", "scopes": ["write"]}),
            "scopes",
            "invalid_format",
        ),
        (
            json!({"name": "  ", "scopes": ["read"]}),
            "name",
            "invalid_format",
        ),
        (
            json!({"name": "k".repeat(101), "scopes": ["read"]}),
            "name",
            "too_long",
        ),
    ];
    for (body, field, code) in cases {
        let response = app
            .post("/v1/api-keys", Some(&account.token), &body)
            .await
            .expect(400);
        assert_eq!(
            response.body["error"]["errors"][0]["field"], field,
            "{body}"
        );
        assert_eq!(response.body["error"]["errors"][0]["code"], code, "{body}");
    }
    let wrong_type = app
        .post(
            "/v1/api-keys",
            Some(&account.token),
            &json!({"name": "k", "scopes": "read"}),
        )
        .await
        .expect(400);
    assert_eq!(wrong_type.error_code(), "bad_request");
}

#[actix_web::test]
async fn only_owners_and_admins_manage_keys() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let (id, key) = app.create_api_key(&owner.token, &["ingest", "read"]).await;
    let (_, admin) = app.add_member(&owner.token, "admin").await;
    let (_, analyst) = app.add_member(&owner.token, "analyst").await;
    let (_, viewer) = app.add_member(&owner.token, "viewer").await;
    let body = json!({"name": "k", "scopes": ["read"]});

    app.post("/v1/api-keys", Some(&admin), &body)
        .await
        .expect(201);
    app.get("/v1/api-keys", Some(&admin)).await.expect(200);
    for token in [&analyst, &viewer, &key] {
        app.post("/v1/api-keys", Some(token), &body)
            .await
            .expect(403);
        app.get("/v1/api-keys", Some(token)).await.expect(403);
        app.delete(&format!("/v1/api-keys/{id}"), Some(token))
            .await
            .expect(403);
    }
    app.post("/v1/api-keys", None, &body).await.expect(401);
    app.get("/v1/api-keys", None).await.expect(401);
    app.delete(&format!("/v1/api-keys/{id}"), None)
        .await
        .expect(401);
}

#[actix_web::test]
async fn authentication_and_role_are_checked_before_the_body() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let (_, viewer) = app.add_member(&owner.token, "viewer").await;
    let bad_body = ("application/json", "{not json".to_owned());
    let method = actix_web::http::Method::POST;
    app.send_raw(method.clone(), "/v1/api-keys", None, Some(bad_body.clone()))
        .await
        .expect(401);
    app.send_raw(
        method.clone(),
        "/v1/api-keys",
        Some(&viewer),
        Some(bad_body.clone()),
    )
    .await
    .expect(403);
    app.send_raw(
        method.clone(),
        "/v1/api-keys",
        Some(&viewer),
        Some(("text/plain", "x".into())),
    )
    .await
    .expect(403);
    app.send_raw(method, "/v1/api-keys", Some(&owner.token), Some(bad_body))
        .await
        .expect(400);
}

#[actix_web::test]
async fn an_unknown_or_malformed_key_id_is_not_found() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let missing = app
        .delete(
            &format!("/v1/api-keys/{}", uuid::Uuid::new_v4()),
            Some(&owner.token),
        )
        .await
        .expect(404);
    let malformed = app
        .delete("/v1/api-keys/not-a-uuid", Some(&owner.token))
        .await
        .expect(404);
    assert_eq!(missing.text, malformed.text);
}
