//! Rule 6: repeated sightings of the same thing count once per dedup gap.

use super::{Credit, Detection, Millis};
use std::cmp::Ordering;

/// Keeps, out of `passing` (the detections that pass rules 1–5), the ones rule 6 keeps; the
/// survivors are left in group-then-time order.
///
/// Groups are per (label, entity_id, key value), but every detection that passed rule 2 has
/// the conversion's value for the goal's key, so (label, entity_id) tells the groups apart.
/// The gap is measured from the last KEPT detection, not the last seen one, so that a steady
/// stream of sightings closer than the gap still earns one credit per gap.
pub(super) fn drop_duplicates(
    passing: &mut Vec<(usize, Credit)>,
    detections: &[Detection],
    gap: Millis,
) {
    passing.sort_unstable_by(|&(a, _), &(b, _)| group_then_time(&detections[a], &detections[b]));
    let mut last_kept: Option<&Detection> = None;
    passing.retain(|&(index, _)| {
        let detection = &detections[index];
        let duplicate = last_kept.is_some_and(|kept| {
            same_group(kept, detection)
                // Sorted, so the difference is never negative; saturating keeps absurd
                // timestamps from overflowing.
                && detection.event_time.saturating_sub(kept.event_time) < gap
        });
        if !duplicate {
            last_kept = Some(detection);
        }
        !duplicate
    });
}

fn same_group(a: &Detection, b: &Detection) -> bool {
    a.label == b.label && a.entity_id == b.entity_id
}

/// Ties in time go to the smaller event id, compared byte-wise (as `str` orders), so the
/// outcome does not depend on input order.
fn group_then_time(a: &Detection, b: &Detection) -> Ordering {
    a.label
        .cmp(&b.label)
        .then_with(|| a.entity_id.cmp(&b.entity_id))
        .then_with(|| a.event_time.cmp(&b.event_time))
        .then_with(|| a.event_id.cmp(&b.event_id))
}
