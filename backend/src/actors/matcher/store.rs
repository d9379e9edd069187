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
use crate::matching::session::{GoalId, Session, SessionEvent, StoredCredits};
use crate::matching::{Conversion, Detection, Id, Keys, Text};
use foldhash::{HashMap, HashMapExt, HashSet};
use std::mem::size_of;
use std::sync::Arc;
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
    pub credits: Vec<(GoalId, Id, StoredCredits)>,
    /// The version it was kept at (a hot copy's); `None` when read from the events.
    pub version: Option<i64>,
}

#[derive(Debug)]
struct Resident {
    session: Session,
    /// The session's own (key name, key value): the only key its events keep, shared by all.
    pair: Keys,
    last_used: Instant,
    /// The tenant's goal fingerprint when the session was last used (for its hot copy).
    fingerprint: u64,
    /// The session's version in PostgreSQL as of the last round that committed with it
    /// (`storage::session_versions`); `None` before one has, and on SQLite.
    version: Option<i64>,
    /// As last measured by [`resident_bytes`].
    bytes: usize,
    /// The last round that used the session (see [`SessionStore::begin_round`]).
    round: u64,
}

/// What a resident session is sound under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Residency {
    /// The goal fingerprint it was last used under. A session is only sound under that
    /// fingerprint: while a tenant's goals left its key unused, its events went by it (see
    /// `round::apply`).
    pub fingerprint: u64,
    /// Its version in PostgreSQL when last committed; sound only while that is still the
    /// latest (no other process has settled the session since).
    pub version: Option<i64>,
}

/// A resident session as a round's piece of work finds it.
#[derive(Debug)]
pub struct Entered<'a> {
    pub session: &'a mut Session,
    /// The piece's event as the session keeps it (see [`SessionStore::enter`]).
    pub event: Option<SessionEvent>,
    /// Whether this is the session's first use in the current round.
    pub first_in_round: bool,
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
    round: u64,
}

impl SessionStore {
    pub fn new(limits: StoreLimits) -> Self {
        Self {
            sessions: HashMap::new(),
            interner: Interner::default(),
            limits,
            bytes: 0,
            evicted: 0,
            round: 0,
        }
    }

    pub fn contains(&self, key: &SessionKey) -> bool {
        self.sessions.contains_key(key)
    }

    /// How a session is resident; `None` when it is not.
    pub fn residency(&self, key: &SessionKey) -> Option<Residency> {
        self.sessions.get(key).map(|resident| Residency {
            fingerprint: resident.fingerprint,
            version: resident.version,
        })
    }

    /// Records the version a committed round gave a resident session.
    pub fn set_version(&mut self, key: &SessionKey, version: i64) {
        if let Some(resident) = self.sessions.get_mut(key) {
            resident.version = Some(version);
        }
    }

    /// Starts a new round, for [`Entered::first_in_round`].
    pub fn begin_round(&mut self) {
        self.round += 1;
    }

    /// The resident session of `key`, marked as used now under the goal `fingerprint`, with
    /// `event` compacted for it: one map lookup for all of that.
    pub fn enter(
        &mut self,
        key: &SessionKey,
        event: Option<&SessionEvent>,
        now: Instant,
        fingerprint: u64,
    ) -> Option<Entered<'_>> {
        let resident = self.sessions.get_mut(key)?;
        resident.last_used = now;
        resident.fingerprint = fingerprint;
        let first_in_round = resident.round != self.round;
        resident.round = self.round;
        let event = event.map(|event| compact(&mut self.interner, &resident.pair, event));
        Some(Entered {
            session: &mut resident.session,
            event,
            first_in_round,
        })
    }

    /// Makes a loaded session resident (replacing any other copy): its events compacted, its
    /// stored attributions recorded.
    pub fn admit(
        &mut self,
        key: SessionKey,
        loaded: LoadedSession,
        now: Instant,
        fingerprint: u64,
    ) {
        let version = loaded.version;
        let key = SessionKey {
            tenant: key.tenant,
            name: self.interner.intern(&key.name),
            value: key.value,
        };
        let pair: Keys = Arc::from([(key.name.clone(), key.value.clone())]);
        let mut session = Session::new();
        for event in &loaded.events {
            session.insert(compact(&mut self.interner, &pair, event));
        }
        for (goal, conversion, credits) in loaded.credits {
            session.set_stored(goal, conversion, credits);
        }
        let bytes = resident_bytes(&key, &session);
        self.bytes += bytes;
        let previous = self.sessions.insert(
            key,
            Box::new(Resident {
                session,
                pair,
                last_used: now,
                fingerprint,
                version,
                bytes,
                round: self.round,
            }),
        );
        if let Some(previous) = previous {
            self.bytes -= previous.bytes.min(self.bytes);
        }
    }

    /// Measures a session again after it changed.
    pub fn refresh_size(&mut self, key: &SessionKey) {
        if let Some(resident) = self.sessions.get_mut(key) {
            let bytes = resident_bytes(key, &resident.session);
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

        Some(Evicted {
            key,
            session: resident.session,
            fingerprint: resident.fingerprint,
            version: resident.version,
        })
    }

    /// Least recently used sessions leave until the store is back under 90% of its budget;
    /// returns them (for their hot copies).
    pub fn enforce_budget(&mut self) -> Vec<Evicted> {
        let mut evicted = Vec::new();
        if self.bytes() <= self.limits.memory_bytes {
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
            if self.bytes() <= target {
                break;
            }
            evicted.extend(self.take(&key));
        }
        self.evicted += evicted.len() as u64;
        self.shrink_if_sparse();
        evicted
    }

    /// Gives back the table's memory after many sessions left: a map never shrinks by itself,
    /// so one busy hour would otherwise keep its table for good.
    fn shrink_if_sparse(&mut self) {
        let (len, capacity) = (self.sessions.len(), self.sessions.capacity());
        if capacity > 1024 && len < capacity / 4 {
            self.sessions.shrink_to(len * 2);
        }
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
        self.shrink_if_sparse();
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

    /// The estimated size of the resident sessions, the map that holds them included.
    pub fn bytes(&self) -> usize {
        self.bytes + self.table_bytes()
    }

    /// The map's table: every bucket holds a key and a box, used or not, plus a control
    /// byte; there are about 8/7 buckets per unit of capacity.
    fn table_bytes(&self) -> usize {
        let slot = size_of::<(SessionKey, Box<Resident>)>() + 1;
        self.sessions.capacity() / 7 * 8 * slot
    }

    /// Sessions evicted so far (idle or over budget).
    pub fn evicted(&self) -> u64 {
        self.evicted
    }
}

/// What a resident session costs: its own state ([`Session::approx_bytes`]) and its entry
/// beside the map's table: the boxed entry, its key's value and its key pair, each an
/// allocation with the allocator's overhead.
fn resident_bytes(key: &SessionKey, session: &Session) -> usize {
    session.approx_bytes()
        + allocated(size_of::<Resident>())
        + allocated(2 * size_of::<usize>() + key.value.len())
        + allocated(2 * size_of::<usize>() + size_of::<(Text, Text)>())
}

/// What an allocation of `requested` bytes takes from glibc's malloc: an 8-byte header,
/// rounded up to 16 bytes, 32 at least.
fn allocated(requested: usize) -> usize {
    (requested + 8).div_ceil(16).max(2) * 16
}

/// The event as a session keeps it: shared texts, and only the session's own key `pair`.
fn compact(interner: &mut Interner, pair: &Keys, event: &SessionEvent) -> SessionEvent {
    match event {
        SessionEvent::Detection(d) => SessionEvent::Detection(Detection {
            event_id: d.event_id.clone(),
            event_time: d.event_time,
            label: interner.intern(&d.label),
            entity_id: d.entity_id.clone(),
            confidence: d.confidence,
            keys: Arc::clone(pair),
            consent_granted: d.consent_granted,
            filtered: d.filtered,
            is_test: d.is_test,
            model_version: interner.intern(&d.model_version),
            category: d.category.as_ref().map(|c| interner.intern(c)),
        }),
        SessionEvent::Conversion(c) => SessionEvent::Conversion(Conversion {
            event_id: c.event_id.clone(),
            event_time: c.event_time,
            name: interner.intern(&c.name),
            keys: Arc::clone(pair),
            consent_granted: c.consent_granted,
            is_test: c.is_test,
            value: c.value,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(value: &str) -> SessionKey {
        SessionKey {
            tenant: TenantId::from_uuid(uuid::Uuid::nil()),
            name: Text::from("session_token"),
            value: Text::from(value),
        }
    }

    fn detection(event_id: &str) -> SessionEvent {
        SessionEvent::Detection(Detection {
            event_id: Id::from(event_id),
            event_time: 1_000,
            label: Text::from("barcode"),
            entity_id: Id::from("sku-1"),
            confidence: 0.9,
            keys: Arc::from([
                (Text::from("device_id"), Text::from("cam-1")),
                (Text::from("session_token"), Text::from("s-1")),
            ]),
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

    fn loaded(ids: &[&str]) -> LoadedSession {
        LoadedSession {
            events: ids.iter().map(|id| detection(id)).collect(),
            credits: Vec::new(),
            version: None,
        }
    }

    fn resident_detections(store: &mut SessionStore, key: &SessionKey) -> Vec<Detection> {
        store
            .enter(key, None, Instant::now(), 0)
            .map(|entered| entered.session.detections().to_vec())
            .unwrap_or_default()
    }

    #[test]
    fn compaction_keeps_only_the_session_pair_and_shares_repeated_text() {
        let mut store = store(1 << 20);
        let key = key("s-1");
        store.admit(key.clone(), loaded(&["d-1", "d-2"]), Instant::now(), 0);
        let entered = store.enter(&key, Some(&detection("d-3")), Instant::now(), 0);
        let Some(SessionEvent::Detection(entering)) = entered.and_then(|e| e.event) else {
            panic!("a resident session compacts the entering detection");
        };
        let held = resident_detections(&mut store, &key);
        let [a, b] = &held[..] else {
            panic!("both loaded detections are resident");
        };
        assert_eq!(
            &*a.keys,
            &[(Text::from("session_token"), Text::from("s-1"))]
        );
        for other in [b, &entering] {
            assert!(Arc::ptr_eq(&a.label, &other.label));
            assert!(Arc::ptr_eq(&a.model_version, &other.model_version));
            assert!(
                Arc::ptr_eq(&a.keys, &other.keys),
                "one key pair for the whole session"
            );
        }
    }

    #[test]
    fn a_session_is_first_in_a_round_once() {
        let mut store = store(1 << 20);
        let key = key("s-1");
        store.admit(key.clone(), loaded(&["d-1"]), Instant::now(), 0);
        store.begin_round();
        let first = |store: &mut SessionStore| {
            store
                .enter(&key, None, Instant::now(), 0)
                .map(|e| e.first_in_round)
        };
        assert_eq!(first(&mut store), Some(true));
        assert_eq!(first(&mut store), Some(false));
        store.begin_round();
        assert_eq!(first(&mut store), Some(true));
        assert!(
            store
                .enter(&self::key("absent"), None, Instant::now(), 0)
                .is_none()
        );
    }

    #[test]
    fn a_session_remembers_the_fingerprint_it_was_last_used_under() {
        let mut store = store(usize::MAX);
        let fingerprint = |store: &SessionStore| store.residency(&key("a")).map(|r| r.fingerprint);
        assert_eq!(fingerprint(&store), None);
        store.admit(key("a"), loaded(&["d-1"]), Instant::now(), 7);
        assert_eq!(fingerprint(&store), Some(7));
        assert!(store.enter(&key("a"), None, Instant::now(), 9).is_some());
        assert_eq!(fingerprint(&store), Some(9));
    }

    #[test]
    fn a_session_keeps_the_version_it_came_with_or_was_last_committed_at() {
        let mut store = store(usize::MAX);
        let mut copy = loaded(&["d-1"]);
        copy.version = Some(4);
        store.admit(key("a"), copy, Instant::now(), 7);
        assert_eq!(store.residency(&key("a")).and_then(|r| r.version), Some(4));
        store.set_version(&key("a"), 9);
        assert_eq!(store.residency(&key("a")).and_then(|r| r.version), Some(9));
        store.admit(key("b"), loaded(&["d-2"]), Instant::now(), 7);
        assert_eq!(store.residency(&key("b")).and_then(|r| r.version), None);
        let evicted = store.evict_idle(Instant::now() + Duration::from_secs(3600));
        let version_of = |value: &str| {
            evicted
                .iter()
                .find(|e| &*e.key.value == value)
                .map(|e| e.version)
        };
        assert_eq!(version_of("a"), Some(Some(9)));
        assert_eq!(version_of("b"), Some(None));
    }

    #[test]
    fn over_budget_the_least_recently_used_sessions_leave_first() {
        let mut probe = store(usize::MAX);
        for value in ["w", "x", "y", "z"] {
            probe.admit(key(value), loaded(&["d-1", "d-2"]), Instant::now(), 0);
        }
        let table = probe.table_bytes();
        assert!(table > 0, "the map's table counts too");
        let one = (probe.bytes() - table) / 4;
        // Room for three sessions (and the table of four); the fourth pushes the oldest out.
        let mut store = store(table + one * 3 + one / 2);
        let start = Instant::now();
        for (i, value) in ["a", "b", "c", "d"].iter().enumerate() {
            let at = start + Duration::from_secs(i as u64);
            store.admit(key(value), loaded(&["d-1", "d-2"]), at, 0);
        }
        // "a" is used again, so "b" is now the least recently used.
        assert!(
            store
                .enter(&key("a"), None, start + Duration::from_secs(10), 0)
                .is_some()
        );
        let evicted = store.enforce_budget();
        assert_eq!(evicted.len(), 1);
        assert_eq!(&*evicted[0].key.value, "b");
        assert!(store.contains(&key("a")));
        assert!(!store.contains(&key("b")));
        assert!(store.bytes() <= table + one * 3 + one / 2);
        assert_eq!(store.evicted(), 1);
    }

    #[test]
    fn the_map_gives_its_table_back_once_most_sessions_left() {
        let mut store = store(usize::MAX);
        let start = Instant::now();
        for i in 0..5000 {
            store.admit(key(&format!("s-{i}")), loaded(&["d-1"]), start, 0);
        }
        let busy = store.table_bytes();
        let later = start + Duration::from_secs(3600);
        assert!(store.enter(&key("s-1"), None, later, 0).is_some());
        assert_eq!(store.evict_idle(later).len(), 4999);
        assert!(
            store.table_bytes() * 100 < busy,
            "{} bytes of table left of {busy}",
            store.table_bytes()
        );
        assert!(store.contains(&key("s-1")));
    }

    #[test]
    fn idle_sessions_leave_and_busy_ones_stay() {
        let mut store = store(usize::MAX);
        let start = Instant::now();
        for (value, used) in [("idle", start), ("busy", start + Duration::from_secs(100))] {
            store.admit(key(value), loaded(&["d-1"]), used, 0);
        }
        assert_eq!(store.evict_idle(start + Duration::from_secs(120)).len(), 1);
        assert!(!store.contains(&key("idle")));
        assert!(store.contains(&key("busy")));
        assert_eq!(store.len(), 1);
    }
}
