//! The reference implementation of API.md's matching rules: plain loops, obviously the
//! text, not fast.

use super::rng::Rng;
use super::scenario::{Conversion, Detection, Goal, Head, Scenario, scenario};
use std::collections::{BTreeMap, BTreeSet};

/// Why a detection is or is not credited, in the order API.md's rules are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    OtherTestness,
    Filtered,
    LabelNotInGoal,
    DifferentKey,
    AfterConversion,
    OutsideWindow,
    BelowThreshold,
    NoConsent,
    Duplicate,
    Assisted,
    Direct,
}

impl Verdict {
    /// The verdict as explain names it; `-` where explain lists no candidate.
    pub fn api_name(self) -> &'static str {
        match self {
            Self::OtherTestness => "-",
            Self::Filtered => "filtered",
            Self::LabelNotInGoal => "label_not_in_goal",
            Self::DifferentKey => "different_key",
            Self::AfterConversion => "after_conversion",
            Self::OutsideWindow => "outside_window",
            Self::BelowThreshold => "below_threshold",
            Self::NoConsent => "no_consent",
            Self::Duplicate => "duplicate",
            Self::Assisted => "assisted",
            Self::Direct => "direct",
        }
    }
}

/// Whether two events share at least one (key name, key value) pair: explain's candidates.
pub fn related(a: &Head, b: &Head) -> bool {
    a.keys
        .iter()
        .any(|(name, value)| b.keys.get(name) == Some(value))
}

/// The verdict on every detection (in `detections` order) for `goal` and `conversion`;
/// `None` when the goal does not apply to the conversion at all. Plain loops on purpose:
/// this must be obviously API.md, not fast.
pub fn judge(
    goal: &Goal,
    conversion: &Conversion,
    detections: &[Detection],
) -> Option<Vec<Verdict>> {
    if conversion.name != goal.conversion_name {
        return None;
    }
    let value = conversion.head.keys.get(goal.key)?;
    let c = &conversion.head;
    let window = goal.window_seconds * 1000;
    let mut verdicts = Vec::with_capacity(detections.len());
    // Rules 1-5, and "test events match only test events".
    let mut passing: Vec<usize> = Vec::new();
    for (index, detection) in detections.iter().enumerate() {
        let d = &detection.head;
        let verdict = if d.test != c.test {
            Verdict::OtherTestness
        } else if detection.filtered {
            Verdict::Filtered
        } else if !goal.labels.contains(&detection.label) {
            Verdict::LabelNotInGoal
        } else if d.keys.get(goal.key) != Some(value) {
            Verdict::DifferentKey
        } else if d.time > c.time {
            Verdict::AfterConversion
        } else if d.time < c.time - window {
            Verdict::OutsideWindow
        } else if detection.confidence < goal.min_confidence {
            Verdict::BelowThreshold
        } else if goal.requires_consent
            && !(d.consent.effective_granted() && c.consent.effective_granted())
        {
            Verdict::NoConsent
        } else {
            passing.push(index);
            Verdict::Assisted
        };
        verdicts.push(verdict);
    }

    // Rule 6: per (label, entity_id, key value) in (event_time, event_id) order, keep the
    // first and then each one at least dedup_seconds after the last kept one. The key value
    // is the conversion's for every passing detection, so (label, entity_id) groups.
    passing.sort_by(|&a, &b| {
        let (a, b) = (&detections[a].head, &detections[b].head);
        (a.time, a.event_id.as_bytes()).cmp(&(b.time, b.event_id.as_bytes()))
    });
    let mut last_kept: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    let mut qualifying: Vec<usize> = Vec::new();
    for index in passing {
        let detection = &detections[index];
        let group = (detection.label, detection.entity_id);
        let keep = match last_kept.get(&group) {
            None => true,
            Some(&kept) => detection.head.time - kept >= goal.dedup_seconds * 1000,
        };
        if keep {
            last_kept.insert(group, detection.head.time);
            qualifying.push(index);
        } else {
            verdicts[index] = Verdict::Duplicate;
        }
    }

    // Direct: the latest; ties by higher confidence, then by the smaller event_id.
    let mut direct: Option<usize> = None;
    for index in qualifying {
        direct = match direct {
            Some(best) if !beats(&detections[index], &detections[best]) => Some(best),
            _ => Some(index),
        };
    }
    if let Some(index) = direct {
        verdicts[index] = Verdict::Direct;
    }
    Some(verdicts)
}

/// Whether `a` takes the direct attribution from `b`.
fn beats(a: &Detection, b: &Detection) -> bool {
    if a.head.time != b.head.time {
        return a.head.time > b.head.time;
    }
    match a.confidence.total_cmp(&b.confidence) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => a.head.event_id.as_bytes() < b.head.event_id.as_bytes(),
    }
}

/// (goal index, conversion event id, detection event id, kind)
pub type Credit = (usize, String, String, String);

/// Every attribution the reference expects.
pub fn reference(scenario: &Scenario) -> BTreeSet<Credit> {
    let mut credits = BTreeSet::new();
    for (goal_index, goal) in scenario.goals.iter().enumerate() {
        for conversion in &scenario.conversions {
            let Some(verdicts) = judge(goal, conversion, &scenario.detections) else {
                continue;
            };
            for (detection, verdict) in scenario.detections.iter().zip(verdicts) {
                let kind = match verdict {
                    Verdict::Direct => "direct",
                    Verdict::Assisted => "assisted",
                    _ => continue,
                };
                credits.insert((
                    goal_index,
                    conversion.head.event_id.clone(),
                    detection.head.event_id.clone(),
                    kind.to_owned(),
                ));
            }
        }
    }
    credits
}

/// How many times each verdict occurs, and how often a credit is decided on an edge, to
/// show (and require) that the scenario exercises the rules and not only the easy path.
pub fn verdict_counts(scenario: &Scenario) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    let mut count = |what: &str| *counts.entry(what.to_owned()).or_insert(0) += 1;
    for goal in &scenario.goals {
        for conversion in &scenario.conversions {
            let verdicts = judge(goal, conversion, &scenario.detections).unwrap_or_default();
            let credited: Vec<(&Detection, Verdict)> = scenario
                .detections
                .iter()
                .zip(verdicts.iter().copied())
                .filter(|(_, v)| matches!(v, Verdict::Direct | Verdict::Assisted))
                .collect();
            let direct_at = credited
                .iter()
                .find(|(_, v)| *v == Verdict::Direct)
                .map(|(d, _)| (d.head.time, d.confidence));
            for (detection, verdict) in scenario.detections.iter().zip(&verdicts) {
                if related(&detection.head, &conversion.head) {
                    count(match verdict {
                        Verdict::OtherTestness => "test_ness_differs",
                        other => other.api_name(),
                    });
                }
            }
            for (detection, verdict) in &credited {
                let time = detection.head.time;
                if *verdict == Verdict::Assisted && Some(time) == direct_at.map(|(t, _)| t) {
                    count("assisted at the direct one's time");
                    if Some(detection.confidence) == direct_at.map(|(_, c)| c) {
                        count("assisted at the direct one's time and confidence");
                    }
                }
                if time == conversion.head.time - goal.window_seconds * 1000 {
                    count("credited on the window's lower edge");
                }
                if time == conversion.head.time {
                    count("credited at the conversion's time");
                }
            }
        }
    }
    counts
}

/// What a scenario must exercise to prove much: enough credits, and the edge rules.
const AT_LEAST: [(&str, usize); 8] = [
    ("direct", 50),
    ("assisted", 50),
    ("duplicate", 10),
    ("outside_window", 10),
    ("below_threshold", 10),
    ("no_consent", 5),
    ("assisted at the direct one's time and confidence", 1),
    ("credited on the window's lower edge", 3),
];

/// A random scenario of about `target_events` events that meets [`AT_LEAST`]: drawn again
/// from the same generator until one does, so a seed still replays the same scenario.
pub fn useful_scenario(rng: &mut Rng, seed: u64, target_events: usize) -> Scenario {
    for _ in 0..50 {
        let candidate = scenario(rng, seed, target_events);
        let counts = verdict_counts(&candidate);
        if AT_LEAST
            .iter()
            .all(|(what, least)| counts.get(*what).copied().unwrap_or(0) >= *least)
        {
            return candidate;
        }
    }
    panic!("seed {seed}: 50 scenarios of {target_events} events and none exercises the rules");
}
