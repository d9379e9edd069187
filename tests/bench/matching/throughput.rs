//! Matches per second of the matching core in memory: no server, no storage, just the work a
//! shard's round does between loading its sessions and writing the changes.
//!
//! It runs the shard's own code: a `SessionStore` holding every session (admitted empty, as
//! a round finds fresh sessions loaded from storage), and `round::apply` over rounds of work,
//! one piece per event and tracking key, exactly as the shard calls it. The shard's
//! bookkeeping after the write (`refresh_size` of every touched session) is timed apart.

use super::events::{self, BASE_MILLIS, SessionEvents, Texts};
use sightline::actors::matcher::SessionKey;
use sightline::actors::matcher::goal_cache::{ActiveGoal, TenantGoals};
use sightline::actors::matcher::round::{self, Piece};
use sightline::actors::matcher::store::{LoadedSession, SessionStore, StoreLimits};
use sightline::domain::TenantId;
use sightline::matching::session::SessionEvent;
use sightline::matching::{Goal, attribute};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Work per round. The shard takes whatever is queued (up to 20,000); a few hundred to a few
/// thousand is what a loaded server's rounds hold.
const ROUND: usize = 1_000;
const TENANTS: u64 = 8;
const DETECTIONS_PER_SESSION: u64 = 4;
/// One session in this many gets its last detection after its conversion, which then has to
/// be settled again (the detection may take the direct credit).
const LATE_EVERY: u64 = 10;
const RUNS: usize = 5;
const ATTRIBUTE_CALLS: u32 = 2_000_000;
/// Stands for the tenant's goal fingerprint the shard stamps on every session it uses.
const FINGERPRINT: u64 = 0x5eed;
/// How far back events matter: nothing in the bench is old enough to forget, but the round
/// asks every time, as in the server.
const HORIZON: i64 = 8 * 86_400_000;

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
    /// The same work split over this many shards by session, each on a thread of its own
    /// with a store of its own, as the server runs them (`matching_shards`).
    pub shards: usize,
    pub parallel: Vec<Parallel>,
    /// `attribute` alone on a session of four detections.
    pub attribute_ns: f64,
    pub attribute_credits: usize,
}

/// One run of all shards at once.
pub struct Parallel {
    pub settles: u64,
    /// From the common start until the last shard is done, bookkeeping included.
    pub wall: Duration,
}

impl Parallel {
    pub fn matches_per_second(&self) -> f64 {
        self.settles as f64 / self.wall.as_secs_f64()
    }
}

impl CoreFigures {
    /// The parallel run with the median matches per second.
    pub fn parallel_median(&self) -> Option<&Parallel> {
        let mut order: Vec<&Parallel> = self.parallel.iter().collect();
        order.sort_by(|a, b| a.matches_per_second().total_cmp(&b.matches_per_second()));
        order.get(order.len() / 2).copied()
    }

    /// The run with the median matches per second.
    pub fn median(&self) -> &Run {
        let mut order: Vec<&Run> = self.runs.iter().collect();
        order.sort_by(|a, b| a.matches_per_second().total_cmp(&b.matches_per_second()));
        order[order.len() / 2]
    }
}

/// One piece of a shard's work: an event for one of its sessions.
struct Work {
    key: SessionKey,
    event: SessionEvent,
}

/// Every session resident and empty, as a round finds them after loading fresh sessions
/// from storage. Only session-token sessions: no goal uses the camera key, so the shard
/// never loads those, and their pieces find no resident session.
fn store_with_empty_sessions(work: &[Work]) -> SessionStore {
    let mut store = SessionStore::new(StoreLimits {
        memory_bytes: usize::MAX,
        idle: Duration::from_secs(3600),
    });
    let now = Instant::now();
    for piece in work.iter().filter(|w| &*w.key.name == "session_token") {
        if !store.contains(&piece.key) {
            store.admit(
                piece.key.clone(),
                LoadedSession::default(),
                now,
                FINGERPRINT,
            );
        }
    }
    store
}

pub fn measure(sessions: u64) -> CoreFigures {
    // Text as the server allocates it per parsed event; the store interns it on the way in.
    let mut texts = Texts;
    let (goal_id, goal) = events::goal(&mut texts);
    let tenants: Vec<TenantId> = (0..TENANTS)
        .map(|t| {
            TenantId::from_uuid(uuid::Uuid::from_u128(
                0x7e4a_0000_0000_4000_8000_0000_0000_0000 + u128::from(t),
            ))
        })
        .collect();
    let goals: HashMap<TenantId, Arc<TenantGoals>> = tenants
        .iter()
        .map(|tenant| {
            let goals = TenantGoals {
                active: vec![ActiveGoal {
                    id: goal_id,
                    goal: goal.clone(),
                }],
                revisions: HashMap::new(),
                horizon: HORIZON,
                detections_kept: i64::MAX / 2,
                conversions_kept: i64::MAX / 2,
                fingerprint: FINGERPRINT,
            };
            (*tenant, Arc::new(goals))
        })
        .collect();
    let work = arrivals(&mut texts, &tenants, sessions);
    let events = u64::try_from(
        work.iter()
            .filter(|w| &*w.key.name == "session_token")
            .count(),
    )
    .unwrap_or(0);

    let runs = (0..RUNS)
        .map(|_| {
            let mut store = store_with_empty_sessions(&work);
            run(&work, &mut store, &goals, events)
        })
        .collect();
    let shards = std::thread::available_parallelism().map_or(1, usize::from);
    let shares = split_by_session(work, shards);
    let parallel = (0..RUNS)
        .map(|_| run_in_parallel(&shares, &goals, events))
        .collect();
    let (attribute_ns, attribute_credits) = time_attribute(&goal);
    CoreFigures {
        sessions,
        runs,
        shards,
        parallel,
        attribute_ns,
        attribute_credits,
    }
}

/// The work of each shard, split by session as the matcher routes it.
fn split_by_session(work: Vec<Work>, shards: usize) -> Vec<Vec<Work>> {
    use std::hash::BuildHasher;
    let hasher = foldhash::fast::FixedState::with_seed(0x5eed);
    let mut shares: Vec<Vec<Work>> = (0..shards).map(|_| Vec::new()).collect();
    for piece in work {
        let shard = usize::try_from(hasher.hash_one(&piece.key) % shards as u64).unwrap_or(0);
        shares[shard].push(piece);
    }
    shares
}

/// Every shard runs its share on its own thread, all started together.
fn run_in_parallel(
    shares: &[Vec<Work>],
    goals: &HashMap<TenantId, Arc<TenantGoals>>,
    events: u64,
) -> Parallel {
    let mut stores: Vec<SessionStore> = shares
        .iter()
        .map(|share| store_with_empty_sessions(share))
        .collect();
    let start = std::sync::Barrier::new(shares.len() + 1);
    let (settles, wall) = std::thread::scope(|scope| {
        let threads: Vec<_> = shares
            .iter()
            .zip(stores.iter_mut())
            .map(|(share, store)| {
                let start = &start;
                scope.spawn(move || {
                    start.wait();
                    run(share, store, goals, events).settles
                })
            })
            .collect();
        start.wait();
        let started = Instant::now();
        let settles: u64 = threads
            .into_iter()
            .map(|thread| thread.join().expect("a shard thread"))
            .sum();
        (settles, started.elapsed())
    });
    Parallel { settles, wall }
}

/// Every session's four detections and purchase, in arrival order across sessions (about two
/// thousand sessions overlap in time), as one piece of work per tracking key.
fn arrivals(texts: &mut Texts, tenants: &[TenantId], sessions: u64) -> Vec<Work> {
    let mut timed: Vec<(i64, u64, TenantId, SessionEvent)> = Vec::new();
    let mut sequence = 0u64;
    let mut push = |arrival: i64, tenant: TenantId, event: SessionEvent| {
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
            let keys: Vec<_> = match &event {
                SessionEvent::Detection(d) => d.keys.to_vec(),
                SessionEvent::Conversion(c) => c.keys.to_vec(),
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
    store: &mut SessionStore,
    goals: &HashMap<TenantId, Arc<TenantGoals>>,
    events: u64,
) -> Run {
    let mut outcome = Run {
        events,
        work: u64::try_from(work.len()).unwrap_or(0),
        settles: 0,
        changes: 0,
        apply: Duration::ZERO,
        bookkeeping: Duration::ZERO,
    };
    for chunk in work.chunks(ROUND) {
        let started = Instant::now();
        let pieces = chunk
            .iter()
            .map(|piece| (&piece.key, Piece::Event(&piece.event)));
        let applied = round::apply(store, pieces, goals, Instant::now(), BASE_MILLIS);
        outcome.apply += started.elapsed();
        outcome.settles += applied.settles;
        outcome.changes += applied
            .changes
            .iter()
            .map(|(_, changes)| changes.len() as u64)
            .sum::<u64>();

        let started = Instant::now();
        for key in &applied.touched {
            store.refresh_size(key);
        }
        outcome.bookkeeping += started.elapsed();
        drop(black_box(applied));
    }
    outcome
}

/// Nanoseconds per `attribute` call on one session's four detections, and how many of them
/// it credits (so that the call does real work: some qualify, some do not).
fn time_attribute(goal: &Goal) -> (f64, usize) {
    let mut texts = Texts;
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
