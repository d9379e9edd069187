//! The Reports page in the browser: the table, its filters and sorting, the CSV download
//! with the session cookie, the daily chart, and a viewer's access.

use super::{PASSWORD, scan_to_purchase, sign_up_in_browser, unique_email};
use serde_json::{Value, json};
use support::TestApp;
use support::browser::Browser;
use support::fixtures::{conversion, detection};

pub(crate) const SESSION_COOKIE: &str = "__Host-sightline_session";

/// The table's rows, each as its cells' texts.
pub(crate) async fn table_rows(browser: &Browser) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for row in browser
        .client
        .find_all(fantoccini::Locator::Css("#report tbody tr"))
        .await
        .expect("rows")
    {
        let mut cells = Vec::new();
        for cell in row
            .find_all(fantoccini::Locator::Css("td"))
            .await
            .expect("cells")
        {
            cells.push(cell.text().await.expect("a cell's text"));
        }
        rows.push(cells);
    }
    rows
}

/// The model versions of the chart's series, in order.
async fn chart_series(browser: &Browser) -> Vec<String> {
    let mut names = Vec::new();
    for series in browser
        .client
        .find_all(fantoccini::Locator::Css("#chart svg g.series"))
        .await
        .expect("series")
    {
        names.push(
            series
                .attr("data-model-version")
                .await
                .expect("an attribute")
                .unwrap_or_default(),
        );
    }
    names
}

/// GETs `url` with `session` as the dashboard's cookie; (status, body).
pub(crate) async fn get_with_session(url: &str, session: &str) -> (u16, String) {
    let mut response = awc::Client::builder()
        .disable_redirects()
        .finish()
        .get(url)
        .cookie(awc::cookie::Cookie::new(SESSION_COOKIE, session.to_owned()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let body = response.body().limit(16 << 20).await.expect("a body");
    (
        response.status().as_u16(),
        String::from_utf8(body.to_vec()).expect("UTF-8"),
    )
}

/// The `href` of the CSV link, made absolute by the browser.
pub(crate) async fn csv_link(browser: &Browser) -> String {
    browser
        .find("#csv")
        .await
        .prop("href")
        .await
        .expect("a property")
        .expect("an href")
}

fn row_of<'a>(report: &'a Value, model_version: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["model_version"] == model_version))
        .unwrap_or_else(|| panic!("no {model_version} row in {report}"))
}

#[actix_web::test]
async fn the_reports_page_filters_sorts_charts_and_downloads_the_label_report() {
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;
    let email = unique_email();
    sign_up_in_browser(&app, &browser, &email).await;

    // Nothing sent yet: the page says what to do next.
    browser.follow("nav a[href='/app/reports']").await;
    let empty = browser.text("#empty").await;
    assert!(empty.contains("No detections"), "{empty}");
    assert!(browser.source().await.contains(r#"href="/app""#));

    let token = app.login(&email, PASSWORD).await;
    let (_, key) = app.create_api_key(&token, &["ingest", "read"]).await;
    app.create_goal(&token, &scan_to_purchase()).await;
    let mut older_model = detection("d-3", "s-3");
    older_model["model_version"] = json!("v2");
    older_model["entity_id"] = json!("sku-7");
    let events = json!({"events": [
        detection("d-1", "s-1"), detection("d-2", "s-2"), older_model,
        conversion("c-1", "s-1"), conversion("c-3", "s-3"),
    ]});
    app.post("/v1/events", Some(&key), &events)
        .await
        .expect(202);
    for conversion in ["c-1", "c-3"] {
        support::eventually(&format!("{conversion} attributed"), || async {
            let found = app
                .get(
                    &format!("/v1/attributions?conversion_event_id={conversion}"),
                    Some(&key),
                )
                .await
                .body;
            (found["attributions"].as_array().map_or(0, Vec::len) > 0).then_some(())
        })
        .await;
    }
    let api = app
        .get("/v1/reports/labels", Some(&key))
        .await
        .expect(200)
        .body;
    assert_eq!(row_of(&api, "v3")["detections"], 2);
    assert_eq!(row_of(&api, "v2")["matched_conversions"], 1);

    // Every version, most detections first, as the API orders them.
    browser.goto(&format!("{}/app/reports", app.base_url)).await;
    let rows = table_rows(&browser).await;
    let figures: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().take(7).cloned().collect())
        .collect();
    assert_eq!(
        figures,
        [
            ["barcode", "sku-42", "v3", "2", "1", "0", "19.50"],
            ["barcode", "sku-7", "v2", "1", "1", "0", "19.50"],
        ]
    );
    // The first detection's time, as the API has it, to the second, in UTC.
    let first_time = row_of(&api, "v3")["first_detect_time"]
        .as_str()
        .unwrap_or_default()
        .replace('T', " ");
    assert!(
        first_time.starts_with(&rows[0][7]),
        "{first_time} vs {}",
        rows[0][7]
    );
    assert_eq!(browser.text("#total-detections").await, "3");
    assert_eq!(browser.text("#total-matched").await, "2");
    assert_eq!(chart_series(&browser).await, ["v2", "v3"]);
    let svg = browser.find("#chart svg").await;
    assert!(svg.attr("style").await.expect("an attribute").is_none());
    browser.screenshot("reports").await;
    // The fragment scrolls the chart into view (no script needed).
    browser
        .goto(&format!("{}/app/reports#chart", app.base_url))
        .await;
    browser.screenshot("reports-chart").await;

    // The CSV of the same query, with the browser's session, is the API's CSV.
    let session = browser
        .client
        .get_named_cookie(SESSION_COOKIE)
        .await
        .expect("the session cookie")
        .value()
        .to_owned();
    let (status, csv) = get_with_session(&csv_link(&browser).await, &session).await;
    assert_eq!(status, 200, "{csv}");
    let api_csv = app
        .get_with_header("/v1/reports/labels", Some(&key), ("accept", "text/csv"))
        .await
        .expect(200)
        .text;
    assert_eq!(csv, api_csv);

    // Sorting by a column keeps the filters and turns round on a second click.
    browser.follow("#sort-model_version a").await;
    assert_eq!(
        browser
            .find("#sort-model_version")
            .await
            .attr("aria-sort")
            .await
            .expect("an attribute")
            .as_deref(),
        Some("ascending")
    );
    let versions: Vec<String> = table_rows(&browser)
        .await
        .iter()
        .map(|r| r[2].clone())
        .collect();
    assert_eq!(versions, ["v2", "v3"]);
    browser.follow("#sort-model_version a").await;
    let versions: Vec<String> = table_rows(&browser)
        .await
        .iter()
        .map(|r| r[2].clone())
        .collect();
    assert_eq!(versions, ["v3", "v2"]);

    // One model version: the other's row and series are gone.
    browser.click("input[name=model_version][value=v2]").await;
    browser.follow("#apply").await;
    browser.find("#report").await;
    let rows = table_rows(&browser).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(&rows[0][..4], ["barcode", "sku-7", "v2", "1"]);
    assert!(!browser.source().await.contains("sku-42"));
    assert_eq!(chart_series(&browser).await, ["v2"]);
    assert_eq!(browser.text("#total-detections").await, "1");
    let kept = browser
        .find("input[name=model_version][value=v2]")
        .await
        .prop("checked")
        .await
        .expect("a property");
    assert_eq!(kept.as_deref(), Some("true"));
    browser.screenshot("reports-filtered").await;

    let (status, csv) = get_with_session(&csv_link(&browser).await, &session).await;
    assert_eq!(status, 200);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    let v2 = app
        .get("/v1/reports/labels?model_version=v2", Some(&key))
        .await
        .expect(200)
        .body;
    let v2 = row_of(&v2, "v2");
    assert_eq!(
        lines[1],
        format!(
            "barcode,sku-7,v2,{},{},{},{},{}",
            v2["detections"],
            v2["matched_conversions"],
            v2["assisted_conversions"],
            v2["conversion_value"],
            v2["first_detect_time"].as_str().unwrap_or_default()
        )
    );

    // At phone width the filtered page still shows its row.
    browser
        .client
        .set_window_size(390, 844)
        .await
        .expect("resize");
    browser.client.refresh().await.expect("reload");
    assert_eq!(table_rows(&browser).await.len(), 1);
    browser.screenshot("reports-phone").await;

    // A filter that is not valid is said on the page, beside the form.
    browser
        .goto(&format!("{}/app/reports?from=yesterday", app.base_url))
        .await;
    let problem = browser.text("#filter-errors").await;
    assert!(problem.contains("“From” must be a date"), "{problem}");
    browser.close().await;

    // A viewer reads the same page and CSV.
    let (_, viewer) = app.add_member(&token, "viewer").await;
    let (status, page) = get_with_session(&format!("{}/app/reports", app.base_url), &viewer).await;
    assert_eq!(status, 200);
    assert!(page.contains("sku-42") && page.contains("sku-7"));
    assert!(page.contains("viewer"));
    let (status, csv) =
        get_with_session(&format!("{}/app/reports.csv", app.base_url), &viewer).await;
    assert_eq!(status, 200);
    assert_eq!(csv, api_csv);
    // Without a session, the login.
    let (status, _) = get_with_session(&format!("{}/app/reports.csv", app.base_url), "x").await;
    assert_eq!(status, 303);
}

/// The `<g class="series">` of `model_version` in a page's chart.
fn series_markup<'a>(page: &'a str, model_version: &str) -> Option<&'a str> {
    let start = page.find(&format!(
        r#"<g class="series" data-model-version="{model_version}""#
    ))?;
    let end = page[start..].find("</g>")?;
    Some(&page[start..start + end])
}

/// The chart's figures per day, on either database: two days of v3 detections and their
/// matches, one v2 detection today; a single-day range keeps only that day's series.
async fn the_chart_counts_per_utc_day(app: TestApp) {
    let owner = app.signup().await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest"]).await;
    app.create_goal(
        &owner.token,
        &json!({"name": "Scan to purchase", "detection_labels": ["barcode"],
                "conversion_name": "purchase", "key": "session_token", "window_seconds": 3600}),
    )
    .await;
    let now = chrono::Utc::now() - chrono::Duration::minutes(2);
    let earlier = now - chrono::Duration::days(2);
    let at = |t: chrono::DateTime<chrono::Utc>| {
        json!(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    };
    let mut old_detection = detection("d-old", "s-old");
    old_detection["event_time"] = at(earlier);
    let mut old_conversion = conversion("c-old", "s-old");
    old_conversion["event_time"] = at(earlier + chrono::Duration::seconds(30));
    let mut older_model = detection("d-3", "s-3");
    older_model["model_version"] = json!("v2");
    older_model["event_time"] = at(now);
    let mut today = vec![
        detection("d-1", "s-1"),
        detection("d-2", "s-2"),
        conversion("c-1", "s-1"),
    ];
    for event in &mut today {
        event["event_time"] = at(now);
    }
    let mut events = vec![old_detection, old_conversion, older_model];
    events.extend(today);
    app.post("/v1/events", Some(&key), &json!({ "events": events }))
        .await
        .expect(202);
    let page = support::eventually("both matches in the chart", || async {
        let (status, page) =
            get_with_session(&format!("{}/app/reports", app.base_url), &owner.token).await;
        assert_eq!(status, 200, "{page}");
        let v3 = series_markup(&page, "v3")?;
        (v3.matches("<circle").count() == 4).then_some(page)
    })
    .await;
    let v3 = series_markup(&page, "v3").unwrap_or_default();
    // Today: 2 detections; two days ago: 1; one match on each day.
    assert_eq!(v3.matches("<title>2</title>").count(), 1, "{v3}");
    assert_eq!(v3.matches("<title>1</title>").count(), 3, "{v3}");
    let v2 = series_markup(&page, "v2").unwrap_or_default();
    assert_eq!(
        v2.matches("<title>1</title>").count(),
        1,
        "one detection, no match: {v2}"
    );

    let day = earlier.date_naive();
    let (status, page) = get_with_session(
        &format!("{}/app/reports?from={day}&to={day}", app.base_url),
        &owner.token,
    )
    .await;
    assert_eq!(status, 200);
    assert!(series_markup(&page, "v2").is_none(), "no v2 that day");
    let v3 = series_markup(&page, "v3").unwrap_or_default();
    assert_eq!(v3.matches("<title>1</title>").count(), 2, "{v3}");
    assert!(page.contains(r#"<td class="num">1</td>"#));

    // A goal narrows the report to its labels; an unknown one is said on the page, and the
    // CSV of filters that cannot be used sends to the page that says why.
    let faces = app
        .create_goal(
            &owner.token,
            &json!({"name": "Face to visit", "detection_labels": ["face"],
                    "conversion_name": "visit", "key": "session_token", "window_seconds": 60}),
        )
        .await;
    let (status, page) = get_with_session(
        &format!("{}/app/reports?goal={faces}", app.base_url),
        &owner.token,
    )
    .await;
    assert_eq!(status, 200);
    assert!(page.contains("No detections for these filters"), "{page}");
    let unknown = uuid::Uuid::new_v4();
    let (status, page) = get_with_session(
        &format!(
            "{}/app/reports?goal={unknown}&model_version=v3",
            app.base_url
        ),
        &owner.token,
    )
    .await;
    assert_eq!(status, 200);
    assert!(page.contains("is not one of your goals"), "{page}");
    assert!(
        page.contains(r#"value="v3" checked"#),
        "the form keeps what was chosen"
    );
    let (status, _) = get_with_session(
        &format!("{}/app/reports.csv?to=someday", app.base_url),
        &owner.token,
    )
    .await;
    assert_eq!(status, 303);
}

#[actix_web::test]
async fn the_chart_counts_per_utc_day_on_postgresql() {
    the_chart_counts_per_utc_day(TestApp::spawn().await).await;
}

#[actix_web::test]
async fn the_chart_counts_per_utc_day_on_sqlite() {
    the_chart_counts_per_utc_day(TestApp::spawn_embedded().await).await;
}
