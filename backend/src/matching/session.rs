//! One session's events and the attributions they have earned, kept current one event at a
//! time. Still pure: the actor that owns the session loads it, feeds it events and writes the
//! [`Change`]s it returns.
//!
//! A session is every event carrying one (key name, key value) pair. Only goals on that key
//! name are settled here: a conversion's attributions for a goal depend on the detections of
//! exactly one session, the one of the goal's key, which is why per-session serialisation is
//! enough for correctness.

use super::{Conversion, Credit, Detection, Goal, Id, Millis, attribute};

/// A goal's identity.
pub type GoalId = uuid::Uuid;

/// An event entering a session.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    Detection(Detection),
    Conversion(Conversion),
}

impl SessionEvent {
    pub fn event_id(&self) -> &Id {
        match self {
            SessionEvent::Detection(d) => &d.event_id,
            SessionEvent::Conversion(c) => &c.event_id,
        }
    }

    pub fn event_time(&self) -> Millis {
        match self {
            SessionEvent::Detection(d) => d.event_time,
            SessionEvent::Conversion(c) => c.event_time,
        }
    }
}

/// A conversion whose attributions for a goal are now different from what was stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub goal_id: GoalId,
    pub conversion: Conversion,
    /// The whole new set, sorted by detection event id; empty when nothing qualifies any more.
    pub credits: Vec<(Detection, Credit)>,
    /// Whether storage held a set for this conversion and goal before: only then is there
    /// anything to delete.
    pub replaces_stored: bool,
}

/// Credits as stored: (detection event id, credit), sorted by event id.
pub type StoredCredits = Vec<(Id, Credit)>;

/// The events of one (key name, key value) and the attributions last written for them.
#[derive(Debug, Default)]
pub struct Session {
    /// Sorted by (event_time, event_id), so a window is a slice.
    detections: Vec<Detection>,
    /// Sorted by (event_time, event_id).
    conversions: Vec<Conversion>,
    /// What storage holds, per (goal, conversion event id), sorted by that pair; absent
    /// means no attributions. A sorted vector, not a hash map: most sessions hold one or two
    /// entries, and an empty one costs nothing.
    stored: Vec<((GoalId, Id), StoredCredits)>,
}

impl Session {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an event; false (and no change) when the session already has it.
    ///
    /// An event id is stored once per tenant and type, with one event time, so the sorted
    /// position (event_time, event_id) is also the identity: no separate id index is needed.
    pub fn insert(&mut self, event: SessionEvent) -> bool {
        match event {
            SessionEvent::Detection(d) => {
                match self.detections.binary_search_by(|x| {
                    (x.event_time, &x.event_id).cmp(&(d.event_time, &d.event_id))
                }) {
                    Ok(_) => return false,
                    Err(at) => self.detections.insert(at, d),
                }
            }
            SessionEvent::Conversion(c) => {
                match self.conversions.binary_search_by(|x| {
                    (x.event_time, &x.event_id).cmp(&(c.event_time, &c.event_id))
                }) {
                    Ok(_) => return false,
                    Err(at) => self.conversions.insert(at, c),
                }
            }
        }
        true
    }

    /// Records what storage holds for a conversion and goal (when the session is loaded).
    pub fn set_stored(
        &mut self,
        goal_id: GoalId,
        conversion_event_id: Id,
        mut credits: StoredCredits,
    ) {
        credits.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let slot = (goal_id, conversion_event_id);
        match (self.find_stored(&slot), credits.is_empty()) {
            (Ok(at), true) => {
                self.stored.remove(at);
            }
            (Ok(at), false) => self.stored[at].1 = credits,
            (Err(_), true) => {}
            (Err(at), false) => self.stored.insert(at, (slot, credits)),
        }
    }

    /// The conversions (by event id) whose attributions for `goal` the event can change: a
    /// conversion changes only itself; a detection changes the goal's conversions whose
    /// window holds it. Coarse on purpose (rules 4 and 5 are left to [`attribute`]): a
    /// conversion settled needlessly yields no change, one missed would be a wrong result.
    pub fn affected_by(&self, goal: &Goal, event: &SessionEvent) -> Vec<Id> {
        match event {
            SessionEvent::Conversion(c) => {
                if c.name == goal.conversion_name {
                    vec![c.event_id.clone()]
                } else {
                    Vec::new()
                }
            }
            SessionEvent::Detection(d) => {
                if !goal.detection_labels.contains(&d.label) {
                    return Vec::new();
                }
                let from = self
                    .conversions
                    .partition_point(|c| c.event_time < d.event_time);
                let until = d.event_time.saturating_add(goal.window);
                self.conversions[from..]
                    .iter()
                    .take_while(|c| c.event_time <= until)
                    .filter(|c| c.name == goal.conversion_name && c.is_test == d.is_test)
                    .map(|c| c.event_id.clone())
                    .collect()
            }
        }
    }

    /// Brings one conversion's stored attributions for `goal_id` up to date. `goal` is the
    /// goal's current definition, `None` when it is deleted or inactive (then nothing is
    /// attributed). Returns the change to write, if any.
    pub fn settle(
        &mut self,
        goal_id: GoalId,
        goal: Option<&Goal>,
        conversion_event_id: &Id,
    ) -> Option<Change> {
        let conversion = self
            .conversions
            .iter()
            .find(|c| &c.event_id == conversion_event_id)?;
        let credits: Vec<(Detection, Credit)> = match goal {
            None => Vec::new(),
            Some(goal) => {
                let window = self.window(goal, conversion);
                let mut credits: Vec<(Detection, Credit)> = attribute(goal, conversion, window)
                    .into_iter()
                    .map(|(index, credit)| (window[index].clone(), credit))
                    .collect();
                credits.sort_unstable_by(|a, b| a.0.event_id.cmp(&b.0.event_id));
                credits
            }
        };
        let wanted: StoredCredits = credits
            .iter()
            .map(|(d, credit)| (d.event_id.clone(), *credit))
            .collect();
        let slot = (goal_id, conversion_event_id.clone());
        let stored = self.find_stored(&slot).ok().map(|at| &self.stored[at].1);
        let unchanged = match stored {
            Some(stored) => *stored == wanted,
            None => wanted.is_empty(),
        };
        if unchanged {
            return None;
        }
        let change = Change {
            goal_id,
            conversion: conversion.clone(),
            credits,
            replaces_stored: stored.is_some(),
        };
        self.set_stored(goal_id, conversion_event_id.clone(), wanted);
        Some(change)
    }

    fn find_stored(&self, slot: &(GoalId, Id)) -> Result<usize, usize> {
        self.stored.binary_search_by(|(stored, _)| stored.cmp(slot))
    }

    /// Settles every conversion of the session for one goal (after the goal changed).
    pub fn settle_goal(&mut self, goal_id: GoalId, goal: Option<&Goal>) -> Vec<Change> {
        let ids: Vec<Id> = self
            .conversions
            .iter()
            .map(|c| c.event_id.clone())
            .collect();
        ids.iter()
            .filter_map(|id| self.settle(goal_id, goal, id))
            .collect()
    }

    /// The detections that can qualify for `conversion` under `goal`: those inside its window.
    fn window(&self, goal: &Goal, conversion: &Conversion) -> &[Detection] {
        let start = conversion.event_time.saturating_sub(goal.window);
        let from = self.detections.partition_point(|d| d.event_time < start);
        let until = self
            .detections
            .partition_point(|d| d.event_time <= conversion.event_time);
        &self.detections[from..until.max(from)]
    }

    /// Drops the detections older than `detections_cutoff` and the conversions older than
    /// `conversions_cutoff` (and what is stored for those conversions): past the horizon no
    /// event still accepted can change their attributions or need them, and past their
    /// retention period they count as deleted.
    pub fn forget_before(&mut self, detections_cutoff: Millis, conversions_cutoff: Millis) {
        let old_detections = self
            .detections
            .partition_point(|d| d.event_time < detections_cutoff);
        self.detections.drain(..old_detections);
        let old_conversions = self
            .conversions
            .partition_point(|c| c.event_time < conversions_cutoff);
        for c in self.conversions.drain(..old_conversions) {
            self.stored.retain(|((_, id), _)| *id != c.event_id);
        }
    }

    /// Forgets what is stored for a goal (its rows were deleted when it changed).
    pub fn forget_goal(&mut self, goal_id: GoalId) {
        self.stored.retain(|((goal, _), _)| *goal != goal_id);
    }

    /// Whether the session holds no event.
    pub fn is_empty(&self) -> bool {
        self.detections.is_empty() && self.conversions.is_empty()
    }

    /// An estimate of the bytes the session holds, for the memory budget: its vectors (at
    /// capacity), the ids too long to be held inline, and what is stored. Shared text
    /// (interned labels and names, the keys, which inside a session are its own pair) is not
    /// counted.
    pub fn approx_bytes(&self) -> usize {
        use std::mem::size_of;
        let detections: usize = self
            .detections
            .iter()
            .map(|d| id_bytes(&d.event_id) + id_bytes(&d.entity_id))
            .sum();
        let conversions: usize = self.conversions.iter().map(|c| id_bytes(&c.event_id)).sum();
        let stored: usize = self.stored.capacity() * size_of::<((GoalId, Id), StoredCredits)>()
            + self
                .stored
                .iter()
                .map(|(_, credits)| credits.capacity() * size_of::<(Id, Credit)>())
                .sum::<usize>();
        size_of::<Self>()
            + self.detections.capacity() * size_of::<Detection>()
            + self.conversions.capacity() * size_of::<Conversion>()
            + detections
            + conversions
            + stored
    }

    /// The stored attributions, sorted by (goal, conversion event id).
    pub fn stored(&self) -> &[((GoalId, Id), StoredCredits)] {
        &self.stored
    }

    pub fn conversions(&self) -> &[Conversion] {
        &self.conversions
    }

    pub fn detections(&self) -> &[Detection] {
        &self.detections
    }
}

/// What an id allocates: nothing when inline; else an `Arc<str>` (two counters and the
/// bytes), rounded up to the allocator's 16-byte chunks with its 8-byte header.
fn id_bytes(id: &Id) -> usize {
    if id.is_heap_allocated() {
        (16 + id.len() + 8).div_ceil(16) * 16
    } else {
        0
    }
}
