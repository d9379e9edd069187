//! The audit log page: an owner reads every change with who made it and what changed; an
//! admin gets neither the link nor the page.

use super::{Owner, owner_in_browser, scan_to_purchase};
use serde_json::json;
use support::TestApp;
use support::browser::Browser;

#[actix_web::test]
async fn an_owner_reads_who_changed_what_and_an_admin_cannot() {
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;
    let Owner { token, .. } = owner_in_browser(&app, &browser).await;
    let goal_id = app.create_goal(&token, &scan_to_purchase()).await;
    let mut renamed = scan_to_purchase();
    renamed["name"] = json!("Scan to <b>purchase</b>");
    app.put(&format!("/v1/goals/{goal_id}"), Some(&token), &renamed)
        .await
        .expect(200);

    browser.follow("nav a[href='/app/audit']").await;
    let rows = browser.text("#audit tbody").await;
    let first = rows.lines().next().unwrap_or_default().to_owned();
    assert!(first.contains("goal.update"), "{rows}");
    assert!(
        rows.contains("name: Scan to purchase → Scan to <b>purchase</b>"),
        "the change, as text: {rows}"
    );
    assert!(rows.contains("api_key.create"), "{rows}");
    browser.screenshot("audit").await;

    let (_, admin) = app.add_member(&token, "admin").await;
    let client = awc::Client::builder().disable_redirects().finish();
    let mut response = client
        .get(format!("{}/app/audit", app.base_url))
        .cookie(awc::cookie::Cookie::new(
            "__Host-sightline_session",
            admin.clone(),
        ))
        .send()
        .await
        .expect("a response");
    assert_eq!(response.status().as_u16(), 403);
    let body = response.body().await.expect("a body");
    assert!(String::from_utf8_lossy(&body).contains("The audit log is for owners"));
    let mut overview = client
        .get(format!("{}/app", app.base_url))
        .cookie(awc::cookie::Cookie::new("__Host-sightline_session", admin))
        .send()
        .await
        .expect("a response");
    let overview = overview.body().await.expect("a body");
    assert!(!String::from_utf8_lossy(&overview).contains("href=\"/app/audit\""));
    browser.close().await;
}
