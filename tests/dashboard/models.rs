//! The model versions page in the browser: each label's conversion rate per model version
//! from events sent through the API, the goal and version filters, a viewer's access, and
//! another tenant's view (none of it, and its goal id read as an unknown one).

use super::reports::get_with_session;
use super::{Owner, owner_in_browser, scan_to_purchase, table_cells};
use serde_json::{Value, json};
use support::TestApp;
use support::browser::Browser;
use support::fixtures::{conversion, detection};

/// A detection of `label` by `model_version` of `entity`, with `keys`.
fn seen(event_id: &str, label: &str, model_version: &str, entity: &str, keys: Value) -> Value {
    let mut event = detection(event_id, "unused");
    event["label"] = json!(label);
    event["model_version"] = json!(model_version);
    event["entity_id"] = json!(entity);
    event["keys"] = keys;
    event
}

/// Two goals on barcodes (by session and by user), and:
/// v2 barcodes: 2 detections, 1 matched; v3 barcodes: 4 detections, and one conversion that
/// both goals credit, to detections of two different entities (it counts once); v3 product:
/// 1 detection, none matched. Returns the by-user goal's id.
pub(crate) async fn send_two_model_versions(app: &TestApp, token: &str, key: &str) -> String {
    app.create_goal(token, &scan_to_purchase()).await;
    let by_user = app
        .create_goal(
            token,
            &json!({"name": "Scan to purchase by user", "detection_labels": ["barcode"],
                    "conversion_name": "purchase", "key": "user_id", "window_seconds": 3600}),
        )
        .await;
    let mut both_keys = conversion("c-3", "s-3");
    both_keys["keys"] = json!({"session_token": "s-3", "user_id": "u-4"});
    let events = json!({"events": [
        seen("d-1", "barcode", "v2", "sku-1", json!({"session_token": "s-1"})),
        seen("d-2", "barcode", "v2", "sku-1", json!({"session_token": "s-2"})),
        seen("d-3", "barcode", "v3", "sku-1", json!({"session_token": "s-3"})),
        seen("d-4", "barcode", "v3", "sku-2", json!({"user_id": "u-4"})),
        seen("d-5", "barcode", "v3", "sku-1", json!({"session_token": "s-5"})),
        seen("d-6", "barcode", "v3", "sku-1", json!({"session_token": "s-6"})),
        seen("p-1", "product", "v3", "sku-9", json!({"session_token": "s-7"})),
        conversion("c-1", "s-1"),
        both_keys,
    ]});
    app.post("/v1/events", Some(key), &events).await.expect(202);
    // c-1 by session; c-3 by session (d-3) and by user (d-4).
    app.await_attributions(key, 3).await;
    by_user
}

#[actix_web::test]
async fn the_models_page_compares_conversion_rates_per_model_version() {
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;
    let Owner { token, key } = owner_in_browser(&app, &browser).await;

    // Nothing sent yet: the page says what to do next.
    browser.follow("nav a[href='/app/models']").await;
    let empty = browser.text("#empty").await;
    assert!(empty.contains("No detections"), "{empty}");
    assert!(empty.contains("model_version"), "{empty}");
    browser.screenshot("models-empty").await;

    let by_user = send_two_model_versions(&app, &token, &key).await;
    // The report counts c-3 once in each of its two entity rows; per version it is one
    // conversion.
    let report = app
        .get("/v1/reports/labels?model_version=v3", Some(&key))
        .await
        .expect(200)
        .body;
    let matched: i64 = report["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter(|r| r["detection_label"] == "barcode")
                .map(|r| r["matched_conversions"].as_i64().unwrap_or_default())
                .sum()
        })
        .unwrap_or_default();
    assert_eq!(matched, 2, "{report}");

    browser.goto(&format!("{}/app/models", app.base_url)).await;
    let headings = table_cells(&browser, "#models thead tr").await;
    assert_eq!(headings[0], ["label", "v2", "v3"]);
    assert_eq!(
        table_cells(&browser, "#models tbody tr").await,
        [
            ["barcode", "2", "1", "50.0 %", "4", "1", "25.0 %"],
            ["product", "–", "–", "–", "1", "0", "0.0 %"],
        ]
    );
    browser.screenshot("models").await;

    // One goal: only its labels and its attributions.
    browser
        .goto(&format!("{}/app/models?goal={by_user}", app.base_url))
        .await;
    assert_eq!(
        table_cells(&browser, "#models tbody tr").await,
        [["barcode", "2", "0", "0.0 %", "4", "1", "25.0 %"]]
    );
    // One version ticked: its columns only, the other still offered.
    browser
        .goto(&format!("{}/app/models?model_version=v3", app.base_url))
        .await;
    assert_eq!(
        table_cells(&browser, "#models tbody tr").await,
        [
            ["barcode", "4", "1", "25.0 %"],
            ["product", "1", "0", "0.0 %"]
        ]
    );
    assert!(
        browser
            .source()
            .await
            .contains(r#"name="model_version" value="v2">"#)
    );

    // At phone width the table scrolls inside its card, the figures still there.
    browser
        .client
        .set_window_size(390, 844)
        .await
        .expect("resize");
    browser
        .goto(&format!("{}/app/models#models", app.base_url))
        .await;
    assert_eq!(table_cells(&browser, "#models tbody tr").await.len(), 2);
    browser.screenshot("models-phone").await;
    browser.close().await;

    // A viewer reads the same figures.
    let (_, viewer) = app.add_member(&token, "viewer").await;
    let (status, page) = get_with_session(&format!("{}/app/models", app.base_url), &viewer).await;
    assert_eq!(status, 200);
    assert!(page.contains("50.0 %") && page.contains("25.0 %"), "{page}");

    // Another tenant sees none of it; A's goal id is an unknown goal to it.
    let other = app.signup().await;
    let (status, page) =
        get_with_session(&format!("{}/app/models", app.base_url), &other.token).await;
    assert_eq!(status, 200);
    assert!(page.contains("No detections") && !page.contains("barcode"));
    let answer = |goal: String| {
        let (app, token) = (&app, other.token.clone());
        async move {
            get_with_session(&format!("{}/app/models?goal={goal}", app.base_url), &token).await
        }
    };
    let (status, page) = answer(by_user).await;
    assert_eq!(status, 200);
    assert!(page.contains("is not one of your goals"), "{page}");
    assert!(!page.contains("Scan to purchase by user"));
    let (unknown_status, unknown_page) = answer(uuid::Uuid::new_v4().to_string()).await;
    assert_eq!(unknown_status, status);
    assert!(unknown_page.contains("is not one of your goals"));
}

/// The same figures on either database, without a browser.
async fn the_models_page_counts_per_version(app: TestApp) {
    let owner = app.signup().await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest", "read"]).await;
    send_two_model_versions(&app, &owner.token, &key).await;
    let (status, page) =
        get_with_session(&format!("{}/app/models", app.base_url), &owner.token).await;
    assert_eq!(status, 200, "{page}");
    for figure in [
        r#"<td class="num">2</td><td class="num">1</td><td class="num rate">50.0 %</td>"#,
        r#"<td class="num">4</td><td class="num">1</td><td class="num rate">25.0 %</td>"#,
        r#"<td class="num">1</td><td class="num">0</td><td class="num rate">0.0 %</td>"#,
    ] {
        assert!(page.contains(figure), "{figure} in {page}");
    }
}

#[actix_web::test]
async fn the_models_page_counts_per_version_on_sqlite() {
    the_models_page_counts_per_version(TestApp::spawn_embedded().await).await;
}
