//! Hostile bodies on the ingest path: each is refused with a clear answer, stores nothing it
//! should not, and leaves the server serving.

use actix_web::http::Method;
use serde_json::{Value, json};
use support::TestApp;
use support::fixtures::{batch, detection};

async fn post_bytes(app: &TestApp, key: &str, body: Vec<u8>) -> support::Response {
    app.send_bytes(
        Method::POST,
        "/v1/events",
        Some(key),
        Some(("application/json", body)),
    )
    .await
}

fn first_codes(body: &Value) -> Vec<String> {
    body["results"][0]["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["code"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[actix_web::test]
async fn malformed_bytes_are_refused_whole_and_the_server_keeps_serving() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest"]).await;

    let deep = format!(
        "{{\"events\": [{}{}]}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("deep nesting", deep.into_bytes()),
        (
            "invalid UTF-8",
            b"{\"events\": [{\"event_id\": \"\xff\xfe\"}]}".to_vec(),
        ),
        ("NaN", br#"{"events": [{"confidence": NaN}]}"#.to_vec()),
        (
            "Infinity",
            br#"{"events": [{"confidence": Infinity}]}"#.to_vec(),
        ),
        (
            "a lone surrogate",
            br#"{"events": [{"event_id": "\ud800"}]}"#.to_vec(),
        ),
        ("a NUL byte", b"{\"events\": [\x00]}".to_vec()),
    ];
    for (what, body) in bodies {
        let answer = post_bytes(&app, &key, body).await;
        assert_eq!(answer.status, 400, "{what}: {}", answer.text);
        assert!(
            !answer.body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .is_empty()
        );
    }
    app.post(
        "/v1/events",
        Some(&key),
        &batch(vec![detection("d-1", "s-1")]),
    )
    .await
    .expect(202);
    assert_eq!(app.count("SELECT count(*) FROM detections").await, 1);
}

#[actix_web::test]
async fn hostile_values_inside_an_event_are_rejected_on_their_field() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest"]).await;
    let with = |field: &str, value: Value| {
        let mut event = detection("d-x", "s-1");
        event[field] = value;
        event
    };
    let many_keys: serde_json::Map<String, Value> =
        (0..5000).map(|i| (format!("k{i}"), json!("v"))).collect();
    let cases = vec![
        (
            "a huge label",
            with("label", json!("x".repeat(900_000))),
            "too_long",
        ),
        (
            "a far-future time",
            with("event_time", json!("+275760-09-13T00:00:00Z")),
            "invalid_format",
        ),
        (
            "year 9999",
            with("event_time", json!("9999-12-31T23:59:59Z")),
            "in_future",
        ),
        (
            "year 0",
            with("event_time", json!("0000-01-01T00:00:00Z")),
            "too_old",
        ),
        (
            "an offset past a day",
            with("event_time", json!("2026-12-04T00:00:00+25:00")),
            "invalid_format",
        ),
        (
            "a confidence over 1",
            with("confidence", json!(1e308)),
            "out_of_range",
        ),
        (
            "thousands of keys",
            with("keys", Value::Object(many_keys)),
            "too_long",
        ),
        (
            "deep properties",
            with(
                "properties",
                json!({"a": {"b": {"c": {"d": [[[[[["x"]]]]]]}}}}),
            ),
            "accepted",
        ),
    ];
    for (what, event, expected) in cases {
        let answer = app
            .post("/v1/events", Some(&key), &batch(vec![event]))
            .await;
        assert_eq!(answer.status, 202, "{what}: {}", answer.text);
        if expected == "accepted" {
            assert_eq!(answer.body["accepted"], 1, "{what}: {}", answer.text);
            let removed = app
                .count(
                    "WITH gone AS (DELETE FROM detections WHERE event_id = 'd-x' RETURNING 1) \
                     SELECT count(*) FROM gone",
                )
                .await;
            assert_eq!(removed, 1);
        } else {
            assert!(
                first_codes(&answer.body).iter().any(|c| c == expected),
                "{what}: {}",
                answer.text
            );
        }
    }
    // Every refused one is in the invalid-events log, nothing else was stored.
    assert_eq!(app.count("SELECT count(*) FROM invalid_events").await, 7);
    assert_eq!(app.count("SELECT count(*) FROM detections").await, 0);
}
