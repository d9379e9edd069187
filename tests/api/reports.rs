//! `GET /v1/reports/labels` end to end: known events in over HTTP, the matcher's
//! attributions awaited, then the report's rows and totals checked exactly.
//!
//! The scenario (two goals on `purchase` by session token, one hour window):
//!
//! | session | events (minutes before the scenario's start) |
//! |---|---|
//! | s-1 | d1 barcode sku-1 v3 snacks (50), d2 barcode sku-1 v3 snacks (40), c1 purchase 10 (30) |
//! | s-2 | d3 barcode sku-1 v2 snacks (50), d4 product sku-9 v3 shoes (45), c2 purchase 5 (30) |
//! | s-3 | d5 barcode sku-2 v3 snacks (50), d6 barcode sku-1 v3 snacks (45), c3 purchase 7 (30) |
//! | s-4 | d7 barcode sku-1 v3, a test event (50), c4 a test purchase 100 (30) |
//! | s-5 | d8 face_match ent-1 v1, no category (20), no conversion |
//!
//! Goal "scan" credits barcode only; goal "any" credits barcode and product. So c1 is
//! credited by both goals to the same row (counted once), c2 is direct for "scan" through
//! d3 and only assisted for "any" through d3 (matched, not also assisted), c3 is direct
//! through d6 and assisted through d5.

use actix_web::http::Method;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};
use support::fixtures::batch;
use support::{Account, TestApp, eventually};

const LABELS: &str = "/v1/reports/labels";

struct Scenario {
    owner: Account,
    key: String,
    scan: String,
    any: String,
    start: DateTime<Utc>,
}

impl Scenario {
    /// The instant `minutes` before the scenario's start, as sent and as reported.
    fn at(&self, minutes: i64) -> String {
        rfc3339(self.start - Duration::minutes(minutes))
    }
}

fn rfc3339(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn goal(name: &str, labels: &[&str]) -> Value {
    json!({"name": name, "detection_labels": labels, "conversion_name": "purchase",
           "key": "session_token", "window_seconds": 3600})
}

#[allow(clippy::too_many_arguments)]
fn detection(
    id: &str,
    session: &str,
    time: &str,
    label: &str,
    entity: &str,
    version: &str,
    category: Option<&str>,
) -> Value {
    let mut event = json!({"type": "detection", "event_id": id, "event_time": time,
                           "keys": {"session_token": session}, "label": label, "confidence": 0.9,
                           "model_version": version, "entity_id": entity});
    if let Some(category) = category {
        event["category"] = json!(category);
    }
    event
}

fn conversion(id: &str, session: &str, time: &str, value: f64) -> Value {
    json!({"type": "conversion", "event_id": id, "event_time": time,
           "keys": {"session_token": session}, "name": "purchase", "value": value,
           "currency": "EUR"})
}

async fn send(app: &TestApp, key: &str, events: Vec<Value>) {
    let answer = app
        .post("/v1/events", Some(key), &batch(events))
        .await
        .expect(202);
    assert_eq!(answer.body["rejected"], 0, "{}", answer.text);
}

/// Every stored attribution as sorted (goal, conversion, detection, kind).
async fn attributions(app: &TestApp, key: &str) -> Vec<(String, String, String, String)> {
    let body = app
        .get("/v1/attributions", Some(key))
        .await
        .expect(200)
        .body;
    let mut rows: Vec<_> = body["attributions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let text = |field: &str| a[field].as_str().unwrap().to_owned();
            (
                text("goal_id"),
                text("conversion_event_id"),
                text("detection_event_id"),
                text("kind"),
            )
        })
        .collect();
    rows.sort();
    rows
}

/// Waits until the stored attributions are exactly `expected`.
async fn await_attributions(app: &TestApp, key: &str, expected: &[(&str, &str, &str, &str)]) {
    let mut expected: Vec<(String, String, String, String)> = expected
        .iter()
        .map(|(g, c, d, k)| {
            (
                (*g).to_owned(),
                (*c).to_owned(),
                (*d).to_owned(),
                (*k).to_owned(),
            )
        })
        .collect();
    expected.sort();
    let expected = &expected;
    eventually("the scenario's attributions", move || async move {
        (attributions(app, key).await == *expected).then_some(())
    })
    .await;
}

async fn scenario(app: &TestApp) -> Scenario {
    let owner = app.signup().await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest", "read"]).await;
    let scan = app
        .create_goal(&owner.token, &goal("scan", &["barcode"]))
        .await;
    let any = app
        .create_goal(&owner.token, &goal("any", &["barcode", "product"]))
        .await;
    let start = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
    let s = Scenario {
        owner,
        key,
        scan,
        any,
        start,
    };
    let snacks = Some("snacks");
    let mut d7 = detection("d7", "s-4", &s.at(50), "barcode", "sku-1", "v3", snacks);
    d7["test"] = json!(true);
    let mut c4 = conversion("c4", "s-4", &s.at(30), 100.0);
    c4["test"] = json!(true);
    // Detections first, so that every conversion is matched with all of its detections.
    send(
        app,
        &s.key,
        vec![
            detection("d1", "s-1", &s.at(50), "barcode", "sku-1", "v3", snacks),
            detection("d2", "s-1", &s.at(40), "barcode", "sku-1", "v3", snacks),
            detection("d3", "s-2", &s.at(50), "barcode", "sku-1", "v2", snacks),
            detection(
                "d4",
                "s-2",
                &s.at(45),
                "product",
                "sku-9",
                "v3",
                Some("shoes"),
            ),
            detection("d5", "s-3", &s.at(50), "barcode", "sku-2", "v3", snacks),
            detection("d6", "s-3", &s.at(45), "barcode", "sku-1", "v3", snacks),
            d7,
            detection("d8", "s-5", &s.at(20), "face_match", "ent-1", "v1", None),
        ],
    )
    .await;
    send(
        app,
        &s.key,
        vec![
            conversion("c1", "s-1", &s.at(30), 10.0),
            conversion("c2", "s-2", &s.at(30), 5.0),
            conversion("c3", "s-3", &s.at(30), 7.0),
            c4,
        ],
    )
    .await;
    let (scan, any) = (s.scan.as_str(), s.any.as_str());
    await_attributions(
        app,
        &s.key,
        &[
            (scan, "c1", "d2", "direct"),
            (scan, "c1", "d1", "assisted"),
            (scan, "c2", "d3", "direct"),
            (scan, "c3", "d6", "direct"),
            (scan, "c3", "d5", "assisted"),
            (scan, "c4", "d7", "direct"),
            (any, "c1", "d2", "direct"),
            (any, "c1", "d1", "assisted"),
            (any, "c2", "d4", "direct"),
            (any, "c2", "d3", "assisted"),
            (any, "c3", "d6", "direct"),
            (any, "c3", "d5", "assisted"),
            (any, "c4", "d7", "direct"),
        ],
    )
    .await;
    s
}

/// A row as the JSON shows it with `group_by=entity`.
#[allow(clippy::too_many_arguments)]
fn row(
    label: &str,
    entity: &str,
    version: &str,
    detections: u64,
    matched: u64,
    assisted: u64,
    value: f64,
    first: &str,
) -> Value {
    json!({"detection_label": label, "entity_id": entity, "model_version": version,
           "detections": detections, "matched_conversions": matched,
           "assisted_conversions": assisted, "conversion_value": value,
           "first_detect_time": first})
}

fn totals(detections: u64, matched: u64, assisted: u64, value: f64) -> Value {
    json!({"detections": detections, "matched_conversions": matched,
           "assisted_conversions": assisted, "conversion_value": value})
}

async fn report(app: &TestApp, token: &str, query: &str) -> Value {
    app.get(&format!("{LABELS}{query}"), Some(token))
        .await
        .expect(200)
        .body
}

#[actix_web::test]
async fn rows_per_entity_count_detections_and_distinct_conversions() {
    let app = TestApp::spawn().await;
    let s = scenario(&app).await;
    let body = report(&app, &s.key, "").await;
    // Most detections first, then label, entity and model version.
    assert_eq!(
        body["rows"],
        json!([
            // c1 (both goals, counted once) and c3; c3's assisted credit (d5) is another row.
            row("barcode", "sku-1", "v3", 3, 2, 0, 17.0, &s.at(50)),
            // c2: direct for "scan", assisted for "any": matched only.
            row("barcode", "sku-1", "v2", 1, 1, 0, 5.0, &s.at(50)),
            row("barcode", "sku-2", "v3", 1, 0, 1, 0.0, &s.at(50)),
            row("face_match", "ent-1", "v1", 1, 0, 0, 0.0, &s.at(20)),
            row("product", "sku-9", "v3", 1, 1, 0, 5.0, &s.at(45)),
        ]),
        "the test detection d7 and the test conversion c4 count nowhere"
    );
    // c1, c2, c3 each once; c3's assistance is not counted beside its match.
    assert_eq!(body["totals"], totals(7, 3, 0, 22.0));
}

#[actix_web::test]
async fn rows_per_category_merge_entities_and_count_each_conversion_once() {
    let app = TestApp::spawn().await;
    let s = scenario(&app).await;
    let body = report(&app, &s.key, "?group_by=category").await;
    let row =
        |label: &str, category: Value, version: &str, d: u64, m: u64, a: u64, v: f64, t: &str| {
            json!({"detection_label": label, "category": category, "model_version": version,
               "detections": d, "matched_conversions": m, "assisted_conversions": a,
               "conversion_value": v, "first_detect_time": t})
        };
    assert_eq!(
        body["rows"],
        json!([
            // d1, d2, d5, d6: c3 is direct through d6 and assisted through d5, one row: matched.
            row("barcode", json!("snacks"), "v3", 4, 2, 0, 17.0, &s.at(50)),
            row("barcode", json!("snacks"), "v2", 1, 1, 0, 5.0, &s.at(50)),
            row("face_match", Value::Null, "v1", 1, 0, 0, 0.0, &s.at(20)),
            row("product", json!("shoes"), "v3", 1, 1, 0, 5.0, &s.at(45)),
        ])
    );
    assert!(body["rows"][0].get("entity_id").is_none());
    assert_eq!(body["totals"], totals(7, 3, 0, 22.0));
}

#[actix_web::test]
async fn a_model_version_filter_takes_one_or_several_versions() {
    let app = TestApp::spawn().await;
    let s = scenario(&app).await;
    let one = report(&app, &s.key, "?model_version=v2").await;
    assert_eq!(
        one["rows"],
        json!([row("barcode", "sku-1", "v2", 1, 1, 0, 5.0, &s.at(50))])
    );
    assert_eq!(one["totals"], totals(1, 1, 0, 5.0));

    let several = report(&app, &s.key, "?model_version=v2&model_version=v1").await;
    assert_eq!(
        several["rows"],
        json!([
            row("barcode", "sku-1", "v2", 1, 1, 0, 5.0, &s.at(50)),
            row("face_match", "ent-1", "v1", 1, 0, 0, 0.0, &s.at(20)),
        ])
    );
    assert_eq!(several["totals"], totals(2, 1, 0, 5.0));

    let none = report(&app, &s.key, "?model_version=v9").await;
    assert_eq!(none, json!({"rows": [], "totals": totals(0, 0, 0, 0.0)}));
}

#[actix_web::test]
async fn a_goal_filter_keeps_its_labels_and_counts_only_its_attributions() {
    let app = TestApp::spawn().await;
    let s = scenario(&app).await;
    let scan = report(&app, &s.key, &format!("?goal={}", s.scan)).await;
    assert_eq!(
        scan["rows"],
        json!([
            row("barcode", "sku-1", "v3", 3, 2, 0, 17.0, &s.at(50)),
            row("barcode", "sku-1", "v2", 1, 1, 0, 5.0, &s.at(50)),
            row("barcode", "sku-2", "v3", 1, 0, 1, 0.0, &s.at(50)),
        ])
    );
    assert_eq!(scan["totals"], totals(5, 3, 0, 22.0));

    let any = report(&app, &s.key, &format!("?goal={}", s.any)).await;
    assert_eq!(
        any["rows"],
        json!([
            row("barcode", "sku-1", "v3", 3, 2, 0, 17.0, &s.at(50)),
            // For "any", c2 went to the product detection d4: here it is only assisted.
            row("barcode", "sku-1", "v2", 1, 0, 1, 0.0, &s.at(50)),
            row("barcode", "sku-2", "v3", 1, 0, 1, 0.0, &s.at(50)),
            row("product", "sku-9", "v3", 1, 1, 0, 5.0, &s.at(45)),
        ])
    );
    // Each conversion once: c2 and c3 are matched somewhere, so not assisted in the totals.
    assert_eq!(any["totals"], totals(6, 3, 0, 22.0));

    // Only assisted within the filter: counted as assisted in the totals too.
    let assisted = report(&app, &s.key, &format!("?goal={}&model_version=v2", s.any)).await;
    assert_eq!(assisted["totals"], totals(1, 0, 1, 0.0));

    // Unknown goal: 404, as for any id the tenant does not have.
    let missing = app
        .get(
            &format!("{LABELS}?goal={}", uuid::Uuid::new_v4()),
            Some(&s.key),
        )
        .await
        .expect(404);
    assert_eq!(missing.error_code(), "not_found");
}

#[actix_web::test]
async fn an_inactive_goal_no_longer_counts() {
    let app = TestApp::spawn().await;
    let s = scenario(&app).await;
    let mut any = goal("any", &["barcode", "product"]);
    any["active"] = json!(false);
    app.send(
        Method::PUT,
        &format!("/v1/goals/{}", s.any),
        Some(&s.owner.token),
        Some(&any),
    )
    .await
    .expect(200);
    let body = report(&app, &s.key, "").await;
    // Only "scan" counts: the product detection's c2 is gone from its row.
    assert_eq!(
        body["rows"][4],
        row("product", "sku-9", "v3", 1, 0, 0, 0.0, &s.at(45))
    );
    assert_eq!(body["totals"], totals(7, 3, 0, 22.0));
}

#[actix_web::test]
async fn the_range_includes_from_and_excludes_to_on_detection_time() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest", "read"]).await;
    app.create_goal(&owner.token, &goal("scan", &["barcode"]))
        .await;
    let from = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap()
        - Duration::hours(2);
    let to = from + Duration::hours(1);
    let ms = Duration::milliseconds(1);
    let d = |id: &str, session: &str, time: DateTime<Utc>| {
        detection(id, session, &rfc3339(time), "barcode", id, "v3", None)
    };
    send(
        &app,
        &key,
        vec![
            d("before", "s-0", from - ms),
            d("at-from", "s-0", from),
            d("last-in", "s-1", to - ms),
            d("at-to", "s-1", to),
        ],
    )
    .await;
    // The direct credit goes to `at-to` (outside), the assisted one to `last-in` (inside).
    send(
        &app,
        &key,
        vec![conversion(
            "c-1",
            "s-1",
            &rfc3339(to + Duration::seconds(1)),
            4.0,
        )],
    )
    .await;
    eventually("the conversion's two attributions", || async {
        (attributions(&app, &key).await.len() == 2).then_some(())
    })
    .await;

    let range = format!("?from={}&to={}", rfc3339(from), rfc3339(to));
    let body = report(&app, &key, &range).await;
    assert_eq!(
        body["rows"],
        json!([
            row("barcode", "at-from", "v3", 1, 0, 0, 0.0, &rfc3339(from)),
            row("barcode", "last-in", "v3", 1, 0, 1, 0.0, &rfc3339(to - ms)),
        ])
    );
    assert_eq!(body["totals"], totals(2, 0, 1, 0.0));

    // The same instants with an offset select the same rows.
    let shifted = format!(
        "?from={}&to={}",
        from.with_timezone(&chrono::FixedOffset::east_opt(3600).unwrap())
            .to_rfc3339_opts(SecondsFormat::Millis, false)
            .replace('+', "%2B"),
        rfc3339(to)
    );
    let later = report(&app, &key, &shifted).await;
    assert_eq!(later["totals"]["detections"], 2, "{later}");
}

#[actix_web::test]
async fn csv_carries_the_same_rows_under_a_header_line() {
    let app = TestApp::spawn().await;
    let s = scenario(&app).await;
    let expected = format!(
        "detection_label,entity_id,model_version,detections,matched_conversions,assisted_conversions,conversion_value,first_detect_time\r\n\
         barcode,sku-1,v3,3,2,0,17,{t50}\r\n\
         barcode,sku-1,v2,1,1,0,5,{t50}\r\n\
         barcode,sku-2,v3,1,0,1,0,{t50}\r\n\
         face_match,ent-1,v1,1,0,0,0,{t20}\r\n\
         product,sku-9,v3,1,1,0,5,{t45}\r\n",
        t50 = s.at(50),
        t45 = s.at(45),
        t20 = s.at(20),
    );
    let by_accept = app
        .get_with_header(LABELS, Some(&s.key), ("Accept", "text/csv"))
        .await
        .expect(200);
    assert_eq!(by_accept.text, expected);
    assert_eq!(
        by_accept.header("content-type"),
        Some("text/csv; charset=utf-8")
    );
    let by_format = app
        .get(&format!("{LABELS}?format=csv"), Some(&s.key))
        .await
        .expect(200);
    assert_eq!(by_format.text, expected);

    let by_category = app
        .get(
            &format!("{LABELS}?format=csv&group_by=category&model_version=v1&model_version=v3"),
            Some(&s.key),
        )
        .await
        .expect(200);
    assert_eq!(
        by_category.text,
        format!(
            "detection_label,category,model_version,detections,matched_conversions,assisted_conversions,conversion_value,first_detect_time\r\n\
             barcode,snacks,v3,4,2,0,17,{t50}\r\n\
             face_match,,v1,1,0,0,0,{t20}\r\n\
             product,shoes,v3,1,1,0,5,{t45}\r\n",
            t50 = s.at(50),
            t45 = s.at(45),
            t20 = s.at(20),
        )
    );

    // JSON stays the default, also when a client lists both and prefers JSON.
    let json = app
        .get_with_header(
            LABELS,
            Some(&s.key),
            ("Accept", "application/json, text/csv;q=0.5"),
        )
        .await
        .expect(200);
    assert_eq!(json.body["totals"]["detections"], 7);
}

#[actix_web::test]
async fn limit_cuts_the_rows_but_not_the_totals() {
    let app = TestApp::spawn().await;
    let s = scenario(&app).await;
    let answer = app
        .get(&format!("{LABELS}?limit=2"), Some(&s.key))
        .await
        .expect(200);
    assert_eq!(answer.body["rows"].as_array().unwrap().len(), 2);
    assert_eq!(answer.body["rows"][1]["model_version"], "v2");
    assert_eq!(answer.header("x-total-rows"), Some("5"));
    assert_eq!(answer.body["totals"], totals(7, 3, 0, 22.0));
}

#[actix_web::test]
async fn every_role_and_read_keys_read_reports_ingest_keys_and_strangers_do_not() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let (_, ingest) = app.create_api_key(&owner.token, &["ingest"]).await;
    let (_, read) = app.create_api_key(&owner.token, &["read"]).await;
    send(
        &app,
        &ingest,
        vec![detection(
            "d1",
            "s",
            &support::fixtures::time_ago(60),
            "barcode",
            "sku-1",
            "v3",
            None,
        )],
    )
    .await;
    let (_, viewer) = app.add_member(&owner.token, "viewer").await;
    let (_, analyst) = app.add_member(&owner.token, "analyst").await;
    let (_, admin) = app.add_member(&owner.token, "admin").await;
    for token in [&owner.token, &admin, &analyst, &viewer, &read] {
        let body = report(&app, token, "").await;
        assert_eq!(body["totals"]["detections"], 1);
    }
    let forbidden = app.get(LABELS, Some(&ingest)).await.expect(403);
    assert_eq!(forbidden.error_code(), "forbidden");
    let anonymous = app.get(LABELS, None).await.expect(401);
    assert_eq!(anonymous.error_code(), "unauthorized");
    // Authentication and scope come before the query: 401/403 even for a bad one.
    app.get(&format!("{LABELS}?from=nonsense"), None)
        .await
        .expect(401);
    app.get(&format!("{LABELS}?from=nonsense"), Some(&ingest))
        .await
        .expect(403);
}

#[actix_web::test]
async fn bad_parameters_answer_400_naming_each_problem() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let fields = |body: &Value| -> Vec<(String, String)> {
        body["error"]["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["field"].as_str().unwrap().to_owned(),
                    e["code"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let cases: [(&str, &[(&str, &str)]); 6] = [
        ("?from=yesterday", &[("from", "invalid_format")]),
        // An unencoded `+` is a space in a query string.
        ("?to=2026-12-03T18:00:00+01:00", &[("to", "invalid_format")]),
        (
            "?from=2026-12-03T18:00:00Z&to=2026-12-03T18:00:00Z",
            &[("from", "out_of_range")],
        ),
        ("?group_by=site", &[("group_by", "invalid_format")]),
        ("?goal=not-a-uuid", &[("goal", "invalid_format")]),
        (
            "?goal=1&group_by=entity&group_by=category&color=red",
            &[
                ("color", "unknown_field"),
                ("goal", "invalid_format"),
                ("group_by", "invalid_format"),
            ],
        ),
    ];
    for (query, expected) in cases {
        let answer = app
            .get(&format!("{LABELS}{query}"), Some(&owner.token))
            .await
            .expect(400);
        assert_eq!(answer.error_code(), "invalid_fields", "{query}");
        let mut got = fields(&answer.body);
        got.sort();
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(f, c)| ((*f).to_owned(), (*c).to_owned()))
            .collect();
        assert_eq!(got, expected, "{query}: {}", answer.text);
    }
}

#[actix_web::test]
async fn the_embedded_setup_reports_labels_too() {
    let app = TestApp::spawn_embedded().await;
    let owner = app.signup().await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest", "read"]).await;
    let scan = app
        .create_goal(&owner.token, &goal("scan", &["barcode"]))
        .await;
    let start = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
    let at = |minutes: i64| rfc3339(start - Duration::minutes(minutes));
    let mut test_detection = detection("d-test", "s-9", &at(50), "barcode", "sku-1", "v3", None);
    test_detection["test"] = json!(true);
    send(
        &app,
        &key,
        vec![
            detection(
                "d1",
                "s-1",
                &at(50),
                "barcode",
                "sku-1",
                "v3",
                Some("snacks"),
            ),
            detection(
                "d2",
                "s-1",
                &at(40),
                "barcode",
                "sku-2",
                "v3",
                Some("snacks"),
            ),
            detection("d3", "s-2", &at(20), "face_match", "ent-1", "v1", None),
            test_detection,
        ],
    )
    .await;
    send(&app, &key, vec![conversion("c1", "s-1", &at(30), 2.5)]).await;
    await_attributions(
        &app,
        &key,
        &[
            (&scan, "c1", "d2", "direct"),
            (&scan, "c1", "d1", "assisted"),
        ],
    )
    .await;
    let body = report(&app, &key, "").await;
    assert_eq!(
        body["rows"],
        json!([
            row("barcode", "sku-1", "v3", 1, 0, 1, 0.0, &at(50)),
            row("barcode", "sku-2", "v3", 1, 1, 0, 2.5, &at(40)),
            row("face_match", "ent-1", "v1", 1, 0, 0, 0.0, &at(20)),
        ])
    );
    assert_eq!(body["totals"], totals(3, 1, 0, 2.5));
    let by_category = report(&app, &key, &format!("?group_by=category&goal={scan}")).await;
    assert_eq!(by_category["rows"].as_array().unwrap().len(), 1);
    assert_eq!(by_category["rows"][0]["detections"], 2);
    assert_eq!(by_category["rows"][0]["matched_conversions"], 1);
    assert_eq!(by_category["rows"][0]["assisted_conversions"], 0);
    let range = format!(
        "?from={}&to={}&format=csv",
        rfc3339(start - Duration::minutes(45)),
        at(20)
    );
    assert_eq!(
        app.get(&format!("{LABELS}{range}"), Some(&key))
            .await
            .expect(200)
            .text,
        format!(
            "detection_label,entity_id,model_version,detections,matched_conversions,assisted_conversions,conversion_value,first_detect_time\r\n\
             barcode,sku-2,v3,1,1,0,2.5,{}\r\n",
            at(40)
        )
    );
}

#[actix_web::test]
async fn whole_days_and_partial_days_at_the_edges_count_alike() {
    // On PostgreSQL the whole days of a range come from the daily rollup and the partial
    // days at its edges from the raw detections: both must give the same counts.
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest", "read"]).await;
    let day = (Utc::now() - Duration::days(3))
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let at = |hours: i64, ms: i64| day + Duration::hours(hours) + Duration::milliseconds(ms);
    let (from, to) = (at(6, 0), at(48 + 18, 0));
    let d = |id: &str, entity: &str, time: DateTime<Utc>| {
        detection(
            id,
            id,
            &rfc3339(time),
            "barcode",
            entity,
            "v3",
            Some("snacks"),
        )
    };
    let mut test_event = d("a-test", "sku-1", at(24 + 13, 0));
    test_event["test"] = json!(true);
    send(
        &app,
        &key,
        vec![
            d("a1", "sku-out", at(6, -1)),
            d("a2", "sku-1", from),
            d("a3", "sku-1", at(24, -1)),
            d("a4", "sku-1", at(24, 0)),
            d("a5", "sku-1", at(24 + 12, 0)),
            d("a6", "sku-1", at(48 + 18, -1)),
            d("a7", "sku-out", to),
            d("a9", "sku-2", at(24 + 6, 0)),
            test_event,
        ],
    )
    .await;
    let range = format!("?from={}&to={}", rfc3339(from), rfc3339(to));
    let body = report(&app, &key, &range).await;
    assert_eq!(
        body["rows"],
        json!([
            row("barcode", "sku-1", "v3", 5, 0, 0, 0.0, &rfc3339(from)),
            row("barcode", "sku-2", "v3", 1, 0, 0, 0.0, &rfc3339(at(30, 0))),
        ])
    );
    let by_category = report(&app, &key, &format!("{range}&group_by=category")).await;
    assert_eq!(by_category["rows"][0]["detections"], 6);
    assert_eq!(by_category["rows"][0]["first_detect_time"], rfc3339(from));
    // The whole day alone, and a range inside one day.
    let whole = format!("?from={}&to={}", rfc3339(at(24, 0)), rfc3339(at(48, 0)));
    assert_eq!(report(&app, &key, &whole).await["totals"]["detections"], 3);
    let inside = format!("?from={}&to={}", rfc3339(at(23, 0)), rfc3339(at(24, 0)));
    assert_eq!(report(&app, &key, &inside).await["totals"]["detections"], 1);

    // Removing stored detections (as erasure will) keeps the rollup exact.
    use sea_orm::ConnectionTrait;
    let db = app.db().await;
    // a2 was its group's earliest (the group takes the next one, a3); a9 its group's only one.
    db.execute_unprepared("DELETE FROM detections WHERE event_id IN ('a4', 'a2', 'a9')")
        .await
        .unwrap();
    db.execute_unprepared("UPDATE detections SET model_version = 'v4' WHERE event_id = 'a5'")
        .await
        .unwrap();
    let body = report(&app, &key, &range).await;
    assert_eq!(
        body["rows"],
        json!([
            row("barcode", "sku-1", "v3", 2, 0, 0, 0.0, &rfc3339(at(24, -1))),
            row("barcode", "sku-1", "v4", 1, 0, 0, 0.0, &rfc3339(at(36, 0))),
        ])
    );
    // The rollup itself holds no group left empty.
    assert_eq!(
        app.count("SELECT count(*) FROM report_detection_days WHERE detections <= 0")
            .await,
        0
    );
}
