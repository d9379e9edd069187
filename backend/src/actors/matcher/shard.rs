//! A shard: the actor that owns a share of the sessions (by hash of the session key) and
//! matches their events one round at a time.
//!
//! A round takes all the work queued so far: it reads the tenants' goals, loads the sessions
//! not in memory from PostgreSQL (events inside the horizon and their stored attributions),
//! feeds the work to the sessions (pure), and writes every resulting change in one
//! transaction. Work that arrives meanwhile waits for the next round, so rounds grow with
//! load. If the write fails, the sessions it touched leave memory (storage is the truth) and
//! the round is tried again, so nothing accepted goes unmatched.

use super::goal_cache::{GoalCache, TenantGoals};
use super::messages::{ForgetGoal, Process, SessionKey, ShardStats, Stats, Work};
use crate::auth::TenantScope;
use crate::domain::{TenantId, Timestamp};
use crate::matching::session::{Change, GoalId, Session, SessionEvent};
use crate::matching::{Millis, Text};
use crate::storage::attributions::{self, ChangeSet, WriteOutcome};
use crate::storage::sessions;
use actix::prelude::*;
use sea_orm::{DatabaseConnection, DbErr};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most pieces of work in one round: bounds a round's memory and transaction size.
const MAX_ROUND_WORK: usize = 20_000;
/// How often idle sessions are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(10);
/// Waits between retries of a failed round: doubling up to the last.
const RETRY_DELAYS_MS: [u64; 6] = [50, 100, 250, 500, 1000, 2000];

#[derive(Debug)]
struct Resident {
    session: Session,
    last_used: Instant,
    bytes: usize,
}

/// How a shard is sized.
#[derive(Debug, Clone, Copy)]
pub struct ShardLimits {
    pub memory_bytes: usize,
    pub idle: Duration,
}

pub struct Shard {
    db: DatabaseConnection,
    goals: Arc<GoalCache>,
    limits: ShardLimits,
    sessions: HashMap<SessionKey, Resident>,
    pending: VecDeque<Work>,
    /// A round is in flight; the sessions map must not lose anything it counts on.
    busy: bool,
    bytes: usize,
    failures: usize,
    evicted: u64,
    loaded: u64,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("sessions", &self.sessions.len())
            .field("pending", &self.pending.len())
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl Shard {
    pub fn new(db: DatabaseConnection, goals: Arc<GoalCache>, limits: ShardLimits) -> Self {
        Self {
            db,
            goals,
            limits,
            sessions: HashMap::new(),
            pending: VecDeque::new(),
            busy: false,
            bytes: 0,
            failures: 0,
            evicted: 0,
            loaded: 0,
        }
    }

    /// Starts a round if none is running and work is waiting.
    fn kick(&mut self, ctx: &mut Context<Self>) {
        if self.busy || self.pending.is_empty() {
            return;
        }
        self.busy = true;
        let take = self.pending.len().min(MAX_ROUND_WORK);
        let round: Vec<Work> = self.pending.drain(..take).collect();

        let mut tenants: Vec<TenantId> = round.iter().map(|w| w.session().tenant).collect();
        tenants.sort_unstable_by_key(|t| t.as_uuid());
        tenants.dedup();
        let mut absent: Vec<SessionKey> = round
            .iter()
            .map(Work::session)
            .filter(|key| !self.sessions.contains_key(key))
            .cloned()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        absent.sort_unstable_by(|a, b| (&a.name, &a.value).cmp(&(&b.name, &b.value)));

        let db = self.db.clone();
        let goal_cache = Arc::clone(&self.goals);
        let prepare = async move {
            let mut goals = HashMap::new();
            for tenant in tenants {
                goals.insert(tenant, goal_cache.get(&db, tenant).await?);
            }
            let loaded = load_sessions(&db, &goals, absent).await?;
            Ok::<_, DbErr>((goals, loaded))
        };
        ctx.spawn(prepare.into_actor(self).then(move |prepared, act, _| {
            let computed = prepared.map(|(goals, loaded)| act.apply(&round, &goals, loaded));
            let db = act.db.clone();
            async move {
                match computed {
                    Ok((sets, touched)) => {
                        let outcome = if sets.iter().all(|s| s.changes.is_empty()) {
                            Ok(WriteOutcome::Written)
                        } else {
                            attributions::write_changes(&db, &sets).await
                        };
                        (outcome, touched)
                    }
                    Err(err) => (Err(err), HashSet::new()),
                }
            }
            .into_actor(act)
            .map(move |(outcome, touched), act, ctx| act.finish(round, outcome, touched, ctx))
        }));
    }

    /// Feeds a round's work to its sessions; returns the changes to write and the sessions
    /// touched (whose stored attributions now run ahead of storage until the write commits).
    fn apply(
        &mut self,
        round: &[Work],
        goals: &HashMap<TenantId, Arc<TenantGoals>>,
        loaded: HashMap<SessionKey, Session>,
    ) -> (Vec<ChangeSet>, HashSet<SessionKey>) {
        let now = Instant::now();
        self.loaded += loaded.len() as u64;
        for (key, session) in loaded {
            self.sessions.insert(
                key,
                Resident {
                    session,
                    last_used: now,
                    bytes: 0,
                },
            );
        }
        let now_millis = Timestamp::now().as_millis();
        // The last change per (tenant, goal, conversion) wins: it is the settled state.
        let mut changes: HashMap<(TenantId, GoalId, Text), Change> = HashMap::new();
        let mut touched = HashSet::new();
        for work in round {
            let key = work.session();
            let (Some(resident), Some(tenant_goals)) =
                (self.sessions.get_mut(key), goals.get(&key.tenant))
            else {
                // Not resident: no active goal uses this key, so there is nothing to settle;
                // a later load reads the event from storage.
                continue;
            };
            resident.last_used = now;
            touched.insert(key.clone());
            let session = &mut resident.session;
            session.forget_before(now_millis.saturating_sub(tenant_goals.horizon));
            let mut record = |change: Change| {
                changes.insert(
                    (
                        key.tenant,
                        change.goal_id,
                        change.conversion.event_id.clone(),
                    ),
                    change,
                );
            };
            match work {
                Work::Event { event, .. } => {
                    // Settled even when already present: a load may have read the event
                    // before its own work arrived.
                    session.insert(event.clone());
                    for active in tenant_goals.on_key(&key.name) {
                        for conversion in session.affected_by(&active.goal, event) {
                            if let Some(change) =
                                session.settle(active.id, Some(&active.goal), &conversion)
                            {
                                record(change);
                            }
                        }
                    }
                }
                Work::Reevaluate { goal_id, .. } => {
                    let goal = tenant_goals
                        .active(*goal_id)
                        .filter(|g| *g.goal.key == *key.name)
                        .map(|g| &g.goal);
                    for change in session.settle_goal(*goal_id, goal) {
                        record(change);
                    }
                }
            }
        }

        let mut by_tenant: HashMap<TenantId, Vec<Change>> = HashMap::new();
        for ((tenant, _, _), change) in changes {
            by_tenant.entry(tenant).or_default().push(change);
        }
        let sets = by_tenant
            .into_iter()
            .map(|(tenant, changes)| ChangeSet {
                tenant: TenantScope::authenticated(tenant),
                revisions: goals
                    .get(&tenant)
                    .map(|g| g.revisions.clone())
                    .unwrap_or_default(),
                changes,
            })
            .collect();
        (sets, touched)
    }

    fn finish(
        &mut self,
        round: Vec<Work>,
        outcome: Result<WriteOutcome, DbErr>,
        touched: HashSet<SessionKey>,
        ctx: &mut Context<Self>,
    ) {
        match outcome {
            Ok(WriteOutcome::Written) => {
                self.failures = 0;
                for key in &touched {
                    if let Some(resident) = self.sessions.get_mut(key) {
                        let bytes = resident.session.approx_bytes();
                        self.bytes = self.bytes - resident.bytes.min(self.bytes) + bytes;
                        resident.bytes = bytes;
                    }
                }
                // Dropping the round releases its tokens: those events are matched.
                drop(round);
                self.busy = false;
                self.enforce_budget();
                self.kick(ctx);
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
        touched: HashSet<SessionKey>,
        delay: Duration,
        ctx: &mut Context<Self>,
    ) {
        for key in touched {
            self.remove(&key);
        }
        for work in round.into_iter().rev() {
            self.pending.push_front(work);
        }
        ctx.run_later(delay, |act, ctx| {
            act.busy = false;
            act.kick(ctx);
        });
    }

    fn remove(&mut self, key: &SessionKey) {
        if let Some(resident) = self.sessions.remove(key) {
            self.bytes -= resident.bytes.min(self.bytes);
        }
    }

    /// Least recently used sessions leave until the shard is back under 90% of its budget.
    fn enforce_budget(&mut self) {
        if self.busy || self.bytes <= self.limits.memory_bytes {
            return;
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
            self.remove(&key);
            self.evicted += 1;
        }
    }

    fn evict_idle(&mut self) {
        if self.busy {
            return;
        }
        let Some(cutoff) = Instant::now().checked_sub(self.limits.idle) else {
            return;
        };
        let idle: Vec<SessionKey> = self
            .sessions
            .iter()
            .filter(|(_, resident)| resident.last_used < cutoff)
            .map(|(key, _)| key.clone())
            .collect();
        self.evicted += idle.len() as u64;
        for key in idle {
            self.remove(&key);
        }
    }
}

impl Actor for Shard {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(SWEEP_EVERY, |act, _| act.evict_idle());
    }
}

impl Handler<Process> for Shard {
    type Result = ();

    fn handle(&mut self, message: Process, ctx: &mut Context<Self>) {
        self.pending.extend(message.0);
        self.kick(ctx);
    }
}

impl Handler<ForgetGoal> for Shard {
    type Result = ();

    fn handle(&mut self, message: ForgetGoal, _: &mut Context<Self>) {
        for (key, resident) in &mut self.sessions {
            if key.tenant == message.tenant {
                resident.session.forget_goal(message.goal_id);
            }
        }
    }
}

impl Handler<Stats> for Shard {
    type Result = ShardStats;

    fn handle(&mut self, _: Stats, _: &mut Context<Self>) -> ShardStats {
        ShardStats {
            sessions: self.sessions.len(),
            bytes: self.bytes,
            pending: self.pending.len(),
            evicted: self.evicted,
            loaded: self.loaded,
        }
    }
}

/// Reads the sessions that work is waiting for and some active goal uses: their events
/// inside the tenant's horizon and the attributions stored for their conversions.
async fn load_sessions(
    db: &DatabaseConnection,
    goals: &HashMap<TenantId, Arc<TenantGoals>>,
    absent: Vec<SessionKey>,
) -> Result<HashMap<SessionKey, Session>, DbErr> {
    let mut groups: HashMap<(TenantId, Text), Vec<Text>> = HashMap::new();
    for key in absent {
        if goals
            .get(&key.tenant)
            .is_some_and(|g| g.uses_key(&key.name))
        {
            groups
                .entry((key.tenant, key.name))
                .or_default()
                .push(key.value);
        }
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
        let mut by_value: HashMap<Text, Session> = values
            .iter()
            .map(|value| (value.clone(), Session::new()))
            .collect();
        let value_of = |keys: &[(Text, Text)]| {
            keys.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.clone())
        };
        let mut conversion_ids: Vec<String> = Vec::new();
        for detection in rows.detections {
            if let Some(session) = value_of(&detection.keys).and_then(|v| by_value.get_mut(&v)) {
                session.insert(SessionEvent::Detection(detection));
            }
        }
        let mut owner: HashMap<String, Text> = HashMap::new();
        for conversion in rows.conversions {
            if let Some(value) = value_of(&conversion.keys)
                && let Some(session) = by_value.get_mut(&value)
            {
                conversion_ids.push(conversion.event_id.to_string());
                owner.insert(conversion.event_id.to_string(), value);
                session.insert(SessionEvent::Conversion(conversion));
            }
        }
        // Only goals on this key store their rows through this session.
        let on_key: HashSet<GoalId> = tenant_goals.on_key(&name).map(|g| g.id).collect();
        let mut stored: HashMap<(GoalId, String), Vec<(Text, crate::matching::Credit)>> =
            HashMap::new();
        for (goal, conversion, detection, credit) in
            attributions::stored_for(db, &scope, &conversion_ids).await?
        {
            if on_key.contains(&goal) {
                stored
                    .entry((goal, conversion))
                    .or_default()
                    .push((Text::from(detection), credit));
            }
        }
        for ((goal, conversion), credits) in stored {
            if let Some(session) = owner.get(&conversion).and_then(|v| by_value.get_mut(v)) {
                session.set_stored(goal, Text::from(conversion), credits);
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
