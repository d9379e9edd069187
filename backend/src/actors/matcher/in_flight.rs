//! Which accepted events are not matched yet, so that the matching checkpoint never passes
//! one of them: after a crash, start-up recovery re-matches everything received since the
//! checkpoint.
//!
//! An ingest request takes its received time and its token together, under one lock, so no
//! checkpoint taken in between can be later than an event that has no token yet. The token is
//! shared by every piece of work made from the request and released when the last is done.

use crate::domain::Timestamp;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Received times of the requests whose events are still being matched.
#[derive(Debug, Default)]
pub struct InFlight {
    /// Received time (ms) → requests holding it.
    open: Mutex<BTreeMap<i64, usize>>,
}

/// Held while a request's events may still need matching; dropping the last clone releases
/// it.
#[derive(Debug)]
pub struct Token {
    tracker: Arc<InFlight>,
    received_millis: i64,
}

impl InFlight {
    /// The received time for a new request, and its token.
    pub fn begin(self: &Arc<Self>) -> (Timestamp, Arc<Token>) {
        let mut open = self.lock();
        let now = Timestamp::now();
        *open.entry(now.as_millis()).or_default() += 1;
        let token = Token {
            tracker: Arc::clone(self),
            received_millis: now.as_millis(),
        };
        (now, Arc::new(token))
    }

    /// A token for work that started at `received` (recovery re-matching old events).
    pub fn hold(self: &Arc<Self>, received: Timestamp) -> Arc<Token> {
        let mut open = self.lock();
        *open.entry(received.as_millis()).or_default() += 1;
        Arc::new(Token {
            tracker: Arc::clone(self),
            received_millis: received.as_millis(),
        })
    }

    /// Every event received before the answer is matched (as far as this process knows).
    pub fn matched_before(&self) -> Timestamp {
        let open = self.lock();
        match open.keys().next() {
            Some(&oldest) => Timestamp::from_millis(oldest).unwrap_or_else(Timestamp::now),
            None => Timestamp::now(),
        }
    }

    /// Requests whose events are not all matched yet.
    #[cfg(test)]
    fn open_requests(&self) -> usize {
        self.lock().values().sum()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<i64, usize>> {
        // Counters only; a poisoned lock holds nothing half-written worth refusing.
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        let mut open = self.tracker.lock();
        if let Some(count) = open.get_mut(&self.received_millis) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.received_millis);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checkpoint_stays_at_the_oldest_open_request_until_it_is_released() {
        let tracker = Arc::new(InFlight::default());
        let (first, first_token) = tracker.begin();
        let (_, second_token) = tracker.begin();
        let shared = Arc::clone(&first_token);
        drop(first_token);
        assert_eq!(tracker.matched_before(), first);
        drop(second_token);
        assert_eq!(tracker.matched_before(), first);
        drop(shared);
        assert!(tracker.matched_before() >= first);
        assert_eq!(tracker.open_requests(), 0);
    }
}
