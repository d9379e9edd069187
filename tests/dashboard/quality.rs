//! The detection quality page in the browser: volume, confidence, the share under a goal's
//! threshold and what its dedup rule leaves, from events sent through the API; the range
//! it covers and its bound; a viewer's access; and another tenant's view.

use super::reports::get_with_session;
use super::{Owner, owner_in_browser, table_cells};
use serde_json::{Value, json};
use support::TestApp;
use support::browser::Browser;
use support::fixtures::{detection, time_ago};

/// A detection `seconds_ago`, of `label` by `model_version`, with `confidence`.
fn seen(
    event_id: &str,
    seconds_ago: i64,
    (label, model_version): (&str, &str),
    (session, entity): (&str, &str),
    confidence: f64,
) -> Value {
    let mut event = detection(event_id, session);
    event["event_time"] = json!(time_ago(seconds_ago));
    event["label"] = json!(label);
    event["model_version"] = json!(model_version);
    event["entity_id"] = json!(entity);
    event["confidence"] = json!(confidence);
    event
}

/// A goal with a 0.6 threshold and a 30 s dedup gap, and:
/// v3 barcodes: the same thing on one session at 0, 20, 40 and 60 s (rule 6 keeps the
/// first and third), one under the threshold; v2 barcodes: two different sessions, and
/// one the edge filtered, under the threshold; one face; one test barcode (never counted).
/// Returns the goal's id.
async fn send_detections(app: &TestApp, token: &str, key: &str) -> String {
    let goal = app
        .create_goal(
            token,
            &json!({"name": "Scan <to> purchase", "detection_labels": ["barcode"],
                    "conversion_name": "purchase", "key": "session_token",
                    "window_seconds": 3600, "min_confidence": 0.6, "dedup_seconds": 30}),
        )
        .await;
    let v3 = ("barcode", "v3");
    let v2 = ("barcode", "v2");
    let mut dropped = seen("q-8", 250, v2, ("s-2", "sku-1"), 0.3);
    dropped["filtered"] = json!(true);
    let mut test = seen("q-test", 250, v3, ("s-1", "sku-42"), 0.9);
    test["test"] = json!(true);
    let events = json!({"events": [
        seen("q-1", 300, v3, ("s-1", "sku-42"), 0.9),
        seen("q-2", 280, v3, ("s-1", "sku-42"), 0.9),
        seen("q-3", 260, v3, ("s-1", "sku-42"), 0.9),
        seen("q-4", 240, v3, ("s-1", "sku-42"), 0.9),
        seen("q-5", 200, v3, ("s-1", "sku-42"), 0.5),
        seen("q-6", 250, v2, ("s-2", "sku-1"), 0.8),
        seen("q-7", 250, v2, ("s-3", "sku-1"), 0.8),
        dropped,
        seen("f-1", 250, ("face", "v3"), ("s-1", "person-1"), 0.7),
        test,
    ]});
    let answer = app.post("/v1/events", Some(key), &events).await.expect(202);
    assert_eq!(answer.body["accepted"], 10, "{}", answer.body);
    goal
}

#[actix_web::test]
async fn the_quality_page_shows_confidence_thresholds_and_dedup_per_model_version() {
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;
    let Owner { token, key } = owner_in_browser(&app, &browser).await;

    browser.follow("nav a[href='/app/quality']").await;
    let empty = browser.text("#empty").await;
    assert!(empty.contains("No detections from"), "{empty}");
    assert!(empty.contains("7 days"), "the default range: {empty}");
    browser.screenshot("quality-empty").await;

    let goal = send_detections(&app, &token, &key).await;
    // Accepted means stored: the page reads the stored detections.
    browser.goto(&format!("{}/app/quality", app.base_url)).await;
    assert!(browser.text("#covers").await.contains("(7 days, UTC)"));
    assert_eq!(
        table_cells(&browser, "#quality tbody tr").await,
        [
            ["barcode", "v2", "3", "1", "0.63"],
            ["barcode", "v3", "5", "0", "0.82"],
            ["face", "v3", "1", "0", "0.70"],
        ]
    );
    assert_eq!(
        table_cells(&browser, ".goal-table tbody tr").await,
        [
            ["barcode", "v2", "3", "1", "33.3 %", "2", "2", "0.0 %"],
            ["barcode", "v3", "5", "1", "20.0 %", "4", "2", "50.0 %"],
        ]
    );
    let goal_card = browser.text(".goal-quality").await;
    assert!(goal_card.contains("Scan <to> purchase"), "{goal_card}");
    assert!(goal_card.contains("Minimum confidence 0.60") && goal_card.contains("30 s"));
    browser.screenshot("quality").await;
    browser
        .goto(&format!("{}/app/quality#goal-1", app.base_url))
        .await;
    browser.screenshot("quality-goal").await;

    // The goal chosen: its labels only.
    browser
        .goto(&format!("{}/app/quality?goal={goal}", app.base_url))
        .await;
    let labels: Vec<String> = table_cells(&browser, "#quality tbody tr")
        .await
        .into_iter()
        .map(|row| row[0].clone())
        .collect();
    assert_eq!(labels, ["barcode", "barcode"]);

    // A range over the bound is refused on the page; a past range has nothing.
    browser
        .goto(&format!(
            "{}/app/quality?from=2026-01-01&to=2026-03-01",
            app.base_url
        ))
        .await;
    let problem = browser.text("#filter-errors").await;
    assert!(problem.contains("at most 31"), "{problem}");
    browser
        .goto(&format!(
            "{}/app/quality?from=2020-01-01&to=2020-01-01",
            app.base_url
        ))
        .await;
    assert!(
        browser
            .text("#empty")
            .await
            .contains("2020-01-01 (1 day, UTC)")
    );

    browser
        .client
        .set_window_size(390, 844)
        .await
        .expect("resize");
    browser
        .goto(&format!("{}/app/quality#goal-1", app.base_url))
        .await;
    assert_eq!(table_cells(&browser, "#quality tbody tr").await.len(), 3);
    browser.screenshot("quality-phone").await;
    browser.close().await;

    // A viewer reads it; another tenant sees nothing of it, and A's goal is unknown to it.
    let (_, viewer) = app.add_member(&token, "viewer").await;
    let (status, page) = get_with_session(&format!("{}/app/quality", app.base_url), &viewer).await;
    assert_eq!(status, 200);
    assert!(page.contains("50.0 %") && page.contains("0.82"), "{page}");
    let other = app.signup().await;
    let (status, page) =
        get_with_session(&format!("{}/app/quality", app.base_url), &other.token).await;
    assert_eq!(status, 200);
    assert!(page.contains("No detections from") && !page.contains("barcode"));
    let (status, page) = get_with_session(
        &format!("{}/app/quality?goal={goal}", app.base_url),
        &other.token,
    )
    .await;
    assert_eq!(status, 200);
    assert!(page.contains("is not one of your goals") && !page.contains("purchase"));
}

#[actix_web::test]
async fn the_quality_page_counts_on_sqlite() {
    let app = TestApp::spawn_embedded().await;
    let owner = app.signup().await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest"]).await;
    send_detections(&app, &owner.token, &key).await;
    let (status, page) =
        get_with_session(&format!("{}/app/quality", app.base_url), &owner.token).await;
    assert_eq!(status, 200, "{page}");
    let row = r#"<td class="num">5</td><td class="num">1</td><td class="num">20.0 %</td><td class="num">4</td><td class="num">2</td><td class="num">50.0 %</td>"#;
    assert!(page.contains(row), "{page}");
}
