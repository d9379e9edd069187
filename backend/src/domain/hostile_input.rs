//! Property tests of the event parser against hostile input: arbitrary JSON, and valid
//! events with one field replaced by arbitrary JSON. The parser must never panic, a refused
//! event always says why with a documented code, and an accepted one keeps every invariant.

use super::events::{EventBody, MAX_KEYS, ParseContext, parse_event};
use chrono::{Duration, TimeZone, Utc};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// API.md "The answer": the only codes a refused event may carry.
const CODES: [&str; 9] = [
    "missing_field",
    "invalid_type",
    "out_of_range",
    "too_long",
    "unknown_field",
    "invalid_format",
    "in_future",
    "too_old",
    "no_keys",
];

fn context() -> ParseContext {
    ParseContext {
        now: Utc
            .with_ymd_and_hms(2026, 12, 4, 12, 0, 0)
            .single()
            .unwrap_or_default(),
        max_event_age: Duration::days(7),
    }
}

/// Any JSON: nulls, booleans, extreme numbers, strings with control characters, emoji and
/// surrogate-free unicode, long strings, and nested arrays and objects.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::from),
        "[a-z_]{0,40}".prop_map(Value::from),
        (0usize..2000).prop_map(|n| Value::from("x".repeat(n))),
        Just(Value::from("2026-12-04T11:59:00Z")),
        Just(Value::from("+275760-09-13T00:00:00Z")),
        Just(Value::from("0000-01-01T00:00:00+23:59")),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}|.{0,8}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

fn valid_detection() -> Value {
    json!({"type": "detection", "event_id": "d-1", "event_time": "2026-12-04T11:59:00Z",
           "keys": {"session_token": "s-1"}, "label": "barcode", "confidence": 0.9,
           "model_version": "v3", "entity_id": "sku-42", "category": "food",
           "source": {"camera_id": "c-1"}, "bbox": [1, 2, 3, 4], "filtered": false,
           "consent": "granted", "test": false, "properties": {"aisle": 4}})
}

fn valid_conversion() -> Value {
    json!({"type": "conversion", "event_id": "c-1", "event_time": "2026-12-04T11:59:00Z",
           "keys": {"session_token": "s-1"}, "name": "purchase", "value": 19.5,
           "currency": "EUR", "consent": "denied", "test": true})
}

/// The checks every parse must pass, whatever went in.
fn check(input: &Value) -> Result<(), TestCaseError> {
    match parse_event(input, &context()) {
        Err(rejection) => {
            prop_assert!(!rejection.errors.is_empty(), "a refusal says why");
            for problem in &rejection.errors {
                prop_assert!(CODES.contains(&problem.code), "code {}", problem.code);
                prop_assert!(!problem.message.is_empty());
                // Messages quote fields, never whole hostile values.
                prop_assert!(problem.message.len() < 400, "{}", problem.message);
            }
        }
        Ok(event) => {
            let id = event.event_id.as_str();
            prop_assert!((1..=128).contains(&id.len()));
            prop_assert!(id.bytes().all(|b| b.is_ascii_graphic() || b == b' '));
            prop_assert!(!event.keys.is_empty() && event.keys.len() <= MAX_KEYS);
            for (name, value) in event.keys.iter() {
                prop_assert!(!name.as_str().is_empty() && name.as_str().len() <= 32);
                prop_assert!((1..=256).contains(&value.as_str().chars().count()));
            }
            if let EventBody::Detection(detection) = &event.body {
                prop_assert!((0.0..=1.0).contains(&detection.confidence.get()));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_never_panics_and_every_refusal_says_why(input in any_json()) {
        check(&input)?;
    }

    #[test]
    fn one_field_of_a_valid_event_replaced_by_anything(
        conversion in any::<bool>(),
        field in prop::sample::select(vec![
            "type", "event_id", "event_time", "keys", "label", "confidence", "model_version",
            "entity_id", "category", "source", "bbox", "filtered", "consent", "test",
            "properties", "name", "value", "currency", "unexpected",
        ]),
        replacement in any_json(),
    ) {
        let mut event = if conversion { valid_conversion() } else { valid_detection() };
        event[field] = replacement;
        check(&event)?;
    }

    #[test]
    fn arbitrary_tracking_keys(keys in prop::collection::btree_map(".{0,40}", any_json(), 0..40)) {
        let mut event = valid_detection();
        event["keys"] = Value::Object(keys.into_iter().collect());
        check(&event)?;
    }
}

#[test]
fn the_valid_events_used_above_are_accepted() {
    assert!(parse_event(&valid_detection(), &context()).is_ok());
    assert!(parse_event(&valid_conversion(), &context()).is_ok());
}
