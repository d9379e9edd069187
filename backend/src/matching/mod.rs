//! The pure matching core: which detections of a session earn a conversion for a goal
//! ([`attribute`]), and why each related detection did or did not ([`explain`]).
//!
//! Both entry points go through the same rule checks ([`rules`]) and the same dedup
//! ([`dedup`]), and `explain` derives its credited verdicts from `attribute` itself, so the
//! two can never disagree. Results are functions of the set of detections, not of their order.
//! [`creditable`] asks `attribute` the same question of a stream without a conversion, for
//! the detection quality page.

mod creditable;
mod dedup;
mod rules;
pub mod session;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;

pub use creditable::{Creditable, creditable};
use rules::Rules;
use std::cmp::Ordering;

/// Shared, cheaply cloned text: a session's labels and keys repeat across many events.
pub type Text = std::sync::Arc<str>;

/// An event's own identifier (event id, entity id): held inline up to 23 bytes, so the
/// common short ids cost a resident session no allocation; longer ones are shared like
/// [`Text`].
pub type Id = smol_str::SmolStr;

/// An event's tracking keys, (name, value) sorted by name with unique names. Shared: inside a
/// session every event carries the same single pair, held once.
pub type Keys = std::sync::Arc<[(Text, Text)]>;

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

/// What a tenant counts as a conversion caused by detections.
#[derive(Debug, Clone, PartialEq)]
pub struct Goal {
    pub detection_labels: Vec<Text>,
    pub conversion_name: Text,
    /// The tracking key that must carry the same value on the detection and the conversion.
    pub key: Text,
    /// How far before the conversion a detection may be; > 0.
    pub window: Millis,
    /// In [0, 1].
    pub min_confidence: f64,
    /// The least gap between two credited detections of the same thing; >= 0.
    pub dedup: Millis,
    pub requires_consent: bool,
}

/// A detection event, as matching needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub event_id: Id,
    pub event_time: Millis,
    pub label: Text,
    pub entity_id: Id,
    pub confidence: f64,
    pub keys: Keys,
    pub consent_granted: bool,
    pub filtered: bool,
    pub is_test: bool,
    /// Carried into the attribution rows for reports; no rule reads it.
    pub model_version: Text,
    /// Carried into the attribution rows for reports; no rule reads it.
    pub category: Option<Text>,
}

/// A conversion event, as matching needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversion {
    pub event_id: Id,
    pub event_time: Millis,
    pub name: Text,
    pub keys: Keys,
    pub consent_granted: bool,
    pub is_test: bool,
    /// Carried into the attribution rows for reports; no rule reads it.
    pub value: Option<f64>,
}

/// The share of a conversion a qualifying detection gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Credit {
    /// The latest qualifying detection; at most one per conversion and goal.
    Direct,
    Assisted,
}

impl Credit {
    pub fn as_str(self) -> &'static str {
        match self {
            Credit::Direct => "direct",
            Credit::Assisted => "assisted",
        }
    }
}

/// Explain's answer for one candidate: its credit, or the first rule it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    Direct,
    Assisted,
    LabelNotInGoal,
    DifferentKey,
    AfterConversion,
    OutsideWindow,
    BelowThreshold,
    NoConsent,
    Duplicate,
    Filtered,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Direct => "direct",
            Verdict::Assisted => "assisted",
            Verdict::LabelNotInGoal => "label_not_in_goal",
            Verdict::DifferentKey => "different_key",
            Verdict::AfterConversion => "after_conversion",
            Verdict::OutsideWindow => "outside_window",
            Verdict::BelowThreshold => "below_threshold",
            Verdict::NoConsent => "no_consent",
            Verdict::Duplicate => "duplicate",
            Verdict::Filtered => "filtered",
        }
    }
}

impl From<Credit> for Verdict {
    fn from(credit: Credit) -> Self {
        match credit {
            Credit::Direct => Verdict::Direct,
            Credit::Assisted => Verdict::Assisted,
        }
    }
}

/// The attributions of `conversion` for `goal`: (index into `detections`, credit), sorted by
/// index. Empty when the conversion is unmatched, is not the goal's conversion, or lacks the
/// goal's key.
pub fn attribute(
    goal: &Goal,
    conversion: &Conversion,
    detections: &[Detection],
) -> Vec<(usize, Credit)> {
    if conversion.name != goal.conversion_name {
        return Vec::new();
    }
    let rules = Rules::new(goal, conversion);
    if !rules.conversion_has_key() {
        return Vec::new();
    }
    // One allocation for the whole call: the list starts as rules 1–5's survivors and is
    // narrowed and labelled in place.
    let mut credited: Vec<(usize, Credit)> = detections
        .iter()
        .enumerate()
        .filter(|(_, detection)| {
            rules.considers(detection) && rules.first_failure(detection).is_none()
        })
        .map(|(index, _)| (index, Credit::Assisted))
        .collect();
    dedup::drop_duplicates(&mut credited, detections, goal.dedup);
    credited.sort_unstable_by_key(|&(index, _)| index);
    if let Some(direct) = credited
        .iter_mut()
        .max_by(|(a, _), (b, _)| direct_order(&detections[*a], &detections[*b]))
    {
        direct.1 = Credit::Direct;
    }
    credited
}

/// Explain's candidates and verdicts: (index into `detections`, verdict), sorted by index.
///
/// The candidates are the detections of the conversion's test-ness that share any
/// (key name, key value) pair with it, so that a detection tied to the conversion by another
/// key than the goal's shows up as `DifferentKey` instead of vanishing.
pub fn explain(
    goal: &Goal,
    conversion: &Conversion,
    detections: &[Detection],
) -> Vec<(usize, Verdict)> {
    if conversion.name != goal.conversion_name {
        return Vec::new();
    }
    let credited = attribute(goal, conversion, detections);
    let rules = Rules::new(goal, conversion);
    detections
        .iter()
        .enumerate()
        .filter(|(_, detection)| {
            rules.considers(detection) && rules::shares_a_key(&detection.keys, &conversion.keys)
        })
        .map(|(index, detection)| {
            let verdict = rules.first_failure(detection).unwrap_or_else(|| {
                match credited.binary_search_by_key(&index, |&(credited_index, _)| credited_index) {
                    Ok(position) => credited[position].1.into(),
                    // Passing rules 1–5 without credit leaves only rule 6.
                    Err(_) => Verdict::Duplicate,
                }
            });
            (index, verdict)
        })
        .collect()
}

/// Orders qualifying detections so that the direct one is the greatest: latest, then most
/// confident, then smallest event id.
fn direct_order(a: &Detection, b: &Detection) -> Ordering {
    a.event_time
        .cmp(&b.event_time)
        // As rule 4 compares: -0.0 and 0.0 tie (qualifying confidences are never NaN).
        .then_with(|| {
            a.confidence
                .partial_cmp(&b.confidence)
                .unwrap_or(Ordering::Equal)
        })
        .then_with(|| b.event_id.cmp(&a.event_id))
}
