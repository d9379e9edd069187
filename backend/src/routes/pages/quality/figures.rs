//! The quality page's figures, counted from a range's detections (pure): per (label, model
//! version) the volume and confidence, and per goal the share under its threshold and what
//! its dedup rule leaves. Which detections a goal could credit is the matching core's
//! answer ([`matching::creditable`]), never worked out here.

use crate::matching::{self, Detection, Goal, Text};
use std::collections::BTreeMap;

/// (label, model version), in byte order.
type RowKey = (Text, Text);

/// One (label, model version) of the range.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelFigures {
    pub detections: usize,
    pub filtered: usize,
    pub confidence_sum: f64,
}

impl LabelFigures {
    pub fn average_confidence(&self) -> f64 {
        if self.detections == 0 {
            return 0.0;
        }
        self.confidence_sum / self.detections as f64
    }
}

/// One (label, model version) of a goal's labels, as the goal sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoalFigures {
    pub detections: usize,
    pub below_threshold: usize,
    /// Pass rules 1–5.
    pub passing: usize,
    /// Of `passing`, kept by rule 6.
    pub kept: usize,
}

/// Every (label, model version) of `stream`.
pub fn per_label(stream: &[Detection]) -> BTreeMap<RowKey, LabelFigures> {
    let mut rows: BTreeMap<RowKey, LabelFigures> = BTreeMap::new();
    for detection in stream {
        let row = rows.entry(key(detection)).or_default();
        row.detections += 1;
        row.filtered += usize::from(detection.filtered);
        row.confidence_sum += detection.confidence;
    }
    rows
}

/// The (label, model version)s of `goal`'s labels in `stream`.
pub fn per_goal(goal: &Goal, stream: &[Detection]) -> BTreeMap<RowKey, GoalFigures> {
    // Other labels can never pass rule 1: leaving them out spares the core the work.
    let own: Vec<Detection> = stream
        .iter()
        .filter(|d| goal.detection_labels.contains(&d.label))
        .cloned()
        .collect();
    let mut rows: BTreeMap<RowKey, GoalFigures> = BTreeMap::new();
    for detection in &own {
        let row = rows.entry(key(detection)).or_default();
        row.detections += 1;
        // As rule 4 compares (`>=` passes).
        row.below_threshold += usize::from(detection.confidence < goal.min_confidence);
    }
    let creditable = matching::creditable(goal, &own);
    for index in creditable.passing {
        if let Some(row) = rows.get_mut(&key(&own[index])) {
            row.passing += 1;
        }
    }
    for index in creditable.kept {
        if let Some(row) = rows.get_mut(&key(&own[index])) {
            row.kept += 1;
        }
    }
    rows
}

fn key(detection: &Detection) -> RowKey {
    (detection.label.clone(), detection.model_version.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::Keys;

    fn seen(id: &str, second: i64, label: &str, version: &str, confidence: f64) -> Detection {
        Detection {
            event_id: id.into(),
            event_time: second * 1000,
            label: label.into(),
            entity_id: "sku-1".into(),
            confidence,
            keys: Keys::from([(Text::from("session_token"), Text::from("s-1"))]),
            consent_granted: true,
            filtered: false,
            is_test: false,
            model_version: version.into(),
            category: None,
        }
    }

    fn goal() -> Goal {
        Goal {
            detection_labels: vec!["barcode".into()],
            conversion_name: "purchase".into(),
            key: "session_token".into(),
            window: 3_600_000,
            min_confidence: 0.6,
            dedup: 30_000,
            requires_consent: false,
        }
    }

    fn row<'a, T>(rows: &'a BTreeMap<RowKey, T>, label: &str, version: &str) -> &'a T {
        rows.get(&(Text::from(label), Text::from(version)))
            .unwrap_or_else(|| panic!("no {label} {version} row"))
    }

    #[test]
    fn labels_and_versions_are_counted_with_their_mean_confidence() {
        let mut dropped = seen("d-3", 2, "barcode", "v2", 0.2);
        dropped.filtered = true;
        let stream = [
            seen("d-1", 0, "barcode", "v2", 0.9),
            seen("d-2", 1, "barcode", "v2", 0.7),
            dropped,
            seen("d-4", 3, "face", "v2", 0.5),
        ];
        let rows = per_label(&stream);
        assert_eq!(rows.len(), 2);
        let barcode = row(&rows, "barcode", "v2");
        assert_eq!((barcode.detections, barcode.filtered), (3, 1));
        assert!((barcode.average_confidence() - 0.6).abs() < 1e-9);
    }

    #[test]
    fn a_goal_counts_its_labels_under_threshold_and_after_its_dedup_chain() {
        // v3 sees the same barcode at 0, 20, 40 and 60 s: rule 6 keeps 0 and 40. One
        // sighting at exactly the threshold passes; one under it is counted under.
        let stream = [
            seen("a", 0, "barcode", "v3", 0.9),
            seen("b", 20, "barcode", "v3", 0.9),
            seen("c", 40, "barcode", "v3", 0.6),
            seen("d", 60, "barcode", "v3", 0.9),
            seen("low", 45, "barcode", "v2", 0.59),
            seen("face", 5, "face", "v3", 0.1),
        ];
        let rows = per_goal(&goal(), &stream);
        assert_eq!(rows.len(), 2, "only the goal's label");
        assert_eq!(
            row(&rows, "barcode", "v3"),
            &GoalFigures {
                detections: 4,
                below_threshold: 0,
                passing: 4,
                kept: 2
            }
        );
        assert_eq!(
            row(&rows, "barcode", "v2"),
            &GoalFigures {
                detections: 1,
                below_threshold: 1,
                passing: 0,
                kept: 0
            },
            "a detection under the threshold is not a kept sighting that others dedup against"
        );
    }
}
