//! A new tenant's first hour, in the browser from end to end: sign up, create an API key,
//! create a goal, send events with that key, see the report row, filter it by model version,
//! download the CSV, and explain a conversion.

use super::reports::{SESSION_COOKIE, csv_link, get_with_session, table_rows};
use super::{sign_up_in_browser, unique_email};
use serde_json::json;
use support::TestApp;
use support::browser::Browser;
use support::fixtures::{conversion, detection, time_ago};

#[actix_web::test]
async fn a_new_tenant_goes_from_sign_up_to_an_explained_conversion() {
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;
    sign_up_in_browser(&app, &browser, &unique_email()).await;

    // An API key, made on the keys page; its secret is what the cameras will send.
    browser.follow("nav a[href='/app/keys']").await;
    browser.fill("#name", "edge cameras").await;
    browser.click("input[name=scope_read]").await;
    browser
        .follow("form[action='/app/keys'] button[type=submit]")
        .await;
    let key = browser
        .find("#new-key")
        .await
        .prop("value")
        .await
        .expect("the key's value")
        .expect("a key");

    // A goal, made on the goals page.
    browser.follow("nav a[href='/app/goals']").await;
    browser.fill("#name", "Scan to purchase").await;
    browser.fill("#labels", "barcode").await;
    browser.fill("#conversion_name", "purchase").await;
    browser.fill("#key", "session_token").await;
    browser.fill("#window", "1").await;
    browser
        .find("select[name=window_unit] option[value=hours]")
        .await
        .click()
        .await
        .expect("choose hours");
    browser
        .follow("form[action='/app/goals'] button[type=submit]")
        .await;
    assert!(browser.text("#goals").await.contains("Scan to purchase"));

    // The vision system sends detections of two model versions, then the purchases.
    let mut old_model = detection("d-v2", "s-2");
    old_model["model_version"] = json!("v2");
    old_model["event_time"] = json!(time_ago(120));
    let mut unmatched = conversion("c-lost", "s-none");
    unmatched["value"] = json!(5);
    let events = json!({"events": [
        detection("d-v3", "s-1"), old_model,
        conversion("c-1", "s-1"), conversion("c-2", "s-2"), unmatched,
    ]});
    let answer = app.post("/v1/events", Some(&key), &events).await;
    assert_eq!(answer.expect(202).body["accepted"], 5);
    app.await_attributions(&key, 2).await;

    // The report shows a row per model version.
    browser.follow("nav a[href='/app/reports']").await;
    let rows = table_rows(&browser).await;
    let figures: Vec<Vec<String>> = rows.iter().map(|r| r[..6].to_vec()).collect();
    assert_eq!(
        figures,
        [
            ["barcode", "sku-42", "v2", "1", "1", "0"],
            ["barcode", "sku-42", "v3", "1", "1", "0"],
        ]
    );

    // Filtered to one model version: only its row, in the page and in the CSV.
    browser.click("input[name=model_version][value=v3]").await;
    browser.follow("#apply").await;
    browser.find("#report").await;
    let rows = table_rows(&browser).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(&rows[0][..5], ["barcode", "sku-42", "v3", "1", "1"]);
    let session = browser
        .client
        .get_named_cookie(SESSION_COOKIE)
        .await
        .expect("the session cookie")
        .value()
        .to_owned();
    let (status, csv) = get_with_session(&csv_link(&browser).await, &session).await;
    assert_eq!(status, 200, "{csv}");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[0].starts_with("detection_label,entity_id,model_version,detections"));
    assert!(
        lines[1].starts_with("barcode,sku-42,v3,1,1,0,19.5,"),
        "{}",
        lines[1]
    );

    // Why did the lost purchase not match? Its session has no detection at all; the
    // matched one names its detection.
    browser.follow("nav a[href='/app/explain']").await;
    browser.fill("#event_id", "c-1").await;
    browser.follow("form.search button[type=submit]").await;
    let explained = browser.text(".explained-goal").await;
    let line = explained
        .lines()
        .find(|line| line.contains("d-v3"))
        .unwrap_or_else(|| panic!("d-v3 is listed: {explained}"));
    assert!(line.contains("direct"), "{line}");
    browser.screenshot("journey-explain").await;
    browser.fill("#event_id", "c-lost").await;
    browser.follow("form.search button[type=submit]").await;
    let explained = browser.text(".explained-goal").await;
    assert!(explained.contains("Scan to purchase"), "{explained}");
    assert!(!explained.contains("d-v"), "{explained}");
    browser.close().await;
}
