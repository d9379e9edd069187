//! After an identity's events are erased from storage, matching forgets them and settles what
//! remains, so that nothing brings them back.
//!
//! An erased event can still be on its way through matching: in an ingest request between
//! its commit and its session (or queued in a shard), in a round that loaded it before the
//! delete and writes after it, resident in a session, or in a hot copy. In that order:
//!
//! 1. Wait until every token taken before now is released: every event committed before the
//!    erasure (which is every erased one) has been through its sessions and its round's write
//!    has committed. No work carrying an erased event is left anywhere. (Start-up recovery
//!    holds a token from before its scan to its end, so its pages are covered too.)
//! 2. Purge every session the erased events were part of (each of their key pairs), on the
//!    shard that owns it, once its round in flight is over: out of memory, hot copy deleted
//!    (or made unusable by a new incarnation if Redis fails). From here on, every round loads
//!    those sessions from storage, which no longer holds the events.
//! 3. Delete again the attributions of the erased events: a round in flight during the
//!    erasure may have written some after it; none can be written after step 2.
//! 4. Re-evaluate each purged session for every active goal on its key, through the shards
//!    like a goal change, so the remaining events' attributions are exactly what the matching
//!    semantics give without the erased ones (a conversion whose direct detection was erased
//!    is credited to the next qualifying one).
//!
//! Nothing is added to the ingest hot path: rounds and attribution writes are unchanged.

use super::messages::{Purge, SessionKey};
use super::{Matcher, Work, done_signal};
use crate::auth::TenantScope;
use crate::domain::TenantId;
use crate::matching::Text;
use crate::storage::erasure::{self, ErasedEvents};
use sea_orm::DbErr;
use std::time::Duration;
use tokio::sync::oneshot;

/// How often step 1 looks whether the earlier tokens are released.
const POLL: Duration = Duration::from_millis(2);

/// Runs the steps above in the background (so that a client hanging up cannot cut them
/// short); the receiver resolves when they are done.
pub(super) fn start(
    matcher: Matcher,
    tenant: TenantId,
    erased: ErasedEvents,
) -> oneshot::Receiver<()> {
    let (finished, receiver) = oneshot::channel();
    actix::spawn(async move {
        let sessions: Vec<SessionKey> = erased
            .sessions
            .iter()
            .map(|(name, value)| SessionKey {
                tenant,
                name: Text::from(name.as_str()),
                value: Text::from(value.as_str()),
            })
            .collect();
        let mark = matcher.in_flight.mark();
        while !matcher.in_flight.released_before(mark) {
            tokio::time::sleep(POLL).await;
        }
        purge(&matcher, &sessions).await;
        let mut delay = Duration::from_millis(100);
        while let Err(err) = settle(&matcher, tenant, &erased, &sessions).await {
            tracing::warn!(error = %err, "settling sessions after an erasure failed; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(10));
        }
        let _ = finished.send(());
    });
    receiver
}

/// Step 2: each shard purges the sessions it owns.
async fn purge(matcher: &Matcher, sessions: &[SessionKey]) {
    let shards = &matcher.shards.addresses;
    let mut per_shard: Vec<Vec<SessionKey>> = (0..shards.len()).map(|_| Vec::new()).collect();
    for key in sessions {
        per_shard[matcher.shard_of(key)].push(key.clone());
    }
    let mut answers = Vec::new();
    for (address, sessions) in shards.iter().zip(per_shard) {
        if !sessions.is_empty() {
            let (done, answer) = oneshot::channel();
            address.do_send(Purge { sessions, done });
            answers.push(answer);
        }
    }
    for answer in answers {
        // A shard that stopped (the server is shutting down) holds no session any more,
        // and its copies are not trusted by the next process.
        let _ = answer.await;
    }
}

/// Steps 3 and 4; both may run again after a failure.
async fn settle(
    matcher: &Matcher,
    tenant: TenantId,
    erased: &ErasedEvents,
    sessions: &[SessionKey],
) -> Result<(), DbErr> {
    let scope = TenantScope::authenticated(tenant);
    let late = erasure::delete_attributions_of(&matcher.db, &scope, erased).await?;
    if late > 0 {
        tracing::debug!(
            attributions = late,
            "deleted attributions written during an erasure"
        );
    }
    let goals = matcher.goals.get(&matcher.db, tenant).await?;
    let (done, finished) = done_signal();
    let work: Vec<Work> = sessions
        .iter()
        .flat_map(|session| {
            goals.on_key(&session.name).map(|goal| Work::Reevaluate {
                session: session.clone(),
                goal_id: goal.id,
                done: done.clone(),
            })
        })
        .collect();
    drop(done);
    matcher.route(work);
    let _ = finished.await;
    Ok(())
}
