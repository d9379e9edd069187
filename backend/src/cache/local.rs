//! The in-process stand-in for Redis, used when `REDIS_URL` is unset: same operations,
//! same expiry semantics, one process only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Entries beyond this count trigger a sweep of expired ones on the next write.
const SWEEP_THRESHOLD: usize = 10_000;

#[derive(Clone, Default)]
pub(super) struct LocalStore {
    entries: Arc<Mutex<HashMap<String, Entry>>>,
}

struct Entry {
    value: String,
    expires: Instant,
}

impl LocalStore {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding this lock cannot leave an entry half-written, so a poisoned
        // lock is still safe to use.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn live<'a>(map: &'a HashMap<String, Entry>, key: &str, now: Instant) -> Option<&'a Entry> {
        map.get(key).filter(|entry| entry.expires > now)
    }

    fn insert(map: &mut HashMap<String, Entry>, key: &str, value: String, expires: Instant) {
        if map.len() >= SWEEP_THRESHOLD {
            let now = Instant::now();
            map.retain(|_, entry| entry.expires > now);
        }
        map.insert(key.to_owned(), Entry { value, expires });
    }

    pub(super) fn get(&self, key: &str) -> Option<String> {
        Self::live(&self.lock(), key, Instant::now()).map(|entry| entry.value.clone())
    }

    pub(super) fn set(&self, key: &str, value: &str, ttl: Duration) {
        let expires = Instant::now() + ttl;
        Self::insert(&mut self.lock(), key, value.to_owned(), expires);
    }

    pub(super) fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> bool {
        let now = Instant::now();
        let mut map = self.lock();
        if Self::live(&map, key, now).is_some() {
            return false;
        }
        Self::insert(&mut map, key, value.to_owned(), now + ttl);
        true
    }

    pub(super) fn delete(&self, key: &str) {
        self.lock().remove(key);
    }

    pub(super) fn increment(&self, key: &str, amount: u64, window: Duration) -> (u64, u64) {
        let now = Instant::now();
        let mut map = self.lock();
        let (count, expires) = match Self::live(&map, key, now) {
            Some(entry) => (
                entry
                    .value
                    .parse::<u64>()
                    .unwrap_or(0)
                    .saturating_add(amount),
                entry.expires,
            ),
            None => (amount, now + window),
        };
        Self::insert(&mut map, key, count.to_string(), expires);
        (count, seconds_until(expires, now))
    }

    /// [`super::HotStore::spend`], in microseconds: `(admitted, owed)`.
    pub(super) fn spend(&self, key: &str, cost: u64, allowance: u64) -> (bool, u64) {
        let (clock, now) = (Instant::now(), epoch_micros());
        let mut map = self.lock();
        let paid_off = Self::live(&map, key, clock)
            .and_then(|entry| entry.value.parse::<u64>().ok())
            .map_or(now, |paid_off| paid_off.max(now));
        let owed = paid_off - now + cost;
        if owed > allowance {
            return (false, paid_off - now);
        }
        let expires = clock + Duration::from_micros(owed);
        Self::insert(&mut map, key, (paid_off + cost).to_string(), expires);
        (true, owed)
    }

    pub(super) fn counter(&self, key: &str) -> (u64, u64) {
        let now = Instant::now();
        Self::live(&self.lock(), key, now)
            .map(|entry| {
                (
                    entry.value.parse().unwrap_or(0),
                    seconds_until(entry.expires, now),
                )
            })
            .unwrap_or((0, 0))
    }
}

fn epoch_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
        })
}

fn seconds_until(expires: Instant, now: Instant) -> u64 {
    let left = expires.saturating_duration_since(now);
    left.as_secs() + u64::from(left.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire() {
        let store = LocalStore::default();
        store.set("a", "1", Duration::from_millis(20));
        assert_eq!(store.get("a").as_deref(), Some("1"));
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(store.get("a"), None);
        assert!(store.set_if_absent("a", "2", Duration::from_secs(5)));
        assert!(!store.set_if_absent("a", "3", Duration::from_secs(5)));
    }

    #[test]
    fn a_bucket_spends_up_to_its_allowance_and_pays_off_over_time() {
        let store = LocalStore::default();
        let (second, tenth) = (1_000_000, 100_000);
        assert!(store.spend("b", 6 * tenth, second).0);
        let (admitted, owed) = store.spend("b", 6 * tenth, second);
        // Refused, and the refusal spent nothing: what is owed is the first spend's.
        assert!(!admitted);
        assert!(owed <= 6 * tenth && owed > 5 * tenth, "{owed}");
        assert!(store.spend("b", 3 * tenth, second).0);
        // More than the allowance at once is never spent.
        assert!(!store.spend("other", second + 1, second).0);
        std::thread::sleep(Duration::from_millis(250));
        // A quarter of a second later a quarter of a second more is owed no longer.
        assert!(store.spend("b", 2 * tenth, second).0);
    }

    #[test]
    fn counters_keep_their_first_expiry() {
        let store = LocalStore::default();
        assert_eq!(store.increment("c", 1, Duration::from_secs(60)).0, 1);
        let (count, left) = store.increment("c", 2, Duration::from_secs(600));
        assert_eq!(count, 3);
        assert!(
            left <= 60,
            "the window is fixed by the first failure, got {left}"
        );
        assert_eq!(store.counter("c").0, 3);
    }
}
