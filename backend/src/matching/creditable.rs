//! Which detections of a stream a goal could credit at all, before and after rule 6, for the
//! detection quality page: decided by [`attribute`] itself, so that no rule is restated.
//!
//! A stream has no conversion, so each key value's detections are put to one made-up
//! conversion of the goal at the latest of them, whose window reaches back to the earliest:
//! rule 3 then holds for all of them, rule 5 asks only the detection's own consent, and
//! rule 6's chain runs over the whole stream, as a conversion covering it would see it.

use super::{Conversion, Detection, Goal, Keys, Millis, Text, attribute, rules};
use std::collections::HashMap;

/// What a goal makes of a stream, as indices into it, in no particular order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Creditable {
    /// The detections that pass rules 1–5: not filtered, one of the goal's labels, carrying
    /// the goal's key, confident enough, and with consent when the goal asks for it.
    pub passing: Vec<usize>,
    /// Those of `passing` that rule 6 keeps (the goal's dedup gap).
    pub kept: Vec<usize>,
}

/// The detections of `stream` that `goal` could credit, without and with rule 6. Only live
/// detections are considered: test events never meet live conversions.
pub fn creditable(goal: &Goal, stream: &[Detection]) -> Creditable {
    // Rule 6 groups per key value; so does matching, one session per value.
    let mut sessions: HashMap<&str, Vec<usize>> = HashMap::new();
    for (index, detection) in stream.iter().enumerate() {
        if let Some(value) = rules::key_value(&detection.keys, &goal.key) {
            sessions.entry(value).or_default().push(index);
        }
    }
    let without_dedup = Goal {
        dedup: 0,
        ..goal.clone()
    };
    let mut found = Creditable::default();
    for (value, indices) in sessions {
        let session: Vec<Detection> = indices.iter().map(|&i| stream[i].clone()).collect();
        let (earliest, latest) = session
            .iter()
            .fold((Millis::MAX, Millis::MIN), |(lo, hi), d| {
                (lo.min(d.event_time), hi.max(d.event_time))
            });
        let conversion = Conversion {
            event_id: "".into(),
            event_time: latest,
            name: goal.conversion_name.clone(),
            keys: Keys::from([(goal.key.clone(), Text::from(value))]),
            consent_granted: true,
            is_test: false,
            value: None,
        };
        // A window of at least 1 ms, as a goal's always is.
        let window = latest.saturating_sub(earliest).max(1);
        let covering = |goal: &Goal| Goal {
            window,
            ..goal.clone()
        };
        let original = |credited: Vec<(usize, _)>| credited.into_iter().map(|(i, _)| indices[i]);
        found.passing.extend(original(attribute(
            &covering(&without_dedup),
            &conversion,
            &session,
        )));
        found
            .kept
            .extend(original(attribute(&covering(goal), &conversion, &session)));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn goal(min_confidence: f64, dedup_seconds: i64) -> Goal {
        Goal {
            detection_labels: vec!["barcode".into()],
            conversion_name: "purchase".into(),
            key: "session_token".into(),
            window: 60_000,
            min_confidence,
            dedup: dedup_seconds * 1000,
            requires_consent: true,
        }
    }

    fn seen(id: &str, second: i64, session: &str, entity: &str) -> Detection {
        Detection {
            event_id: id.into(),
            event_time: second * 1000,
            label: "barcode".into(),
            entity_id: entity.into(),
            confidence: 0.9,
            keys: Keys::from([(Text::from("session_token"), Text::from(session))]),
            consent_granted: true,
            filtered: false,
            is_test: false,
            model_version: "v1".into(),
            category: None,
        }
    }

    fn ids(stream: &[Detection], mut indices: Vec<usize>) -> Vec<String> {
        indices.sort_unstable();
        indices
            .into_iter()
            .map(|i| stream[i].event_id.to_string())
            .collect()
    }

    #[test]
    fn the_gap_is_measured_from_the_last_kept_sighting_not_the_last_seen() {
        // 0, 20, 40, 60 s with a 30 s gap: 0 kept, 20 dropped, 40 kept (40 s after 0),
        // 60 dropped (20 s after 40) — a chain, not "30 s after the previous one".
        let stream: Vec<Detection> = [0, 20, 40, 60]
            .iter()
            .map(|&s| seen(&format!("d-{s}"), s, "s-1", "sku-1"))
            .collect();
        let found = creditable(&goal(0.0, 30), &stream);
        assert_eq!(ids(&stream, found.passing).len(), 4);
        assert_eq!(ids(&stream, found.kept), ["d-0", "d-40"]);
    }

    #[test]
    fn sessions_and_entities_are_deduplicated_apart_and_rules_1_to_5_apply() {
        let mut low = seen("low", 1, "s-1", "sku-1");
        low.confidence = 0.2;
        let mut filtered = seen("filtered", 2, "s-1", "sku-1");
        filtered.filtered = true;
        let mut denied = seen("denied", 3, "s-1", "sku-1");
        denied.consent_granted = false;
        let mut face = seen("face", 4, "s-1", "sku-1");
        face.label = "face".into();
        let mut keyless = seen("keyless", 5, "s-1", "sku-1");
        keyless.keys = Keys::from([(Text::from("device_id"), Text::from("cam-1"))]);
        let stream = vec![
            seen("a", 10, "s-1", "sku-1"),
            seen("b", 11, "s-1", "sku-1"),
            seen("c", 12, "s-2", "sku-1"),
            seen("d", 13, "s-1", "sku-2"),
            low,
            filtered,
            denied,
            face,
            keyless,
        ];
        let found = creditable(&goal(0.5, 30), &stream);
        assert_eq!(ids(&stream, found.passing), ["a", "b", "c", "d"]);
        assert_eq!(ids(&stream, found.kept), ["a", "c", "d"]);
    }

    #[test]
    fn a_gap_of_zero_keeps_every_passing_detection() {
        let stream = vec![seen("a", 10, "s-1", "sku-1"), seen("b", 10, "s-1", "sku-1")];
        let found = creditable(&goal(0.0, 0), &stream);
        assert_eq!(ids(&stream, found.kept), ["a", "b"]);
    }
}
