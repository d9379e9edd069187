//! Hot copies of evicted sessions in Redis, so that a session pushed out of memory comes
//! back with one Redis round trip instead of a PostgreSQL query.
//!
//! A copy is only a cache; PostgreSQL stays the truth. It is trusted only when it cannot be
//! stale, which these rules make sure of:
//!
//! - a copy is written when its session leaves memory, and taken (`GETDEL`) when the session
//!   comes back, so a copy exists only for a session that is not resident;
//! - an event for a session that is not resident is always loaded first (copy or database)
//!   and then applied, unless no active goal uses its key; a copy records the tenant's goal
//!   fingerprint, and is refused under any other, so a copy that missed such an event (taken
//!   while no goal used the key) is never used once a goal does again;
//! - on PostgreSQL a copy records the session's version (`storage::session_versions`) and is
//!   used only while that is still the session's latest: then no round of any process has
//!   settled the session since the copy's state was committed, so the copy may come from
//!   another process or an earlier run of this one;
//! - without versions (SQLite) a copy records the process incarnation that wrote it. Any
//!   Redis error while taking or writing copies starts a new incarnation in memory (so no
//!   copy possibly left stale is used again), and so does a restart.

use super::messages::SessionKey;
use super::store::LoadedSession;
use crate::cache::{CacheKey, HotStore};
use crate::domain::TenantId;
use crate::matching::session::{GoalId, Session, SessionEvent};
use crate::matching::{Conversion, Credit, Detection, Id, Keys, Text};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use uuid::Uuid;

/// How long an unused copy is kept.
const TTL: Duration = Duration::from_secs(24 * 3600);

/// The copies of one server process.
#[derive(Debug)]
pub struct HotCopies {
    hot: HotStore,
    incarnation: Mutex<Uuid>,
}

/// A session leaving memory.
#[derive(Debug)]
pub struct Evicted {
    pub key: SessionKey,
    pub session: Session,
    /// The goal fingerprint it was kept under.
    pub fingerprint: u64,
    /// Its version in PostgreSQL, if a round has committed with it.
    pub version: Option<i64>,
}

/// What makes a copy current, besides the goal fingerprint.
#[derive(Debug, Clone, Copy)]
pub enum Currency<'a> {
    /// PostgreSQL: each session's latest version, as the round's claim found it.
    Versions(&'a HashMap<SessionKey, i64>),
    /// SQLite: written by this process since its last Redis error.
    Incarnation,
}

impl HotCopies {
    /// Copies live in Redis; without Redis there are none (memory would only be moved
    /// around in the same process).
    pub fn new(hot: &HotStore) -> Option<Self> {
        hot.is_redis().then(|| Self {
            hot: hot.clone(),
            incarnation: Mutex::new(Uuid::new_v4()),
        })
    }

    /// Takes the copies of `keys` that are sound under the tenants' current goal
    /// `fingerprints` and current by `currency`; the others are left to the database.
    pub async fn take(
        &self,
        keys: &[SessionKey],
        fingerprints: &HashMap<TenantId, u64>,
        currency: Currency<'_>,
    ) -> HashMap<SessionKey, LoadedSession> {
        let cache_keys: Vec<CacheKey> = keys.iter().map(|key| self.cache_key(key)).collect();
        let incarnation = self.incarnation();
        let values = match self.hot.take_many(&cache_keys).await {
            Ok(values) => values,
            Err(err) => {
                // A GETDEL that failed may have left a copy behind.
                self.rotate(&err);
                return HashMap::new();
            }
        };
        keys.iter()
            .zip(values)
            .filter_map(|(key, value)| {
                let copy: SessionCopy = serde_json::from_str(&value?).ok()?;
                let current = match currency {
                    Currency::Versions(latest) => {
                        copy.version.is_some() && copy.version == latest.get(key).copied()
                    }
                    Currency::Incarnation => copy.incarnation == incarnation,
                };
                let sound = current && Some(&copy.fingerprint) == fingerprints.get(&key.tenant);
                sound.then(|| (key.clone(), copy.into_loaded(key)))
            })
            .collect()
    }

    /// Writes the copies of sessions leaving memory.
    pub async fn put(&self, evicted: Vec<Evicted>) {
        let incarnation = self.incarnation();
        let entries: Vec<(CacheKey, String)> = evicted
            .iter()
            .filter_map(|evicted| {
                let copy = SessionCopy::of(evicted, incarnation);
                Some((
                    self.cache_key(&evicted.key),
                    serde_json::to_string(&copy).ok()?,
                ))
            })
            .collect();
        if let Err(err) = self.hot.set_many(&entries, TTL).await {
            // Some copies may have been written, some not; none is trusted any more.
            self.rotate(&err);
        }
    }

    /// Deletes the copies of `keys` (their sessions' events were erased). If Redis fails,
    /// a new incarnation makes whatever copy is left unusable.
    pub async fn discard(&self, keys: &[SessionKey]) {
        let cache_keys: Vec<CacheKey> = keys.iter().map(|key| self.cache_key(key)).collect();
        if let Err(err) = self.hot.delete_many(&cache_keys).await {
            self.rotate(&err);
        }
    }

    fn cache_key(&self, key: &SessionKey) -> CacheKey {
        self.hot.session_copy_key(key.tenant, &key.name, &key.value)
    }

    fn incarnation(&self) -> Uuid {
        *self.lock()
    }

    fn rotate(&self, err: &dyn std::fmt::Display) {
        // Per round while Redis is down; the store logs the outage itself once.
        tracing::debug!(error = %err, "Redis failed on session copies; earlier copies are no longer used");
        *self.lock() = Uuid::new_v4();
    }

    fn lock(&self) -> MutexGuard<'_, Uuid> {
        // A plain value; nothing half-written to guard against.
        self.incarnation
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A session as its copy holds it. Short field names: copies are many and small. The
/// session's own key pair is the Redis key's, so events carry no keys.
#[derive(Debug, Serialize, Deserialize)]
struct SessionCopy {
    #[serde(rename = "i")]
    incarnation: Uuid,
    #[serde(rename = "f")]
    fingerprint: u64,
    #[serde(rename = "v", default)]
    version: Option<i64>,
    #[serde(rename = "d")]
    detections: Vec<DetectionCopy>,
    #[serde(rename = "c")]
    conversions: Vec<ConversionCopy>,
    #[serde(rename = "s")]
    stored: Vec<StoredCopy>,
}

/// (goal, conversion event id, [(detection event id, direct?)]).
type StoredCopy = (GoalId, String, Vec<(String, bool)>);

#[derive(Debug, Serialize, Deserialize)]
struct DetectionCopy {
    id: String,
    t: i64,
    l: String,
    e: String,
    p: f64,
    g: bool,
    f: bool,
    x: bool,
    m: String,
    k: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ConversionCopy {
    id: String,
    t: i64,
    n: String,
    g: bool,
    x: bool,
    v: Option<f64>,
}

impl SessionCopy {
    fn of(evicted: &Evicted, incarnation: Uuid) -> Self {
        let session = &evicted.session;
        Self {
            incarnation,
            fingerprint: evicted.fingerprint,
            version: evicted.version,
            detections: session
                .detections()
                .iter()
                .map(|d| DetectionCopy {
                    id: d.event_id.to_string(),
                    t: d.event_time,
                    l: d.label.to_string(),
                    e: d.entity_id.to_string(),
                    p: d.confidence,
                    g: d.consent_granted,
                    f: d.filtered,
                    x: d.is_test,
                    m: d.model_version.to_string(),
                    k: d.category.as_deref().map(str::to_owned),
                })
                .collect(),
            conversions: session
                .conversions()
                .iter()
                .map(|c| ConversionCopy {
                    id: c.event_id.to_string(),
                    t: c.event_time,
                    n: c.name.to_string(),
                    g: c.consent_granted,
                    x: c.is_test,
                    v: c.value,
                })
                .collect(),
            stored: session
                .stored()
                .iter()
                .map(|((goal, conversion), credits)| {
                    (
                        *goal,
                        conversion.to_string(),
                        credits
                            .iter()
                            .map(|(id, credit)| (id.to_string(), *credit == Credit::Direct))
                            .collect(),
                    )
                })
                .collect(),
        }
    }

    fn into_loaded(self, key: &SessionKey) -> LoadedSession {
        let pair: Keys = std::sync::Arc::from([(key.name.clone(), key.value.clone())]);
        let keys = || std::sync::Arc::clone(&pair);
        let detections = self.detections.into_iter().map(|d| {
            SessionEvent::Detection(Detection {
                event_id: Id::from(d.id),
                event_time: d.t,
                label: Text::from(d.l),
                entity_id: Id::from(d.e),
                confidence: d.p,
                keys: keys(),
                consent_granted: d.g,
                filtered: d.f,
                is_test: d.x,
                model_version: Text::from(d.m),
                category: d.k.map(Text::from),
            })
        });
        let conversions = self.conversions.into_iter().map(|c| {
            SessionEvent::Conversion(Conversion {
                event_id: Id::from(c.id),
                event_time: c.t,
                name: Text::from(c.n),
                keys: keys(),
                consent_granted: c.g,
                is_test: c.x,
                value: c.v,
            })
        });
        LoadedSession {
            events: detections.chain(conversions).collect(),
            credits: self
                .stored
                .into_iter()
                .map(|(goal, conversion, credits)| {
                    let credits = credits
                        .into_iter()
                        .map(|(id, direct)| {
                            let credit = if direct {
                                Credit::Direct
                            } else {
                                Credit::Assisted
                            };
                            (Id::from(id), credit)
                        })
                        .collect();
                    (goal, Id::from(conversion), credits)
                })
                .collect(),
            version: self.version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_brings_back_the_same_session() {
        let key = SessionKey {
            tenant: TenantId::from_uuid(Uuid::nil()),
            name: Text::from("session_token"),
            value: Text::from("s-1"),
        };
        let keys: Keys = std::sync::Arc::from([(key.name.clone(), key.value.clone())]);
        let mut session = Session::new();
        let detection = Detection {
            event_id: Id::from("d-1"),
            event_time: 1_000,
            label: Text::from("barcode"),
            entity_id: Id::from("sku-1"),
            confidence: 0.75,
            keys: keys.clone(),
            consent_granted: false,
            filtered: true,
            is_test: true,
            model_version: Text::from("v2"),
            category: Some(Text::from("shoes")),
        };
        let conversion = Conversion {
            event_id: Id::from("c-1"),
            event_time: 2_000,
            name: Text::from("purchase"),
            keys,
            consent_granted: true,
            is_test: false,
            value: Some(3.5),
        };
        session.insert(SessionEvent::Detection(detection.clone()));
        session.insert(SessionEvent::Conversion(conversion.clone()));
        let goal = Uuid::new_v4();
        session.set_stored(
            goal,
            Id::from("c-1"),
            vec![(Id::from("d-1"), Credit::Direct)],
        );

        let evicted = Evicted {
            key: key.clone(),
            session,
            fingerprint: 7,
            version: Some(41),
        };
        let json =
            serde_json::to_string(&SessionCopy::of(&evicted, Uuid::nil())).expect("serialisable");
        let copy: SessionCopy = serde_json::from_str(&json).expect("readable");
        assert_eq!(copy.fingerprint, 7);
        let loaded = copy.into_loaded(&key);
        assert_eq!(loaded.version, Some(41));
        assert_eq!(
            loaded.events,
            vec![
                SessionEvent::Detection(detection),
                SessionEvent::Conversion(conversion)
            ]
        );
        assert_eq!(
            loaded.credits,
            vec![(
                goal,
                Id::from("c-1"),
                vec![(Id::from("d-1"), Credit::Direct)]
            )]
        );
    }
}
