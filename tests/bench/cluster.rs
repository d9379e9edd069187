//! The `cluster` scenario: what several server processes on one database cost.
//!
//! For each process count N (`--processes`, default 1, 2 and 3) and each routing below, a
//! phase of its own: a fresh database and Redis prefix, N server processes on them
//! ([`BenchCluster`], each a child of its own, sharing this machine's cores: this shows the
//! coordination overhead, not a speed-up), one tenant and the `matching` scenario's goal; a
//! 3 s warm-up of the same load on other sessions, an `ANALYZE` and the catch-up; then the
//! batched load for `--seconds`:
//!
//! - **routed**: every session's events go to the process its token hashes to, as a router
//!   hashing the key sends them; the sessions a process matches are its own, so it finds them
//!   resident and current;
//! - **sprayed**: each request goes to a process drawn at random, whatever its sessions, so a
//!   session's successive visits land on different processes, each of which must read again
//!   what another settled since (the cross-process serialisation of `session_versions`).
//!
//! With one process the two are the same, so it is measured once. The load is batches of 100
//! in closed loop (`--batch-concurrency` in flight, spread over the processes): three
//! detections and their purchase per session visit, over `--load-sessions` sessions (default
//! [`DEFAULT_SESSIONS_PER_SECOND`] per second of a phase, so that each is visited again within
//! it). Meanwhile attribution lag probes go to each process in turn (both halves of a probe to
//! the same one, in a fresh session: the lag under that load, not of a misrouted event). After the load the bench
//! waits for every process's matching to catch up, and reads each process's `GET /metrics`
//! counters before the load and after the catch-up. The bench runs `ANALYZE` of the event and
//! attribution tables every [`ANALYZE_EVERY`], as the `soak` does, standing in for autovacuum.

use crate::load::{self, Routing};
use crate::matching::{Analyzer, analyze_tables, create_goal, lag};
use crate::server::BenchCluster;
use std::time::{Duration, Instant};

/// Sessions the load spreads over unless told, per second of a phase: at ~16K events/s (4,000
/// session visits a second) each session is visited about four times in a phase, so that
/// sprayed requests revisit sessions on other processes; more visits would make the
/// attributions grow with their square (every earlier detection is credited, as assisted).
pub const DEFAULT_SESSIONS_PER_SECOND: u64 = 1_000;
/// `ANALYZE` of the event and attribution tables this often, standing in for autovacuum (off on
/// this machine's PostgreSQL), so that the session loads of the sprayed phases keep their
/// plans as the tables grow.
const ANALYZE_EVERY: Duration = Duration::from_secs(5);
/// The load before each measured phase.
const WARM_UP: Duration = Duration::from_secs(3);
/// How long after the load a lag probe may still end.
const PROBE_GRACE: Duration = Duration::from_secs(2);
/// How long matching may take to catch up after a phase.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

/// The scenario's settings (the options of `sightline-bench cluster`).
pub struct Options {
    pub processes: Vec<usize>,
    pub phase: Duration,
    pub batch_concurrency: usize,
    pub sessions: u64,
    /// A lag probe starts this long after the previous one started (or when it ends).
    pub probe_every: Duration,
}

/// The matching counters of one process, from `GET /metrics`.
#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    rounds: u64,
    settled_elsewhere: u64,
    from_database: u64,
    from_copies: u64,
    taken_over: u64,
}

impl Counters {
    /// What rose from `before` to `self`.
    fn since(self, before: Counters) -> Counters {
        Counters {
            rounds: self.rounds.saturating_sub(before.rounds),
            settled_elsewhere: self
                .settled_elsewhere
                .saturating_sub(before.settled_elsewhere),
            from_database: self.from_database.saturating_sub(before.from_database),
            from_copies: self.from_copies.saturating_sub(before.from_copies),
            taken_over: self.taken_over.saturating_sub(before.taken_over),
        }
    }

    fn plus(self, other: Counters) -> Counters {
        Counters {
            rounds: self.rounds + other.rounds,
            settled_elsewhere: self.settled_elsewhere + other.settled_elsewhere,
            from_database: self.from_database + other.from_database,
            from_copies: self.from_copies + other.from_copies,
            taken_over: self.taken_over + other.taken_over,
        }
    }
}

/// One (process count, routing) phase's figures.
struct Phase {
    processes: usize,
    routing: Routing,
    load: load::Outcome,
    lags: lag::Lags,
    /// How long after the load every process had matched what it was given; `None`: not
    /// within the timeout.
    caught_up: Option<Duration>,
    /// Per process, the counters' rise over the phase and its catch-up.
    counters: Vec<Counters>,
}

pub fn run(options: &Options) {
    sightline::telemetry::init();
    println!(
        "cluster: {} s per phase, batches of 100 in closed loop, {} in flight, {} sessions; \
         processes {:?}; ANALYZE every {} s",
        options.phase.as_secs(),
        options.batch_concurrency,
        options.sessions,
        options.processes,
        ANALYZE_EVERY.as_secs()
    );
    let mut phases = Vec::new();
    for &processes in &options.processes {
        let routings: &[Routing] = if processes == 1 {
            &[Routing::Routed]
        } else {
            &[Routing::Routed, Routing::Sprayed]
        };
        // A cluster of its own for each phase: on a shared one the second phase would meet
        // the first one's rows, plans and resident sessions.
        for &routing in routings {
            let cluster = BenchCluster::start(processes, &[]);
            let analyzer = Analyzer::start(&cluster.database_url, ANALYZE_EVERY);
            let system = actix_web::rt::System::new();
            system.block_on(async {
                create_goal(&cluster.base_urls[0], &cluster.owner_token).await;
                // Every process attributes a probe before the load: it sees the goal.
                if drain(&cluster).await.is_none() {
                    eprintln!(
                        "a process did not attribute its first probe within {DRAIN_TIMEOUT:?}"
                    );
                }
            });
            println!();
            println!(
                "{processes} process(es), {}, pids {:?}, at {}",
                routing.name(),
                cluster.pids,
                cluster.base_urls.join(", ")
            );
            warm_up(&system, &cluster, routing, options);
            let phase = measure(&system, &cluster, routing, options);
            print_phase(&phase);
            phases.push(phase);
            analyzer.stop();
            cluster.stop();
        }
    }
    print_summary(options, &phases);
}

/// Before a phase is measured: [`WARM_UP`] of the same load (a client of its own, so on
/// sessions of its own), an `ANALYZE`
/// (the tables are no longer empty, so session loads get their real plans) and the catch-up.
fn warm_up(
    system: &actix_web::rt::SystemRunner,
    cluster: &BenchCluster,
    routing: Routing,
    options: &Options,
) {
    let urls: Vec<&str> = cluster.base_urls.iter().map(String::as_str).collect();
    system.block_on(async {
        load::Client::cluster(&urls, &cluster.api_key, options.sessions, routing)
            .closed_loop(100, options.batch_concurrency, WARM_UP)
            .await;
    });
    system.block_on(analyze_tables(&cluster.database_url));
    if system.block_on(drain(cluster)).is_none() {
        eprintln!("matching did not catch up with the warm-up within {DRAIN_TIMEOUT:?}");
    }
}

/// One phase: the load on its own thread, lag probes on this one, then the catch-up.
fn measure(
    system: &actix_web::rt::SystemRunner,
    cluster: &BenchCluster,
    routing: Routing,
    options: &Options,
) -> Phase {
    let before = system.block_on(all_counters(cluster));
    let (urls, api_key) = (cluster.base_urls.clone(), cluster.api_key.clone());
    let (sessions, concurrency, length) =
        (options.sessions, options.batch_concurrency, options.phase);
    let started = Instant::now();
    // Its own thread and runtime: the probes' millisecond timers must not wait behind it.
    let load = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
            load::Client::cluster(&urls, &api_key, sessions, routing)
                .closed_loop(100, concurrency, length)
                .await
        })
    });
    let (lags, caught_up, after) = system.block_on(async {
        let mut probers: Vec<lag::Prober> = cluster
            .base_urls
            .iter()
            .enumerate()
            .map(|(i, url)| {
                lag::Prober::new(url, &cluster.api_key, &format!("{}{i}", routing.name()))
            })
            .collect();
        // Let the load reach its pace before sampling.
        tokio::time::sleep(Duration::from_secs(1).min(length / 4)).await;
        let until = started + length.saturating_sub(Duration::from_millis(500));
        let mut tally = lag::Tally::default();
        let mut next = 0;
        while Instant::now() < until {
            let probe_started = Instant::now();
            let count = probers.len();
            // A probe still waiting a little after the load is lost: the lag is then longer
            // than the phase, and the catch-up is timed from the load's end.
            let cutoff = (started + length + PROBE_GRACE).saturating_duration_since(probe_started);
            match tokio::time::timeout(cutoff, probers[next % count].probe()).await {
                Ok(result) => tally.add(result),
                Err(_) => tally.add(Err(lag::Failure::Timeout)),
            }
            next += 1;
            if let Some(wait) = options.probe_every.checked_sub(probe_started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        let load_ended = started + length;
        tokio::time::sleep(load_ended.saturating_duration_since(Instant::now())).await;
        let drained = drain(cluster).await;
        let caught_up = drained.map(|_| load_ended.elapsed());
        (tally.lags(), caught_up, all_counters(cluster).await)
    });
    let load = load.join().expect("the load thread");
    Phase {
        processes: cluster.base_urls.len(),
        routing,
        load,
        lags,
        caught_up,
        counters: after
            .iter()
            .zip(&before)
            .map(|(after, before)| after.since(*before))
            .collect(),
    }
}

/// Waits until every process has matched what it was given (see [`lag::drain`]).
async fn drain(cluster: &BenchCluster) -> Option<()> {
    let each = cluster
        .base_urls
        .iter()
        .map(|url| lag::drain(url, &cluster.api_key, DRAIN_TIMEOUT));
    let all = futures_util::future::join_all(each).await;
    all.iter().all(Option::is_some).then_some(())
}

async fn all_counters(cluster: &BenchCluster) -> Vec<Counters> {
    let each = cluster.base_urls.iter().map(|url| counters(url));
    futures_util::future::join_all(each).await
}

/// The process's matching counters (zero for any it does not report).
async fn counters(base_url: &str) -> Counters {
    let mut answer = awc::Client::default()
        .get(format!("{base_url}/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    let body = answer.body().await.expect("the metrics body");
    let text = String::from_utf8_lossy(&body);
    let value = |name: &str| {
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .find_map(|line| line.strip_prefix(name)?.trim().parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    };
    Counters {
        rounds: value("sightline_matching_rounds_total"),
        settled_elsewhere: value("sightline_sessions_settled_elsewhere_total"),
        from_database: value("sightline_sessions_from_database_total"),
        from_copies: value("sightline_sessions_from_hot_copies_total"),
        taken_over: value("sightline_checkpoints_taken_over_total"),
    }
}

fn total(phase: &Phase) -> Counters {
    phase
        .counters
        .iter()
        .fold(Counters::default(), |sum, c| sum.plus(*c))
}

fn caught_up(phase: &Phase) -> String {
    phase
        .caught_up
        .map_or(format!("not within {} s", DRAIN_TIMEOUT.as_secs()), |d| {
            format!("{:.1} s", d.as_secs_f64())
        })
}

fn print_phase(phase: &Phase) {
    let load = &phase.load;
    println!(
        "  {}: {:.0} events/s accepted, p50 {:.2} ms, p99 {:.2} ms, {} requests, errors: {}; \
         lag p50 {:.1} ms, p99 {:.1} ms ({} probes, {} lost, {} failed); matching caught up {} \
         after the load",
        phase.routing.name(),
        load.events_per_second(),
        load.percentile_ms(50.0),
        load.percentile_ms(99.0),
        load.requests,
        load.describe_errors(),
        phase.lags.percentile_ms(50.0),
        phase.lags.percentile_ms(99.0),
        phase.lags.samples(),
        phase.lags.timeouts,
        phase.lags.failures,
        caught_up(phase)
    );
    for (i, c) in phase.counters.iter().enumerate() {
        println!(
            "    process {}: rounds +{}, sessions settled elsewhere +{}, from database +{}, \
             from hot copies +{}, checkpoints taken over +{}",
            i + 1,
            c.rounds,
            c.settled_elsewhere,
            c.from_database,
            c.from_copies,
            c.taken_over
        );
    }
}

fn print_summary(options: &Options, phases: &[Phase]) {
    println!();
    println!("## Cluster");
    println!();
    println!(
        "batches of 100 in closed loop, {} in flight, {} s per phase, {} sessions; counters summed \
         over the processes, from before the load to after the catch-up",
        options.batch_concurrency,
        options.phase.as_secs(),
        options.sessions
    );
    println!();
    println!(
        "| processes | routing | events/s | p50 ms | p99 ms | errors | rounds | settled elsewhere | from database | from hot copies | lag p50 / p99 ms | caught up |"
    );
    println!("|---:|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|");
    for phase in phases {
        let c = total(phase);
        println!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {} | {} | {} | {} | {} | {:.1} / {:.1} | {} |",
            phase.processes,
            if phase.processes == 1 {
                "(one process)"
            } else {
                phase.routing.name()
            },
            phase.load.events_per_second(),
            phase.load.percentile_ms(50.0),
            phase.load.percentile_ms(99.0),
            phase.load.describe_errors(),
            c.rounds,
            c.settled_elsewhere,
            c.from_database,
            c.from_copies,
            phase.lags.percentile_ms(50.0),
            phase.lags.percentile_ms(99.0),
            caught_up(phase)
        );
    }
    println!();
    let rate = |processes: usize, routing: Routing| {
        phases
            .iter()
            .find(|p| p.processes == processes && (processes == 1 || p.routing == routing))
            .map(|p| p.load.events_per_second())
    };
    let one = rate(1, Routing::Routed);
    for &processes in options.processes.iter().filter(|&&n| n > 1) {
        let (routed, sprayed) = (
            rate(processes, Routing::Routed),
            rate(processes, Routing::Sprayed),
        );
        if let (Some(routed), Some(sprayed)) = (routed, sprayed) {
            let against_one = one.map_or(String::new(), |one| {
                format!("; routed / one process = {:.2}", routed / one)
            });
            println!(
                "{processes} processes: sprayed / routed = {:.2}{against_one}",
                sprayed / routed
            );
        }
    }
}
