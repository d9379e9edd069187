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

    let other = app.signup().await;
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
