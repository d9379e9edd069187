//! The resident sessions of one shard: the map, its memory budget (least recently used
//! sessions leave first), idle eviction, and the compaction of events as they enter.
//!
//! Labels, model versions, categories, conversion and key names repeat across millions of
//! events, so each distinct text is kept once ([`Interner`]). And inside a session only its
//! own (key name, key value) matters (every goal settled there is on that key), so an event's
//! other keys are dropped on the way in and the pair is shared with the session's map key.

use super::hot_copy::Evicted;
use super::messages::SessionKey;
use crate::domain::TenantId;
use crate::matching::Text;
use crate::matching::session::{GoalId, Session, SessionEvent, StoredCredits};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// Distinct texts kept for sharing; past this (a tenant sending unbounded label values) new
/// texts are simply not shared.
const MAX_INTERNED: usize = 100_000;

/// How a store is sized.
#[derive(Debug, Clone, Copy)]
pub struct StoreLimits {
    pub memory_bytes: usize,
    pub idle: Duration,
}

/// Texts kept once.
#[derive(Debug, Default)]
pub struct Interner(HashSet<Text>);

impl Interner {
    pub fn intern(&mut self, text: &Text) -> Text {
        if let Some(shared) = self.0.get(text) {
            return shared.clone();
        }
        if self.0.len() < MAX_INTERNED {
            self.0.insert(text.clone());
        }
        text.clone()
    }
}

/// A session as storage (or its hot copy) holds it, before it becomes resident.
#[derive(Debug, Default)]
pub struct LoadedSession {
    pub events: Vec<SessionEvent>,
    /// (goal, conversion event id, credits).
    pub credits: Vec<(GoalId, Text, StoredCredits)>,
}

#[derive(Debug)]
struct Resident {
    session: Session,
    last_used: Instant,
    /// The tenant's goal fingerprint when the session was last used (for its hot copy).
    fingerprint: u64,
    /// As last measured by [`Session::approx_bytes`].
    bytes: usize,
}

/// One shard's sessions.
#[derive(Debug)]
pub struct SessionStore {
    /// Boxed, so the map's spare capacity costs a pointer per slot, not a whole session.
    sessions: HashMap<SessionKey, Box<Resident>>,
    interner: Interner,
    limits: StoreLimits,
    bytes: usize,
    evicted: u64,
}

impl SessionStore {
    pub fn new(limits: StoreLimits) -> Self {
        Self {
            sessions: HashMap::new(),
            interner: Interner::default(),
            limits,
            bytes: 0,
            evicted: 0,
        }
    }

    pub fn contains(&self, key: &SessionKey) -> bool {
        self.sessions.contains_key(key)
    }

    /// The resident session, marked as used now under the goal `fingerprint`.
    pub fn get_mut(
        &mut self,
        key: &SessionKey,
        now: Instant,
        fingerprint: u64,
    ) -> Option<&mut Session> {
        self.sessions.get_mut(key).map(|resident| {
            resident.last_used = now;
            resident.fingerprint = fingerprint;
            &mut resident.session
        })
    }

    /// Makes a session resident (replacing any other copy), its events already compacted
    /// with [`SessionStore::compact`].
    pub fn insert(&mut self, key: SessionKey, session: Session, now: Instant, fingerprint: u64) {
        let key = SessionKey {
            tenant: key.tenant,
            name: self.interner.intern(&key.name),
            value: key.value,
        };
        let bytes = session.approx_bytes();
        self.bytes += bytes;
        let previous = self.sessions.insert(
            key,
            Box::new(Resident {
                session,
                last_used: now,
                fingerprint,
                bytes,
            }),
        );
        if let Some(previous) = previous {
            self.bytes -= previous.bytes.min(self.bytes);
        }
    }

    /// The event as the session of `key` keeps it: shared texts, and only the session's own
    /// key pair (the resident key's, when the session is resident).
    pub fn compact(&mut self, key: &SessionKey, event: SessionEvent) -> SessionEvent {
        let (name, value) = match self.sessions.get_key_value(key) {
            Some((resident, _)) => (resident.name.clone(), resident.value.clone()),
            None => (self.interner.intern(&key.name), key.value.clone()),
        };
        let keys = vec![(name, value)];
        match event {
            SessionEvent::Detection(mut d) => {
                d.label = self.interner.intern(&d.label);
                d.model_version = self.interner.intern(&d.model_version);
                d.category = d.category.map(|c| self.interner.intern(&c));
                d.keys = keys;
                SessionEvent::Detection(d)
            }
            SessionEvent::Conversion(mut c) => {
                c.name = self.interner.intern(&c.name);
                c.keys = keys;
                SessionEvent::Conversion(c)
            }
        }
    }

    /// Measures a session again after it changed.
    pub fn refresh_size(&mut self, key: &SessionKey) {
        if let Some(resident) = self.sessions.get_mut(key) {
            let bytes = resident.session.approx_bytes();
            self.bytes = self.bytes - resident.bytes.min(self.bytes) + bytes;
            resident.bytes = bytes;
        }
    }

    /// Drops a session whose state may differ from storage (no copy is kept).
    pub fn remove(&mut self, key: &SessionKey) {
        self.take(key);
    }

    fn take(&mut self, key: &SessionKey) -> Option<Evicted> {
        let (key, resident) = self.sessions.remove_entry(key)?;
        self.bytes -= resident.bytes.min(self.bytes);
        Some((key, resident.session, resident.fingerprint))
    }

    /// Least recently used sessions leave until the store is back under 90% of its budget;
    /// returns them (for their hot copies).
    pub fn enforce_budget(&mut self) -> Vec<Evicted> {
        let mut evicted = Vec::new();
        if self.bytes <= self.limits.memory_bytes {
            return evicted;
        }
        let target = self.limits.memory_bytes / 10 * 9;
        let mut by_age: Vec<(Instant, SessionKey)> = self
            .sessions
            .iter()
            .map(|(key, resident)| (resident.last_used, key.clone()))
            .collect();
        by_age.sort_unstable_by_key(|(used, _)| *used);
        for (_, key) in by_age {
            if self.bytes <= target {
                break;
            }
            evicted.extend(self.take(&key));
        }
        self.evicted += evicted.len() as u64;
        evicted
    }

    /// Sessions unused for longer than the idle limit leave; returns them.
    pub fn evict_idle(&mut self, now: Instant) -> Vec<Evicted> {
        let Some(cutoff) = now.checked_sub(self.limits.idle) else {
            return Vec::new();
        };
        let idle: Vec<SessionKey> = self
            .sessions
            .iter()
            .filter(|(_, resident)| resident.last_used < cutoff)
            .map(|(key, _)| key.clone())
            .collect();
        let evicted: Vec<Evicted> = idle.iter().filter_map(|key| self.take(key)).collect();
        self.evicted += evicted.len() as u64;
        evicted
    }

    /// Forgets what the tenant's sessions hold as stored for a goal.
    pub fn forget_goal(&mut self, tenant: TenantId, goal_id: GoalId) {
        for (key, resident) in &mut self.sessions {
            if key.tenant == tenant {
                resident.session.forget_goal(goal_id);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// The estimated size of the resident sessions.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Sessions evicted so far (idle or over budget).
    pub fn evicted(&self) -> u64 {
        self.evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::Detection;
    use std::sync::Arc;

    fn key(value: &str) -> SessionKey {
        SessionKey {
            tenant: TenantId::from_uuid(uuid::Uuid::nil()),
            name: Text::from("session_token"),
            value: Text::from(value),
        }
    }

    fn detection(event_id: &str) -> SessionEvent {
        SessionEvent::Detection(Detection {
            event_id: Text::from(event_id),
            event_time: 1_000,
            label: Text::from("barcode"),
            entity_id: Text::from("sku-1"),
            confidence: 0.9,
            keys: vec![
                (Text::from("device_id"), Text::from("cam-1")),
                (Text::from("session_token"), Text::from("s-1")),
            ],
            consent_granted: true,
            filtered: false,
            is_test: false,
            model_version: Text::from("v1"),
            category: None,
        })
    }

    fn store(memory_bytes: usize) -> SessionStore {
        SessionStore::new(StoreLimits {
            memory_bytes,
            idle: Duration::from_secs(60),
        })
    }

    fn session_with(store: &mut SessionStore, key: &SessionKey, ids: &[&str]) -> Session {
        let mut session = Session::new();
        for id in ids {
            session.insert(store.compact(key, detection(id)));
        }
        session
    }

    #[test]
    fn compaction_keeps_only_the_session_pair_and_shares_repeated_text() {
        let mut store = store(1 << 20);
        let key = key("s-1");
        let first = session_with(&mut store, &key, &["d-1"]);
        store.insert(key.clone(), first, Instant::now(), 0);
        let (SessionEvent::Detection(a), SessionEvent::Detection(b)) = (
            store.compact(&key, detection("d-2")),
            store.compact(&key, detection("d-3")),
        ) else {
            panic!("detections stay detections");
        };
        assert_eq!(a.keys.len(), 1);
        assert_eq!(&*a.keys[0].1, "s-1");
        assert!(Arc::ptr_eq(&a.label, &b.label));
        assert!(Arc::ptr_eq(&a.model_version, &b.model_version));
        assert!(Arc::ptr_eq(&a.keys[0].0, &b.keys[0].0));
        assert!(
            Arc::ptr_eq(&a.keys[0].1, &b.keys[0].1),
            "the resident key's value is shared"
        );
    }

    #[test]
    fn over_budget_the_least_recently_used_sessions_leave_first() {
        let mut probe = store(usize::MAX);
        let one = session_with(&mut probe, &key("x"), &["d-1", "d-2"]).approx_bytes();
        // Room for three sessions; the fourth pushes the oldest out.
        let mut store = store(one * 3 + one / 2);
        let start = Instant::now();
        for (i, value) in ["a", "b", "c", "d"].iter().enumerate() {
            let key = key(value);
            let session = session_with(&mut store, &key, &["d-1", "d-2"]);
            store.insert(key, session, start + Duration::from_secs(i as u64), 0);
        }
        // "a" is used again, so "b" is now the least recently used.
        assert!(
            store
                .get_mut(&key("a"), start + Duration::from_secs(10), 0)
                .is_some()
        );
        let evicted = store.enforce_budget();
        assert_eq!(evicted.len(), 1);
        assert_eq!(&*evicted[0].0.value, "b");
        assert!(store.contains(&key("a")));
        assert!(!store.contains(&key("b")));
        assert!(store.bytes() <= one * 3 + one / 2);
        assert_eq!(store.evicted(), 1);
    }

    #[test]
    fn idle_sessions_leave_and_busy_ones_stay() {
        let mut store = store(usize::MAX);
        let start = Instant::now();
        for (value, used) in [("idle", start), ("busy", start + Duration::from_secs(100))] {
            let key = key(value);
            let session = session_with(&mut store, &key, &["d-1"]);
            store.insert(key, session, used, 0);
        }
        assert_eq!(store.evict_idle(start + Duration::from_secs(120)).len(), 1);
        assert!(!store.contains(&key("idle")));
        assert!(store.contains(&key("busy")));
        assert_eq!(store.len(), 1);
    }
}
