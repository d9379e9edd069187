//! Tenant-controlled text (organization, goal names and labels, key names, event ids,
//! labels, entity ids, model versions, payloads of invalid events) holding markup and
//! quote-breaking payloads renders escaped on every signed-in page, and every page carries
//! the security headers.
//!
//! The organization's name is on every page, so each page is known to hold the text.

use super::reports::SESSION_COOKIE;
use serde_json::json;
use support::TestApp;
use support::fixtures::{conversion, detection};

/// Breaks out of an attribute (either quote), then out of the element, then scripts.
const HOSTILE: &str = "x\"'><script>alert(1)</script><img src=x onerror=alert(2)>";

#[actix_web::test]
async fn hostile_tenant_text_renders_escaped_on_every_page() {
    let app = TestApp::spawn().await;
    let signup = app
        .post(
            "/v1/auth/signup",
            None,
            &json!({"organization": HOSTILE, "email": "owner-esc@acme.test",
                    "password": "correct horse battery staple"}),
        )
        .await
        .expect(201);
    let token = signup.body["token"].as_str().expect("a token").to_owned();
    let (_, key) = app.create_api_key(&token, &["ingest", "read"]).await;
    app.post(
        "/v1/api-keys",
        Some(&token),
        &json!({"name": HOSTILE, "scopes": ["ingest"]}),
    )
    .await
    .expect(201);
    let goal_id = app
        .create_goal(
            &token,
            &json!({"name": HOSTILE, "detection_labels": [HOSTILE, "barcode"],
                    "conversion_name": "purchase", "key": "session_token", "window_seconds": 3600}),
        )
        .await;
    let mut seen = detection("d-1", "s-1");
    seen["label"] = json!(HOSTILE);
    seen["entity_id"] = json!(HOSTILE);
    seen["model_version"] = json!("v<b>3</b>\"'");
    seen["category"] = json!(HOSTILE);
    let mut bought = conversion("c-1", "s-1");
    bought["event_id"] = json!("c-\"'><script>");
    let mut test_event = detection("t-1", "s-2");
    test_event["test"] = json!(true);
    test_event["label"] = json!(HOSTILE);
    let mut invalid = detection("bad", "s-1");
    invalid["label"] = json!(HOSTILE);
    invalid["confidence"] = json!(HOSTILE);
    app.post(
        "/v1/events",
        Some(&key),
        &json!({"events": [seen, bought, test_event, invalid]}),
    )
    .await
    .expect(202);
    app.await_attributions(&key, 1).await;

    let client = awc::Client::builder().disable_redirects().finish();
    let explain = "/app/explain?event_id=c-%22%27%3E%3Cscript%3E".to_owned();
    for path in [
        "/app".to_owned(),
        "/app/reports".to_owned(),
        "/app/reports?group_by=category".to_owned(),
        "/app/models".to_owned(),
        "/app/quality".to_owned(),
        "/app/health".to_owned(),
        "/app/health/invalid".to_owned(),
        "/app/health/test-events".to_owned(),
        "/app/goals".to_owned(),
        format!("/app/goals/{goal_id}"),
        explain,
        "/app/settings".to_owned(),
        "/app/keys".to_owned(),
        "/app/members".to_owned(),
        "/app/audit".to_owned(),
    ] {
        let mut response = client
            .get(format!("{}{path}", app.base_url))
            .cookie(awc::cookie::Cookie::new(SESSION_COOKIE, token.clone()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let body = response.body().limit(8 << 20).await.expect("a body");
        let page = String::from_utf8_lossy(&body);
        assert_eq!(response.status().as_u16(), 200, "{path}: {page}");
        for raw in ["<script>alert(1)", "<img src=x", "\"'><", "<b>3</b>"] {
            assert!(!page.contains(raw), "{path} renders {raw:?} unescaped");
        }
        // Every page shows the organization, so the text is there, escaped.
        assert!(
            page.contains("alert(1)"),
            "{path} does not show the text at all"
        );
        let headers = response.headers();
        let csp = headers
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert_eq!(
            headers.get("x-frame-options").and_then(|v| v.to_str().ok()),
            Some("DENY"),
            "{path}"
        );
        assert_eq!(
            headers
                .get("x-content-type-options")
                .and_then(|v| v.to_str().ok()),
            Some("nosniff"),
            "{path}"
        );
    }
}
