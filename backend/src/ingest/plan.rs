//! Sorting a parsed batch into what to store, what is a duplicate and what is rejected, before
//! any I/O. Pure, so that the idempotency rules are tested on their own.
//!
//! The first accepted event with a given (type, event_id) wins; any later one, in this batch or
//! after, is a duplicate whatever its content, even content that would fail validation.

use crate::domain::FieldProblem;
use crate::domain::events::{Event, EventId, EventKind, Rejection};
use std::collections::HashMap;

/// What became of one event of a batch, as far as the batch alone can tell.
#[derive(Debug, Clone, PartialEq)]
pub enum Slot {
    /// The first valid event with its identity in the batch: to be stored (or found stored).
    Candidate(Box<Event>),
    /// A later event with the identity of an earlier valid one in the same batch.
    Duplicate,
    /// Invalid. A duplicate all the same if its identity is already stored.
    Rejected {
        identity: Option<(EventKind, EventId)>,
        errors: Vec<FieldProblem>,
    },
}

/// Classifies parsed events in batch order.
pub fn plan(parsed: Vec<Result<Event, Rejection>>) -> Vec<Slot> {
    let mut first_valid: HashMap<(EventKind, EventId), usize> = HashMap::new();
    for (index, result) in parsed.iter().enumerate() {
        if let Ok(event) = result {
            first_valid
                .entry((event.kind(), event.event_id.clone()))
                .or_insert(index);
        }
    }
    parsed
        .into_iter()
        .enumerate()
        .map(|(index, result)| match result {
            Ok(event) => {
                let first = first_valid.get(&(event.kind(), event.event_id.clone()));
                if first == Some(&index) {
                    Slot::Candidate(Box::new(event))
                } else {
                    Slot::Duplicate
                }
            }
            Err(Rejection { identity, errors }) => {
                let accepted_earlier = identity
                    .as_ref()
                    .and_then(|id| first_valid.get(id))
                    .is_some_and(|&first| first < index);
                if accepted_earlier {
                    Slot::Duplicate
                } else {
                    Slot::Rejected { identity, errors }
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::events::{ParseContext, parse_event};
    use serde_json::{Value, json};

    fn parse(values: &[Value]) -> Vec<Result<Event, Rejection>> {
        let context = ParseContext {
            now: chrono::Utc::now(),
            max_event_age: chrono::Duration::days(7),
        };
        values.iter().map(|v| parse_event(v, &context)).collect()
    }

    fn detection(id: &str) -> Value {
        json!({"type": "detection", "event_id": id, "event_time": chrono::Utc::now().to_rfc3339(),
               "keys": {"session_token": "s"}, "label": "barcode", "confidence": 0.9,
               "model_version": "v1", "entity_id": "sku"})
    }

    fn kinds(slots: &[Slot]) -> Vec<&'static str> {
        slots
            .iter()
            .map(|s| match s {
                Slot::Candidate(_) => "candidate",
                Slot::Duplicate => "duplicate",
                Slot::Rejected { .. } => "rejected",
            })
            .collect()
    }

    #[test]
    fn a_repeated_identity_in_one_batch_is_a_duplicate_after_the_first() {
        let slots = plan(parse(&[
            detection("d-1"),
            detection("d-1"),
            detection("d-2"),
        ]));
        assert_eq!(kinds(&slots), ["candidate", "duplicate", "candidate"]);
    }

    #[test]
    fn an_invalid_event_after_a_valid_one_with_its_identity_is_a_duplicate() {
        let mut invalid = detection("d-1");
        invalid["confidence"] = json!(7);
        let slots = plan(parse(&[detection("d-1"), invalid.clone()]));
        assert_eq!(kinds(&slots), ["candidate", "duplicate"]);
        // Before the valid one, nothing was accepted yet: rejected.
        let slots = plan(parse(&[invalid, detection("d-1")]));
        assert_eq!(kinds(&slots), ["rejected", "candidate"]);
    }

    #[test]
    fn the_same_event_id_under_another_type_is_another_event() {
        let conversion = json!({"type": "conversion", "event_id": "d-1",
            "event_time": chrono::Utc::now().to_rfc3339(), "keys": {"session_token": "s"}, "name": "purchase"});
        let slots = plan(parse(&[detection("d-1"), conversion]));
        assert_eq!(kinds(&slots), ["candidate", "candidate"]);
    }
}
