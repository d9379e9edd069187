//! The API keys page: a key created in the browser is shown once and works at once; revoked,
//! it stops at once; a viewer cannot open the page.

use super::{PASSWORD, sign_up_in_browser, unique_email};
use serde_json::json;
use support::TestApp;
use support::browser::Browser;
use support::fixtures::detection;

#[actix_web::test]
async fn a_key_created_in_the_browser_is_shown_once_works_and_can_be_revoked() {
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;
    let email = unique_email();
    sign_up_in_browser(&app, &browser, &email).await;

    browser.follow("nav a[href='/app/keys']").await;
    browser.find("#name").await;
    assert!(browser.source().await.contains("No keys yet"));
    // Without a scope the form is refused beside the field, the name kept.
    browser.fill("#name", "edge cameras").await;
    browser.click("input[name=scope_ingest]").await;
    browser
        .follow("form[action='/app/keys'] button[type=submit]")
        .await;
    assert_eq!(
        browser.text("#scopes-error").await,
        "Choose at least one scope."
    );
    browser.click("input[name=scope_ingest]").await;
    browser.click("input[name=scope_read]").await;
    browser
        .follow("form[action='/app/keys'] button[type=submit]")
        .await;
    let secret = browser
        .find("#new-key")
        .await
        .prop("value")
        .await
        .expect("the key's value")
        .expect("a key");
    assert!(secret.starts_with("sl_live_"), "{secret}");
    // The copy button is an enhancement the page's own script switches on.
    browser.click("button[data-copy='new-key']").await;
    assert_eq!(browser.text("button[data-copy='new-key']").await, "Copied");
    browser.screenshot("api-keys").await;

    // The page's ready-to-paste command works as printed: run by a shell, it sends an event
    // with the new key.
    let command = browser.text("#created-key pre code").await;
    // Off the test's thread, which also serves the requests.
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .args(["-c", &command])
            .output()
    })
    .await
    .expect("the command's thread")
    .expect("bash runs the command");
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert_eq!(answer["accepted"], 1, "{answer}");

    // The key works at once, for both scopes.
    let events = json!({"events": [detection("d-2", "s-1")]});
    app.post("/v1/events", Some(&secret), &events)
        .await
        .expect(202);
    app.get("/v1/attributions", Some(&secret)).await.expect(200);

    // Shown once: the list has its prefix, never the secret.
    browser.goto(&format!("{}/app/keys", app.base_url)).await;
    let source = browser.source().await;
    assert!(!source.contains(&secret));
    assert!(source.contains(&secret[..12]), "the prefix is listed");
    assert!(browser.text("#keys").await.contains("ingest, read"));

    browser
        .follow("button[aria-label='Revoke edge cameras']")
        .await;
    browser.find("tr.revoked").await;
    assert_eq!(browser.path().await, "/app/keys");
    app.post("/v1/events", Some(&secret), &events)
        .await
        .expect(401);
    browser.close().await;
}

#[actix_web::test]
async fn a_viewer_cannot_open_the_api_keys_page() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let viewer_email = unique_email();
    app.post(
        "/v1/members",
        Some(&owner.token),
        &json!({"email": viewer_email, "password": PASSWORD, "role": "viewer"}),
    )
    .await
    .expect(201);

    let browser = Browser::start().await;
    browser.goto(&format!("{}/login", app.base_url)).await;
    browser.fill("#email", &viewer_email).await;
    browser.fill("#password", PASSWORD).await;
    browser.follow("button[type=submit]").await;
    browser.find("#detections").await;
    assert!(
        !browser.source().await.contains("href=\"/app/keys\""),
        "no link to an admin page"
    );
    browser.goto(&format!("{}/app/keys", app.base_url)).await;
    assert_eq!(browser.text("h1").await, "Not for your role");
    assert!(!browser.source().await.contains("Create a key"));
    browser.screenshot("forbidden").await;
    browser.close().await;
}
