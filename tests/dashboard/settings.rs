//! The privacy page: an owner changes the consent and retention policies; an analyst only
//! reads them.

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
    assert_eq!(
        browser.text("#retention-max_event_age_days").await,
        "7 days"
    );
    let source = browser.source().await;
    assert!(!source.contains("Save consent policy"));
    assert!(!source.contains("Save retention policy"));
    browser.close().await;
}

#[actix_web::test]
async fn an_owner_sets_the_retention_periods_with_inline_errors() {
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;
    let email = unique_email();
    sign_up_in_browser(&app, &browser, &email).await;
    browser
        .goto(&format!("{}/app/settings", app.base_url))
        .await;

    // Refused: nothing is saved, what was typed stays, and each problem is beside its field.
    browser.fill("#detections_days", "0").await;
    browser.fill("#conversions_days", "a year").await;
    browser
        .click("form[action='/app/settings/retention'] button[type=submit]")
        .await;
    browser.find("#retention-refused").await;
    assert!(
        browser
            .text("#detections_days-error")
            .await
            .contains("from 1 to 3650")
    );
    assert!(
        browser
            .text("#conversions_days-error")
            .await
            .contains("number of days")
    );
    let typed = browser.find("#conversions_days").await.prop("value").await;
    assert_eq!(typed.ok().flatten().as_deref(), Some("a year"));
    let token = app.login(&email, PASSWORD).await;
    let stored = app.get("/v1/retention-policy", Some(&token)).await;
    assert_eq!(stored.expect(200).body["detections_days"], 395);

    browser.fill("#detections_days", "90").await;
    browser.fill("#conversions_days", "365").await;
    browser.fill("#max_event_age_days", "14").await;
    browser
        .click("form[action='/app/settings/retention'] button[type=submit]")
        .await;
    browser.find("#saved").await;
    browser.screenshot("privacy-retention").await;
    let stored = app.get("/v1/retention-policy", Some(&token)).await;
    assert_eq!(
        stored.expect(200).body,
        json!({"detections_days": 90, "conversions_days": 365, "attributions_days": 395,
               "invalid_events_days": 30, "max_event_age_days": 14})
    );
    browser.close().await;
}
