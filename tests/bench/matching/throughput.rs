//! Matches per second of the matching core in memory: no server, no storage, just the work a
//! shard's round does between loading its sessions and writing the changes.
//!
//! The loop is `Shard::apply` (backend/src/actors/matcher/shard.rs) restated over the public
//! core: per piece of work (one event for one of its tracking keys) compact the event as the
//! session store does (interned text, only the session's own key pair), look the session up
//! (a boxed entry), mark it used and touched, `forget_before`, `insert` a clone of the event,
//! then for each goal on the session's key `affected_by` and `settle` each affected
//! conversion, keeping the last change per conversion; at the end of the round the changes
//! are grouped by tenant. The shard's bookkeeping after the write (`approx_bytes` of every
//! touched session) is timed apart.

use super::events::{self, BASE_MILLIS, SessionEvents, Texts};
use super::{Resident, SessionKey};
use sightline::matching::session::{Change, GoalId, Session, SessionEvent};
use sightline::matching::{Goal, Text, attribute};
use std::collections::{HashMap, HashSet};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Work per round. The shard takes whatever is queued (up to 20,000); a few hundred to a few
/// thousand is what a loaded server's rounds hold.
const ROUND: usize = 1_000;
const TENANTS: u64 = 8;
const DETECTIONS_PER_SESSION: u64 = 4;
/// One session in this many gets its last detection after its conversion, which then has to
/// be settled again (the detection may take the direct credit).
const LATE_EVERY: u64 = 10;
const RUNS: usize = 3;
const ATTRIBUTE_CALLS: u32 = 2_000_000;
/// Stands for the tenant's goal fingerprint the shard stamps on every session it uses.
const FINGERPRINT: u64 = 0x5eed;

/// One run over every event.
pub struct Run {
    pub events: u64,
    pub work: u64,
    /// Conversions settled for a goal (`settle` calls): the matches.
    pub settles: u64,
    /// Settles that changed the stored attributions.
    pub changes: u64,
    pub apply: Duration,
    pub bookkeeping: Duration,
}

impl Run {
    pub fn matches_per_second(&self) -> f64 {
        self.settles as f64 / self.apply.as_secs_f64()
    }

    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.apply.as_secs_f64()
    }

    /// The same, with the shard's after-write bookkeeping counted.
    pub fn matches_per_second_with_bookkeeping(&self) -> f64 {
        self.settles as f64 / (self.apply + self.bookkeeping).as_secs_f64()
    }
}

pub struct CoreFigures {
    pub sessions: u64,
    pub runs: Vec<Run>,
    /// Median time of a run that stops after each step, for where the time goes.
    pub steps: Vec<(Steps, Duration)>,
    /// `attribute` alone on a session of four detections.
    pub attribute_ns: f64,
    pub attribute_credits: usize,
}

impl CoreFigures {
    /// The run with the median matches per second.
    pub fn median(&self) -> &Run {
        let mut order: Vec<&Run> = self.runs.iter().collect();
        order.sort_by(|a, b| a.matches_per_second().total_cmp(&b.matches_per_second()));
        order[order.len() / 2]
    }
}

/// How much of the shard's work a run does: each level adds a step to the one before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Steps {
    /// Find the session, mark it used and touched.
    Lookup,
    /// And `forget_before`.
    Forget,
    /// And compact the event and `insert` a clone of it.
    Insert,
    /// And `affected_by`, `settle`, the changes kept and grouped: the whole of `apply`.
    All,
}

impl Steps {
    const PARTIAL: [Steps; 3] = [Steps::Lookup, Steps::Forget, Steps::Insert];

    pub fn describe(self) -> &'static str {
        match self {
            Steps::Lookup => "session lookup, touched set",
            Steps::Forget => "+ forget_before",
            Steps::Insert => "+ compact, insert (a clone of the event)",
            Steps::All => "+ affected_by, settle, changes kept",
        }
    }
}

/// The shard's session store, as far as a round uses it.
struct Store {
    sessions: HashMap<SessionKey, Box<Resident>>,
    /// The store's interner: one copy of each label, model version, category and name.
    interned: HashSet<Text>,
}

impl Store {
    /// Every session resident and empty, as a round finds them after loading fresh
    /// sessions from storage.
    fn with_empty_sessions(work: &[Work]) -> Self {
        let mut store = Store {
            sessions: HashMap::new(),
            interned: HashSet::new(),
        };
        for piece in work.iter().filter(|w| &*w.key.name == "session_token") {
            let key = SessionKey {
                tenant: piece.key.tenant,
                name: store.intern(&piece.key.name),
                value: piece.key.value.clone(),
            };
            store.sessions.insert(
                key,
                Box::new(Resident {
                    session: Session::new(),
                    last_used: Instant::now(),
                    fingerprint: 0,
                    bytes: 0,
                }),
            );
        }
        store
    }

    fn intern(&mut self, text: &Text) -> Text {
        if let Some(shared) = self.interned.get(text) {
            return shared.clone();
        }
        self.interned.insert(text.clone());
        text.clone()
    }

    /// `SessionStore::compact`: shared texts, and only the session's own key pair.
    fn compact(&mut self, key: &SessionKey, event: SessionEvent) -> SessionEvent {
        let (name, value) = match self.sessions.get_key_value(key) {
            Some((resident, _)) => (resident.name.clone(), resident.value.clone()),
            None => (self.intern(&key.name), key.value.clone()),
        };
        let keys = vec![(name, value)];
        match event {
            SessionEvent::Detection(mut d) => {
                d.label = self.intern(&d.label);
                d.model_version = self.intern(&d.model_version);
                d.category = d.category.map(|c| self.intern(&c));
                d.keys = keys;
                SessionEvent::Detection(d)
            }
            SessionEvent::Conversion(mut c) => {
                c.name = self.intern(&c.name);
                c.keys = keys;
                SessionEvent::Conversion(c)
            }
        }
    }
}

/// One piece of a shard's work: an event for one of its sessions.
struct Work {
    key: SessionKey,
    event: SessionEvent,
}

pub fn measure(sessions: u64) -> CoreFigures {
    // Text as the server allocates it today (per event): the rules compare strings by
    // content, so interning would change memory, not this figure.
    let mut texts = Texts::PerEvent;
    let (goal_id, goal) = events::goal(&mut texts);
    let tenants: Vec<uuid::Uuid> = (0..TENANTS)
        .map(|t| uuid::Uuid::from_u128(0x7e4a_0000_0000_4000_8000_0000_0000_0000 + u128::from(t)))
        .collect();
    let goals: HashMap<uuid::Uuid, Vec<(GoalId, Goal)>> = tenants
        .iter()
        .map(|tenant| (*tenant, vec![(goal_id, goal.clone())]))
        .collect();
    let work = arrivals(&mut texts, &tenants, sessions);
    let events = u64::try_from(
        work.iter()
            .filter(|w| &*w.key.name == "session_token")
            .count(),
    )
    .unwrap_or(0);

    // The levels interleaved, so that a slow spell of the (shared) machine spreads over all
    // of them rather than skewing one.
    let mut runs = Vec::new();
    let mut partial: Vec<(Steps, Vec<Duration>)> = Steps::PARTIAL
        .iter()
        .map(|steps| (*steps, Vec::new()))
        .collect();
    for _ in 0..RUNS {
        for (steps, times) in &mut partial {
            let mut store = Store::with_empty_sessions(&work);
            times.push(run(&work, &mut store, &goals, events, *steps).apply);
        }
        let mut store = Store::with_empty_sessions(&work);
        runs.push(run(&work, &mut store, &goals, events, Steps::All));
    }
    let steps = partial
        .into_iter()
        .map(|(steps, mut times)| {
            times.sort_unstable();
            (steps, times[times.len() / 2])
        })
        .collect();

    let (attribute_ns, attribute_credits) = time_attribute(&goal);
    CoreFigures {
        sessions,
        runs,
        steps,
        attribute_ns,
        attribute_credits,
    }
}

/// Every session's four detections and purchase, in arrival order across sessions (about two
/// thousand sessions overlap in time), as one piece of work per tracking key.
fn arrivals(texts: &mut Texts, tenants: &[uuid::Uuid], sessions: u64) -> Vec<Work> {
    let mut timed: Vec<(i64, u64, uuid::Uuid, SessionEvent)> = Vec::new();
    let mut sequence = 0u64;
    let mut push = |arrival: i64, tenant: uuid::Uuid, event: SessionEvent| {
        timed.push((arrival, sequence, tenant, event));
        sequence += 1;
    };
    for session in 0..sessions {
        let tenant = tenants[(session % TENANTS) as usize];
        let mut builder = SessionEvents::new(texts, session);
        let conversion_arrives = builder.conversion_time();
        for index in 0..DETECTIONS_PER_SESSION {
            let late = session % LATE_EVERY == 0 && index == DETECTIONS_PER_SESSION - 1;
            let arrival = if late {
                conversion_arrives + 5_000
            } else {
                builder.detection_time(index)
            };
            push(arrival, tenant, builder.detection_event(index));
        }
        push(conversion_arrives, tenant, builder.conversion_event());
    }
    timed.sort_unstable_by_key(|(arrival, sequence, _, _)| (*arrival, *sequence));
    timed
        .into_iter()
        .flat_map(|(_, _, tenant, event)| {
            let keys = match &event {
                SessionEvent::Detection(d) => d.keys.clone(),
                SessionEvent::Conversion(c) => c.keys.clone(),
            };
            keys.into_iter().map(move |(name, value)| Work {
                key: SessionKey {
                    tenant,
                    name,
                    value,
                },
                event: event.clone(),
            })
        })
        .collect()
}

fn run(
    work: &[Work],
    store: &mut Store,
    goals: &HashMap<uuid::Uuid, Vec<(GoalId, Goal)>>,
    events: u64,
    steps: Steps,
) -> Run {
    // Nothing is old enough to forget, but the shard asks every time, so the bench does too.
    let cutoff = BASE_MILLIS - 8 * 86_400_000;
    let mut outcome = Run {
        events,
        work: u64::try_from(work.len()).unwrap_or(0),
        settles: 0,
        changes: 0,
        apply: Duration::ZERO,
        bookkeeping: Duration::ZERO,
    };
    for round in work.chunks(ROUND) {
        let started = Instant::now();
        let now = Instant::now();
        let mut changes: HashMap<(uuid::Uuid, GoalId, Text), Change> = HashMap::new();
        let mut touched: HashSet<SessionKey> = HashSet::new();
        for piece in round {
            let key = &piece.key;
            let event = (steps >= Steps::Insert && store.sessions.contains_key(key))
                .then(|| store.compact(key, piece.event.clone()));
            let (Some(tenant_goals), Some(resident)) =
                (goals.get(&key.tenant), store.sessions.get_mut(key))
            else {
                // The camera's session: no goal uses `device_id`, so the shard skips it too.
                continue;
            };
            resident.last_used = now;
            resident.fingerprint = FINGERPRINT;
            touched.insert(key.clone());
            if steps == Steps::Lookup {
                continue;
            }
            let session = &mut resident.session;
            session.forget_before(cutoff);
            let Some(event) = event else {
                continue;
            };
            session.insert(event.clone());
            if steps == Steps::Insert {
                continue;
            }
            for (id, goal) in tenant_goals.iter().filter(|(_, g)| *g.key == *key.name) {
                for conversion in session.affected_by(goal, &event) {
                    outcome.settles += 1;
                    if let Some(change) = session.settle(*id, Some(goal), &conversion) {
                        changes.insert(
                            (
                                key.tenant,
                                change.goal_id,
                                change.conversion.event_id.clone(),
                            ),
                            change,
                        );
                    }
                }
            }
        }
        let mut by_tenant: HashMap<uuid::Uuid, Vec<Change>> = HashMap::new();
        for ((tenant, _, _), change) in changes {
            by_tenant.entry(tenant).or_default().push(change);
        }
        outcome.changes += by_tenant.values().map(|c| c.len() as u64).sum::<u64>();
        drop(black_box(by_tenant));
        outcome.apply += started.elapsed();

        let started = Instant::now();
        for key in &touched {
            if let Some(resident) = store.sessions.get_mut(key) {
                resident.bytes = resident.session.approx_bytes();
            }
        }
        outcome.bookkeeping += started.elapsed();
    }
    outcome
}

/// Nanoseconds per `attribute` call on one session's four detections, and how many of them
/// it credits (so that the call does real work: some qualify, some do not).
fn time_attribute(goal: &Goal) -> (f64, usize) {
    let mut texts = Texts::PerEvent;
    // The first session whose detections earn at least two credits.
    let (conversion, detections, credits) = (0..)
        .map(|session| {
            let mut builder = SessionEvents::new(&mut texts, session);
            let detections: Vec<_> = (0..DETECTIONS_PER_SESSION)
                .map(|index| builder.detection(index))
                .collect();
            let conversion = builder.conversion();
            let credits = attribute(goal, &conversion, &detections).len();
            (conversion, detections, credits)
        })
        .find(|(_, _, credits)| *credits >= 2)
        .expect("some session has two credited detections");
    let started = Instant::now();
    for _ in 0..ATTRIBUTE_CALLS {
        black_box(attribute(
            black_box(goal),
            black_box(&conversion),
            black_box(&detections),
        ));
    }
    let nanos = started.elapsed().as_nanos() as f64 / f64::from(ATTRIBUTE_CALLS);
    (nanos, credits)
}
