//! The `isolation` scenario: does one tenant's flood slow another tenant down?
//!
//! Two tenants on one server whose per-tenant ingest rate limit is set
//! (`SIGHTLINE_INGEST_RATE_LIMIT_PER_SECOND`) below what the server can take, so that the
//! flood is actually limited:
//!
//! 1. tenant B alone: batches of [`B_BATCH`] events in open loop at a modest rate (by default
//!    a tenth of the maximum batched rate, measured first on a server of its own without a
//!    limit); B's request latency p50/p99;
//! 2. tenant A floods at its rate limit (batches of 100 in open loop, the case) while
//!    B keeps the same load; B's p50/p99 again, A's accepted rate and its 429s. With
//!    `--closed-loop-flood`, A instead sends as fast as the server answers, many requests in
//!    flight, 429s included: a client that ignores `Retry-After`, whose load generator here
//!    shares the server's two cores.
//!
//! The two phases are measured in rounds that alternate (B alone, then B while A floods, and
//! again), so that a slow spell of the machine (a shared virtual machine's stolen time, a
//! PostgreSQL checkpoint) falls on both rather than on one. Between rounds the flood stops and
//! the server settles before B alone is measured again, so that no leftover of the flood
//! counts as B's time alone. Each round shows the machine's CPU idle and stolen shares and
//! the kernel's largest writeback burst ([`writeback`]), which stall every tenant alike.
//!
//! The figure of merit is B's p99 under the flood over its p99 alone, each over all its
//! rounds (the goal: at most 2).

use crate::cpu::{CpuShares, CpuTimes};
use crate::load;
use crate::server::{BenchServer, Launch};
use crate::writeback;
use std::time::{Duration, Instant};

/// Events per request of tenant B: small batches, so that a phase holds enough requests
/// for a p99.
const B_BATCH: usize = 10;
/// Events per request of the flood, as a bulk sender would send them.
const FLOOD_BATCH: usize = 100;
/// The goal: B's p99 under the flood at most this many times its p99 alone.
const TARGET_RATIO: f64 = 2.0;
/// Uncounted load before the first round, so that B does not pay for cold connections.
const WARM_UP: Duration = Duration::from_secs(2);
/// The flood runs this long before B's loaded part is counted (its connections opened, its
/// queue and matching at their steady state), and as long again after it.
const FLOOD_LEAD: Duration = Duration::from_secs(1);
/// B's uncounted load after the flood stops, before B alone is counted again: the flood's
/// last writes and matching are done by then.
const SETTLE: Duration = Duration::from_secs(2);

/// The scenario's settings (the options of `sightline-bench isolation`).
pub struct Options {
    /// Each of B's two phases' length, over all rounds.
    pub phase: Duration,
    /// How many parts each phase is measured in, alternating.
    pub rounds: u32,
    /// The closed-loop phase that finds the maximum batched rate.
    pub max_phase: Duration,
    pub batch_concurrency: usize,
    /// B's load in events/s; `None`: a tenth of the maximum.
    pub rate: Option<f64>,
    /// The per-tenant limit in events/s; `None`: a quarter of the maximum.
    pub limit: Option<u64>,
    /// The closed-loop flood's requests in flight.
    pub flood_concurrency: usize,
    /// A floods in closed loop, ignoring 429s, rather than at its limit.
    pub closed_loop_flood: bool,
}

pub fn run(options: &Options) {
    sightline::telemetry::init();
    let max = match (options.rate, options.limit) {
        (Some(_), Some(_)) => None,
        _ => Some(maximum_rate(options)),
    };
    let rate = options
        .rate
        .or(max.map(|max| max / 10.0))
        .unwrap_or_default();
    let limit = options
        .limit
        .or(max.map(|max| (max / 4.0) as u64))
        .unwrap_or_default()
        .max(1);

    let server = BenchServer::launch(&Launch {
        settings: vec![("SIGHTLINE_INGEST_RATE_LIMIT_PER_SECOND", limit.to_string())],
        own_process: false,
    });
    let system = actix_web::rt::System::new();
    let flooder = system.block_on(server.add_tenant("Flooder"));
    println!(
        "isolation: server at {}, rate limit {limit} events/s per tenant; tenant B at {rate:.0} events/s \
         (batches of {B_BATCH}), tenant A floods {}; {} s per phase in {} alternating rounds",
        server.base_url,
        flood_shape(options),
        options.phase.as_secs(),
        options.rounds.max(1)
    );
    println!("{}", writeback::settings());
    let b = load::Client::new(&server.base_url, &server.api_key);
    let b_load = |length| b.open_loop(B_BATCH, rate / B_BATCH as f64, length);
    let flood = Flood {
        base_url: server.base_url.clone(),
        api_key: flooder.api_key,
        limit,
        closed_loop: options.closed_loop_flood,
        concurrency: options.flood_concurrency,
    };
    let rounds = options.rounds.max(1);
    let part = options.phase / rounds;

    system.block_on(b_load(WARM_UP));
    let bursts = writeback::Watch::start();
    let mut phases: Option<(load::Outcome, load::Outcome, load::Outcome)> = None;
    let (mut cpu_alone, mut cpu_loaded) = (Vec::new(), Vec::new());
    let mut flood_seconds = 0.0;
    for round in 1..=rounds {
        let before = CpuTimes::now();
        bursts.take_mb();
        let alone = system.block_on(b_load(part));
        let alone_cpu = before.until(&CpuTimes::now());
        let alone_burst = bursts.take_mb();
        cpu_alone.push(alone_cpu);
        let flooding = flood.start(FLOOD_LEAD + part + FLOOD_LEAD);
        let flood_started = Instant::now();
        let (loaded, loaded_cpu) = system.block_on(async {
            b_load(FLOOD_LEAD).await;
            let before = CpuTimes::now();
            bursts.take_mb();
            let loaded = b_load(part).await;
            (loaded, before.until(&CpuTimes::now()))
        });
        let loaded_burst = bursts.take_mb();
        cpu_loaded.push(loaded_cpu);
        let flooded = flooding.join().expect("the flood thread");
        flood_seconds += flood_started.elapsed().as_secs_f64();
        println!(
            "  round {round} of {rounds}: B's p99 alone {:.2} ms ({}), while A floods {:.2} ms ({})",
            alone.percentile_ms(99.0),
            describe(alone_cpu, alone_burst),
            loaded.percentile_ms(99.0),
            describe(loaded_cpu, loaded_burst)
        );
        phases = Some(match phases {
            None => (alone, loaded, flooded),
            Some((a, l, f)) => (a.merge(alone), l.merge(loaded), f.merge(flooded)),
        });
        system.block_on(b_load(SETTLE));
    }
    server.stop();
    let Some((alone, loaded, flood)) = phases else {
        return;
    };

    print_report(&Report {
        max,
        limit,
        rate,
        options,
        alone,
        loaded,
        flood,
        flood_seconds,
        cpu: [CpuShares::mean(&cpu_alone), CpuShares::mean(&cpu_loaded)],
    });
}

/// A phase's machine: CPU shares, and the largest writeback burst (MB written back at once).
fn describe(cpu: CpuShares, burst_mb: f64) -> String {
    format!(
        "CPU {:.0}% idle, {:.0}% stolen, writeback burst {burst_mb:.0} MB",
        cpu.idle, cpu.stolen
    )
}

/// Tenant A's load.
struct Flood {
    base_url: String,
    api_key: String,
    limit: u64,
    closed_loop: bool,
    concurrency: usize,
}

impl Flood {
    /// Floods for `length` on a thread and runtime of its own, so that B's timers do not
    /// wait behind it.
    fn start(&self, length: Duration) -> std::thread::JoinHandle<load::Outcome> {
        let (base_url, api_key) = (self.base_url.clone(), self.api_key.clone());
        let (closed_loop, concurrency) = (self.closed_loop, self.concurrency);
        let requests_per_second = self.limit as f64 / FLOOD_BATCH as f64;
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let client = load::Client::new(&base_url, &api_key);
                if closed_loop {
                    client.closed_loop(FLOOD_BATCH, concurrency, length).await
                } else {
                    client
                        .open_loop(FLOOD_BATCH, requests_per_second, length)
                        .await
                }
            })
        })
    }
}

/// The maximum batched rate, on a server of its own without a limit (the limit cannot be
/// changed while a server runs).
fn maximum_rate(options: &Options) -> f64 {
    let server = BenchServer::start();
    let max = actix_web::rt::System::new().block_on(async {
        load::Client::new(&server.base_url, &server.api_key)
            .closed_loop(100, options.batch_concurrency, options.max_phase)
            .await
    });
    server.stop();
    println!(
        "maximum batched rate (closed loop, {} batches of 100 in flight, {} s, no limit): {:.0} events/s",
        options.batch_concurrency,
        options.max_phase.as_secs(),
        max.events_per_second()
    );
    max.events_per_second()
}

struct Report<'a> {
    max: Option<f64>,
    limit: u64,
    rate: f64,
    options: &'a Options,
    alone: load::Outcome,
    loaded: load::Outcome,
    flood: load::Outcome,
    flood_seconds: f64,
    /// The machine's CPU while B alone and while A floods.
    cpu: [CpuShares; 2],
}

fn print_report(report: &Report<'_>) {
    let (alone, loaded, flood) = (&report.alone, &report.loaded, &report.flood);
    println!();
    println!("## Tenant load isolation");
    println!();
    if let Some(max) = report.max {
        println!("maximum batched rate: {max:.0} events/s");
    }
    println!(
        "per-tenant rate limit: {} events/s; tenant B's load: {:.0} events/s in batches of {B_BATCH} (open loop)",
        report.limit, report.rate
    );
    println!();
    println!(
        "| tenant B | requests | events/s | p50 ms | p99 ms | errors | CPU idle | CPU stolen |"
    );
    println!("|---|---:|---:|---:|---:|---|---:|---:|");
    for ((name, outcome), cpu) in [("alone", alone), ("while A floods", loaded)]
        .into_iter()
        .zip(report.cpu)
    {
        println!(
            "| {name} | {} | {:.0} | {:.2} | {:.2} | {} | {:.0}% | {:.0}% |",
            outcome.requests,
            outcome.events_per_second(),
            outcome.percentile_ms(50.0),
            outcome.percentile_ms(99.0),
            outcome.describe_errors(),
            cpu.idle,
            cpu.stolen
        );
    }
    println!();
    println!(
        "tenant A ({}, {:.0} s): {} requests ({:.0}/s), \
         accepted {:.0} events/s, answered 429 {} times ({:.0}/s); other errors: {}",
        flood_shape(report.options),
        report.flood_seconds,
        flood.requests,
        flood.requests_per_second(),
        flood.events_per_second(),
        flood.answered(429),
        flood.answered(429) as f64 / report.flood_seconds,
        errors_besides_429(flood)
    );
    let ratio = loaded.percentile_ms(99.0) / alone.percentile_ms(99.0);
    let met = ratio <= TARGET_RATIO && loaded.errors == 0 && alone.errors == 0;
    println!();
    println!(
        "B's p99 while A floods / B's p99 alone = {ratio:.2} (target <= {TARGET_RATIO:.0}, and no errors for B): {}",
        if met { "met" } else { "NOT met" }
    );
}

fn flood_shape(options: &Options) -> String {
    if options.closed_loop_flood {
        format!(
            "in closed loop, {} batches of {FLOOD_BATCH} in flight, ignoring 429s",
            options.flood_concurrency
        )
    } else {
        format!("at its rate limit, batches of {FLOOD_BATCH} in open loop")
    }
}

fn errors_besides_429(outcome: &load::Outcome) -> String {
    let others = outcome.errors - outcome.answered(429);
    if others == 0 {
        "none".to_owned()
    } else {
        outcome.describe_errors()
    }
}
