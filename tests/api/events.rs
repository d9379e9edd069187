//! Event ingestion: validation, idempotency, durability, limits, consent, test events.

use serde_json::{Value, json};
use sightline::config::Secret;
use support::TestApp;
use support::fixtures::{batch, conversion, detection, time_ago};
use support::redis_server::RedisServer;

async fn ingest_key(app: &TestApp) -> (support::Account, String) {
    let account = app.signup().await;
    let (_, key) = app
        .create_api_key(&account.token, &["ingest", "read"])
        .await;
    (account, key)
}

fn statuses(body: &Value) -> Vec<&str> {
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect()
}

#[actix_web::test]
async fn a_valid_batch_is_accepted_and_stored_with_its_keys() {
    let app = TestApp::spawn().await;
    let (_, key) = ingest_key(&app).await;
    let mut detection = detection("d-1", "s-1");
    detection["keys"]["device_id"] = json!("cam-7");
    detection["source"] = json!({"camera_id": "cam-7", "site_id": "store-1"});
    detection["bbox"] = json!([1, 2.5, 30, 40]);
    detection["properties"] = json!({"lane": 3});
    let response = app
        .post(
            "/v1/events",
            Some(&key),
            &batch(vec![detection, conversion("c-1", "s-1")]),
        )
        .await
        .expect(202);
    assert_eq!(response.body["accepted"], 2);
    assert_eq!(response.body["duplicates"], 0);
    assert_eq!(response.body["rejected"], 0);
    assert_eq!(
        response.body["results"][0],
        json!({"index": 0, "event_id": "d-1", "status": "accepted"})
    );
    assert_eq!(
        response.body["results"][1],
        json!({"index": 1, "event_id": "c-1", "status": "accepted"})
    );

    assert_eq!(
        app.count("SELECT count(*) FROM detections WHERE received_time >= event_time")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT count(*) FROM conversions WHERE value = 19.5 AND currency = 'EUR'")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT count(*) FROM detections WHERE source->>'camera_id' = 'cam-7' AND bbox->>1 = '2.5' AND properties->>'lane' = '3'")
            .await,
        1
    );
    assert_eq!(
        app.count(r#"SELECT count(*) FROM detections WHERE "keys" @> '{"session_token": "s-1", "device_id": "cam-7"}'"#)
            .await,
        1
    );
    assert_eq!(
        app.count(r#"SELECT count(*) FROM conversions WHERE "keys" = '{"session_token": "s-1"}'"#)
            .await,
        1
    );
}

#[actix_web::test]
async fn event_times_are_stored_in_utc_with_millisecond_precision() {
    let app = TestApp::spawn().await;
    let (_, key) = ingest_key(&app).await;
    let mut event = detection("d-1", "s");
    let local = (chrono::Utc::now() - chrono::Duration::hours(1))
        .with_timezone(&chrono::FixedOffset::east_opt(3600).unwrap())
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
    event["event_time"] = json!(local);
    app.post("/v1/events", Some(&key), &batch(vec![event]))
        .await
        .expect(202);
    assert_eq!(
        app.count("SELECT count(*) FROM detections WHERE date_part('microseconds', event_time)::int % 1000 = 0").await,
        1
    );
}

/// Each case changes one field of a valid event and expects one error.
#[actix_web::test]
async fn every_validation_code_is_reported_on_its_field() {
    let app = TestApp::spawn().await;
    let (_, key) = ingest_key(&app).await;
    type Change = fn(&mut Value);
    let cases: Vec<(&str, Change, &str, &str)> = vec![
        (
            "detection",
            |e| {
                e.as_object_mut().unwrap().remove("label");
            },
            "label",
            "missing_field",
        ),
        (
            "detection",
            |e| {
                e.as_object_mut().unwrap().remove("event_time");
            },
            "event_time",
            "missing_field",
        ),
        (
            "detection",
            |e| e["confidence"] = json!("high"),
            "confidence",
            "invalid_type",
        ),
        (
            "detection",
            |e| e["keys"] = json!(["s"]),
            "keys",
            "invalid_type",
        ),
        (
            "detection",
            |e| e["keys"]["session_token"] = json!(5),
            "keys.session_token",
            "invalid_type",
        ),
        (
            "detection",
            |e| e["test"] = json!("yes"),
            "test",
            "invalid_type",
        ),
        (
            "detection",
            |e| e["confidence"] = json!(1.5),
            "confidence",
            "out_of_range",
        ),
        (
            "detection",
            |e| e["confidence"] = json!(-0.1),
            "confidence",
            "out_of_range",
        ),
        (
            "conversion",
            |e| e["value"] = json!(-1),
            "value",
            "out_of_range",
        ),
        (
            "detection",
            |e| e["label"] = json!("x".repeat(129)),
            "label",
            "too_long",
        ),
        (
            "detection",
            |e| e["event_id"] = json!("e".repeat(129)),
            "event_id",
            "too_long",
        ),
        (
            "detection",
            |e| e["keys"]["session_token"] = json!("v".repeat(257)),
            "keys.session_token",
            "too_long",
        ),
        (
            "detection",
            |e| e["properties"] = json!({"blob": "x".repeat(9000)}),
            "properties",
            "too_long",
        ),
        (
            "detection",
            |e| e["colour"] = json!("red"),
            "colour",
            "unknown_field",
        ),
        (
            "conversion",
            |e| e["label"] = json!("barcode"),
            "label",
            "unknown_field",
        ),
        (
            "detection",
            |e| e["name"] = json!("purchase"),
            "name",
            "unknown_field",
        ),
        (
            "detection",
            |e| e["type"] = json!("click"),
            "type",
            "invalid_format",
        ),
        (
            "detection",
            |e| e["consent"] = json!("maybe"),
            "consent",
            "invalid_format",
        ),
        (
            "detection",
            |e| e["event_time"] = json!("yesterday"),
            "event_time",
            "invalid_format",
        ),
        (
            "detection",
            |e| e["event_time"] = json!("2026-12-03T18:00:00"),
            "event_time",
            "invalid_format",
        ),
        (
            "detection",
            |e| e["label"] = json!(""),
            "label",
            "invalid_format",
        ),
        (
            "detection",
            |e| e["event_id"] = json!("tab\there"),
            "event_id",
            "invalid_format",
        ),
        (
            "detection",
            |e| e["keys"]["session_token"] = json!(""),
            "keys.session_token",
            "invalid_format",
        ),
        (
            "detection",
            |e| e["keys"] = json!({"Session": "s"}),
            "keys.Session",
            "invalid_format",
        ),
        (
            "detection",
            |e| e["bbox"] = json!([1, 2, 3]),
            "bbox",
            "invalid_format",
        ),
        (
            "conversion",
            |e| e["currency"] = json!("eur"),
            "currency",
            "invalid_format",
        ),
        (
            "conversion",
            |e| {
                e.as_object_mut().unwrap().remove("value");
            },
            "value",
            "missing_field",
        ),
        (
            "detection",
            |e| e["event_time"] = json!(time_ago(-600)),
            "event_time",
            "in_future",
        ),
        (
            "detection",
            |e| e["event_time"] = json!(time_ago(8 * 86400)),
            "event_time",
            "too_old",
        ),
        ("detection", |e| e["keys"] = json!({}), "keys", "no_keys"),
    ];
    for (index, (kind, change, field, code)) in cases.into_iter().enumerate() {
        let id = format!("e-{index}");
        let mut event = if kind == "detection" {
            detection(&id, "s")
        } else {
            conversion(&id, "s")
        };
        change(&mut event);
        let response = app
            .post("/v1/events", Some(&key), &batch(vec![event.clone()]))
            .await
            .expect(202);
        assert_eq!(
            response.body["rejected"], 1,
            "{field}/{code}: {}",
            response.text
        );
        let errors = &response.body["results"][0]["errors"];
        assert_eq!(
            errors.as_array().unwrap().len(),
            1,
            "{field}/{code}: {errors}"
        );
        assert_eq!(errors[0]["field"], field, "{event}");
        assert_eq!(errors[0]["code"], code, "{event}");
        assert!(errors[0]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

#[actix_web::test]
async fn an_event_gets_every_error_that_applies() {
    let app = TestApp::spawn().await;
    let (_, key) = ingest_key(&app).await;
    let event = json!({"type": "detection", "event_id": "d-1", "event_time": "soon", "keys": {},
                       "confidence": 3, "model_version": "", "extra": 1});
    let response = app
        .post("/v1/events", Some(&key), &batch(vec![event]))
        .await
        .expect(202);
    let errors: Vec<(String, String)> = response.body["results"][0]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_owned(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("event_time", "invalid_format"),
        ("keys", "no_keys"),
        ("label", "missing_field"),
        ("confidence", "out_of_range"),
        ("model_version", "invalid_format"),
        ("entity_id", "missing_field"),
        ("extra", "unknown_field"),
    ];
    assert_eq!(errors, expected.map(|(f, c)| (f.to_owned(), c.to_owned())));
}

#[actix_web::test]
async fn a_mixed_batch_answers_per_event_and_logs_the_rejected_one() {
    let app = TestApp::spawn().await;
    let (_, key) = ingest_key(&app).await;
    let mut bad = detection("x", "s");
    bad["confidence"] = json!(2);
    let response = app
        .post(
            "/v1/events",
            Some(&key),
            &batch(vec![
                detection("d-1", "s"),
                detection("d-1", "s"),
                conversion("c-9", "s"),
                bad.clone(),
            ]),
        )
        .await
        .expect(202);
    assert_eq!(response.body["accepted"], 2);
    assert_eq!(response.body["duplicates"], 1);
    assert_eq!(response.body["rejected"], 1);
    assert_eq!(
        statuses(&response.body),
        ["accepted", "duplicate", "accepted", "rejected"]
    );
    assert_eq!(
        response.body["results"][3]["errors"],
        json!([{"field": "confidence", "code": "out_of_range", "message": "confidence must be between 0 and 1"}])
    );

    let log = app
        .get("/v1/invalid-events", Some(&key))
        .await
        .expect(200)
        .body;
    let entries = log["invalid_events"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["payload"], bad);
    assert_eq!(entries[0]["errors"][0]["code"], "out_of_range");
    assert!(entries[0]["received_time"].as_str().unwrap().ends_with('Z'));
}

#[actix_web::test]
async fn retrying_a_whole_batch_changes_nothing() {
    let app = TestApp::spawn().await;
    let (_, key) = ingest_key(&app).await;
    let events = batch(vec![
        detection("d-1", "s"),
        conversion("c-1", "s"),
        detection("d-2", "t"),
    ]);
    app.post("/v1/events", Some(&key), &events)
        .await
        .expect(202);
    let retry = app
        .post("/v1/events", Some(&key), &events)
        .await
        .expect(202);
    assert_eq!(retry.body["accepted"], 0);
    assert_eq!(retry.body["duplicates"], 3);
    assert_eq!(app.count("SELECT count(*) FROM detections").await, 2);
    assert_eq!(app.count("SELECT count(*) FROM conversions").await, 1);
}

#[actix_web::test]
async fn the_first_accepted_content_wins_even_over_invalid_retries() {
    let app = TestApp::spawn().await;
    let (_, key) = ingest_key(&app).await;
    app.post(
        "/v1/events",
        Some(&key),
        &batch(vec![detection("d-1", "s")]),
    )
    .await
    .expect(202);
    let mut changed = detection("d-1", "other");
    changed["label"] = json!("product");
    let mut invalid = detection("d-1", "s");
    invalid["confidence"] = json!("very");
    let response = app
        .post("/v1/events", Some(&key), &batch(vec![changed, invalid]))
        .await
        .expect(202);
    assert_eq!(statuses(&response.body), ["duplicate", "duplicate"]);
    assert_eq!(
        app.count("SELECT count(*) FROM detections WHERE label = 'barcode'")
            .await,
        1
    );
    assert_eq!(app.count("SELECT count(*) FROM invalid_events").await, 0);
}

#[actix_web::test]
async fn the_same_event_sent_five_times_at_once_is_stored_once() {
    let app = TestApp::spawn().await;
    let (_, key) = ingest_key(&app).await;
    let body = batch(vec![detection("d-concurrent", "s")]);
    let requests: Vec<_> = (0..5)
        .map(|_| app.post("/v1/events", Some(&key), &body))
        .collect();
    let responses = futures_util::future::join_all(requests).await;
    let mut accepted = 0;
    for response in responses {
        let response = response.expect(202);
        accepted += response.body["accepted"].as_u64().unwrap();
        assert_eq!(
            response.body["accepted"].as_u64().unwrap()
                + response.body["duplicates"].as_u64().unwrap(),
            1
        );
    }
    assert_eq!(accepted, 1);
    assert_eq!(app.count("SELECT count(*) FROM detections").await, 1);
}

#[actix_web::test]
async fn the_same_event_id_is_independent_across_types_and_tenants() {
    let app = TestApp::spawn().await;
    let (_, key_a) = ingest_key(&app).await;
    let (_, key_b) = ingest_key(&app).await;
    let mut as_conversion = conversion("shared", "s");
    as_conversion["event_id"] = json!("shared");
    let response = app
        .post(
            "/v1/events",
            Some(&key_a),
            &batch(vec![detection("shared", "s"), as_conversion]),
        )
        .await
        .expect(202);
    assert_eq!(response.body["accepted"], 2);
    let response = app
        .post(
            "/v1/events",
            Some(&key_b),
            &batch(vec![detection("shared", "s")]),
        )
        .await
        .expect(202);
    assert_eq!(response.body["accepted"], 1);
}

#[actix_web::test]
async fn a_thousand_events_pass_and_one_more_is_too_many() {
    let app = TestApp::spawn().await;
    let (_, key) = ingest_key(&app).await;
    let thousand: Vec<Value> = (0..1000)
        .map(|i| detection(&format!("d-{i}"), "s"))
        .collect();
    let response = app
        .post("/v1/events", Some(&key), &batch(thousand))
        .await
        .expect(202);
    assert_eq!(response.body["accepted"], 1000);
    assert_eq!(app.count("SELECT count(*) FROM detections").await, 1000);

    let too_many: Vec<Value> = (0..1001)
        .map(|i| detection(&format!("e-{i}"), "s"))
        .collect();
    let response = app
        .post("/v1/events", Some(&key), &batch(too_many))
        .await
        .expect(413);
    assert_eq!(response.error_code(), "payload_too_large");
    assert_eq!(app.count("SELECT count(*) FROM detections").await, 1000);
}

#[actix_web::test]
async fn malformed_requests_are_refused_whole() {
    let app = TestApp::spawn().await;
    let (_, key) = ingest_key(&app).await;
    let post = |content_type: &'static str, body: String| {
        app.send_raw(
            actix_web::http::Method::POST,
            "/v1/events",
            Some(&key),
            Some((content_type, body)),
        )
    };
    // Over 1 MiB, though under 1000 events.
    let mut big = detection("big", "s");
    big["properties"] = json!({"note": "x".repeat(8000)});
    let big_batch = batch(
        (0..140)
            .map(|i| {
                let mut e = big.clone();
                e["event_id"] = json!(format!("b-{i}"));
                e
            })
            .collect(),
    );
    assert!(big_batch.to_string().len() > 1024 * 1024);
    post("application/json", big_batch.to_string())
        .await
        .expect(413);
    post("text/plain", batch(vec![detection("d", "s")]).to_string())
        .await
        .expect(415);
    post("application/json", "{\"events\": [".to_owned())
        .await
        .expect(400);
    post("application/json", "[]".to_owned()).await.expect(400);
    post("application/json", "{\"events\": []}".to_owned())
        .await
        .expect(400);
    post("application/json", "{\"events\": {}}".to_owned())
        .await
        .expect(400);
    post("application/json", "{\"evnts\": []}".to_owned())
        .await
        .expect(400);
    let not_object = post("application/json", "{\"events\": [5]}".to_owned())
        .await
        .expect(202);
    assert_eq!(
        not_object.body["results"][0]["errors"][0]["code"],
        "invalid_type"
    );
    assert_eq!(app.count("SELECT count(*) FROM detections").await, 0);
}

#[actix_web::test]
async fn validate_answers_like_ingest_but_stores_nothing() {
    let app = TestApp::spawn().await;
    let (_, key) = ingest_key(&app).await;
    app.post(
        "/v1/events",
        Some(&key),
        &batch(vec![detection("stored", "s")]),
    )
    .await
    .expect(202);
    let mut bad = detection("bad", "s");
    bad["label"] = json!(7);
    let response = app
        .post(
            "/v1/events/validate",
            Some(&key),
            &batch(vec![
                detection("new", "s"),
                detection("stored", "s"),
                bad,
                detection("new", "s"),
            ]),
        )
        .await
        .expect(202);
    assert_eq!(
        statuses(&response.body),
        ["accepted", "duplicate", "rejected", "duplicate"]
    );
    assert_eq!(
        response.body["results"][2]["errors"][0]["code"],
        "invalid_type"
    );
    assert_eq!(app.count("SELECT count(*) FROM detections").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM invalid_events").await, 0);
}

#[actix_web::test]
async fn test_events_are_stored_and_flagged() {
    let app = TestApp::spawn().await;
    let (_, key) = ingest_key(&app).await;
    let mut event = detection("qa-1", "s");
    event["test"] = json!(true);
    app.post(
        "/v1/events",
        Some(&key),
        &batch(vec![event, detection("real-1", "s")]),
    )
    .await
    .expect(202);
    assert_eq!(
        app.count("SELECT count(*) FROM detections WHERE is_test AND event_id = 'qa-1'")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT count(*) FROM detections WHERE NOT is_test AND event_id = 'real-1'")
            .await,
        1
    );
}

#[actix_web::test]
async fn filtered_detections_are_stored_as_filtered() {
    let app = TestApp::spawn().await;
    let (_, key) = ingest_key(&app).await;
    let mut event = detection("f-1", "s");
    event["filtered"] = json!(true);
    app.post("/v1/events", Some(&key), &batch(vec![event]))
        .await
        .expect(202);
    assert_eq!(
        app.count("SELECT count(*) FROM detections WHERE filtered")
            .await,
        1
    );
}

#[actix_web::test]
async fn the_tenant_rate_limit_answers_429_with_retry_after() {
    let app = TestApp::spawn_with(|s| s.ingest_rate_limit_per_second = 3).await;
    let (_, key) = ingest_key(&app).await;
    let events: Vec<Value> = (0..4).map(|i| detection(&format!("d-{i}"), "s")).collect();
    let response = app
        .post("/v1/events", Some(&key), &batch(events))
        .await
        .expect(429);
    assert_eq!(response.header("retry-after"), Some("1"));
    assert_eq!(app.count("SELECT count(*) FROM detections").await, 0);
    // Another tenant is not limited by the first one's traffic.
    let (_, other) = ingest_key(&app).await;
    app.post(
        "/v1/events",
        Some(&other),
        &batch(vec![detection("d", "s")]),
    )
    .await
    .expect(202);
}

/// Once a tenant's bucket is full, its further requests are refused before their bodies are
/// read, until an event fits again: a body that is not even JSON gets the 429, not a 400. A
/// flood past the limit so costs the server little, and other tenants keep their latency.
#[actix_web::test]
async fn a_tenant_whose_bucket_is_full_is_refused_before_its_body_is_read() {
    // Three events a second: the bucket holds three, and one event fits again a third of a
    // second after it is full.
    let app = TestApp::spawn_with(|s| s.ingest_rate_limit_per_second = 3).await;
    let (_, other) = ingest_key(&app).await;
    let garbage = |key: String| {
        let app = &app;
        async move {
            app.send_raw(
                actix_web::http::Method::POST,
                "/v1/events",
                Some(&key),
                Some(("application/json", "this is not JSON".into())),
            )
            .await
        }
    };
    let mut refused_unread = false;
    // The garbage must follow the refusal within that third of a second; a few tries (a
    // fresh tenant each) make sure one does on a busy machine.
    for attempt in 0..5 {
        let (_, key) = ingest_key(&app).await;
        let three: Vec<Value> = (0..3).map(|i| detection(&format!("d-{i}"), "s")).collect();
        app.post("/v1/events", Some(&key), &batch(three))
            .await
            .expect(202);
        app.post("/v1/events", Some(&key), &batch(vec![detection("e", "s")]))
            .await
            .expect(429);
        let unread = garbage(other.clone()).await;
        assert_eq!(
            unread.status, 400,
            "another tenant's body is read: {}",
            unread.text
        );
        let refused = garbage(key).await;
        if refused.status == 429 {
            assert_eq!(refused.header("retry-after"), Some("1"));
            refused_unread = true;
            break;
        }
        assert_eq!(refused.status, 400, "attempt {attempt}: {}", refused.text);
    }
    assert!(refused_unread, "a full bucket was never remembered");
}

/// A tenant refused again within a second of its last refusal did not wait the `Retry-After`
/// it was given, and is answered only half a second to one and a half later, so a closed loop
/// of refused requests cannot spin as fast as the server answers. A refusal spends nothing
/// from the bucket: the events that fit are taken right after.
#[actix_web::test]
async fn a_refusal_soon_after_the_last_one_is_held_before_it_is_answered() {
    let app = TestApp::spawn_with(|s| s.ingest_rate_limit_per_second = 3).await;
    let (_, key) = ingest_key(&app).await;
    let over: Vec<Value> = (0..4).map(|i| detection(&format!("d-{i}"), "s")).collect();
    let started = std::time::Instant::now();
    app.post("/v1/events", Some(&key), &batch(over.clone()))
        .await
        .expect(429);
    let first = started.elapsed();
    let again = app
        .post("/v1/events", Some(&key), &batch(over))
        .await
        .expect(429);
    let second = started.elapsed() - first;
    assert_eq!(again.header("retry-after"), Some("1"));
    assert!(
        second >= std::time::Duration::from_millis(500),
        "the repeated refusal was answered after {second:?} (the first after {first:?})"
    );
    let three: Vec<Value> = (0..3).map(|i| detection(&format!("e-{i}"), "s")).collect();
    app.post("/v1/events", Some(&key), &batch(three))
        .await
        .expect(202);
    assert_eq!(app.count("SELECT count(*) FROM detections").await, 3);
}

#[actix_web::test]
async fn ingest_needs_the_ingest_scope_or_a_managing_role() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let (_, read_only) = app.create_api_key(&owner.token, &["read"]).await;
    let (_, ingest_only) = app.create_api_key(&owner.token, &["ingest"]).await;
    let (_, viewer) = app.add_member(&owner.token, "viewer").await;
    let (_, analyst) = app.add_member(&owner.token, "analyst").await;
    let body = batch(vec![detection("d", "s")]);
    for path in ["/v1/events", "/v1/events/validate"] {
        app.post(path, None, &body).await.expect(401);
        app.post(path, Some(&read_only), &body).await.expect(403);
        app.post(path, Some(&viewer), &body).await.expect(403);
        app.post(path, Some(&analyst), &body).await.expect(403);
        app.post(path, Some(&ingest_only), &body).await.expect(202);
        app.post(path, Some(&owner.token), &body).await.expect(202);
        // Authentication before the body.
        app.send_raw(
            actix_web::http::Method::POST,
            path,
            None,
            Some(("text/plain", "x".into())),
        )
        .await
        .expect(401);
        app.send_raw(
            actix_web::http::Method::POST,
            path,
            Some(&read_only),
            Some(("text/plain", "x".into())),
        )
        .await
        .expect(403);
    }
}

#[actix_web::test]
async fn invalid_events_are_read_by_analysts_and_read_keys_newest_first() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let (_, ingest_only) = app.create_api_key(&owner.token, &["ingest"]).await;
    let (_, read_only) = app.create_api_key(&owner.token, &["read"]).await;
    let (_, analyst) = app.add_member(&owner.token, "analyst").await;
    let (_, viewer) = app.add_member(&owner.token, "viewer").await;
    for i in 0..3 {
        let mut bad = detection(&format!("bad-{i}"), "s");
        bad["confidence"] = json!(9);
        app.post("/v1/events", Some(&ingest_only), &batch(vec![bad]))
            .await
            .expect(202);
    }
    let listed = app
        .get("/v1/invalid-events?limit=2", Some(&analyst))
        .await
        .expect(200)
        .body;
    let ids: Vec<&str> = listed["invalid_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["payload"]["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["bad-2", "bad-1"]);
    app.get("/v1/invalid-events", Some(&read_only))
        .await
        .expect(200);
    app.get("/v1/invalid-events", Some(&owner.token))
        .await
        .expect(200);
    app.get("/v1/invalid-events", Some(&viewer))
        .await
        .expect(403);
    app.get("/v1/invalid-events", Some(&ingest_only))
        .await
        .expect(403);
    app.get("/v1/invalid-events", None).await.expect(401);
    app.get("/v1/invalid-events?limit=0", Some(&analyst))
        .await
        .expect(400);
    app.get("/v1/invalid-events?limit=lots", Some(&analyst))
        .await
        .expect(400);
}

#[actix_web::test]
async fn storage_outage_answers_503_and_the_retried_batch_is_accepted_once() {
    let (app, proxy) = TestApp::spawn_behind_proxy(|s| {
        s.database_acquire_timeout = std::time::Duration::from_secs(1);
        s.ingest_reply_timeout = std::time::Duration::from_secs(5);
    })
    .await;
    let (_, key) = ingest_key(&app).await;
    // Warm the key and policy caches, so the outage hits the write itself.
    app.post(
        "/v1/events",
        Some(&key),
        &batch(vec![detection("warm", "s")]),
    )
    .await
    .expect(202);

    let events = batch((0..20).map(|i| detection(&format!("d-{i}"), "s")).collect());
    proxy.cut();
    let started = std::time::Instant::now();
    let refused = app
        .post("/v1/events", Some(&key), &events)
        .await
        .expect(503);
    assert!(refused.header("retry-after").is_some());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "503 must come promptly, took {:?}",
        started.elapsed()
    );

    proxy.restore().await;
    let mut accepted = None;
    for _ in 0..50 {
        let response = app.post("/v1/events", Some(&key), &events).await;
        if response.status == 202 {
            accepted = Some(response);
            break;
        }
        assert_eq!(response.status, 503, "{}", response.text);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let accepted = accepted.expect("ingestion recovers once the database is back");
    assert_eq!(accepted.body["accepted"], 20, "{}", accepted.text);
    assert_eq!(
        app.count("SELECT count(*) FROM detections WHERE event_id LIKE 'd-%'")
            .await,
        20
    );
}

#[actix_web::test]
async fn while_redis_is_down_keys_still_work_and_the_rate_limit_is_counted_in_process() {
    let mut redis = RedisServer::start().await;
    let url = redis.url();
    let app = TestApp::spawn_with(|s| {
        s.redis_url = Some(Secret::new(url));
        s.ingest_rate_limit_per_second = 3;
    })
    .await;
    let (_, key) = ingest_key(&app).await;
    redis.kill();

    // The key is read from the database.
    let two: Vec<Value> = (0..2).map(|i| detection(&format!("a-{i}"), "s")).collect();
    app.post("/v1/events", Some(&key), &batch(two))
        .await
        .expect(202);
    // Four events are over the limit in any one second, counted in this process.
    let four: Vec<Value> = (0..4).map(|i| detection(&format!("b-{i}"), "s")).collect();
    let response = app
        .post("/v1/events", Some(&key), &batch(four))
        .await
        .expect(429);
    assert_eq!(response.header("retry-after"), Some("1"));
    assert_eq!(app.count("SELECT count(*) FROM detections").await, 2);
}
