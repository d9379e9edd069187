//! libFuzzer target of the event parser: arbitrary bytes as a request body, parsed as the
//! ingest route parses them (JSON, then each event of `events`, or the value itself). It
//! must never panic, and every result must keep the parser's promises: a refusal says why
//! with a short message, an accepted event has a valid id, keys and confidence.
//!
//! `cargo fuzz run parse_event` from `backend/` (see the README's "Fuzzing").

#![no_main]

use chrono::{Duration, TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sightline::domain::events::{EventBody, MAX_KEYS, ParseContext, parse_event};

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let context = ParseContext {
        now: Utc
            .with_ymd_and_hms(2026, 12, 4, 12, 0, 0)
            .single()
            .expect("a valid time"),
        max_event_age: Duration::days(7),
    };
    let events = match body.get("events").and_then(Value::as_array) {
        Some(events) => events.clone(),
        None => vec![body],
    };
    for event in &events {
        check(parse_event(event, &context));
    }
});

fn check(parsed: Result<sightline::domain::events::Event, sightline::domain::events::Rejection>) {
    match parsed {
        Err(rejection) => {
            assert!(!rejection.errors.is_empty(), "a refusal says why");
            for problem in &rejection.errors {
                assert!(!problem.message.is_empty());
                assert!(problem.message.len() < 400, "{}", problem.message);
            }
        }
        Ok(event) => {
            let id = event.event_id.as_str();
            assert!((1..=128).contains(&id.len()));
            assert!(!event.keys.is_empty() && event.keys.len() <= MAX_KEYS);
            for (name, value) in event.keys.iter() {
                assert!(!name.as_str().is_empty() && name.as_str().len() <= 32);
                assert!((1..=256).contains(&value.as_str().chars().count()));
            }
            if let EventBody::Detection(detection) = &event.body {
                assert!((0.0..=1.0).contains(&detection.confidence.get()));
            }
        }
    }
}
