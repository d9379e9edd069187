//! Rules 1–5, checked one detection at a time against one goal and conversion, in explain's
//! order so that the first failure is the verdict.

use super::{Conversion, Detection, Goal, Millis, Text, Verdict};

/// A goal and a conversion, with what every detection is compared to worked out once.
#[derive(Debug)]
pub(super) struct Rules<'a> {
    goal: &'a Goal,
    conversion: &'a Conversion,
    key_value: Option<&'a str>,
    /// Saturating, so that a window reaching before the earliest representable instant
    /// simply has no lower bound.
    window_start: Millis,
}

impl<'a> Rules<'a> {
    pub(super) fn new(goal: &'a Goal, conversion: &'a Conversion) -> Self {
        Rules {
            goal,
            conversion,
            key_value: key_value(&conversion.keys, &goal.key),
            window_start: conversion.event_time.saturating_sub(goal.window),
        }
    }

    pub(super) fn conversion_has_key(&self) -> bool {
        self.key_value.is_some()
    }

    /// Test traffic and live traffic never meet: a detection of the other kind is neither
    /// matched nor explained.
    pub(super) fn considers(&self, detection: &Detection) -> bool {
        detection.is_test == self.conversion.is_test
    }

    /// The first of rules 1–5 that `detection` fails, or `None` when it passes them all.
    pub(super) fn first_failure(&self, detection: &Detection) -> Option<Verdict> {
        let goal = self.goal;
        if detection.filtered {
            return Some(Verdict::Filtered);
        }
        if !goal.detection_labels.contains(&detection.label) {
            return Some(Verdict::LabelNotInGoal);
        }
        // A conversion without the goal's key matches no detection's value, not a missing one.
        match self.key_value {
            Some(wanted) if key_value(&detection.keys, &goal.key) == Some(wanted) => {}
            _ => return Some(Verdict::DifferentKey),
        }
        if detection.event_time > self.conversion.event_time {
            return Some(Verdict::AfterConversion);
        }
        if detection.event_time < self.window_start {
            return Some(Verdict::OutsideWindow);
        }
        // Asked as `>=`, not as "not `<`", so that a NaN confidence fails.
        let confident_enough = detection.confidence >= goal.min_confidence;
        if !confident_enough {
            return Some(Verdict::BelowThreshold);
        }
        if goal.requires_consent && !(detection.consent_granted && self.conversion.consent_granted)
        {
            return Some(Verdict::NoConsent);
        }
        None
    }
}

/// The value of key `name`. A scan, not a binary search: events carry a handful of keys, and
/// a scan stays right even if some producer breaks the sorted-by-name promise.
pub(super) fn key_value<'k>(keys: &'k [(Text, Text)], name: &str) -> Option<&'k str> {
    keys.iter()
        .find(|(key, _)| **key == *name)
        .map(|(_, value)| &**value)
}

/// Whether the two key lists have a (name, value) pair in common.
pub(super) fn shares_a_key(a: &[(Text, Text)], b: &[(Text, Text)]) -> bool {
    a.iter()
        .any(|(name, value)| key_value(b, name) == Some(&**value))
}
