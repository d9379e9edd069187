//! The health pages' templates: escaping of tenant text and payloads, the viewer's view,
//! and the empty states.

use super::*;

fn chrome(role: &'static str) -> Chrome {
    Chrome {
        organization: "Acme <Optics>".into(),
        email: "a@acme.test".into(),
        role,
        can_manage: role == "owner",
        csrf: "t".repeat(64),
        section: "health",
        version: "0.1.0",
    }
}

fn tabs(current: &'static str, raw_data: bool) -> HealthTabs {
    HealthTabs { current, raw_data }
}

fn health_page(role: &'static str) -> HealthPage {
    let raw_data = role != "viewer";
    let hours = vec![HourBar {
        hour: "2026-12-03 10:00".into(),
        detections: 3,
        conversions: 1,
        rejected: 2,
    }];
    HealthPage {
        chrome: chrome(role),
        tabs: tabs("summary", raw_data),
        ranges: vec![],
        range_label: "the last 24 hours",
        from: "2026-12-02 11:00 UTC".into(),
        detections: 3,
        conversions: 1,
        rejected: 2,
        rejected_share: percent(2, 6),
        consent_denied: 1,
        consent_denied_share: percent(1, 4),
        test_events: 5,
        chart: crate::hourly_chart::render(&hours),
        hours,
        codes: vec![CodeRow {
            code: "out_of_range".into(),
            meaning: code_meaning("out_of_range"),
            events: 2,
            errors: 3,
            log_href: raw_data.then(|| "/app/health/invalid?code=out_of_range".into()),
        }],
        lateness: vec![LatenessRow {
            bucket: "under 1 s",
            events: 4,
            share: percent(4, 4),
        }],
        coverage: vec![KeyCoverageRow {
            goal: "Scan <to> purchase".into(),
            key: "session_token".into(),
            conversions: 4,
            without_key: 1,
            unseen_key: 1,
            broken: 2,
            share: percent(2, 4),
            sampled: false,
        }],
        coverage_sample: 10_000,
        base_url: "http://sightline.test".into(),
    }
}

#[test]
fn shares_read_as_percentages() {
    assert_eq!(percent(1, 3), "33.3 %");
    assert_eq!(percent(0, 0), "–");
    assert_eq!(code_meaning("no_keys"), "the event carries no tracking key");
    assert_eq!(code_meaning("<script>"), "");
}

#[test]
fn the_summary_shows_its_figures_and_escapes_tenant_text() {
    let html = health_page("owner").render().expect("renders");
    assert!(html.contains(r#"<span class="figure" id="accepted">4</span>"#));
    assert!(
        html.contains(r#"<td class="num">3</td>"#),
        "numbers right-aligned"
    );
    assert!(html.contains("33.3 %"));
    assert!(html.contains(r#"<td class="num warn">2 (50.0 %)</td>"#));
    assert!(!html.contains("Scan <to> purchase"));
    assert!(!html.contains("Acme <Optics>"));
    assert!(html.contains(r#"href="/app/health/invalid?code=out_of_range""#));
    assert!(html.contains(r#"href="/app/health/test-events""#));
    assert!(html.contains(r#"aria-current="page">Health"#));
    assert!(html.contains("5 arrived in this period"));
    assert!(!html.contains("style="), "the CSP blocks inline styles");
    assert!(!html.contains("<script"), "no inline script");
}

#[test]
fn a_viewer_sees_the_summary_without_links_to_raw_data() {
    let html = health_page("viewer").render().expect("renders");
    assert!(html.contains(r#"id="accepted""#));
    assert!(!html.contains("/app/health/invalid"));
    assert!(!html.contains("/app/health/test-events"));
    assert!(!html.contains("/app/explain"));
}

#[test]
fn an_empty_summary_says_how_to_send_a_first_event_to_this_host() {
    let mut page = health_page("owner");
    page.detections = 0;
    page.conversions = 0;
    page.rejected = 0;
    let html = page.render().expect("renders");
    assert!(html.contains("Nothing received in the last 24 hours"));
    assert!(html.contains("curl -X POST http://sightline.test/v1/events"));
    assert!(!html.contains(r#"id="accepted""#));
}

fn invalid_page(entries: Vec<InvalidEntry>) -> InvalidEventsPage {
    InvalidEventsPage {
        chrome: chrome("analyst"),
        tabs: tabs("invalid", true),
        codes: vec![],
        code: String::new(),
        unknown_code: None,
        entries,
        limit: 50,
        older_page: false,
        older_href: None,
        newest_href: "/app/health/invalid?".into(),
        retention_days: 30,
        base_url: "http://sightline.test".into(),
    }
}

#[test]
fn a_payload_with_markup_renders_inert() {
    let entry = InvalidEntry {
        received: "2026-12-03 10:00:00.000 UTC".into(),
        event_type: Some("detection".into()),
        event_id: Some("<img src=x onerror=alert(1)>".into()),
        payload: "{\n  \"label\": \"<script>alert(1)</script>\"\n}".into(),
        cut_bytes: Some(12),
        errors: vec![EntryError {
            field: "confidence".into(),
            code: "out_of_range".into(),
            message: "confidence must be between 0 and 1 <b>".into(),
        }],
    };
    let mut page = invalid_page(vec![entry]);
    page.older_href = Some("/app/health/invalid?before=abc".into());
    let html = page.render().expect("renders");
    assert!(!html.contains("<script>alert(1)"));
    assert!(!html.contains("<img src=x"));
    assert!(!html.contains("0 and 1 <b>"));
    assert!(html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"));
    assert!(html.contains("out_of_range"));
    assert!(html.contains("12 more bytes"));
    assert!(html.contains(r#"href="/app/health/invalid?before=abc""#));
}

#[test]
fn an_empty_log_says_how_a_rejection_looks_and_an_unknown_code_is_said() {
    let html = invalid_page(vec![]).render().expect("renders");
    assert!(html.contains("No rejected events"));
    assert!(html.contains("curl -X POST http://sightline.test/v1/events"));
    assert!(html.contains("\"confidence\": 1.5"));

    let mut page = invalid_page(vec![]);
    page.unknown_code = Some("<nope>".into());
    let html = page.render().expect("renders");
    assert!(html.contains("is not an error code of the API"));
    assert!(!html.contains("<nope>"));

    let mut page = invalid_page(vec![]);
    page.code = "too_old".into();
    let html = page.render().expect("renders");
    assert!(html.contains("No rejected event has the code"));
}

fn test_events_page(events: Vec<TestEventRow>) -> TestEventsPage {
    TestEventsPage {
        chrome: chrome("admin"),
        tabs: tabs("test-events", true),
        days: 7,
        events,
        more: false,
        base_url: "http://sightline.test".into(),
    }
}

#[test]
fn test_events_show_what_they_matched() {
    let html = test_events_page(vec![TestEventRow {
        received: "2026-12-03 10:00:00 UTC".into(),
        kind: "conversion",
        event_id: "qa-<c>".into(),
        what: "purchase".into(),
        keys: "session_token=<s>".into(),
        consent: "granted".into(),
        matches: vec![TestMatchView {
            goal: "Scan to purchase".into(),
            kind: "direct".into(),
            other_event_id: "qa-d-1".into(),
        }],
        explain_href: Some("/app/explain?event_id=qa-%3Cc%3E".into()),
    }])
    .render()
    .expect("renders");
    assert!(html.contains("qa-d-1"));
    assert!(html.contains(r#"class="verdict verdict-direct""#));
    assert!(!html.contains("qa-<c>") && !html.contains("session_token=<s>"));
    assert!(html.contains(r#"href="/app/explain?event_id=qa-%3Cc%3E""#));
}

#[test]
fn no_test_events_says_how_to_send_some() {
    let html = test_events_page(vec![]).render().expect("renders");
    assert!(html.contains("No test events in the last 7 days"));
    assert!(html.contains("\"test\": true"));
    assert!(html.contains("curl -X POST http://sightline.test/v1/events"));
}
