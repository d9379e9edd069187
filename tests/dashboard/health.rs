//! The Tracking health pages with real events sent through the API: the summary's figures
//! (per hour, error codes, lateness, consent, conversions no detection can match) on both
//! databases, the invalid-events log with its payloads and filter, the test events and what
//! they matched, a viewer's access, and tenant isolation.

use super::reports::get_with_session;
use super::{Owner, owner_in_browser, scan_to_purchase};
use serde_json::{Value, json};
use support::TestApp;
use support::browser::Browser;
use support::fixtures::{conversion, detection, time_ago};

/// Six live events, three rejected ones, two test events; see [`check_summary`].
fn sample() -> Value {
    let mut late = detection("d-late", "s-2");
    late["event_time"] = json!(time_ago(2 * 3600));
    let mut denied = detection("d-denied", "s-3");
    denied["consent"] = json!("denied");
    let mut unseen = conversion("c-unseen", "s-nobody");
    unseen["value"] = json!(5);
    let mut keyless = conversion("c-keyless", "s-1");
    keyless["keys"] = json!({"order_id": "o-1"});
    let mut out_of_range = detection("d-bad-1", "s-1");
    out_of_range["confidence"] = json!(1.5);
    let mut two_errors = detection("d-bad-2", "s-1");
    two_errors.as_object_mut().map(|d| d.remove("label"));
    two_errors["colour"] = json!("red");
    let mut markup = detection("d-bad-3", "s-1");
    markup["label"] = json!("<script>alert(1)</script>");
    markup["confidence"] = json!("high");
    let mut qa_detection = detection("qa-d-1", "s-qa");
    qa_detection["test"] = json!(true);
    let mut qa_conversion = conversion("qa-c-1", "s-qa");
    qa_conversion["test"] = json!(true);
    json!({"events": [
        detection("d-1", "s-1"), late, denied,
        conversion("c-1", "s-1"), unseen, keyless,
        out_of_range, two_errors, markup,
        qa_detection, qa_conversion,
    ]})
}

/// Sends [`sample`] with the usual goal; waits for the test conversion's match.
async fn send_sample(app: &TestApp, token: &str, key: &str) {
    app.create_goal(token, &scan_to_purchase()).await;
    let answer = app
        .post("/v1/events", Some(key), &sample())
        .await
        .expect(202)
        .body;
    assert_eq!(answer["accepted"], 8, "{answer}");
    assert_eq!(answer["rejected"], 3, "{answer}");
    support::eventually("the test conversion matched", || async {
        let found = app
            .get("/v1/attributions?conversion_event_id=qa-c-1", Some(key))
            .await
            .body;
        (found["attributions"].as_array().map_or(0, Vec::len) == 1).then_some(())
    })
    .await;
}

/// GETs `path` of `app` as the member whose session is `session`; (status, body).
async fn page_of(app: &TestApp, session: &str, path: String) -> (u16, String) {
    get_with_session(&format!("{}{path}", app.base_url), session).await
}

/// The text of a table row: its cells joined by single spaces.
fn row_text(html: &str, starts: &str) -> String {
    let start = html
        .find(starts)
        .unwrap_or_else(|| panic!("no row starting {starts}"));
    let end = html[start..]
        .find("</tr>")
        .map_or(html.len(), |e| start + e);
    let mut text = String::new();
    let mut in_tag = false;
    for c in html[start..end].chars() {
        match c {
            '<' => {
                in_tag = true;
                text.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The summary of [`sample`]: three detections and three conversions accepted (one late by
/// two hours, one with consent denied), three rejected with four codes, and of the goal's
/// three purchases one without the key and one whose key no detection carries.
fn check_summary(html: &str) {
    assert!(html.contains(r#"id="accepted">6<"#), "{html}");
    assert!(html.contains("3 detections, 3 conversions"));
    assert!(html.contains(r#"id="rejected">3<"#));
    assert!(html.contains("33.3 % of all received"));
    assert!(html.contains(r#"id="consent-denied">16.7 %<"#));
    assert!(html.contains("2 arrived in this period"), "the test events");
    for (code, events) in [
        ("out_of_range", 1),
        ("missing_field", 1),
        ("unknown_field", 1),
        ("invalid_type", 1),
    ] {
        let row = row_text(html, &format!(r#"<tr id="code-{code}""#));
        assert!(row.ends_with(&format!("{events} {events}")), "{row}");
    }
    assert!(!html.contains("code-no_keys"));
    assert_eq!(
        row_text(html, "<tr><td>10 s – 1 min"),
        "10 s – 1 min 3 50.0 %"
    );
    assert_eq!(row_text(html, "<tr><td>1–10 min"), "1–10 min 2 33.3 %");
    assert_eq!(
        row_text(html, "<tr><td>1 h – 1 day"),
        "1 h – 1 day 1 16.7 %"
    );
    assert_eq!(
        row_text(html, "<tr><td>Scan to purchase"),
        "Scan to purchase session_token 3 1 1 2 (66.7 %)"
    );
}

#[actix_web::test]
async fn the_health_pages_show_what_the_api_received() {
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;
    let Owner { token, key } = owner_in_browser(&app, &browser).await;

    // Nothing yet: each page says what to do next, for this server.
    browser.follow("nav a[href='/app/health']").await;
    let empty = browser.text("#empty").await;
    assert!(
        empty.contains("Nothing received in the last 24 hours"),
        "{empty}"
    );
    assert!(empty.contains(&format!("{}/v1/events", app.base_url)));
    browser.screenshot("health-empty").await;
    browser
        .goto(&format!("{}/app/health/invalid", app.base_url))
        .await;
    assert!(browser.text("#empty").await.contains("No rejected events"));
    browser
        .goto(&format!("{}/app/health/test-events", app.base_url))
        .await;
    assert!(browser.text("#empty").await.contains("No test events"));

    send_sample(&app, &token, &key).await;
    browser.follow(".tabs a[href='/app/health']").await;
    browser.find("#accepted").await;
    check_summary(&browser.source().await);
    assert_eq!(browser.path().await, "/app/health");
    browser.screenshot("health").await;
    browser.click("#range option[value='7d']").await;
    browser.follow("#apply").await;
    browser.find("#range option[value='7d'][selected]").await;
    assert!(browser.text("#period").await.contains("the last 7 days"));
    assert_eq!(browser.text("#accepted").await, "6");

    // A code opens the log filtered by it.
    browser.follow("#code-out_of_range a").await;
    browser
        .find("#code-filter a[href='/app/health/invalid']")
        .await;
    let log = browser.text("#log").await;
    assert!(
        log.contains("d-bad-1") && log.contains("confidence"),
        "{log}"
    );
    assert!(!log.contains("d-bad-2") && !log.contains("d-bad-3"));

    // The whole log: newest first, each payload as text, markup included and inert.
    browser
        .follow("#code-filter a[href='/app/health/invalid']")
        .await;
    browser.find("#code option[value=''][selected]").await;
    let entries = browser
        .client
        .find_all(fantoccini::Locator::Css("#log li.entry"))
        .await
        .expect("entries");
    assert_eq!(entries.len(), 3);
    let log = browser.text("#log").await;
    assert!(
        log.contains(r#""label": "<script>alert(1)</script>""#),
        "{log}"
    );
    assert!(log.contains("unknown_field") && log.contains("missing_field"));
    assert!(log.contains("invalid_type"));
    let scripts = browser
        .client
        .find_all(fantoccini::Locator::Css("#log script"))
        .await
        .expect("a search");
    assert!(scripts.is_empty(), "the payload's markup is text");
    browser.screenshot("health-invalid").await;

    // The filter as a form.
    browser.click("#code option[value='unknown_field']").await;
    browser.follow("#apply").await;
    browser
        .find("#code option[value='unknown_field'][selected]")
        .await;
    let log = browser.text("#log").await;
    assert!(log.contains("d-bad-2") && !log.contains("d-bad-1"), "{log}");

    // Test events and what they matched.
    browser
        .follow(".tabs a[href='/app/health/test-events']")
        .await;
    let table = browser.text("#test-events").await;
    let mut rows = Vec::new();
    for row in browser
        .client
        .find_all(fantoccini::Locator::Css("#test-events tbody tr"))
        .await
        .expect("rows")
    {
        rows.push(row.text().await.expect("a row's text").replace('\n', " "));
    }
    assert_eq!(rows.len(), 2, "{rows:?}");
    let conversion = rows
        .iter()
        .find(|row| row.contains("conversion"))
        .unwrap_or_else(|| panic!("the test conversion is listed: {rows:?}"));
    assert!(conversion.contains("qa-c-1"), "{conversion}");
    assert!(
        conversion.contains("direct Scan to purchase: qa-d-1"),
        "{conversion}"
    );
    assert!(table.contains("session_token=s-qa"));
    // Two rows (checked above): the live events are not among them.
    assert!(!table.contains("c-unseen") && !table.contains("d-late"));
    browser.screenshot("health-test-events").await;

    // At phone width the summary still shows its figures.
    browser
        .client
        .set_window_size(390, 844)
        .await
        .expect("resize");
    browser.goto(&format!("{}/app/health", app.base_url)).await;
    assert_eq!(browser.text("#accepted").await, "6");
    browser.screenshot("health-phone").await;
    browser
        .goto(&format!("{}/app/health/invalid", app.base_url))
        .await;
    browser.find("#log").await;
    browser.screenshot("health-invalid-phone").await;
    browser.close().await;
}

/// The same figures, log filter and test events on either database (their SQL differs).
async fn the_health_pages_count_the_same(app: TestApp) {
    let owner = app.signup().await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest", "read"]).await;
    send_sample(&app, &owner.token, &key).await;
    let page = |path: &'static str| page_of(&app, &owner.token, path.to_owned());

    let (status, html) = page("/app/health").await;
    assert_eq!(status, 200, "{html}");
    check_summary(&html);
    let (status, html) = page("/app/health?range=7d").await;
    assert_eq!(status, 200);
    check_summary(&html);

    let (status, html) = page("/app/health/invalid?code=invalid_type").await;
    assert_eq!(status, 200);
    assert_eq!(html.matches(r#"<li class="card entry">"#).count(), 1);
    assert!(html.contains("d-bad-3"));
    assert!(!html.contains("<script>alert(1)"), "escaped");
    let (_, html) = page("/app/health/invalid?code=no_keys").await;
    assert!(html.contains("No rejected event has the code"));
    let (_, html) = page("/app/health/invalid?code=%3Cb%3E").await;
    assert!(html.contains("is not an error code of the API"));
    assert_eq!(html.matches(r#"<li class="card entry">"#).count(), 3);

    let (status, html) = page("/app/health/test-events").await;
    assert_eq!(status, 200);
    assert!(html.contains("qa-c-1") && html.contains("verdict-direct"));
    assert!(!html.contains("c-unseen"));
}

#[actix_web::test]
async fn the_health_pages_count_the_same_on_postgresql() {
    the_health_pages_count_the_same(TestApp::spawn().await).await;
}

#[actix_web::test]
async fn the_health_pages_count_the_same_on_sqlite() {
    the_health_pages_count_the_same(TestApp::spawn_embedded().await).await;
}

#[actix_web::test]
async fn the_invalid_events_log_pages_back_by_fifty() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest"]).await;
    let events: Vec<Value> = (0..55)
        .map(|i| {
            let mut bad = detection(&format!("bad-{i:02}"), "s-1");
            bad["confidence"] = json!(2);
            bad
        })
        .collect();
    app.post("/v1/events", Some(&key), &json!({ "events": events }))
        .await
        .expect(202);
    let page = |path: String| page_of(&app, &owner.token, path);
    let (_, first) = page("/app/health/invalid".into()).await;
    assert_eq!(first.matches(r#"<li class="card entry">"#).count(), 50);
    let older = first
        .split(r#"<a href=""#)
        .find_map(|rest| {
            let href = &rest[..rest.find('"')?];
            href.contains("before=").then(|| href.replace("&amp;", "&"))
        })
        .expect("a link to older entries");
    let (_, second) = page(older).await;
    assert_eq!(second.matches(r#"<li class="card entry">"#).count(), 5);
    assert!(second.contains("End of the log."));
    assert!(second.contains(r#"id="newest""#));
    // Together, every entry once.
    for i in 0..55 {
        let id = format!("bad-{i:02}<");
        assert_eq!(
            first.matches(&id).count() + second.matches(&id).count(),
            1,
            "{id}"
        );
    }
}

#[actix_web::test]
async fn a_viewer_reads_the_summary_but_not_the_raw_pages() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest", "read"]).await;
    send_sample(&app, &owner.token, &key).await;
    let (_, viewer) = app.add_member(&owner.token, "viewer").await;
    let (_, analyst) = app.add_member(&owner.token, "analyst").await;
    let url = |path: &str| format!("{}{path}", app.base_url);

    let (status, html) = get_with_session(&url("/app/health"), &viewer).await;
    assert_eq!(status, 200);
    check_summary(&html);
    assert!(!html.contains("/app/health/invalid") && !html.contains("/app/health/test-events"));
    for path in ["/app/health/invalid", "/app/health/test-events"] {
        let (status, html) = get_with_session(&url(path), &viewer).await;
        assert_eq!(status, 403, "{path}");
        assert!(html.contains("Not for your role"), "{path}");
        assert!(!html.contains("d-bad-1") && !html.contains("qa-c-1"));
        let (status, _) = get_with_session(&url(path), &analyst).await;
        assert_eq!(status, 200, "an analyst reads {path}");
    }
    let (status, _) = get_with_session(&url("/app/health"), "not a session").await;
    assert_eq!(status, 303, "without a session, the login");
}

#[actix_web::test]
async fn tenant_b_never_sees_tenant_a_invalid_or_test_events() {
    let app = TestApp::spawn().await;
    let a = app.signup().await;
    let (_, a_key) = app.create_api_key(&a.token, &["ingest", "read"]).await;
    send_sample(&app, &a.token, &a_key).await;
    let b = app.signup().await;
    let (_, b_key) = app.create_api_key(&b.token, &["ingest"]).await;
    let mut b_bad = detection("b-bad", "s-1");
    b_bad["confidence"] = json!(-1);
    let mut b_test = detection("b-qa", "s-1");
    b_test["test"] = json!(true);
    app.post(
        "/v1/events",
        Some(&b_key),
        &json!({"events": [b_bad, b_test]}),
    )
    .await
    .expect(202);
    let url = |path: &str| format!("{}{path}", app.base_url);

    let (_, html) = get_with_session(&url("/app/health"), &b.token).await;
    assert!(html.contains(r#"id="rejected">1<"#), "only B's rejection");
    assert!(
        html.contains("1 arrived in this period"),
        "only B's test event"
    );
    assert!(!html.contains(r#"id="accepted">6<"#));
    let (_, html) = get_with_session(&url("/app/health/invalid"), &b.token).await;
    assert!(html.contains("b-bad"));
    for a_id in ["d-bad-1", "d-bad-2", "d-bad-3"] {
        assert!(!html.contains(a_id), "{a_id}");
    }
    let (_, html) = get_with_session(&url("/app/health/test-events"), &b.token).await;
    assert!(html.contains("b-qa") && !html.contains("qa-c-1") && !html.contains("qa-d-1"));

    // A's cursor on B's log reads as the end, never as A's entries.
    let (_, a_log) = get_with_session(&url("/app/health/invalid"), &a.token).await;
    assert!(!a_log.contains("b-bad"));
    let (_, a_tests) = get_with_session(&url("/app/health/test-events"), &a.token).await;
    assert!(!a_tests.contains("b-qa"));
}
