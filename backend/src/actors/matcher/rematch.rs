//! Re-matching after a write whose outcome is unknown.
//!
//! When the connection breaks while the ingest statement runs, PostgreSQL may have committed
//! it without the answer arriving. Its requests were answered 503, so the client's retry finds
//! the events stored and answers `duplicate`, and duplicates are not matched: without this,
//! those events would wait for the next start's recovery. So, as start-up recovery does,
//! everything received since the oldest such write is matched again once the database
//! answers (matching is idempotent). Until that is done a hold keeps the matching checkpoint
//! behind it, so a crash meanwhile leaves the same work to start-up recovery.
//!
//! Requests during one outage are folded into one scan, from the earliest time asked for.

use super::Matcher;
use super::in_flight::Token;
use super::recovery::{received_since, retrying};
use crate::domain::Timestamp;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The longest wait between two attempts: the events concerned were answered already, and
/// API.md promises their matches within seconds, so the database is asked again often.
const LONGEST_WAIT: Duration = Duration::from_secs(1);

/// The re-match waiting to run, if any.
#[derive(Debug, Default)]
pub(super) struct Rematch {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Re-match from here; the token holds the checkpoint at it.
    from: Option<(Timestamp, Arc<Token>)>,
    /// A task is running that takes `from` when it is set.
    running: bool,
}

impl Rematch {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A time and a flag; a poisoned lock holds nothing half-written worth refusing.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Matcher {
    /// Events received at `since` or later may be stored without having been matched (a
    /// write failed without saying whether it committed): match everything since then again,
    /// in the background, as soon as the database answers.
    pub fn rematch_since(&self, since: Timestamp) {
        let start = {
            let mut state = self.rematch.lock();
            if state.from.as_ref().is_none_or(|(from, _)| since < *from) {
                state.from = Some((since, self.in_flight.hold(since)));
            }
            !std::mem::replace(&mut state.running, true)
        };
        if start {
            tokio::spawn(run(self.clone()));
        }
    }
}

/// Scans until no re-match is waiting.
async fn run(matcher: Matcher) {
    loop {
        let taken = {
            let mut state = matcher.rematch.lock();
            let taken = state.from.take();
            state.running = taken.is_some();
            taken
        };
        let Some((since, hold)) = taken else {
            return;
        };
        let count = retrying("re-match after an interrupted write", LONGEST_WAIT, || {
            received_since(&matcher, since.as_datetime())
        })
        .await;
        drop(hold);
        tracing::info!(
            events = count,
            "re-matched events after an interrupted write"
        );
    }
}
