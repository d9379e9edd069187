//! Valid events to start from; tests change one field at a time.

use serde_json::{Value, json};

/// An RFC 3339 time `seconds_ago` before now.
pub fn time_ago(seconds_ago: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(seconds_ago))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A valid detection of a barcode in session `session`.
pub fn detection(event_id: &str, session: &str) -> Value {
    json!({
        "type": "detection",
        "event_id": event_id,
        "event_time": time_ago(60),
        "keys": {"session_token": session},
        "label": "barcode",
        "confidence": 0.92,
        "model_version": "v3",
        "entity_id": "sku-42",
    })
}

/// A valid purchase in session `session`.
pub fn conversion(event_id: &str, session: &str) -> Value {
    json!({
        "type": "conversion",
        "event_id": event_id,
        "event_time": time_ago(30),
        "keys": {"session_token": session},
        "name": "purchase",
        "value": 19.5,
        "currency": "EUR",
    })
}

/// `{"events": [...]}`
pub fn batch(events: Vec<Value>) -> Value {
    json!({ "events": events })
}
