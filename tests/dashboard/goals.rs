//! The goals pages: create with inline errors, change (which re-evaluates), deactivate; an
//! analyst reads them, a viewer cannot.

use super::{Owner, PASSWORD, owner_in_browser, scan_to_purchase, unique_email};
use serde_json::json;
use support::TestApp;
use support::browser::Browser;
use support::fixtures::{conversion, detection};

async fn credits_of(app: &TestApp, key: &str, conversion: &str) -> usize {
    app.get(
        &format!("/v1/attributions?conversion_event_id={conversion}"),
        Some(key),
    )
    .await
    .body["attributions"]
        .as_array()
        .map_or(0, Vec::len)
}

#[actix_web::test]
async fn an_owner_creates_changes_and_deactivates_a_goal_in_the_browser() {
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;
    let Owner { token, key, .. } = owner_in_browser(&app, &browser).await;
    let events = json!({"events": [detection("d-1", "s-1"), conversion("c-1", "s-1")]});
    app.post("/v1/events", Some(&key), &events)
        .await
        .expect(202);

    browser.follow("nav a[href='/app/goals']").await;
    assert!(browser.source().await.contains("No goals yet"));
    browser.fill("#name", "Scan to purchase").await;
    browser.fill("#labels", "barcode, product").await;
    browser.fill("#conversion_name", "purchase").await;
    browser.fill("#window", "0").await;
    browser
        .follow("form[action='/app/goals'] button[type=submit]")
        .await;
    assert!(!browser.text("#window-error").await.is_empty());
    assert_eq!(
        browser
            .find("#labels")
            .await
            .prop("value")
            .await
            .expect("a value")
            .as_deref(),
        Some("barcode, product"),
        "what was typed stays"
    );
    browser.fill("#window", "2").await;
    browser
        .follow("form[action='/app/goals'] button[type=submit]")
        .await;
    let table = browser.text("#goals").await;
    assert!(table.contains("Scan to purchase"), "{table}");
    assert!(
        table.contains("barcode, product") && table.contains("2 h"),
        "{table}"
    );
    support::eventually("the goal matches the stored events", || async {
        (credits_of(&app, &key, "c-1").await == 1).then_some(())
    })
    .await;
    browser.screenshot("goals").await;

    // A stricter threshold re-evaluates: the 0.9 detection no longer counts.
    browser.follow("#goals a").await;
    browser.fill("#min_confidence", "0.95").await;
    browser.follow("form button[type=submit].primary").await;
    browser.find("#saved").await;
    let edit_path = browser.path().await;
    assert!(edit_path.starts_with("/app/goals/"), "{edit_path}");
    support::eventually("the change re-evaluates", || async {
        (credits_of(&app, &key, "c-1").await == 0).then_some(())
    })
    .await;
    // The change deleted the goal's rows at once; the re-evaluation then runs in the
    // background, and the page shows how far it got.
    let edit_url = format!("{}{edit_path}", app.base_url);
    support::eventually("the page shows the finished re-evaluation", || async {
        browser.goto(&edit_url).await;
        browser
            .source()
            .await
            .contains("re-evaluated 1 session")
            .then_some(())
    })
    .await;
    browser.screenshot("goal-edit").await;

    browser.click("input[name=active]").await;
    browser.follow("form button[type=submit].primary").await;
    // Saved, the form comes back (post/redirect/get) with the box unticked. (The click does
    // not wait for the form's navigation; the notice is only on the page after it.)
    browser.find("#saved").await;
    let active = browser
        .find("input[name=active]")
        .await
        .prop("checked")
        .await
        .expect("a checkbox state");
    assert_eq!(active.as_deref(), Some("false"));
    browser.goto(&format!("{}/app/goals", app.base_url)).await;
    let list = browser.source().await;
    assert!(list.contains("inactive"), "{list}");
    let stored = app.get("/v1/goals", Some(&token)).await.expect(200).body;
    assert_eq!(stored["goals"][0]["active"], false);
    assert_eq!(stored["goals"][0]["min_confidence"], 0.95);
    assert_eq!(stored["goals"][0]["window_seconds"], 7200);
    browser.close().await;
}

#[actix_web::test]
async fn an_analyst_reads_goals_and_a_viewer_cannot() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    app.create_goal(&owner.token, &scan_to_purchase()).await;
    let browser = Browser::start().await;
    for (role, can_read) in [("analyst", true), ("viewer", false)] {
        let email = unique_email();
        app.post(
            "/v1/members",
            Some(&owner.token),
            &json!({"email": email, "password": PASSWORD, "role": role}),
        )
        .await
        .expect(201);
        browser.goto(&format!("{}/login", app.base_url)).await;
        browser.fill("#email", &email).await;
        browser.fill("#password", PASSWORD).await;
        browser.follow("button[type=submit]").await;
        browser.find("#detections").await;
        browser.goto(&format!("{}/app/goals", app.base_url)).await;
        let source = browser.source().await;
        if can_read {
            assert!(browser.text("#goals").await.contains("Scan to purchase"));
            assert!(!source.contains("New goal"), "an analyst gets no form");
            assert!(!source.contains("href=\"/app/goals/"), "nor edit links");
        } else {
            assert_eq!(browser.text("h1").await, "Not for your role");
        }
        // The error page has no header: log out from the overview.
        browser.goto(&format!("{}/app", app.base_url)).await;
        browser.follow(".who button[type=submit]").await;
        browser.find(".notice").await;
    }
    browser.close().await;
}
