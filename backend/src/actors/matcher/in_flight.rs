//! Which accepted events are not matched yet, so that the matching checkpoint never passes
//! one of them: after a crash, start-up recovery re-matches everything received since the
//! checkpoint.
//!
//! An ingest request takes its received time and its token together, under one lock, so no
//! checkpoint taken in between can be later than an event that has no token yet. The token is
//! shared by every piece of work made from the request and released when the last is done.
//!
//! Tokens are also numbered in the order they are taken, so that an erasure can wait until
//! every event committed before it has been through its sessions (see `erasure`).

use crate::domain::Timestamp;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

/// Received times of the requests whose events are still being matched.
#[derive(Debug, Default)]
pub struct InFlight {
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    /// Received time (ms) → requests holding it.
    by_time: BTreeMap<i64, usize>,
    /// The numbers of the tokens not yet released.
    numbers: BTreeSet<u64>,
    /// The number the next token gets.
    next: u64,
}

impl Open {
    fn open(&mut self, received_millis: i64) -> u64 {
        *self.by_time.entry(received_millis).or_default() += 1;
        let number = self.next;
        self.next += 1;
        self.numbers.insert(number);
        number
    }
}

/// Held while a request's events may still need matching; dropping the last clone releases
/// it.
#[derive(Debug)]
pub struct Token {
    tracker: Arc<InFlight>,
    received_millis: i64,
    number: u64,
}

impl InFlight {
    /// The received time for a new request, and its token.
    pub fn begin(self: &Arc<Self>) -> (Timestamp, Arc<Token>) {
        let mut open = self.lock();
        let now = Timestamp::now();
        let number = open.open(now.as_millis());
        let token = Token {
            tracker: Arc::clone(self),
            received_millis: now.as_millis(),
            number,
        };
        (now, Arc::new(token))
    }

    /// A token for work that started at `received` (recovery re-matching old events).
    pub fn hold(self: &Arc<Self>, received: Timestamp) -> Arc<Token> {
        let mut open = self.lock();
        let number = open.open(received.as_millis());
        Arc::new(Token {
            tracker: Arc::clone(self),
            received_millis: received.as_millis(),
            number,
        })
    }

    /// Every event received before the answer is matched (as far as this process knows).
    pub fn matched_before(&self) -> Timestamp {
        let open = self.lock();
        match open.by_time.keys().next() {
            Some(&oldest) => Timestamp::from_millis(oldest).unwrap_or_else(Timestamp::now),
            None => Timestamp::now(),
        }
    }

    /// A mark for [`InFlight::released_before`]: every token taken so far is before it.
    pub fn mark(&self) -> u64 {
        self.lock().next
    }

    /// Whether every token taken before `mark` is released: the work of every event
    /// committed before the mark was taken is matched (its round's write committed).
    pub fn released_before(&self, mark: u64) -> bool {
        self.lock()
            .numbers
            .first()
            .is_none_or(|&oldest| oldest >= mark)
    }

    /// Requests whose events are not all matched yet.
    #[cfg(test)]
    fn open_requests(&self) -> usize {
        self.lock().by_time.values().sum()
    }

    fn lock(&self) -> MutexGuard<'_, Open> {
        // Counters only; a poisoned lock holds nothing half-written worth refusing.
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        let mut open = self.tracker.lock();
        open.numbers.remove(&self.number);
        if let Some(count) = open.by_time.get_mut(&self.received_millis) {
            *count -= 1;
            if *count == 0 {
                open.by_time.remove(&self.received_millis);
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

    #[test]
    fn a_mark_waits_for_the_tokens_taken_before_it_only() {
        let tracker = Arc::new(InFlight::default());
        let (_, before) = tracker.begin();
        let mark = tracker.mark();
        let (_, after) = tracker.begin();
        assert!(!tracker.released_before(mark));
        drop(before);
        assert!(
            tracker.released_before(mark),
            "a later token does not hold it"
        );
        drop(after);
        assert!(tracker.released_before(tracker.mark()));
    }
}
