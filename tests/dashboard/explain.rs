//! The explain page: every related detection of a conversion with its verdict, in words.

use super::{Owner, owner_in_browser, scan_to_purchase};
use serde_json::json;
use support::TestApp;
use support::browser::Browser;
use support::fixtures::{conversion, detection, time_ago};

#[actix_web::test]
async fn explain_shows_each_detection_s_verdict_for_a_conversion() {
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;
    let Owner { token, key, .. } = owner_in_browser(&app, &browser).await;
    let mut goal = scan_to_purchase();
    goal["min_confidence"] = json!(0.5);
    app.create_goal(&token, &goal).await;
    let mut unsure = detection("d-unsure", "s-1");
    unsure["confidence"] = json!(0.3);
    let mut later = detection("d-later", "s-1");
    later["event_time"] = json!(time_ago(5));
    let events =
        json!({"events": [detection("d-sure", "s-1"), unsure, later, conversion("c-1", "s-1")]});
    app.post("/v1/events", Some(&key), &events)
        .await
        .expect(202);

    browser.follow("nav a[href='/app/explain']").await;
    browser.fill("#event_id", "c-1").await;
    browser.follow("form.search button[type=submit]").await;
    let table = browser.text(".explained-goal").await;
    assert!(table.contains("Scan to purchase"), "{table}");
    for (detection, verdict) in [
        ("d-sure", "direct"),
        ("d-unsure", "below_threshold"),
        ("d-later", "after_conversion"),
    ] {
        let line = table
            .lines()
            .find(|line| line.contains(detection))
            .unwrap_or_else(|| panic!("{detection} is listed: {table}"));
        assert!(line.contains(verdict), "{detection}: {line}");
    }
    assert!(table.contains("its confidence is under the goal's minimum"));
    browser.screenshot("explain").await;

    browser.fill("#event_id", "c-unknown").await;
    browser.follow("form.search button[type=submit]").await;
    assert_eq!(
        browser.text(".form-error").await,
        "No conversion with the event id “c-unknown”."
    );
    browser.close().await;
}
