//! The `soak` scenario: a fixed time at half the maximum batched load, watching that nothing
//! grows without bound and nothing fails.
//!
//! The server runs in a child process of its own (so that its resident memory is its own,
//! not the load generator's) with the `matching` scenario's goal. The load is batches of 100
//! events in open loop, each group of three detections and their purchase in a session of its
//! own that is never visited again, so every conversion is attributed and every session
//! eventually leaves memory (idle eviction, `SIGHTLINE_MATCHING_IDLE_SECONDS`, which the soak
//! shortens to [`DEFAULT_IDLE_SECONDS`] unless it is set, so that a run of minutes reaches
//! the steady state). Meanwhile the lag prober of [`crate::matching::lag`] samples the
//! attribution lag one probe after another (a probe counts in the interval it ends in; one
//! without its attribution after 30 s is lost).
//!
//! Every interval it prints the server's `VmRSS`, the requests and events accepted, the errors
//! (answers other than 202 by status, connection errors) and the lag p50/p99; at the end the
//! RSS trend over the second half. It fails (exit 1) on any error or lost probe, or if RSS
//! grew faster than the threshold over the second half.

use crate::load;
use crate::matching::{Analyzer, create_goal, lag};
use crate::server::{BenchServer, Launch, resident_bytes};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

const IDLE_VARIABLE: &str = "SIGHTLINE_MATCHING_IDLE_SECONDS";
/// Idle sessions leave memory after this long, unless `SIGHTLINE_MATCHING_IDLE_SECONDS` says
/// otherwise: the default (600 s) would keep every session of a 10-minute soak.
const DEFAULT_IDLE_SECONDS: u64 = 120;
/// How long matching may take to catch up after the closed-loop phase.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);
const MIB: f64 = 1024.0 * 1024.0;

/// The scenario's settings (the options of `sightline-bench soak`).
pub struct Options {
    pub duration: Duration,
    /// Time between two report lines.
    pub every: Duration,
    /// Load in events/s; `None`: half the maximum batched rate, measured first.
    pub rate: Option<f64>,
    /// The closed-loop phase that finds the maximum.
    pub max_phase: Duration,
    pub batch_concurrency: usize,
    /// A lag probe starts this long after the previous one started (or when it ends).
    pub probe_every: Duration,
    /// Most RSS growth over the second half, in MiB per minute, for a pass.
    pub max_growth_mib_per_minute: f64,
    /// `ANALYZE` of the event and attribution tables this often, standing in for autovacuum
    /// (off on this machine's PostgreSQL), so that session loads keep their plans as the
    /// tables grow; `None`: never.
    pub analyze_every: Option<Duration>,
}

/// What the load thread tells the reporting one.
enum Message {
    /// The soak load begins at `rate` events/s.
    Started {
        max: Option<f64>,
        rate: f64,
    },
    Interval(load::Outcome),
}

/// One report line's figures.
struct Row {
    elapsed: Duration,
    rss: Option<u64>,
    load: load::Outcome,
    lags: lag::Lags,
}

/// Runs the soak; returns whether it passed.
pub fn run(options: &Options) -> bool {
    sightline::telemetry::init();
    let idle = std::env::var(IDLE_VARIABLE).unwrap_or_else(|_| DEFAULT_IDLE_SECONDS.to_string());
    let server = BenchServer::launch(&Launch {
        settings: vec![(IDLE_VARIABLE, idle.clone())],
        own_process: true,
    });
    let system = actix_web::rt::System::new();
    system.block_on(create_goal(&server.base_url, &server.owner_token));
    println!(
        "soak: server process {} at {}, goal barcode -> purchase on session_token, idle sessions \
         leave after {idle} s; {} min, a line every {} s",
        server.pid,
        server.base_url,
        options.duration.as_secs_f64() / 60.0,
        options.every.as_secs()
    );

    match options.analyze_every {
        Some(every) => println!(
            "statistics: ANALYZE of detections, conversions, attributions every {} s",
            every.as_secs()
        ),
        None => println!("statistics: as PostgreSQL keeps them (no ANALYZE by the bench)"),
    }
    let analyzer = options
        .analyze_every
        .map(|every| Analyzer::start(&server.database_url, every));

    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let load = spawn_load(&server, options, sender);
    let Some(Message::Started { max, rate }) = receiver.blocking_recv() else {
        panic!("the load thread stopped before the soak began");
    };
    if let Some(max) = max {
        println!(
            "maximum batched rate (closed loop, {} batches of 100 in flight, {} s): {max:.0} events/s",
            options.batch_concurrency,
            options.max_phase.as_secs()
        );
    }
    println!("soak load: {rate:.0} events/s in batches of 100 (open loop)");
    println!();

    let pid = server.pid.to_string();
    let (rows, samples) = system.block_on(async {
        let started = Instant::now();
        let samples = Rc::new(RefCell::new(Vec::new()));
        let sampler = actix_web::rt::spawn(sample_rss(pid, started, Rc::clone(&samples)));
        let probes = Rc::new(RefCell::new(lag::Tally::default()));
        let prober = actix_web::rt::spawn(probe(
            lag::Prober::new(&server.base_url, &server.api_key, "soak"),
            options.probe_every,
            Rc::clone(&probes),
        ));
        let mut rows = Vec::new();
        for end in interval_ends(options.duration, options.every) {
            let Some(Message::Interval(load)) = receiver.recv().await else {
                panic!("the load thread stopped early");
            };
            // The load's interval ends with its last answers, a little after `end`.
            tokio::time::sleep((started + end).saturating_duration_since(Instant::now())).await;
            let row = Row {
                elapsed: started.elapsed(),
                rss: server.resident_bytes(),
                load,
                lags: std::mem::take(&mut *probes.borrow_mut()).lags(),
            };
            print_row(&row);
            rows.push(row);
        }
        prober.abort();
        sampler.abort();
        let samples = samples.borrow().clone();
        (rows, samples)
    });
    load.join().expect("the load thread");
    if let Some(analyzer) = analyzer {
        analyzer.stop();
    }
    server.stop();
    print_summary(options, &rows, &samples)
}

/// When each interval ends, from the start: every `every`, the last one at `duration`.
fn interval_ends(duration: Duration, every: Duration) -> Vec<Duration> {
    let mut ends = Vec::new();
    let mut end = every;
    while end < duration {
        ends.push(end);
        end += every;
    }
    ends.push(duration);
    ends
}

/// The load on its own thread and runtime (the probes' millisecond timers must not wait
/// behind it): the maximum first unless the rate is given, then one open loop per interval.
fn spawn_load(
    server: &BenchServer,
    options: &Options,
    sender: tokio::sync::mpsc::UnboundedSender<Message>,
) -> std::thread::JoinHandle<()> {
    let (base_url, api_key) = (server.base_url.clone(), server.api_key.clone());
    let (rate, max_phase, concurrency) =
        (options.rate, options.max_phase, options.batch_concurrency);
    let ends = interval_ends(options.duration, options.every);
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            // Every group of four events in a session of its own, never visited again.
            let client = load::Client::with_sessions(&base_url, &api_key, u64::MAX, 4);
            let max = match rate {
                Some(_) => None,
                None => {
                    let max = client.closed_loop(100, concurrency, max_phase).await;
                    if lag::drain(&base_url, &api_key, DRAIN_TIMEOUT)
                        .await
                        .is_none()
                    {
                        eprintln!(
                            "matching had not caught up {DRAIN_TIMEOUT:?} after the closed loop"
                        );
                    }
                    Some(max.events_per_second())
                }
            };
            let rate = rate.or(max.map(|max| max / 2.0)).unwrap_or(1.0);
            let _ = sender.send(Message::Started { max, rate });
            let mut begun = Duration::ZERO;
            for end in ends {
                let outcome = client.open_loop(100, rate / 100.0, end - begun).await;
                begun = end;
                if sender.send(Message::Interval(outcome)).is_err() {
                    break;
                }
            }
        });
    })
}

/// Probes one after another, a new one `every` after the last started (or when it ends):
/// each counts in the interval in which it ends, so that a slow one cannot hold up a report.
async fn probe(mut prober: lag::Prober, every: Duration, tally: Rc<RefCell<lag::Tally>>) {
    loop {
        let started = Instant::now();
        let result = prober.probe().await;
        tally.borrow_mut().add(result);
        if let Some(wait) = every.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
}

/// Samples the server's RSS every second: (seconds since `started`, bytes).
async fn sample_rss(pid: String, started: Instant, samples: Rc<RefCell<Vec<(f64, u64)>>>) {
    loop {
        if let Some(bytes) = resident_bytes(&pid) {
            samples
                .borrow_mut()
                .push((started.elapsed().as_secs_f64(), bytes));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("?".to_owned(), |b| format!("{:.1}", b as f64 / MIB))
}

fn print_row(row: &Row) {
    let seconds = row.elapsed.as_secs();
    println!(
        "[{:>3}:{:02}] RSS {} MiB | {} requests, {} events accepted ({:.0}/s) | errors: {} | \
         lag p50 {:.1} ms, p99 {:.1} ms ({} probes, {} lost, {} failed)",
        seconds / 60,
        seconds % 60,
        mib(row.rss),
        row.load.requests,
        row.load.accepted,
        row.load.events_per_second(),
        row.load.describe_errors(),
        row.lags.percentile_ms(50.0),
        row.lags.percentile_ms(99.0),
        row.lags.samples(),
        row.lags.timeouts,
        row.lags.failures
    );
}

/// The least-squares slope of `points`, per second.
fn slope(points: &[(f64, u64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mean_t = points.iter().map(|(t, _)| t).sum::<f64>() / n;
    let mean_y = points.iter().map(|(_, y)| *y as f64).sum::<f64>() / n;
    let covariance: f64 = points
        .iter()
        .map(|(t, y)| (t - mean_t) * (*y as f64 - mean_y))
        .sum();
    let variance: f64 = points.iter().map(|(t, _)| (t - mean_t).powi(2)).sum();
    (variance > 0.0).then(|| covariance / variance)
}

fn mean_mib(points: &[(f64, u64)]) -> f64 {
    points.iter().map(|(_, y)| *y as f64).sum::<f64>() / points.len().max(1) as f64 / MIB
}

/// Prints the totals and the RSS trend; returns whether the soak passed.
fn print_summary(options: &Options, rows: &[Row], samples: &[(f64, u64)]) -> bool {
    let total = options.duration.as_secs_f64();
    let requests: u64 = rows.iter().map(|r| r.load.requests).sum();
    let accepted: u64 = rows.iter().map(|r| r.load.accepted).sum();
    let mut refused: BTreeMap<u16, u64> = BTreeMap::new();
    for row in rows {
        for (status, count) in &row.load.refused {
            *refused.entry(*status).or_default() += count;
        }
    }
    let connection_errors: u64 = rows.iter().map(|r| r.load.connection_errors).sum();
    let lost: u64 = rows.iter().map(|r| r.lags.timeouts + r.lags.failures).sum();
    let lags = lag::Lags::combined(rows.iter().map(|r| &r.lags));

    println!();
    println!("## Soak summary");
    println!();
    println!(
        "{requests} requests, {accepted} events accepted ({:.0}/s); refused: {}; connection errors: {connection_errors}",
        accepted as f64 / total,
        if refused.is_empty() {
            "none".to_owned()
        } else {
            refused
                .iter()
                .map(|(status, count)| format!("{status}: {count}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    println!(
        "attribution lag over the whole soak: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} probes, {lost} lost or failed)",
        lags.percentile_ms(50.0),
        lags.percentile_ms(99.0),
        lags.max_ms(),
        lags.samples()
    );

    let first = samples.first().map(|(_, b)| *b);
    let last = samples.last().map(|(_, b)| *b);
    let max = samples.iter().map(|(_, b)| *b).max();
    println!(
        "server RSS: first {} MiB, last {} MiB, max {} MiB ({} samples, one a second)",
        mib(first),
        mib(last),
        mib(max),
        samples.len()
    );
    let quarter = |from: f64, to: f64| -> Vec<(f64, u64)> {
        samples
            .iter()
            .copied()
            .filter(|(t, _)| *t >= from * total && *t < to * total)
            .collect()
    };
    let (first_quarter, last_quarter) = (quarter(0.0, 0.25), quarter(0.75, 1.01));
    println!(
        "mean RSS of the first quarter {:.1} MiB, of the last quarter {:.1} MiB ({:+.1} MiB)",
        mean_mib(&first_quarter),
        mean_mib(&last_quarter),
        mean_mib(&last_quarter) - mean_mib(&first_quarter)
    );
    let second_half = quarter(0.5, 1.01);
    let growth = slope(&second_half).map(|per_second| per_second * 60.0 / MIB);
    let threshold = options.max_growth_mib_per_minute;
    let bounded = match growth {
        Some(growth) if second_half.len() >= 10 => {
            println!(
                "RSS trend over the second half: {growth:+.2} MiB/min (least squares over {} samples; threshold {threshold} MiB/min)",
                second_half.len()
            );
            growth <= threshold
        }
        _ => {
            println!("RSS trend over the second half: too few samples to judge (run longer)");
            false
        }
    };
    let errors = refused.values().sum::<u64>() + connection_errors + lost;
    println!();
    println!(
        "verdict: {}; {}",
        if bounded {
            "no unbounded growth"
        } else {
            "growth NOT shown to be bounded"
        },
        if errors == 0 {
            "no errors".to_owned()
        } else {
            format!("{errors} errors (FAILED)")
        }
    );
    bounded && errors == 0
}
