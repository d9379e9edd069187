//! `sightline-bench`: load and measurement for Sightline, on this machine.
//!
//! ```text
//! cargo run --release -p tests --bin sightline-bench -- ingest [--seconds 10]
//! cargo run --release -p tests --bin sightline-bench -- matching [--sessions 1000000]
//! cargo run --release -p tests --bin sightline-bench -- reports [--detections 1000000] [--purchase-every 10]
//! cargo run --release -p tests --bin sightline-bench -- isolation [--seconds 20]
//! cargo run --release -p tests --bin sightline-bench -- soak [--minutes 10] [--rate EVENTS_PER_S]
//! cargo run --release -p tests --bin sightline-bench -- cluster [--processes 1,2,3] [--seconds 10]
//! ```
//!
//! `ingest` starts the real server (release build, its own fresh PostgreSQL database and Redis
//! prefix, the production setup) on a loopback port, then drives it over HTTP:
//! batches of 100 events and single-event requests, each first at full speed (closed loop,
//! many requests in flight) and then at half that rate (open loop) for the latency figures.
//! Beside them, on the same PostgreSQL in the same run, it measures the ceiling for the same
//! rows: `COPY` into scratch copies of the event tables (same columns and indexes).
//!
//! `matching` measures matching (see [`matching`]): the attribution lag against the real
//! server, idle and under batched load at half the maximum rate; the matching core's matches
//! per second in memory; and the resident memory per in-memory session.
//!
//! `reports` times `GET /v1/reports/labels` over a tenant bulk-loaded in PostgreSQL (see
//! [`reports`]), without and with planner statistics.
//!
//! `isolation` (see [`isolation`]) puts two tenants on one server with a per-tenant rate limit:
//! tenant B's request latency at a modest open-loop rate alone, then again while tenant A
//! floods in closed loop; the ratio of B's p99s against the issue's goal (at most 2).
//!
//! `soak` (see [`soak`]) runs the server in a child process at half the maximum batched load
//! (matching events, one session per conversion) for a fixed time, printing its resident
//! memory, the requests, events and errors, and the attribution lag every interval; it fails
//! on any error or when memory grows over the second half.
//!
//! `cluster` (see [`cluster`]) runs 1, 2 and 3 server processes (child processes on this
//! machine's cores) on one fresh database and Redis prefix each time, and drives the same
//! batched matching load at them twice: routed (each session's events always to the process
//! its token hashes to) and sprayed (each request to any process); it prints the throughput,
//! latency, errors, attribution lag and each process's matching counters from `/metrics`.
//!
//! `SIGHTLINE_TEST_DATABASE_URL` and `SIGHTLINE_TEST_REDIS_URL` point it elsewhere, as for the
//! test suite.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod cluster;
mod copy_ceiling;
mod cpu;
mod isolation;
mod load;
mod matching;
mod reports;
mod server;
mod soak;
mod writeback;

use std::time::Duration;

fn usage() -> ! {
    eprintln!(
        "usage: sightline-bench ingest [--seconds N] [--batch-concurrency N] [--single-concurrency N]\n\
         \x20      sightline-bench matching [--only lag|core|memory] [--seconds N] [--rate EVENTS_PER_S]\n\
         \x20          [--load-seconds N] [--probes N] [--probe-every-ms N] [--load-sessions N]\n\
         \x20          [--core-sessions N] [--sessions N] [--batch-concurrency N]\n\
         \x20          [--analyze | --analyze-every N]\n\
         matching: --seconds is the closed-loop phase that finds the maximum batched rate\n\
         (default 5), --rate the background load instead of half that, --load-seconds its length\n\
         (default 20), --probes the lag samples per phase (default 300, one every\n\
         --probe-every-ms, default 25), --load-sessions the load's session tokens (default\n\
         100000), --core-sessions the in-memory throughput sessions (default 100000),\n\
         --sessions the memory part's sessions (default 1000000). --analyze runs ANALYZE on\n\
         the event tables once, before the background load; --analyze-every N every N s\n\
         (for a PostgreSQL without autovacuum).\n\
         \x20      sightline-bench reports [--detections N] [--runs N] [--purchase-every N]\n\
         reports: --detections loaded (default 1000000), --runs timed requests per query (default 5),\n\
         --purchase-every: a purchase after one session (of four detections) in N (default 10).\n\
         \x20      sightline-bench isolation [--seconds N] [--rate EVENTS_PER_S] [--limit EVENTS_PER_S]\n\
         \x20          [--closed-loop-flood [--flood-concurrency N]] [--rounds N] [--max-seconds N]\n\
         \x20          [--batch-concurrency N]\n\
         isolation: --seconds of each of B's two phases (default 20), measured in --rounds parts\n\
         (default 5) that alternate between B alone and B while A floods; --rate tenant B's load\n\
         (default a tenth of the maximum batched rate), --limit the per-tenant rate limit the\n\
         server is started with (default a quarter of the maximum). Tenant A floods at its limit in\n\
         open loop; --closed-loop-flood as fast as the server answers instead, --flood-concurrency\n\
         batches of 100 in flight (default 64). --max-seconds the closed loop that finds the\n\
         maximum, on a server of its own without a limit (default 5; skipped when --rate and\n\
         --limit are both given).\n\
         \x20      sightline-bench soak [--minutes N] [--rate EVENTS_PER_S] [--every-seconds N]\n\
         \x20          [--probe-every-ms N] [--max-seconds N] [--max-growth-mib-per-min X]\n\
         \x20          [--analyze-every N | --no-analyze]\n\
         soak: --minutes of load (default 10) at --rate (default half the maximum batched rate,\n\
         found first by a --max-seconds closed loop, default 5), a line every --every-seconds\n\
         (default 30), a lag probe every --probe-every-ms (default 250); exit 1 on any error or\n\
         lost probe, or if the server's RSS grew more than --max-growth-mib-per-min (default 2)\n\
         over the second half. Idle sessions leave memory after 120 s unless\n\
         SIGHTLINE_MATCHING_IDLE_SECONDS says otherwise; the event tables are analyzed every\n\
         --analyze-every s (default 30, standing in for autovacuum; --no-analyze: never).\n\
         \x20      sightline-bench cluster [--processes 1,2,3] [--seconds N] [--batch-concurrency N]\n\
         \x20          [--load-sessions N] [--probe-every-ms N]\n\
         cluster: for each process count (default 1,2,3) a fresh database with that many server\n\
         processes; batches of 100 in closed loop (default 16 in flight, spread over the processes)\n\
         for --seconds (default 10) routed (each session to one process) and sprayed (each request\n\
         to any process; with one process only once), over --load-sessions sessions (default\n\
         1000 per second of --seconds); a lag probe every --probe-every-ms (default 100) to each process in turn.\n\
         Server settings come from SIGHTLINE_* variables as for `sightline serve`."
    );
    std::process::exit(2);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The memory part measures each variant in a fresh process: this one.
    if args.first().map(String::as_str) == Some("matching-memory-child") {
        matching::memory_child(&args[1..]);
    }
    // The soak's server runs in a process of its own: this binary again.
    if args.first().map(String::as_str) == Some(server::CHILD_ARGUMENT) {
        server::child();
    }
    let mut options = Options {
        phase: Duration::from_secs(10),
        batch_concurrency: 16,
        single_concurrency: 128,
    };
    let mut seconds_given = false;
    let mut matching = matching::Options {
        max_phase: Duration::from_secs(5),
        batch_concurrency: 16,
        rate: None,
        load_phase: Duration::from_secs(20),
        probes: 300,
        probe_every: Duration::from_millis(25),
        load_sessions: 100_000,
        core_sessions: 100_000,
        memory_sessions: 1_000_000,
        only: None,
        analyze: matching::Analyze::Never,
    };
    let mut reports = reports::Options {
        detections: 1_000_000,
        runs: 5,
        purchase_every: 10,
    };
    let mut isolation = isolation::Options {
        phase: Duration::from_secs(20),
        max_phase: Duration::from_secs(5),
        batch_concurrency: 16,
        rate: None,
        limit: None,
        flood_concurrency: 64,
        closed_loop_flood: false,
        rounds: 5,
    };
    let mut soak = soak::Options {
        duration: Duration::from_secs(600),
        every: Duration::from_secs(30),
        rate: None,
        max_phase: Duration::from_secs(5),
        batch_concurrency: 16,
        probe_every: Duration::from_millis(250),
        max_growth_mib_per_minute: 2.0,
        analyze_every: Some(Duration::from_secs(30)),
    };
    let mut cluster = cluster::Options {
        processes: vec![1, 2, 3],
        phase: Duration::from_secs(10),
        batch_concurrency: 16,
        sessions: 0,
        probe_every: Duration::from_millis(100),
    };
    let mut load_sessions_given = false;
    let mut probe_every_given = false;
    let mut scenario = None;
    let mut iter = args.iter();
    let number = |iter: &mut std::slice::Iter<'_, String>| -> u64 {
        iter.next()
            .and_then(|v| v.parse().ok())
            .filter(|n| *n > 0)
            .unwrap_or_else(|| usage())
    };
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "ingest" => scenario = Some("ingest"),
            "matching" => scenario = Some("matching"),
            "reports" => scenario = Some("reports"),
            "isolation" => scenario = Some("isolation"),
            "soak" => scenario = Some("soak"),
            "cluster" => scenario = Some("cluster"),
            "--processes" => {
                cluster.processes = iter
                    .next()
                    .map(|list| list.split(',').map(|n| n.trim().parse().ok()).collect())
                    .and_then(|list: Option<Vec<usize>>| list)
                    .filter(|list| !list.is_empty() && list.iter().all(|n| (1..=16).contains(n)))
                    .unwrap_or_else(|| usage());
            }
            "--limit" => isolation.limit = Some(number(&mut iter)),
            "--rounds" => isolation.rounds = u32::try_from(number(&mut iter)).unwrap_or(5),
            "--closed-loop-flood" => isolation.closed_loop_flood = true,
            "--flood-concurrency" => {
                isolation.flood_concurrency = usize::try_from(number(&mut iter)).unwrap_or(64);
            }
            "--max-seconds" => {
                isolation.max_phase = Duration::from_secs(number(&mut iter));
                soak.max_phase = isolation.max_phase;
            }
            "--minutes" => soak.duration = Duration::from_secs(60 * number(&mut iter)),
            "--every-seconds" => soak.every = Duration::from_secs(number(&mut iter)),
            "--max-growth-mib-per-min" => {
                soak.max_growth_mib_per_minute = iter
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|x: &f64| *x >= 0.0)
                    .unwrap_or_else(|| usage());
            }
            "--detections" => reports.detections = number(&mut iter),
            "--runs" => reports.runs = usize::try_from(number(&mut iter)).unwrap_or(5),
            "--purchase-every" => reports.purchase_every = number(&mut iter),
            "--seconds" => {
                options.phase = Duration::from_secs(number(&mut iter));
                seconds_given = true;
            }
            "--batch-concurrency" => {
                options.batch_concurrency = usize::try_from(number(&mut iter)).unwrap_or(16);
                matching.batch_concurrency = options.batch_concurrency;
            }
            "--single-concurrency" => {
                options.single_concurrency = usize::try_from(number(&mut iter)).unwrap_or(128)
            }
            "--rate" => matching.rate = Some(number(&mut iter) as f64),
            "--load-seconds" => matching.load_phase = Duration::from_secs(number(&mut iter)),
            "--probes" => matching.probes = usize::try_from(number(&mut iter)).unwrap_or(300),
            "--probe-every-ms" => {
                matching.probe_every = Duration::from_millis(number(&mut iter));
                probe_every_given = true;
            }
            "--load-sessions" => {
                matching.load_sessions = number(&mut iter);
                load_sessions_given = true;
            }
            "--core-sessions" => matching.core_sessions = number(&mut iter),
            "--sessions" => matching.memory_sessions = number(&mut iter),
            "--analyze" => matching.analyze = matching::Analyze::Once,
            "--analyze-every" => {
                let every = Duration::from_secs(number(&mut iter));
                matching.analyze = matching::Analyze::Every(every);
                soak.analyze_every = Some(every);
            }
            "--no-analyze" => soak.analyze_every = None,
            "--only" => {
                matching.only = Some(
                    iter.next()
                        .and_then(|part| matching::Part::parse(part))
                        .unwrap_or_else(|| usage()),
                );
            }
            _ => usage(),
        }
    }
    match scenario {
        Some("ingest") => ingest(&options),
        Some("matching") => {
            if seconds_given {
                matching.max_phase = options.phase;
            }
            matching::run(&matching);
        }
        Some("reports") => reports::run(&reports),
        Some("isolation") => {
            if seconds_given {
                isolation.phase = options.phase;
            }
            isolation.batch_concurrency = options.batch_concurrency;
            isolation.rate = matching.rate;
            isolation::run(&isolation);
        }
        Some("soak") => {
            soak.batch_concurrency = options.batch_concurrency;
            soak.rate = matching.rate;
            if probe_every_given {
                soak.probe_every = matching.probe_every;
            }
            if !soak::run(&soak) {
                std::process::exit(1);
            }
        }
        Some("cluster") => {
            cluster.phase = options.phase;
            cluster.batch_concurrency = options.batch_concurrency;
            cluster.sessions = if load_sessions_given {
                matching.load_sessions
            } else {
                cluster::DEFAULT_SESSIONS_PER_SECOND * options.phase.as_secs()
            };
            if probe_every_given {
                cluster.probe_every = matching.probe_every;
            }
            cluster::run(&cluster);
        }
        _ => usage(),
    }
}

struct Options {
    phase: Duration,
    batch_concurrency: usize,
    single_concurrency: usize,
}

fn ingest(options: &Options) {
    sightline::telemetry::init();
    let phase = options.phase;
    let server = server::BenchServer::start();
    println!(
        "sightline-bench ingest: server at {}, {} s per phase",
        server.base_url,
        phase.as_secs()
    );
    let system = actix_web::rt::System::new();
    let results = system.block_on(async {
        let client = load::Client::new(&server.base_url, &server.api_key);
        let mut results = Vec::new();
        let phases = [
            ("batch of 100", 100usize, options.batch_concurrency),
            ("single event", 1, options.single_concurrency),
        ];
        for (name, batch_size, concurrency) in phases {
            let full = client.closed_loop(batch_size, concurrency, phase).await;
            let half_rate = full.requests_per_second() / 2.0;
            let half = client.open_loop(batch_size, half_rate, phase).await;
            results.push((name, batch_size, full, half));
        }
        results
    });

    let accepted_total: u64 = results
        .iter()
        .map(|(_, _, full, half)| full.accepted + half.accepted)
        .sum();
    let ceiling = copy_ceiling::measure(
        &server.database_url,
        accepted_total.clamp(200_000, 1_000_000),
    );

    println!();
    println!("| load | events/s | p50 ms | p99 ms | requests | errors |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, _, full, half) in &results {
        println!(
            "| {name}, full speed | {:.0} | {:.2} | {:.2} | {} | {} |",
            full.events_per_second(),
            full.percentile_ms(50.0),
            full.percentile_ms(99.0),
            full.requests,
            full.errors
        );
        println!(
            "| {name}, half rate ({:.0} req/s) | {:.0} | {:.2} | {:.2} | {} | {} |",
            half.target_rate,
            half.events_per_second(),
            half.percentile_ms(50.0),
            half.percentile_ms(99.0),
            half.requests,
            half.errors
        );
    }
    println!(
        "| COPY ceiling ({} rows: detections and conversions, same indexes) | {:.0} | | | | |",
        ceiling.rows, ceiling.rows_per_second
    );
    println!();
    if let Some((_, _, batched, _)) = results.first() {
        println!(
            "batched ingest / COPY ceiling = {:.2} (target >= 0.5)",
            batched.events_per_second() / ceiling.rows_per_second
        );
    }
    if let Some((_, _, single, half)) = results.get(1) {
        println!(
            "single-event ingest = {:.0} events/s (target >= 30000)",
            single.events_per_second()
        );
        println!(
            "single-event p99 at half load = {:.2} ms (target <= 10)",
            half.percentile_ms(99.0)
        );
    }
    server.stop();
}
