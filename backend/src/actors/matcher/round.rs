//! The in-memory half of a shard's round: each piece of work fed to its resident session,
//! and the changes that result, kept per conversion. No I/O, so that the benchmark
//! (`sightline-bench -- matching --only core`) times this very code.

use super::goal_cache::{ActiveGoal, TenantGoals};
use super::messages::SessionKey;
use super::store::SessionStore;
use crate::domain::TenantId;
use crate::matching::session::{Change, GoalId, SessionEvent};
use crate::matching::{Id, Millis};
use foldhash::{HashMap, HashMapExt};
use std::sync::Arc;
use std::time::Instant;

/// What one piece of work asks of its session.
#[derive(Debug, Clone, Copy)]
pub enum Piece<'a> {
    /// Add the event and settle what it affects.
    Event(&'a SessionEvent),
    /// Settle every conversion of the session for this goal again.
    Reevaluate(GoalId),
}

/// A round's outcome in memory.
#[derive(Debug, Default)]
pub struct Applied {
    /// The changes to write, per tenant: the last one per (goal, conversion).
    pub changes: Vec<(TenantId, Vec<Change>)>,
    /// The sessions the round used, whose stored attributions now run ahead of storage until
    /// the write commits.
    pub touched: Vec<SessionKey>,
    /// Conversions settled for a goal because of an event: the matches (for the benchmark).
    pub settles: u64,
}

/// Feeds `pieces` to their sessions in order. A piece whose session is not resident is
/// skipped: no active goal uses its key (the shard loads every other one first, and reloads
/// those last used under another goal fingerprint), so nothing settles there, and a later
/// load reads the event from storage.
pub fn apply<'a>(
    store: &mut SessionStore,
    pieces: impl IntoIterator<Item = (&'a SessionKey, Piece<'a>)>,
    goals: &std::collections::HashMap<TenantId, Arc<TenantGoals>>,
    now: Instant,
    now_millis: Millis,
) -> Applied {
    store.begin_round();
    let mut applied = Applied::default();
    let mut changes: HashMap<(TenantId, GoalId, Id), Change> = HashMap::new();
    for (key, piece) in pieces {
        let Some(tenant_goals) = goals.get(&key.tenant) else {
            continue;
        };
        // Most events also carry keys no goal uses (a camera's id beside the session
        // token): nothing settles there, so they go by without a lookup. A session of such a
        // key left resident from when a goal used it misses them, but it was last used under
        // another goal fingerprint, so the shard reloads it before any goal uses it again.
        if matches!(piece, Piece::Event(_)) && !tenant_goals.uses_key(&key.name) {
            continue;
        }
        let event = match piece {
            Piece::Event(event) => Some(event),
            Piece::Reevaluate(_) => None,
        };
        let Some(entered) = store.enter(key, event, now, tenant_goals.fingerprint) else {
            continue;
        };
        if entered.first_in_round {
            applied.touched.push(key.clone());
        }
        let session = entered.session;
        // Outside the horizon nothing accepted can change; past its retention period an
        // event counts as deleted even before the purge has removed its row, so a resident
        // session and one rebuilt from storage see the same events (see `actors::purge`).
        let horizon = now_millis.saturating_sub(tenant_goals.horizon);
        session.forget_before(
            horizon.max(now_millis.saturating_sub(tenant_goals.detections_kept)),
            horizon.max(now_millis.saturating_sub(tenant_goals.conversions_kept)),
        );
        let mut record = |mut change: Change| {
            let slot = (
                key.tenant,
                change.goal_id,
                change.conversion.event_id.clone(),
            );
            // Storage still holds what the round's first change saw.
            if let Some(earlier) = changes.get(&slot) {
                change.replaces_stored |= earlier.replaces_stored;
            }
            changes.insert(slot, change);
        };
        match (piece, entered.event) {
            (Piece::Event(_), Some(event)) => {
                // What the event affects does not depend on the event being in the session
                // yet, so it is worked out first and the event moved in, not cloned.
                let affected: Vec<(&ActiveGoal, Id)> = tenant_goals
                    .on_key(&key.name)
                    .flat_map(|active| {
                        session
                            .affected_by(&active.goal, &event)
                            .into_iter()
                            .map(move |conversion| (active, conversion))
                    })
                    .collect();
                // Settled even when already present: a load may have read the event before
                // its own work arrived.
                session.insert(event);
                for (active, conversion) in affected {
                    applied.settles += 1;
                    if let Some(change) = session.settle(active.id, Some(&active.goal), &conversion)
                    {
                        record(change);
                    }
                }
            }
            (Piece::Event(_), None) => {}
            (Piece::Reevaluate(goal_id), _) => {
                let goal = tenant_goals
                    .active(goal_id)
                    .filter(|g| *g.goal.key == *key.name)
                    .map(|g| &g.goal);
                for change in session.settle_goal(goal_id, goal) {
                    record(change);
                }
            }
        }
    }

    let mut by_tenant: HashMap<TenantId, Vec<Change>> = HashMap::new();
    for ((tenant, _, _), change) in changes {
        by_tenant.entry(tenant).or_default().push(change);
    }
    applied.changes = by_tenant.into_iter().collect();
    applied
}
