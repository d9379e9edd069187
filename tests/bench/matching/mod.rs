//! The `matching` scenario: how fast and how small matching is.
//!
//! 1. **Attribution lag** against the real server: a conversion's 202 until its attribution
//!    reads back, with no other traffic and under batched ingest at half the measured
//!    maximum rate ([`lag`]).
//! 2. **Matches per second** of the pure core in memory, run the way a shard runs it
//!    ([`throughput`]).
//! 3. **Resident memory per session**, the shard's map filled with sessions of four
//!    detections ([`memory`]).
//!
//! The in-memory parts run first, while the machine is quiet; the figures are printed at
//! the end, beside the targets of the issue.

mod events;
pub mod lag;
mod memory;
mod throughput;

use crate::load;
use crate::server::BenchServer;
use serde_json::json;
use std::time::{Duration, Instant};

/// Lag p99 at half the maximum ingest rate, in ms.
const TARGET_LAG_P99_MS: f64 = 50.0;
const TARGET_MATCHES_PER_SECOND: f64 = 300_000.0;
const TARGET_BYTES_PER_SESSION: f64 = 1024.0;
/// How long the matcher may take to catch up before the bench gives up on it.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);
/// Probes sent and not counted, so that the first real one does not pay for cold caches.
const WARM_UP_PROBES: usize = 10;

/// Which of the three parts to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Lag,
    Core,
    Memory,
}

impl Part {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "lag" => Some(Part::Lag),
            "core" => Some(Part::Core),
            "memory" => Some(Part::Memory),
            _ => None,
        }
    }
}

/// The scenario's settings (the options of `sightline-bench matching`).
pub struct Options {
    /// The closed-loop phase that finds the maximum batched rate.
    pub max_phase: Duration,
    pub batch_concurrency: usize,
    /// Background load in events/s; `None` takes half the measured maximum.
    pub rate: Option<f64>,
    /// The background load's length; probes run inside it.
    pub load_phase: Duration,
    pub probes: usize,
    pub probe_every: Duration,
    /// Session tokens the background load spreads over.
    pub load_sessions: u64,
    pub core_sessions: u64,
    pub memory_sessions: u64,
    pub only: Option<Part>,
    /// When to `ANALYZE` the event and attribution tables, standing in for autovacuum
    /// (which this machine's PostgreSQL has turned off).
    pub analyze: Analyze,
}

/// `ANALYZE` by the bench: session loads and attribution writes pick their index by the
/// planner's statistics, which nothing keeps current without autovacuum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Analyze {
    /// Never: statistics as PostgreSQL has them.
    Never,
    /// Once, when the tables hold the closed-loop phase's events (before the background
    /// load), as autovacuum would have by then.
    Once,
    /// Every so often, all through the server phases.
    Every(Duration),
}

/// The hidden child process of the memory part.
pub fn memory_child(args: &[String]) -> ! {
    memory::child(args)
}

/// Runs the parts asked for and prints their figures.
pub fn run(options: &Options) {
    let wants = |part| options.only.is_none_or(|only| only == part);
    let core = wants(Part::Core).then(|| {
        println!(
            "matching core in memory: {} sessions ...",
            options.core_sessions
        );
        throughput::measure(options.core_sessions)
    });
    let memory = wants(Part::Memory).then(|| {
        println!(
            "resident memory: {} sessions per variant, each in a child process ...",
            options.memory_sessions
        );
        memory::measure(options.memory_sessions)
    });
    let lag = wants(Part::Lag).then(|| lag_phases(options));

    println!();
    if let Some(lag) = &lag {
        print_lag(lag);
    }
    if let Some(core) = &core {
        print_core(core);
    }
    if let Some(memory) = &memory {
        print_memory(memory);
    }
}

/// What the server part measured.
struct LagReport {
    idle: lag::Lags,
    /// The closed-loop phase.
    max: load::Outcome,
    max_phase: Duration,
    /// The background load's target, events/s.
    target_rate: f64,
    drain_after_max: Drain,
    loaded: lag::Lags,
    load: load::Outcome,
    drain_after_load: Drain,
    /// When the bench analyzed, and how many times it did.
    analyze: (Analyze, u32),
}

/// Matching catching up once ingest stopped.
struct Drain {
    /// How long until a probe in every shard was attributed; `None` past the timeout.
    caught_up: Option<Duration>,
    elapsed: Duration,
    /// Conversions stored and not attributed yet when ingest stopped.
    backlog: i64,
    /// Conversions attributed while waiting.
    matched: i64,
}

impl Drain {
    fn conversions_per_second(&self) -> f64 {
        self.matched as f64 / self.elapsed.as_secs_f64()
    }

    fn describe(&self) -> String {
        let waited = match self.caught_up {
            Some(d) => format!("caught up in {:.2} s", d.as_secs_f64()),
            None => format!(
                "had not caught up after {:.0} s",
                self.elapsed.as_secs_f64()
            ),
        };
        format!(
            "{waited}: {} conversions were waiting for their attributions, {} got them meanwhile ({:.0} conversions/s)",
            self.backlog,
            self.matched,
            self.conversions_per_second()
        )
    }
}

/// Waits for matching to catch up, counting its progress in the database.
fn catch_up(system: &actix_web::rt::SystemRunner, server: &BenchServer) -> Drain {
    system.block_on(async {
        let (conversions, attributed) = lag::matched(&server.database_url).await;
        let started = Instant::now();
        let caught_up = lag::drain(&server.base_url, &server.api_key, DRAIN_TIMEOUT).await;
        let elapsed = started.elapsed();
        let (_, attributed_after) = lag::matched(&server.database_url).await;
        Drain {
            caught_up,
            elapsed,
            backlog: conversions - attributed,
            matched: attributed_after - attributed,
        }
    })
}

fn lag_phases(options: &Options) -> LagReport {
    sightline::telemetry::init();
    let server = BenchServer::start();
    println!(
        "attribution lag: server at {}, goal barcode -> purchase on session_token, 1 h window",
        server.base_url
    );
    let system = actix_web::rt::System::new();
    system.block_on(create_goal(&server.base_url, &server.owner_token));
    let analyzer = match options.analyze {
        Analyze::Every(every) => Some(Analyzer::start(&server.database_url, every)),
        Analyze::Never | Analyze::Once => None,
    };
    let mut analyzed = 0;

    let idle = system.block_on(async {
        let mut prober = lag::Prober::new(&server.base_url, &server.api_key, "idle");
        let forever = Instant::now() + Duration::from_secs(3600);
        prober.series(WARM_UP_PROBES, Duration::ZERO, forever).await;
        prober
            .series(options.probes, options.probe_every, forever)
            .await
    });
    println!(
        "  no background load: p99 {:.1} ms over {} probes",
        idle.percentile_ms(99.0),
        idle.samples()
    );

    // Always run, also when the background rate is given: it fills the tables as a server
    // that has been running would have them, so that both kinds of run start alike.
    let max = system.block_on(async {
        let client = load::Client::with_sessions(
            &server.base_url,
            &server.api_key,
            options.load_sessions,
            4,
        );
        client
            .closed_loop(100, options.batch_concurrency, options.max_phase)
            .await
    });
    println!(
        "  maximum batched rate: {:.0} events/s; waiting for matching to catch up ...",
        max.events_per_second()
    );
    if options.analyze == Analyze::Once {
        system.block_on(analyze_tables(&server.database_url));
        analyzed += 1;
    }
    let drain_after_max = catch_up(&system, &server);
    let target_rate = options
        .rate
        .unwrap_or_else(|| max.events_per_second() / 2.0);

    let load_phase = options.load_phase;
    let load_sessions = options.load_sessions;
    let (base_url, api_key) = (server.base_url.clone(), server.api_key.clone());
    // Its own thread and runtime: the probes' millisecond timers must not wait behind the
    // load generator's work.
    let load_started = Instant::now();
    let background = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let client = load::Client::with_sessions(&base_url, &api_key, load_sessions, 4);
            client.open_loop(100, target_rate / 100.0, load_phase).await
        })
    });
    let loaded = system.block_on(async {
        // Let the load reach its rate before sampling.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut prober = lag::Prober::new(&server.base_url, &server.api_key, "loaded");
        let until = load_started + load_phase.saturating_sub(Duration::from_secs(1));
        prober
            .series(options.probes, options.probe_every, until)
            .await
    });
    let load = background.join().expect("the load thread");
    let drain_after_load = catch_up(&system, &server);
    if let Some(analyzer) = analyzer {
        analyzed += analyzer.stop();
    }
    server.stop();
    LagReport {
        idle,
        max,
        max_phase: options.max_phase,
        target_rate,
        drain_after_max,
        loaded,
        load,
        drain_after_load,
        analyze: (options.analyze, analyzed),
    }
}

/// `ANALYZE` of the event and attribution tables, once, now.
pub async fn analyze_tables(database_url: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(database_url)
        .await
        .expect("connect for ANALYZE");
    sqlx::raw_sql(ANALYZE)
        .execute(&mut conn)
        .await
        .expect("ANALYZE");
}

const ANALYZE: &str = "ANALYZE detections, conversions, attributions";

/// Keeps the planner's statistics current while the server runs, as autovacuum's analyze
/// would: session loads pick their index by them.
pub struct Analyzer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<u32>,
}

impl Analyzer {
    pub fn start(database_url: &str, every: Duration) -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&stop);
        let url = database_url.to_owned();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for ANALYZE");
            runtime.block_on(async move {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&url)
                    .await
                    .expect("connect for ANALYZE");
                let mut runs = 0;
                let mut next = Instant::now() + every;
                while !flag.load(Ordering::Relaxed) {
                    if Instant::now() < next {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                    sqlx::raw_sql(ANALYZE)
                        .execute(&mut conn)
                        .await
                        .expect("ANALYZE");
                    runs += 1;
                    next = Instant::now() + every;
                }
                runs
            })
        });
        Self { stop, thread }
    }

    /// Stops; returns how many times it analyzed.
    pub fn stop(self) -> u32 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("the ANALYZE thread")
    }
}

/// The goal the lag probes and the matching loads are attributed by: `barcode` to `purchase`
/// on `session_token`, one hour.
pub async fn create_goal(base_url: &str, owner_token: &str) {
    let answer = awc::Client::default()
        .post(format!("{base_url}/v1/goals"))
        .insert_header(("Authorization", format!("Bearer {owner_token}")))
        .send_json(&json!({
            "name": "Scan to purchase",
            "detection_labels": ["barcode"],
            "conversion_name": "purchase",
            "key": "session_token",
            "window_seconds": 3600
        }))
        .await
        .expect("create the goal");
    assert_eq!(answer.status().as_u16(), 201, "the goal is created");
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

fn print_lag(report: &LagReport) {
    println!("## 1. Attribution lag (conversion 202 -> attribution readable)");
    println!();
    match report.analyze {
        (Analyze::Every(every), runs) => println!(
            "statistics: ANALYZE of detections, conversions, attributions every {} s ({runs} runs)",
            every.as_secs()
        ),
        (Analyze::Once, _) => println!(
            "statistics: ANALYZE of detections, conversions, attributions once, before the background load"
        ),
        (Analyze::Never, _) => {
            println!("statistics: as PostgreSQL keeps them (no ANALYZE unless autovacuum runs one)")
        }
    }
    let max = &report.max;
    println!(
        "maximum batched rate (closed loop, batches of 100, {:.0} s): {:.0} events/s, {} errors",
        report.max_phase.as_secs_f64(),
        max.events_per_second(),
        max.errors
    );
    println!(
        "after the closed-loop phase, matching {}",
        report.drain_after_max.describe()
    );
    println!(
        "background load: target {:.0} events/s, achieved {:.0} events/s ({} requests, {} errors, request p99 {:.1} ms)",
        report.target_rate,
        report.load.events_per_second(),
        report.load.requests,
        report.load.errors,
        report.load.percentile_ms(99.0)
    );
    println!(
        "after the background load, matching {}",
        report.drain_after_load.describe()
    );
    println!();
    println!(
        "| probes | samples | p50 ms | p99 ms | max ms | median of first / last tenth ms | over 30 s | failed |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, lags) in [
        ("no background load".to_owned(), &report.idle),
        (
            format!("under {:.0} events/s", report.load.events_per_second()),
            &report.loaded,
        ),
    ] {
        println!(
            "| {name} | {} | {:.1} | {:.1} | {:.1} | {:.1} / {:.1} | {} | {} |",
            lags.samples(),
            lags.percentile_ms(50.0),
            lags.percentile_ms(99.0),
            lags.max_ms(),
            lags.first_tenth_ms,
            lags.last_tenth_ms,
            lags.timeouts,
            lags.failures
        );
    }
    println!();
    let p99 = report.loaded.percentile_ms(99.0);
    let half = (report.target_rate - report.max.events_per_second() / 2.0).abs()
        < report.target_rate * 0.01;
    println!(
        "lag p99 at {} = {p99:.1} ms (target <= {TARGET_LAG_P99_MS:.0} at half the maximum): {}",
        if half {
            "half the maximum ingest rate".to_owned()
        } else {
            format!("{:.0} events/s (given)", report.target_rate)
        },
        verdict(p99 <= TARGET_LAG_P99_MS && report.loaded.timeouts == 0)
    );
    println!();
}

fn print_core(core: &throughput::CoreFigures) {
    println!(
        "## 2. Matching core in memory ({} sessions of 4 detections + 1 purchase, 1 goal, \
         1 in 10 sessions with a detection after its purchase)",
        core.sessions
    );
    println!();
    println!(
        "| run | events | work items | matches (settles) | changes | apply s | matches/s | events/s | matches/s with bookkeeping |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (index, run) in core.runs.iter().enumerate() {
        println!(
            "| {} | {} | {} | {} | {} | {:.3} | {:.0} | {:.0} | {:.0} |",
            index + 1,
            run.events,
            run.work,
            run.settles,
            run.changes,
            run.apply.as_secs_f64(),
            run.matches_per_second(),
            run.events_per_second(),
            run.matches_per_second_with_bookkeeping()
        );
    }
    println!();
    println!(
        "attribute alone (4 detections, {} credited): {:.0} ns per call = {:.0} calls/s",
        core.attribute_credits,
        core.attribute_ns,
        1e9 / core.attribute_ns
    );
    println!();
    println!(
        "the same work over {} shards in parallel, each on its own thread with its own store \
         (as the server runs `matching_shards`), wall time including bookkeeping:",
        core.shards
    );
    println!();
    println!("| run | matches | wall s | matches/s |");
    println!("|---|---:|---:|---:|");
    for (index, run) in core.parallel.iter().enumerate() {
        println!(
            "| {} | {} | {:.3} | {:.0} |",
            index + 1,
            run.settles,
            run.wall.as_secs_f64(),
            run.matches_per_second()
        );
    }
    println!();
    let median = core.median().matches_per_second();
    println!("matches/s in memory, one shard (median run) = {median:.0}");
    if let Some(parallel) = core.parallel_median() {
        let rate = parallel.matches_per_second();
        println!(
            "matches/s in memory, {} shards (median run) = {rate:.0} (target >= {TARGET_MATCHES_PER_SECOND:.0}): {}",
            core.shards,
            verdict(rate >= TARGET_MATCHES_PER_SECOND)
        );
    }
    println!();
}

fn print_memory(variants: &[memory::Variant]) {
    println!("## 3. Resident memory per in-memory session (VmRSS growth / sessions)");
    println!();
    let layout = memory::layout();
    println!(
        "sizes: SessionKey {} B, Session {} B, Detection {} B, Conversion {} B",
        layout.session_key, layout.session, layout.detection, layout.conversion
    );
    println!();
    println!("| variant | sessions | RSS growth MiB | bytes/session | approx_bytes() average |");
    println!("|---|---:|---:|---:|---:|");
    for variant in variants {
        println!(
            "| {} | {} | {:.1} | {:.0} | {:.0} |",
            variant.name(),
            variant.sessions,
            variant.rss_growth as f64 / (1024.0 * 1024.0),
            variant.bytes_per_session(),
            variant.approx_per_session()
        );
    }
    println!();
    for variant in variants.iter().filter(|v| !v.with_conversion) {
        let bytes = variant.bytes_per_session();
        println!(
            "bytes per session with 4 detections = {bytes:.0} (target <= {TARGET_BYTES_PER_SESSION:.0}): {}",
            verdict(bytes <= TARGET_BYTES_PER_SESSION)
        );
    }
    println!();
}
