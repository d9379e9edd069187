//! The privacy page: an owner changes the consent policy; an analyst only reads it.

use super::{PASSWORD, sign_up_in_browser, unique_email};
use serde_json::json;
use support::TestApp;
use support::browser::Browser;

#[actix_web::test]
async fn an_owner_changes_the_consent_policy_and_an_analyst_reads_it() {
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;
    let email = unique_email();
    sign_up_in_browser(&app, &browser, &email).await;
    browser.click("nav a[href='/app/settings']").await;
    browser.click("input[name=default][value=denied]").await;
    browser
        .click("input[name=strip_keys_without_consent]")
        .await;
    browser
        .click("form[action='/app/settings/consent'] button[type=submit]")
        .await;
    browser.find("#saved").await;
    browser.screenshot("privacy").await;
    let token = app.login(&email, PASSWORD).await;
    let policy = app
        .get("/v1/consent-policy", Some(&token))
        .await
        .expect(200)
        .body;
    assert_eq!(
        policy,
        json!({"default": "denied", "strip_keys_without_consent": true})
    );

    let analyst = unique_email();
    app.post(
        "/v1/members",
        Some(&token),
        &json!({"email": analyst, "password": PASSWORD, "role": "analyst"}),
    )
    .await
    .expect(201);
    browser.click(".who button[type=submit]").await;
    browser.fill("#email", &analyst).await;
    browser.fill("#password", PASSWORD).await;
    browser.click("button[type=submit]").await;
    browser.find("#detections").await;
    browser
        .goto(&format!("{}/app/settings", app.base_url))
        .await;
    assert_eq!(browser.text("#consent-default").await, "consent denied");
    assert!(!browser.source().await.contains("Save consent policy"));
    browser.close().await;
}
