//! Property tests of the matching core: order independence, one direct credit, explain
//! agreeing with attribute, and the incremental session agreeing with a from-scratch
//! computation whatever the arrival order and batching.

use super::session::{GoalId, Session, SessionEvent, StoredCredits};
use super::{
    Conversion, Credit, Detection, Goal, Id, Keys, Millis, Text, Verdict, attribute, explain,
};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use std::collections::HashSet;

const LABELS: [&str; 3] = ["barcode", "person", "car"];
/// Detections are mostly of one label and one entity, so that dedup groups fill up.
const DETECTION_LABELS: [&str; 4] = ["person", "person", "barcode", "car"];
const ENTITIES: [&str; 4] = ["e1", "e1", "e2", "e3"];
/// 0.5 twice, so that ties in confidence (the direct tie break) are common.
const CONFIDENCES: [f64; 6] = [0.0, 0.3, 0.5, 0.5, 0.9, 1.0];
/// "purchase" three times, so that most conversions are the goals' conversion.
const CONVERSION_NAMES: [&str; 4] = ["purchase", "purchase", "purchase", "lead"];
/// The session key: a session is every event with one value of it.
const SESSION_KEY: &str = "session_token";
/// The one session the incremental properties feed.
const SESSION_VALUE: &str = "s1";
/// Fewer than the id pools, so every event of a case gets its own id. A session case has
/// fewer detections, since its events are settled one batch at a time.
const MAX_DETECTIONS: usize = 20;
const MAX_SESSION_DETECTIONS: usize = 12;
const DETECTION_IDS: usize = 21;
const MAX_CONVERSIONS: usize = 6;
const CONVERSION_IDS: usize = 10;
/// All events fall within a few minutes after this instant.
const BASE: Millis = 1_700_000_000_000;
const SPAN: Millis = 5 * 60_000;

fn text(s: &str) -> Text {
    Text::from(s)
}

/// Mostly a few fixed instants, 30 s apart like the usual windows and gaps, so that equal
/// times and detections exactly on a window or dedup edge are common; otherwise any time.
fn event_time() -> impl Strategy<Value = Millis> {
    prop_oneof![
        4 => select(vec![0, 1, 30_000, 60_000, 60_001, 90_000, 120_000]),
        1 => 0..=SPAN,
    ]
    .prop_map(|offset| BASE + offset)
}

/// Keys sorted by name (device_id < session_token < zone), names unique. Keys the goals use
/// are mostly present with one common value, so that rule 2 mostly passes but not always.
/// With `any_session` the session key may be missing or have another value; without, every
/// event belongs to the one session [`SESSION_VALUE`].
fn keys(any_session: bool) -> impl Strategy<Value = Keys> {
    let session = if any_session {
        proptest::option::weighted(0.9, select(vec!["s1", "s1", "s1", "s1", "s2"])).boxed()
    } else {
        Just(Some(SESSION_VALUE)).boxed()
    };
    (
        proptest::option::weighted(0.9, select(vec!["dev1", "dev1", "dev1", "dev1", "dev2"])),
        session,
        proptest::option::of(select(vec!["a", "b"])),
    )
        .prop_map(|(device, session, zone)| {
            [
                ("device_id", device),
                (SESSION_KEY, session),
                ("zone", zone),
            ]
            .into_iter()
            .filter_map(|(name, value)| value.map(|value| (text(name), text(value))))
            .collect()
        })
}

/// Ids `{prefix}0`, `{prefix}1`, ... in a random order, to hand out one per event. More
/// than ten of them, so that the byte-wise order ("d10" < "d2") plays a part in tie breaks.
fn shuffled_ids(prefix: &'static str, count: usize) -> impl Strategy<Value = Vec<Id>> {
    Just(
        (0..count)
            .map(|n| Id::from(format!("{prefix}{n}")))
            .collect::<Vec<_>>(),
    )
    .prop_shuffle()
}

fn detections(any_session: bool, max: usize) -> impl Strategy<Value = Vec<Detection>> {
    let detection = (
        event_time(),
        select(DETECTION_LABELS.to_vec()),
        select(ENTITIES.to_vec()),
        select(CONFIDENCES.to_vec()),
        keys(any_session),
        prop::bool::weighted(0.75),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.1),
        select(vec!["v1", "v2"]),
        proptest::option::of(select(vec!["retail", "parking"])),
    )
        .prop_map(
            |(
                event_time,
                label,
                entity_id,
                confidence,
                keys,
                consent_granted,
                filtered,
                is_test,
                model_version,
                category,
            )| {
                Detection {
                    event_id: Id::default(),
                    event_time,
                    label: text(label),
                    entity_id: Id::from(entity_id),
                    confidence,
                    keys,
                    consent_granted,
                    filtered,
                    is_test,
                    model_version: text(model_version),
                    category: category.map(text),
                }
            },
        );
    (
        prop::collection::vec(detection, 0..=max),
        shuffled_ids("d", DETECTION_IDS),
    )
        .prop_map(|(mut detections, ids)| {
            for (detection, id) in detections.iter_mut().zip(ids) {
                detection.event_id = id;
            }
            detections
        })
}

fn conversions(
    any_session: bool,
    count: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = Vec<Conversion>> {
    // A minute later on the same grid, so that more detections fall before and within the
    // window, while some still come after.
    let conversion = (
        event_time().prop_map(|time| time + 60_000),
        select(CONVERSION_NAMES.to_vec()),
        keys(any_session),
        prop::bool::weighted(0.75),
        prop::bool::weighted(0.1),
        proptest::option::of(select(vec![0.0, 9.99, 120.0])),
    )
        .prop_map(
            |(event_time, name, keys, consent_granted, is_test, value)| Conversion {
                event_id: Id::default(),
                event_time,
                name: text(name),
                keys,
                consent_granted,
                is_test,
                value,
            },
        );
    (
        prop::collection::vec(conversion, count),
        shuffled_ids("c", CONVERSION_IDS),
    )
        .prop_map(|(mut conversions, ids)| {
            for (conversion, id) in conversions.iter_mut().zip(ids) {
                conversion.event_id = id;
            }
            conversions
        })
}

/// Windows and gaps both on the 30 s grid of [`event_time`] and anywhere.
fn goal(key: impl Strategy<Value = &'static str>) -> impl Strategy<Value = Goal> {
    (
        prop::sample::subsequence(LABELS.to_vec(), 1..=LABELS.len()),
        select(CONVERSION_NAMES.to_vec()),
        key,
        prop_oneof![3 => select(vec![1, 30_000, 60_000, 90_000, 120_000]), 1 => 1..=400_000_i64],
        select(CONFIDENCES.to_vec()),
        prop_oneof![3 => select(vec![0, 1, 30_000, 60_000]), 1 => 0..=120_000_i64],
        prop::bool::weighted(0.3),
    )
        .prop_map(
            |(labels, conversion_name, key, window, min_confidence, dedup, requires_consent)| {
                Goal {
                    detection_labels: labels.into_iter().map(text).collect(),
                    conversion_name: text(conversion_name),
                    key: text(key),
                    window,
                    min_confidence,
                    dedup,
                    requires_consent,
                }
            },
        )
}

/// Where to move a detection to, so that the edges of rule 3 (window start, conversion time)
/// and rule 6 (the dedup gap) are hit in most cases rather than by luck.
#[derive(Debug, Clone)]
enum Anchor {
    /// A conversion's time, nudged by -1, 0 or 1 ms.
    Conversion(Index, Millis),
    /// A conversion's window start for a goal, nudged.
    WindowStart(Index, Index, Millis),
    /// A goal's dedup gap after another detection, nudged, with that detection's label and
    /// entity.
    DedupGap(Index, Index, Millis),
    /// Another detection's time, label and entity, plus a small offset: a repeat sighting.
    Again(Index, Millis),
}

fn anchors() -> impl Strategy<Value = Vec<Option<Anchor>>> {
    let nudge = || select(vec![-1, 0, 0, 1]);
    let anchor = prop_oneof![
        (any::<Index>(), nudge())
            .prop_map(|(conversion, nudge)| Anchor::Conversion(conversion, nudge)),
        (any::<Index>(), any::<Index>(), nudge())
            .prop_map(|(conversion, goal, nudge)| Anchor::WindowStart(conversion, goal, nudge)),
        (any::<Index>(), any::<Index>(), nudge())
            .prop_map(|(detection, goal, nudge)| Anchor::DedupGap(detection, goal, nudge)),
        (
            any::<Index>(),
            select(vec![-10_000, -1, 0, 0, 1, 1_000, 10_000])
        )
            .prop_map(|(detection, offset)| Anchor::Again(detection, offset)),
    ];
    prop::collection::vec(proptest::option::weighted(0.6, anchor), MAX_DETECTIONS)
}

/// Moves the detections to their anchors, in order (a dedup anchor sees the earlier moves).
/// `conversions` and `goals` must not be empty.
fn place(
    detections: &mut [Detection],
    anchors: &[Option<Anchor>],
    conversions: &[Conversion],
    goals: &[Goal],
) {
    for (at, anchor) in anchors.iter().enumerate().take(detections.len()) {
        match anchor {
            None => {}
            Some(Anchor::Conversion(conversion, nudge)) => {
                detections[at].event_time = conversion.get(conversions).event_time + nudge;
            }
            Some(Anchor::WindowStart(conversion, goal, nudge)) => {
                detections[at].event_time =
                    conversion.get(conversions).event_time - goal.get(goals).window + nudge;
            }
            // The same thing seen again: same dedup group.
            Some(Anchor::DedupGap(other, goal, nudge)) => {
                let gap = goal.get(goals).dedup;
                seen_again(detections, at, other, gap + nudge);
            }
            Some(Anchor::Again(other, offset)) => seen_again(detections, at, other, *offset),
        }
    }
}

/// Makes `detections[at]` a sighting of what `other` saw, by the same camera, `offset` ms
/// after it: all but the id, confidence and filtered flag copied, so that the two mostly
/// qualify together (and sometimes a filtered or unsure one sits in the dedup chain).
fn seen_again(detections: &mut [Detection], at: usize, other: &Index, offset: Millis) {
    let mut again = other.get(detections).clone();
    let detection = &detections[at];
    again.event_id = detection.event_id.clone();
    again.event_time += offset;
    again.confidence = detection.confidence;
    again.filtered = detection.filtered;
    detections[at] = again;
}

/// One goal, one conversion and the detections around it, for the pure functions. The goal
/// key is sometimes another key than the session's, and events may lack it or disagree on it.
/// The conversion is mostly the goal's, since another one only ever gets nothing.
fn matching_case() -> impl Strategy<Value = (Goal, Conversion, Vec<Detection>)> {
    (
        goal(select(vec![SESSION_KEY, "device_id"])),
        conversions(true, 1..=1),
        prop::bool::weighted(0.9),
        detections(true, MAX_DETECTIONS),
        anchors(),
    )
        .prop_map(|(goal, conversions, the_goals, mut detections, anchors)| {
            place(
                &mut detections,
                &anchors,
                &conversions,
                std::slice::from_ref(&goal),
            );
            let mut conversion = conversions
                .into_iter()
                .next()
                .expect("exactly one conversion was generated");
            if the_goals {
                conversion.name = goal.conversion_name.clone();
            }
            (goal, conversion, detections)
        })
}

/// The events of one session for the incremental properties.
#[derive(Debug, Clone)]
struct SessionCase {
    goals: Vec<(GoalId, Goal)>,
    detections: Vec<Detection>,
    conversions: Vec<Conversion>,
    /// Every detection and conversion once, in arrival order.
    arrivals: Vec<SessionEvent>,
    /// `cut_after[i]`: the batch ends after `arrivals[i]` (the last batch ends anyway).
    cut_after: Vec<bool>,
}

impl SessionCase {
    fn batches(&self) -> Vec<&[SessionEvent]> {
        let mut batches = Vec::new();
        let mut start = 0;
        for end in 1..=self.arrivals.len() {
            if end == self.arrivals.len() || self.cut_after[end - 1] {
                batches.push(&self.arrivals[start..end]);
                start = end;
            }
        }
        batches
    }
}

/// 1–3 goals on the session key with different labels, windows, thresholds, gaps and
/// consent, all the events of one session in a random order, and random batch boundaries.
fn session_case() -> impl Strategy<Value = SessionCase> {
    (
        prop::collection::vec(goal(Just(SESSION_KEY)), 1..=3),
        detections(false, MAX_SESSION_DETECTIONS),
        conversions(false, 1..=MAX_CONVERSIONS),
        anchors(),
    )
        .prop_flat_map(|(goals, mut detections, conversions, anchors)| {
            place(&mut detections, &anchors, &conversions, &goals);
            let events: Vec<SessionEvent> = detections
                .iter()
                .cloned()
                .map(SessionEvent::Detection)
                .chain(conversions.iter().cloned().map(SessionEvent::Conversion))
                .collect();
            let count = events.len();
            (
                Just(goals),
                Just(detections),
                Just(conversions),
                Just(events).prop_shuffle(),
                prop::collection::vec(prop::bool::weighted(0.4), count),
            )
        })
        .prop_map(
            |(goals, detections, conversions, arrivals, cut_after)| SessionCase {
                goals: goals
                    .into_iter()
                    .enumerate()
                    .map(|(n, goal)| (GoalId::from_u128(n as u128 + 1), goal))
                    .collect(),
                detections,
                conversions,
                arrivals,
                cut_after,
            },
        )
}

/// Attributions by detection event id, for comparisons that ignore detection order.
fn credit_set(detections: &[Detection], credits: &[(usize, Credit)]) -> HashSet<(Id, Credit)> {
    credits
        .iter()
        .map(|&(index, credit)| (detections[index].event_id.clone(), credit))
        .collect()
}

/// What the session's `stored()` should hold for these events: `attribute` over all of
/// them, per goal and conversion, empty results absent.
fn from_scratch(
    goals: &[(GoalId, Goal)],
    conversions: &[Conversion],
    detections: &[Detection],
) -> Vec<((GoalId, Id), StoredCredits)> {
    let mut expected = Vec::new();
    for (goal_id, goal) in goals {
        for conversion in conversions {
            let mut credits: StoredCredits = attribute(goal, conversion, detections)
                .into_iter()
                .map(|(index, credit)| (detections[index].event_id.clone(), credit))
                .collect();
            credits.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            if !credits.is_empty() {
                expected.push(((*goal_id, conversion.event_id.clone()), credits));
            }
        }
    }
    expected.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    expected
}

/// One batch as the session actor handles it: insert every event first, then settle every
/// conversion each event may affect, for every goal.
fn feed(
    session: &mut Session,
    goals: &[(GoalId, Goal)],
    batch: &[SessionEvent],
) -> Result<(), TestCaseError> {
    for event in batch {
        prop_assert!(
            session.insert(event.clone()),
            "event ids are unique within a case"
        );
    }
    for event in batch {
        for (goal_id, goal) in goals {
            for conversion_id in session.affected_by(goal, event) {
                session.settle(*goal_id, Some(goal), &conversion_id);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Attribution is a function of the set of detections: the order they reach `attribute`
    /// in (their storage or arrival order) must not matter, tie breaks included.
    #[test]
    fn any_permutation_of_the_detections_gives_the_same_attributions(
        (goal, conversion, detections, permuted) in matching_case().prop_flat_map(|(goal, conversion, detections)| {
            let permuted = Just(detections.clone()).prop_shuffle();
            (Just(goal), Just(conversion), Just(detections), permuted)
        })
    ) {
        let original = attribute(&goal, &conversion, &detections);
        let reordered = attribute(&goal, &conversion, &permuted);
        prop_assert_eq!(original.len(), reordered.len());
        prop_assert_eq!(credit_set(&detections, &original), credit_set(&permuted, &reordered));
    }

    /// Reports count a conversion once per goal through its direct attribution, so a
    /// matched conversion needs exactly one and an unmatched one none.
    #[test]
    fn a_matched_conversion_has_exactly_one_direct_attribution_per_goal(
        (goal, conversion, detections) in matching_case()
    ) {
        let credits = attribute(&goal, &conversion, &detections);
        let directs = credits.iter().filter(|&&(_, credit)| credit == Credit::Direct).count();
        prop_assert!(directs <= 1, "{} direct attributions: {:?}", directs, credits);
        if !credits.is_empty() {
            prop_assert_eq!(directs, 1, "attributions without a direct one: {:?}", credits);
        }
    }

    /// Explain answers "why did this conversion (not) match?": its credited verdicts must be
    /// exactly what `attribute` credits, and a detection it calls a duplicate got nothing.
    #[test]
    fn explain_agrees_with_attribute_and_duplicates_get_no_credit(
        (goal, conversion, detections) in matching_case()
    ) {
        let credits = attribute(&goal, &conversion, &detections);
        let verdicts = explain(&goal, &conversion, &detections);
        for &(index, verdict) in &verdicts {
            if verdict == Verdict::Duplicate {
                prop_assert!(
                    !credits.iter().any(|&(credited, _)| credited == index),
                    "duplicate {} has credit: {:?}", detections[index].event_id, credits
                );
            }
        }
        let explained_credits: Vec<(usize, Credit)> = verdicts
            .iter()
            .filter_map(|&(index, verdict)| match verdict {
                Verdict::Direct => Some((index, Credit::Direct)),
                Verdict::Assisted => Some((index, Credit::Assisted)),
                _ => None,
            })
            .collect();
        prop_assert_eq!(explained_credits, credits);
    }

    /// The session only re-settles the conversions `affected_by` names; if it ever missed
    /// one, the stored attributions would drift from what the whole set of events earns.
    /// Checked after every batch, not only at the end, since each batch must be reflected
    /// on its own.
    #[test]
    fn incremental_settling_in_any_arrival_order_and_batching_equals_attribution_from_scratch(
        case in session_case()
    ) {
        let mut session = Session::new();
        let mut detections: Vec<Detection> = Vec::new();
        let mut conversions: Vec<Conversion> = Vec::new();
        for batch in case.batches() {
            feed(&mut session, &case.goals, batch)?;
            for event in batch {
                match event {
                    SessionEvent::Detection(d) => detections.push(d.clone()),
                    SessionEvent::Conversion(c) => conversions.push(c.clone()),
                }
            }
            prop_assert_eq!(session.stored(), &from_scratch(&case.goals, &conversions, &detections));
        }
        prop_assert_eq!(session.stored(), &from_scratch(&case.goals, &case.conversions, &case.detections));
    }

    /// A change is a write to storage: settling again with no new event or goal change must
    /// not report one, or every re-settle would rewrite unchanged rows.
    #[test]
    fn settling_again_with_nothing_new_reports_no_change(case in session_case()) {
        let mut session = Session::new();
        for batch in case.batches() {
            feed(&mut session, &case.goals, batch)?;
        }
        for (goal_id, goal) in &case.goals {
            for conversion in &case.conversions {
                let again = session.settle(*goal_id, Some(goal), &conversion.event_id);
                prop_assert!(again.is_none(), "spurious change: {:?}", again);
            }
            let whole_goal = session.settle_goal(*goal_id, Some(goal));
            prop_assert!(whole_goal.is_empty(), "spurious changes: {:?}", whole_goal);
        }
    }
}
