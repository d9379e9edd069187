//! Tenant isolation on the dashboard's pages: another tenant's goal, conversion, key or
//! member answers 404 exactly like one that does not exist, and nothing of it changes.

use serde_json::json;
use support::TestApp;
use support::fixtures::conversion;

const SESSION: &str = "__Host-sightline_session";
const CSRF: &str = "__Host-sightline_csrf";

#[actix_web::test]
async fn tenant_b_cannot_open_or_change_tenant_a_goals_conversions_keys_or_members() {
    let app = TestApp::spawn().await;
    let a = app.signup().await;
    let b = app.signup().await;
    let goal_id = app
        .create_goal(
            &a.token,
            &json!({"name": "A's goal", "detection_labels": ["barcode"],
                    "conversion_name": "purchase", "key": "session_token", "window_seconds": 60}),
        )
        .await;
    let (key_id, key) = app.create_api_key(&a.token, &["ingest", "read"]).await;
    let (member_id, _) = app.add_member(&a.token, "analyst").await;
    app.post(
        "/v1/events",
        Some(&key),
        &json!({"events": [conversion("c-a", "s-1")]}),
    )
    .await
    .expect(202);

    let client = awc::Client::builder().disable_redirects().finish();
    let csrf = "ab".repeat(32);
    let as_b = |method: awc::http::Method, path: String| {
        client
            .request(method, format!("{}{path}", app.base_url))
            .cookie(awc::cookie::Cookie::new(SESSION, b.token.clone()))
            .cookie(awc::cookie::Cookie::new(CSRF, csrf.clone()))
    };
    let status_and_body = |mut response: awc::ClientResponse<_>| async move {
        let body = response.body().await.expect("a body");
        (
            response.status().as_u16(),
            String::from_utf8_lossy(&body).into_owned(),
        )
    };

    let (status, body) = status_and_body(
        as_b(awc::http::Method::GET, format!("/app/goals/{goal_id}"))
            .send()
            .await
            .expect("a response"),
    )
    .await;
    assert_eq!(status, 404);
    assert!(!body.contains("A&#39;s goal") && !body.contains("A's goal"));

    let (status, body) = status_and_body(
        as_b(awc::http::Method::POST, format!("/app/goals/{goal_id}"))
            .send_form(&[
                ("csrf", csrf.as_str()),
                ("name", "taken over"),
                ("labels", "barcode"),
                ("conversion_name", "purchase"),
                ("key", "session_token"),
                ("window", "60"),
                ("window_unit", "seconds"),
                ("active", "on"),
            ])
            .await
            .expect("a response"),
    )
    .await;
    assert_eq!(status, 404, "{body}");

    let (status, body) = status_and_body(
        as_b(awc::http::Method::GET, "/app/explain?event_id=c-a".into())
            .send()
            .await
            .expect("a response"),
    )
    .await;
    assert_eq!(status, 404);
    assert!(body.contains("No conversion with the event id"));

    let (status, _) = status_and_body(
        as_b(
            awc::http::Method::POST,
            format!("/app/keys/{key_id}/revoke"),
        )
        .send_form(&[("csrf", csrf.as_str())])
        .await
        .expect("a response"),
    )
    .await;
    assert_eq!(status, 404);

    for (path, form) in [
        (
            format!("/app/members/{member_id}/role"),
            vec![("role", "viewer")],
        ),
        (format!("/app/members/{member_id}/remove"), vec![]),
    ] {
        let mut fields = vec![("csrf", csrf.as_str())];
        fields.extend(form);
        let (status, _) = status_and_body(
            as_b(awc::http::Method::POST, path.clone())
                .send_form(&fields)
                .await
                .expect("a response"),
        )
        .await;
        assert_eq!(status, 404, "{path}");
    }
    let (_, members_of_b) = status_and_body(
        as_b(awc::http::Method::GET, "/app/members".into())
            .send()
            .await
            .expect("a response"),
    )
    .await;
    assert!(!members_of_b.contains(&member_id));

    // Nothing of A's changed.
    let goal = app
        .get(&format!("/v1/goals/{goal_id}"), Some(&a.token))
        .await
        .expect(200)
        .body;
    assert_eq!(goal["name"], "A's goal");
    app.get("/v1/attributions", Some(&key)).await.expect(200);
    let members = app
        .get("/v1/members", Some(&a.token))
        .await
        .expect(200)
        .body;
    assert_eq!(members["members"][1]["role"], "analyst");
}
