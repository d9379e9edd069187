//! The matcher: session actors that keep every conversion's attributions current.
//!
//! Accepted events are routed, once per tracking key they carry, to the shard that owns that
//! session (by hash), so work on one session is serialised and different sessions run in
//! parallel on one thread per shard. Goal changes re-evaluate in the background. Start-up
//! recovery re-matches what a crash may have left unmatched (see [`recovery`]), and a write
//! interrupted by a database outage is followed by the same re-match (see [`rematch`]). An erasure
//! makes matching forget the erased events (see [`erasure`]).

mod erasure;
pub mod goal_cache;
mod hot_copy;
pub mod in_flight;
mod messages;
mod recovery;
mod reevaluation;
mod rematch;
pub mod round;
mod shard;
pub mod store;

pub use goal_cache::matching_goal;
pub use messages::SessionKey;

use crate::cache::HotStore;
use crate::cluster::{self, Change};
use crate::domain::TenantId;
use crate::domain::events::{Consent, EventBody};
use crate::ingest::policy_cache::PolicyCache;
use crate::matching::session::{GoalId, SessionEvent};
use crate::matching::{Conversion, Detection, Id, Keys, Text};
use crate::storage::events::EventRow;
use actix::prelude::*;
use goal_cache::GoalCache;
use hot_copy::HotCopies;
use in_flight::{InFlight, Token};
use messages::{Done, ForgetGoal, Process, Shutdown, Work};
use sea_orm::{DatabaseConnection, DbErr};
use shard::Shard;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Duration;
use store::StoreLimits;

/// How the matcher is sized.
#[derive(Debug, Clone, Copy)]
pub struct MatcherConfig {
    /// Shards, each an actor on its own thread.
    pub shards: usize,
    /// Memory budget of all resident sessions together.
    pub memory_bytes: usize,
    /// How long a session stays resident without work.
    pub idle: Duration,
}

/// The shards' addresses; the shards stop (and their threads with them) when the last
/// handle goes. Stopping a thread under a shard instead would drop its database work
/// mid-flight, outside any runtime.
struct ShardSet {
    addresses: Vec<Addr<Shard>>,
    hasher: std::collections::hash_map::RandomState,
}

impl Drop for ShardSet {
    fn drop(&mut self) {
        for address in &self.addresses {
            address.do_send(Shutdown);
        }
    }
}

/// The handle the rest of the server uses.
#[derive(Clone)]
pub struct Matcher {
    shards: Arc<ShardSet>,
    db: DatabaseConnection,
    goals: Arc<GoalCache>,
    in_flight: Arc<InFlight>,
    rematch: Arc<rematch::Rematch>,
    /// This process's name in the matching checkpoints (see [`recovery`]).
    node: Arc<str>,
}

impl std::fmt::Debug for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Matcher")
            .field("shards", &self.shards.addresses.len())
            .finish_non_exhaustive()
    }
}

impl Matcher {
    /// Registers this process's checkpoint as `node`, starts the shards, each on a thread of
    /// its own, then the re-match of what the previous run under that name left and the
    /// checkpoint writer. Must run inside an actix system. With Redis, evicted sessions keep
    /// a hot copy there.
    pub async fn start(
        db: DatabaseConnection,
        hot: &HotStore,
        policies: Arc<PolicyCache>,
        config: MatcherConfig,
        node: &str,
    ) -> Result<Self, DbErr> {
        let recover_from =
            crate::storage::sessions::register_checkpoint(&db, node, chrono::Utc::now()).await?;
        let goals = Arc::new(GoalCache::new(policies));
        let copies = HotCopies::new(hot).map(Arc::new);
        let count = config.shards.max(1);
        let limits = StoreLimits {
            memory_bytes: config.memory_bytes / count,
            idle: config.idle,
        };
        let mut addresses = Vec::with_capacity(count);
        for _ in 0..count {
            let arbiter = Arbiter::new();
            let (db, goals, copies) = (db.clone(), Arc::clone(&goals), copies.clone());
            addresses.push(Shard::start_in_arbiter(&arbiter.handle(), move |_| {
                Shard::new(db, goals, copies, limits)
            }));
        }
        let matcher = Self {
            shards: Arc::new(ShardSet {
                addresses,
                hasher: Default::default(),
            }),
            db,
            goals,
            in_flight: Arc::new(InFlight::default()),
            rematch: Arc::default(),
            node: Arc::from(node),
        };
        recovery::start(matcher.clone(), recover_from);
        Ok(matcher)
    }

    /// The received time for a new ingest request, and the token that keeps the matching
    /// checkpoint behind it until its events are matched.
    pub fn begin_request(&self) -> (crate::domain::Timestamp, Arc<Token>) {
        self.in_flight.begin()
    }

    /// Hands committed events to their sessions (one per tracking key they carry).
    pub fn submit(&self, rows: &[&EventRow], token: &Arc<Token>) {
        let work: Vec<Work> = rows
            .iter()
            .filter(|row| row.keep_keys)
            .flat_map(|row| work_for(row.tenant_id, session_event(row), token, None))
            .collect();
        self.route(work);
    }

    /// Sends work to the shards that own its sessions, one message per shard.
    fn route(&self, work: impl IntoIterator<Item = Work>) {
        let shards = &self.shards.addresses;
        let mut per_shard: Vec<Vec<Work>> = (0..shards.len()).map(|_| Vec::new()).collect();
        for item in work {
            per_shard[self.shard_of(item.session())].push(item);
        }
        for (address, work) in shards.iter().zip(per_shard) {
            if !work.is_empty() {
                // Unbounded on purpose: the ingest writer's queue is the bound; refusing
                // here would leave committed events unmatched until a restart.
                address.do_send(Process(work));
            }
        }
    }

    fn shard_of(&self, session: &SessionKey) -> usize {
        let hash = self.shards.hasher.hash_one(session);
        (hash % self.shards.addresses.len() as u64) as usize
    }

    /// A goal was created, changed or deleted: forget what sessions hold for it and
    /// re-evaluate it in the background.
    pub fn goal_changed(&self, tenant: TenantId, goal_id: GoalId) {
        self.goals.invalidate(tenant);
        cluster::announce(&self.db, Change::Goals(tenant));
        for address in &self.shards.addresses {
            address.do_send(ForgetGoal { tenant, goal_id });
        }
        reevaluation::start(self.clone(), tenant, goal_id);
    }

    /// The tenant's policies changed: the matching horizon (longest window plus the oldest
    /// event age accepted) may have moved, so the goals are read again, and with them a new
    /// fingerprint, under which resident sessions are read again from storage before use.
    pub fn policy_changed(&self, tenant: TenantId) {
        self.goals.invalidate(tenant);
        cluster::announce(&self.db, Change::Policy(tenant));
    }

    /// Another process changed the tenant's goals or policies (see [`crate::cluster`]): the
    /// cached goals are read again. Resident sessions follow by the goal fingerprint, and
    /// the re-evaluation is that process's.
    pub fn goals_changed_elsewhere(&self, tenant: TenantId) {
        self.goals.invalidate(tenant);
    }

    /// Changes of other processes may have gone unheard: every tenant's goals are read again.
    pub fn all_goals_outdated(&self) {
        self.goals.invalidate_all();
    }

    /// An identity's events were erased from storage (committed): forget them everywhere in
    /// matching and settle the sessions they were part of again. The receiver resolves once
    /// that is done; the work goes on even if it is dropped.
    pub fn identity_erased(
        &self,
        tenant: TenantId,
        erased: crate::storage::erasure::ErasedEvents,
    ) -> tokio::sync::oneshot::Receiver<()> {
        erasure::start(self.clone(), tenant, erased)
    }
}

/// The work of one event: one piece per tracking key it carries (none when its keys were
/// stripped).
fn work_for(
    tenant: TenantId,
    event: SessionEvent,
    token: &Arc<Token>,
    done: Option<&Done>,
) -> Vec<Work> {
    let keys = match &event {
        SessionEvent::Detection(d) => &d.keys,
        SessionEvent::Conversion(c) => &c.keys,
    };
    keys.iter()
        .map(|(name, value)| Work::Event {
            session: SessionKey {
                tenant,
                name: name.clone(),
                value: value.clone(),
            },
            event: event.clone(),
            token: Arc::clone(token),
            done: done.cloned(),
        })
        .collect()
}

/// A committed event as its sessions hold it.
fn session_event(row: &EventRow) -> SessionEvent {
    let event = &row.event;
    let keys: Keys = event
        .keys
        .iter()
        .map(|(name, value)| (Text::from(name.as_str()), Text::from(value.as_str())))
        .collect();
    let event_id = Id::from(event.event_id.as_str());
    let event_time = event.event_time.as_millis();
    let consent_granted = row.consent == Consent::Granted;
    match &event.body {
        EventBody::Detection(d) => SessionEvent::Detection(Detection {
            event_id,
            event_time,
            label: Text::from(d.label.as_str()),
            entity_id: Id::from(d.entity_id.as_str()),
            confidence: d.confidence.get(),
            keys,
            consent_granted,
            filtered: d.filtered,
            is_test: event.test,
            model_version: Text::from(d.model_version.as_str()),
            category: d.category.as_ref().map(|c| Text::from(c.as_str())),
        }),
        EventBody::Conversion(c) => SessionEvent::Conversion(Conversion {
            event_id,
            event_time,
            name: Text::from(c.name.as_str()),
            keys,
            consent_granted,
            is_test: event.test,
            value: c.value,
        }),
    }
}

/// A signal that resolves once every piece of work holding `Done` is finished.
fn done_signal() -> (Done, tokio::sync::oneshot::Receiver<()>) {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    (Arc::new(sender), receiver)
}
