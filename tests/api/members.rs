//! Members and roles: owners and admins manage them; a tenant always keeps an owner; a change
//! takes effect on the member's next request.

use serde_json::json;
use support::TestApp;

#[actix_web::test]
async fn an_added_member_can_log_in_with_their_role() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let created = app
        .post(
            "/v1/members",
            Some(&owner.token),
            &json!({"email": "Ana@Acme.test", "password": "analyst password", "role": "analyst"}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(created["email"], "ana@acme.test");
    assert_eq!(created["role"], "analyst");
    app.login("ana@acme.test", "analyst password").await;
    let listed = app
        .get("/v1/members", Some(&owner.token))
        .await
        .expect(200)
        .body;
    let roles: Vec<&str> = listed["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, vec!["owner", "analyst"]);
}

#[actix_web::test]
async fn adding_a_member_with_a_taken_email_is_a_conflict() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    app.post(
        "/v1/members",
        Some(&owner.token),
        &json!({"email": owner.email, "password": "0123456789", "role": "viewer"}),
    )
    .await
    .expect(409);
}

#[actix_web::test]
async fn invalid_member_fields_are_listed() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let response = app
        .post(
            "/v1/members",
            Some(&owner.token),
            &json!({"email": "x", "password": "short", "role": "root"}),
        )
        .await
        .expect(400);
    let fields: Vec<&str> = response.body["error"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["email", "password", "role"]);
}

#[actix_web::test]
async fn the_last_owner_cannot_be_demoted_or_removed() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let path = format!("/v1/members/{}", owner.user_id);
    app.patch(&path, Some(&owner.token), &json!({"role": "admin"}))
        .await
        .expect(409);
    app.delete(&path, Some(&owner.token)).await.expect(409);

    // With a second owner, the first may step down.
    let (second_id, second) = app.add_member(&owner.token, "owner").await;
    app.patch(&path, Some(&owner.token), &json!({"role": "admin"}))
        .await
        .expect(200);
    app.patch(
        &format!("/v1/members/{second_id}"),
        Some(&second),
        &json!({"role": "viewer"}),
    )
    .await
    .expect(409);
}

#[actix_web::test]
async fn two_owners_demoting_each_other_at_once_leave_one_owner() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let (second_id, second) = app.add_member(&owner.token, "owner").await;
    let first_path = format!("/v1/members/{}", owner.user_id);
    let second_path = format!("/v1/members/{second_id}");
    let body = json!({"role": "admin"});
    let (a, b) = futures_join(
        app.patch(&second_path, Some(&owner.token), &body),
        app.patch(&first_path, Some(&second), &body),
    )
    .await;
    // One demotion wins. The other is refused: as the last owner (409), or, when the winner
    // demoted its author first, because its author is no longer an owner (403).
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert!(
        statuses == [200, 403] || statuses == [200, 409],
        "{statuses:?}"
    );
    let members = app.get("/v1/members", Some(&owner.token)).await;
    let members = if members.status == 200 {
        members
    } else {
        app.get("/v1/members", Some(&second)).await.expect(200)
    };
    let owners = members.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "owner")
        .count();
    assert_eq!(owners, 1);
}

async fn futures_join<A: std::future::Future, B: std::future::Future>(
    a: A,
    b: B,
) -> (A::Output, B::Output) {
    tokio::join!(a, b)
}

#[actix_web::test]
async fn only_an_owner_grants_or_removes_the_owner_role() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let (_, admin) = app.add_member(&owner.token, "admin").await;
    let (viewer_id, _) = app.add_member(&owner.token, "viewer").await;
    app.post(
        "/v1/members",
        Some(&admin),
        &json!({"email": "o2@acme.test", "password": "0123456789", "role": "owner"}),
    )
    .await
    .expect(403);
    app.patch(
        &format!("/v1/members/{viewer_id}"),
        Some(&admin),
        &json!({"role": "owner"}),
    )
    .await
    .expect(403);
    app.patch(
        &format!("/v1/members/{}", owner.user_id),
        Some(&admin),
        &json!({"role": "viewer"}),
    )
    .await
    .expect(403);
    app.delete(&format!("/v1/members/{}", owner.user_id), Some(&admin))
        .await
        .expect(403);
    // An admin manages the other roles.
    app.patch(
        &format!("/v1/members/{viewer_id}"),
        Some(&admin),
        &json!({"role": "analyst"}),
    )
    .await
    .expect(200);
}

#[actix_web::test]
async fn a_role_change_takes_effect_on_the_next_request() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let (admin_id, admin) = app.add_member(&owner.token, "admin").await;
    app.get("/v1/members", Some(&admin)).await.expect(200);
    app.patch(
        &format!("/v1/members/{admin_id}"),
        Some(&owner.token),
        &json!({"role": "viewer"}),
    )
    .await
    .expect(200);
    app.get("/v1/members", Some(&admin)).await.expect(403);
}

#[actix_web::test]
async fn a_removed_member_is_logged_out_and_cannot_log_in() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let email = "leaver@acme.test";
    let created = app
        .post(
            "/v1/members",
            Some(&owner.token),
            &json!({"email": email, "password": "0123456789", "role": "admin"}),
        )
        .await
        .expect(201)
        .body;
    let token = app.login(email, "0123456789").await;
    app.delete(
        &format!("/v1/members/{}", created["user_id"].as_str().unwrap()),
        Some(&owner.token),
    )
    .await
    .expect(204);
    app.get("/v1/members", Some(&token)).await.expect(401);
    app.post(
        "/v1/auth/login",
        None,
        &json!({"email": email, "password": "0123456789"}),
    )
    .await
    .expect(401);
}

#[actix_web::test]
async fn analysts_viewers_and_api_keys_cannot_manage_members() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let (_, analyst) = app.add_member(&owner.token, "analyst").await;
    let (viewer_id, viewer) = app.add_member(&owner.token, "viewer").await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest", "read"]).await;
    let body = json!({"email": "x@acme.test", "password": "0123456789", "role": "viewer"});
    for token in [&analyst, &viewer, &key] {
        app.get("/v1/members", Some(token)).await.expect(403);
        app.post("/v1/members", Some(token), &body)
            .await
            .expect(403);
        app.patch(
            &format!("/v1/members/{viewer_id}"),
            Some(token),
            &json!({"role": "admin"}),
        )
        .await
        .expect(403);
        app.delete(&format!("/v1/members/{viewer_id}"), Some(token))
            .await
            .expect(403);
    }
    app.get("/v1/members", None).await.expect(401);
    app.post("/v1/members", None, &body).await.expect(401);
    app.patch(
        &format!("/v1/members/{viewer_id}"),
        None,
        &json!({"role": "admin"}),
    )
    .await
    .expect(401);
    app.delete(&format!("/v1/members/{viewer_id}"), None)
        .await
        .expect(401);
}

#[actix_web::test]
async fn an_unknown_member_is_not_found() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let path = format!("/v1/members/{}", uuid::Uuid::new_v4());
    app.patch(&path, Some(&owner.token), &json!({"role": "viewer"}))
        .await
        .expect(404);
    app.delete(&path, Some(&owner.token)).await.expect(404);
}
