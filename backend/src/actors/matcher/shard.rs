//! A shard: the actor that owns a share of the sessions (by hash of the session key) and
//! matches their events one round at a time.
//!
//! A round takes all the work queued so far: it reads the tenants' goals, loads the sessions
//! not in memory (from their hot copy in Redis, else from PostgreSQL: events inside the
//! horizon and their stored attributions), feeds the work to the sessions (pure), and writes
//! every resulting change in one transaction. Work that arrives meanwhile waits for the next round, so rounds grow with
//! load. If the write fails, the sessions it touched leave memory (storage is the truth) and
//! the round is tried again, so nothing accepted goes unmatched.
//!
//! An erasure's [`Purge`] waits for the round in flight: that round may hold an erased event
//! (loaded before the erasure) and puts its sessions back in memory when it ends.

use super::goal_cache::{GoalCache, TenantGoals};
use super::hot_copy::{Currency, Evicted, HotCopies};
use super::messages::{ForgetGoal, Process, Purge, SessionKey, Shutdown, Work};
use super::round::{self, Piece};
use super::store::{LoadedSession, Residency, SessionStore, StoreLimits};
use crate::auth::TenantScope;
use crate::domain::{TenantId, Timestamp};
use crate::matching::session::{GoalId, SessionEvent, StoredCredits};
use crate::matching::{Id, Millis, Text};
use crate::metrics;
use crate::storage::attributions::{self, ChangeSet, WriteOutcome};
use crate::storage::session_versions::{self, SessionRow};
use crate::storage::sessions;
use actix::prelude::*;
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most pieces of work in one round: bounds a round's memory and transaction size.
const MAX_ROUND_WORK: usize = 20_000;
/// How often idle sessions are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(10);
/// Waits between retries of a failed round: doubling up to the last.
const RETRY_DELAYS_MS: [u64; 6] = [50, 100, 250, 500, 1000, 2000];

/// A round made ready: its sessions claimed (on PostgreSQL) in the transaction it will
/// write in, and the ones not resident as they must be, loaded.
struct Prepared {
    goals: HashMap<TenantId, Arc<TenantGoals>>,
    loaded: HashMap<SessionKey, LoadedSession>,
    /// The round's transaction; `None` when no session takes part.
    txn: Option<DatabaseTransaction>,
    /// The version the claim gave, and the sessions it claimed.
    claimed: Option<(i64, Vec<SessionKey>)>,
}

/// Where a round's time went, for the debug log.
#[derive(Debug, Default)]
struct RoundTiming {
    pieces: usize,
    /// Sessions made resident (from hot copies or the database).
    loaded: usize,
    /// Goals, hot copies and database loads.
    prepare: Duration,
    /// The in-memory round.
    apply: Duration,
}

pub struct Shard {
    db: DatabaseConnection,
    goals: Arc<GoalCache>,
    /// Where evicted sessions go, and come back from first (Redis only).
    copies: Option<Arc<HotCopies>>,
    store: SessionStore,
    pending: VecDeque<Work>,
    /// Purges waiting for the round in flight to end.
    purges: Vec<Purge>,
    /// A round is in flight: the store must not lose a session the round counts on.
    busy: bool,
    /// Shutting down: stop once the round in flight is over.
    stopping: bool,
    failures: usize,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("sessions", &self.store.len())
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Shard {
    pub fn new(
        db: DatabaseConnection,
        goals: Arc<GoalCache>,
        copies: Option<Arc<HotCopies>>,
        limits: StoreLimits,
    ) -> Self {
        Self {
            db,
            goals,
            copies,
            store: SessionStore::new(limits),
            pending: VecDeque::new(),
            purges: Vec::new(),
            busy: false,
            stopping: false,
            failures: 0,
        }
    }

    /// Starts a round if none is running and work is waiting.
    fn kick(&mut self, ctx: &mut Context<Self>) {
        if self.busy || self.pending.is_empty() {
            return;
        }
        self.busy = true;
        let started = Instant::now();
        let take = self.pending.len().min(MAX_ROUND_WORK);
        let round: Vec<Work> = self.pending.drain(..take).collect();

        let mut tenants: Vec<TenantId> = round.iter().map(|w| w.session().tenant).collect();
        tenants.sort_unstable_by_key(|t| t.as_uuid());
        tenants.dedup();
        // Each session of the round with how it is resident, if it is.
        let sessions: Vec<(SessionKey, Option<Residency>)> = round
            .iter()
            .map(Work::session)
            .collect::<HashSet<_>>()
            .into_iter()
            .map(|key| (key.clone(), self.store.residency(key)))
            .collect();

        let db = self.db.clone();
        let goal_cache = Arc::clone(&self.goals);
        let copies = self.copies.clone();
        let prepare = async move {
            let mut goals = HashMap::new();
            for tenant in &tenants {
                goals.insert(*tenant, goal_cache.get(&db, *tenant).await?);
            }
            // Only sessions some active goal uses take part: nothing settles in the others
            // (their events are read from storage by a later load).
            let used: Vec<(SessionKey, Option<Residency>)> = sessions
                .into_iter()
                .filter(|(key, _)| {
                    goals
                        .get(&key.tenant)
                        .is_some_and(|g| g.uses_key(&key.name))
                })
                .collect();
            // A round no session takes part in changes nothing but what a re-evaluation of a
            // goal gone inactive removes; its transaction waits until there is a change.
            if used.is_empty() {
                return Ok(Prepared {
                    goals,
                    loaded: HashMap::new(),
                    txn: None,
                    claimed: None,
                });
            }
            let txn = attributions::begin_round(&db).await?;
            let rows: Vec<SessionRow> = used.iter().map(|(key, _)| session_row(key)).collect();
            let claim = session_versions::claim(&txn, &rows).await?;
            let versioned = txn.get_database_backend() == DbBackend::Postgres;
            let latest: HashMap<SessionKey, i64> = used
                .iter()
                .zip(&rows)
                .filter_map(|((key, _), row)| {
                    Some((key.clone(), claim.previous.get(row).copied().flatten()?))
                })
                .collect();
            // A resident session is used as it is only when it was last used under the
            // tenant's current goals (while they left its key unused, events went by it) and,
            // with versions, no other process has settled it since this one did.
            let mut stale: Vec<SessionKey> = Vec::new();
            let mut settled_elsewhere = 0;
            for (key, resident) in &used {
                let Some(resident) = resident else {
                    stale.push(key.clone());
                    continue;
                };
                let same_goals =
                    goals.get(&key.tenant).map(|g| g.fingerprint) == Some(resident.fingerprint);
                let latest_version = !versioned
                    || (resident.version.is_some() && resident.version == latest.get(key).copied());
                if !latest_version && resident.version.is_some() {
                    settled_elsewhere += 1;
                }
                if !(same_goals && latest_version) {
                    stale.push(key.clone());
                }
            }
            let mut loaded = match &copies {
                Some(copies) => {
                    let fingerprints = goals.iter().map(|(t, g)| (*t, g.fingerprint)).collect();
                    let currency = if versioned {
                        Currency::Versions(&latest)
                    } else {
                        Currency::Incarnation
                    };
                    copies.take(&stale, &fingerprints, currency).await
                }
                None => HashMap::new(),
            };
            let from_database: Vec<SessionKey> = stale
                .into_iter()
                .filter(|key| !loaded.contains_key(key))
                .collect();
            metrics::SESSIONS_SETTLED_ELSEWHERE.add(settled_elsewhere);
            metrics::SESSIONS_FROM_COPIES.add(loaded.len());
            metrics::SESSIONS_FROM_DATABASE.add(from_database.len());
            loaded.extend(load_sessions(&txn, &goals, from_database).await?);
            let claimed = used.into_iter().map(|(key, _)| key).collect();
            Ok::<_, DbErr>(Prepared {
                goals,
                loaded,
                txn: Some(txn),
                claimed: versioned.then_some((claim.version, claimed)),
            })
        };
        ctx.spawn(prepare.into_actor(self).then(move |prepared, act, _| {
            let mut timing = RoundTiming {
                pieces: round.len(),
                loaded: prepared.as_ref().map_or(0, |p| p.loaded.len()),
                prepare: started.elapsed(),
                ..RoundTiming::default()
            };
            let computed = prepared.map(|prepared| {
                let (sets, touched) = act.apply(&round, &prepared.goals, prepared.loaded);
                (sets, touched, prepared.txn, prepared.claimed)
            });
            timing.apply = started.elapsed() - timing.prepare;
            let db = act.db.clone();
            async move {
                let (sets, touched, txn, claimed) = match computed {
                    Ok(computed) => computed,
                    Err(err) => return (Err(err), Vec::new(), None),
                };
                let txn = match txn {
                    Some(txn) => txn,
                    None if sets.iter().all(|set| set.changes.is_empty()) => {
                        return (Ok(WriteOutcome::Written), touched, claimed);
                    }
                    None => match attributions::begin_round(&db).await {
                        Ok(txn) => txn,
                        Err(err) => return (Err(err), touched, claimed),
                    },
                };
                let outcome = attributions::write_changes(txn, &sets).await;
                (outcome, touched, claimed)
            }
            .into_actor(act)
            .map(move |(outcome, touched, claimed), act, ctx| {
                let write = started.elapsed() - timing.prepare - timing.apply;
                tracing::debug!(
                    pieces = timing.pieces,
                    loaded = timing.loaded,
                    prepare_ms = timing.prepare.as_secs_f64() * 1e3,
                    apply_ms = timing.apply.as_secs_f64() * 1e3,
                    write_ms = write.as_secs_f64() * 1e3,
                    "matching round"
                );
                act.finish(round, outcome, touched, claimed, ctx)
            })
        }));
    }

    /// Makes the loaded sessions resident and feeds the round's work to its sessions;
    /// returns the changes to write and the sessions touched (whose stored attributions now
    /// run ahead of storage until the write commits).
    fn apply(
        &mut self,
        round: &[Work],
        goals: &HashMap<TenantId, Arc<TenantGoals>>,
        loaded: HashMap<SessionKey, LoadedSession>,
    ) -> (Vec<ChangeSet>, Vec<SessionKey>) {
        let now = Instant::now();
        for (key, session) in loaded {
            let fingerprint = goals.get(&key.tenant).map_or(0, |g| g.fingerprint);
            self.store.admit(key, session, now, fingerprint);
        }
        let pieces = round.iter().map(|work| match work {
            Work::Event { session, event, .. } => (session, Piece::Event(event)),
            Work::Reevaluate {
                session, goal_id, ..
            } => (session, Piece::Reevaluate(*goal_id)),
        });
        let applied = round::apply(
            &mut self.store,
            pieces,
            goals,
            now,
            Timestamp::now().as_millis(),
        );
        // One set per tenant of the round, changed or not: the write checks every tenant's
        // goals (see `attributions::write_changes`).
        let mut changes: HashMap<TenantId, Vec<_>> = applied.changes.into_iter().collect();
        let sets = goals
            .iter()
            .map(|(tenant, tenant_goals)| ChangeSet {
                tenant: TenantScope::authenticated(*tenant),
                revisions: tenant_goals.revisions.clone(),
                changes: changes.remove(tenant).unwrap_or_default(),
            })
            .collect();
        (sets, applied.touched)
    }

    fn finish(
        &mut self,
        round: Vec<Work>,
        outcome: Result<WriteOutcome, DbErr>,
        touched: Vec<SessionKey>,
        claimed: Option<(i64, Vec<SessionKey>)>,
        ctx: &mut Context<Self>,
    ) {
        match outcome {
            Ok(WriteOutcome::Written) => {
                self.failures = 0;
                metrics::MATCHING_ROUNDS.add(1);
                for key in &touched {
                    self.store.refresh_size(key);
                }
                // The round's sessions now hold what their rows' new version stands for.
                if let Some((version, claimed)) = claimed {
                    for key in &claimed {
                        self.store.set_version(key, version);
                    }
                }
                // Dropping the round releases its tokens: those events are matched.
                drop(round);
                let evicted = self.store.enforce_budget();
                self.put_copies_then_go_on(evicted, ctx);
            }
            Ok(WriteOutcome::StaleGoals) => {
                tracing::debug!("a goal changed during a matching round; retrying");
                for work in &round {
                    self.goals.invalidate(work.session().tenant);
                }
                self.retry(round, touched, Duration::ZERO, ctx);
            }
            Err(err) => {
                let delay = RETRY_DELAYS_MS[self.failures.min(RETRY_DELAYS_MS.len() - 1)];
                self.failures += 1;
                tracing::warn!(error = %err, work = round.len(), retry_in_ms = delay, "matching round failed");
                self.retry(round, touched, Duration::from_millis(delay), ctx);
            }
        }
    }

    /// Puts a round back at the head of the queue and forgets the sessions it touched, whose
    /// in-memory attributions may now differ from storage.
    fn retry(
        &mut self,
        round: Vec<Work>,
        touched: Vec<SessionKey>,
        delay: Duration,
        ctx: &mut Context<Self>,
    ) {
        for key in touched {
            self.store.remove(&key);
        }
        for work in round.into_iter().rev() {
            self.pending.push_front(work);
        }
        ctx.run_later(delay, |act, ctx| act.go_on(ctx));
    }
}

impl Shard {
    /// Writes the hot copies of evicted sessions, then starts the next round. The shard
    /// stays busy meanwhile, so no round can load a session whose copy is not written yet.
    fn put_copies_then_go_on(&mut self, evicted: Vec<Evicted>, ctx: &mut Context<Self>) {
        match &self.copies {
            Some(copies) if !evicted.is_empty() => {
                let copies = Arc::clone(copies);
                ctx.spawn(
                    async move { copies.put(evicted).await }
                        .into_actor(self)
                        .map(|(), act, ctx| act.go_on(ctx)),
                );
            }
            _ => self.go_on(ctx),
        }
    }

    /// The round is over: start the next, or stop if the server is shutting down (what is
    /// still queued is re-matched by the next start's recovery).
    fn go_on(&mut self, ctx: &mut Context<Self>) {
        self.busy = false;
        if self.stopping {
            ctx.stop();
        } else if !self.purges.is_empty() {
            self.purge_then_go_on(ctx);
        } else {
            self.kick(ctx);
        }
    }

    /// Drops the purged sessions and deletes their hot copies, staying busy meanwhile so
    /// that no round can take a copy about to be deleted; then answers the purges.
    fn purge_then_go_on(&mut self, ctx: &mut Context<Self>) {
        self.busy = true;
        let purges = std::mem::take(&mut self.purges);
        let keys: Vec<SessionKey> = purges
            .iter()
            .flat_map(|purge| purge.sessions.iter().cloned())
            .collect();
        for key in &keys {
            self.store.remove(key);
        }
        let answer = move |purges: Vec<Purge>| {
            for purge in purges {
                let _ = purge.done.send(());
            }
        };
        match &self.copies {
            Some(copies) => {
                let copies = Arc::clone(copies);
                ctx.spawn(
                    async move { copies.discard(&keys).await }
                        .into_actor(self)
                        .map(move |(), act, ctx| {
                            answer(purges);
                            act.go_on(ctx);
                        }),
                );
            }
            None => {
                answer(purges);
                self.go_on(ctx);
            }
        }
    }
}

impl Actor for Shard {
    type Context = Context<Self>;

    /// The shard's thread has nothing else to run.
    fn stopped(&mut self, _: &mut Context<Self>) {
        Arbiter::current().stop();
    }

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(SWEEP_EVERY, |act, ctx| {
            // Never while a round is in flight: it counts on the sessions it found resident.
            if !act.busy {
                act.busy = true;
                let evicted = act.store.evict_idle(Instant::now());
                act.put_copies_then_go_on(evicted, ctx);
            }
        });
    }
}

impl Handler<Shutdown> for Shard {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) {
        self.stopping = true;
        if !self.busy {
            ctx.stop();
        }
    }
}

impl Handler<Process> for Shard {
    type Result = ();

    fn handle(&mut self, message: Process, ctx: &mut Context<Self>) {
        self.pending.extend(message.0);
        self.kick(ctx);
    }
}

impl Handler<Purge> for Shard {
    type Result = ();

    fn handle(&mut self, message: Purge, ctx: &mut Context<Self>) {
        self.purges.push(message);
        if !self.busy {
            self.purge_then_go_on(ctx);
        }
    }
}

impl Handler<ForgetGoal> for Shard {
    type Result = ();

    fn handle(&mut self, message: ForgetGoal, _: &mut Context<Self>) {
        self.store.forget_goal(message.tenant, message.goal_id);
    }
}

/// Reads sessions from the database: their events inside the tenant's horizon and the
/// attributions stored for their conversions.
async fn load_sessions(
    db: &impl ConnectionTrait,
    goals: &HashMap<TenantId, Arc<TenantGoals>>,
    absent: Vec<SessionKey>,
) -> Result<HashMap<SessionKey, LoadedSession>, DbErr> {
    let mut groups: HashMap<(TenantId, Text), Vec<Text>> = HashMap::new();
    for key in absent {
        groups
            .entry((key.tenant, key.name))
            .or_default()
            .push(key.value);
    }
    let mut loaded = HashMap::new();
    let now: Millis = Timestamp::now().as_millis();
    for ((tenant, name), values) in groups {
        let Some(tenant_goals) = goals.get(&tenant) else {
            continue;
        };
        let scope = TenantScope::authenticated(tenant);
        let since = Timestamp::from_millis(now.saturating_sub(tenant_goals.horizon))
            .unwrap_or_else(Timestamp::now)
            .as_datetime();
        let value_refs: Vec<&str> = values.iter().map(|v| &**v).collect();
        let rows = sessions::load(db, &scope, &name, &value_refs, since).await?;
        let mut by_value: HashMap<Text, LoadedSession> = values
            .iter()
            .map(|value| (value.clone(), LoadedSession::default()))
            .collect();
        let value_of = |keys: &[(Text, Text)]| {
            keys.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.clone())
        };
        for detection in rows.detections {
            if let Some(session) = value_of(&detection.keys).and_then(|v| by_value.get_mut(&v)) {
                session.events.push(SessionEvent::Detection(detection));
            }
        }
        let mut owner: HashMap<Id, Text> = HashMap::new();
        for conversion in rows.conversions {
            if let Some(value) = value_of(&conversion.keys)
                && let Some(session) = by_value.get_mut(&value)
            {
                owner.insert(conversion.event_id.clone(), value);
                session.events.push(SessionEvent::Conversion(conversion));
            }
        }
        // Only goals on this key store their rows through this session.
        let on_key: HashSet<GoalId> = tenant_goals.on_key(&name).map(|g| g.id).collect();
        let conversion_ids: Vec<String> = owner.keys().map(Id::to_string).collect();
        let mut stored: HashMap<(GoalId, Id), StoredCredits> = HashMap::new();
        for (goal, conversion, detection, credit) in
            attributions::stored_for(db, &scope, &conversion_ids).await?
        {
            if on_key.contains(&goal) {
                stored
                    .entry((goal, Id::from(conversion)))
                    .or_default()
                    .push((Id::from(detection), credit));
            }
        }
        for ((goal, conversion), credits) in stored {
            if let Some(session) = owner.get(&conversion).and_then(|v| by_value.get_mut(v)) {
                session.credits.push((goal, conversion, credits));
            }
        }
        for (value, session) in by_value {
            loaded.insert(
                SessionKey {
                    tenant,
                    name: name.clone(),
                    value,
                },
                session,
            );
        }
    }
    Ok(loaded)
}

/// A session as its `session_versions` row names it.
fn session_row(key: &SessionKey) -> SessionRow {
    (
        key.tenant.as_uuid(),
        key.name.to_string(),
        key.value.to_string(),
    )
}
