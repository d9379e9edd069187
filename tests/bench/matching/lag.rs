//! Attribution lag: how long after a conversion's 202 its attribution can be read.
//!
//! A probe sends one detection, waits for its 202, then sends one conversion in the same
//! fresh session (a separate request, so the two are committed and matched in that order,
//! as a camera and a checkout would send them), and from the conversion's 202 polls
//! `GET /v1/attributions?conversion_event_id=...` on another connection every millisecond
//! until the detection's credit shows. The lag is measured to the end of the answer that
//! first shows it, so it is at most one poll (a millisecond plus one GET) late.

use crate::load::Connection;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long a probe waits for its attribution before it counts as lost (unless told).
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
const POLL_EVERY: Duration = Duration::from_millis(1);
/// The drain's probes poll slowly: eight pollers at a millisecond would load the database
/// the matcher is waiting on.
const DRAIN_POLL_EVERY: Duration = Duration::from_millis(100);

/// A probe's failure.
#[derive(Debug)]
pub enum Failure {
    /// The server refused or dropped a request.
    Request(&'static str),
    /// No attribution within the prober's timeout.
    Timeout,
}

/// The lags of a series of probes.
pub struct Lags {
    /// Sorted.
    lags_us: Vec<u64>,
    pub failures: u64,
    pub timeouts: u64,
    /// Medians of the first and the last tenth of the samples in time order, to tell a
    /// steady lag from a growing backlog.
    pub first_tenth_ms: f64,
    pub last_tenth_ms: f64,
}

impl Lags {
    /// Lags in µs in the order they were taken, and the probes that failed or were lost.
    fn from_samples(in_order: Vec<u64>, failures: u64, timeouts: u64) -> Self {
        let tenth = (in_order.len() / 10).max(1);
        let median_ms = |slice: &[u64]| {
            let mut sorted = slice.to_vec();
            sorted.sort_unstable();
            sorted
                .get(sorted.len() / 2)
                .map_or(f64::NAN, |us| *us as f64 / 1000.0)
        };
        let first_tenth_ms = median_ms(&in_order[..tenth.min(in_order.len())]);
        let last_tenth_ms = median_ms(&in_order[in_order.len().saturating_sub(tenth)..]);
        let mut lags_us = in_order;
        lags_us.sort_unstable();
        Lags {
            lags_us,
            failures,
            timeouts,
            first_tenth_ms,
            last_tenth_ms,
        }
    }

    pub fn samples(&self) -> usize {
        self.lags_us.len()
    }

    pub fn percentile_ms(&self, percentile: f64) -> f64 {
        crate::load::percentile_ms(&self.lags_us, percentile)
    }

    /// All the samples and failures of `parts` in one (its tenths are NaN: the parts are
    /// the time series).
    pub fn combined<'a>(parts: impl IntoIterator<Item = &'a Lags>) -> Lags {
        let (mut lags_us, mut failures, mut timeouts) = (Vec::new(), 0, 0);
        for part in parts {
            lags_us.extend_from_slice(&part.lags_us);
            failures += part.failures;
            timeouts += part.timeouts;
        }
        lags_us.sort_unstable();
        Lags {
            lags_us,
            failures,
            timeouts,
            first_tenth_ms: f64::NAN,
            last_tenth_ms: f64::NAN,
        }
    }

    pub fn max_ms(&self) -> f64 {
        self.lags_us
            .last()
            .map_or(f64::NAN, |us| *us as f64 / 1000.0)
    }
}

/// Probe results as they come, in time order.
#[derive(Default)]
pub struct Tally {
    in_order: Vec<u64>,
    failures: u64,
    timeouts: u64,
}

impl Tally {
    pub fn add(&mut self, result: Result<Duration, Failure>) {
        match result {
            Ok(lag) => self
                .in_order
                .push(u64::try_from(lag.as_micros()).unwrap_or(u64::MAX)),
            Err(Failure::Timeout) => self.timeouts += 1,
            Err(Failure::Request(what)) => {
                eprintln!("probe failed: {what}");
                self.failures += 1;
            }
        }
    }

    /// Probes that gave a lag.
    pub fn taken(&self) -> usize {
        self.in_order.len()
    }

    pub fn lags(self) -> Lags {
        Lags::from_samples(self.in_order, self.failures, self.timeouts)
    }
}

/// Probers made so far in this process.
static PROBERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Sends probes over two keep-alive connections of its own.
pub struct Prober {
    address: SocketAddr,
    host: String,
    authorization: String,
    /// Makes event ids and session tokens unique to this prober.
    tag: String,
    next: u64,
    timeout: Duration,
    poll_every: Duration,
    events: Option<Connection>,
    polls: Option<Connection>,
}

impl Prober {
    pub fn new(base_url: &str, api_key: &str, tag: &str) -> Self {
        let host = base_url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let run = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        Self {
            address: host.parse().expect("the server address is ip:port"),
            host,
            authorization: format!("Bearer {api_key}"),
            // The count keeps probers made in one millisecond apart (the cluster's drains of
            // several processes at once would otherwise send the same events to each).
            tag: format!(
                "{tag}-{run}-{}",
                PROBERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ),
            next: 0,
            timeout: PROBE_TIMEOUT,
            poll_every: POLL_EVERY,
            events: None,
            polls: None,
        }
    }

    /// Probes one after another, a new one starting `every` after the last started (or when
    /// it ends, if later), until `count` have been taken or `until` has passed.
    pub async fn series(&mut self, count: usize, every: Duration, until: Instant) -> Lags {
        let mut tally = Tally::default();
        while tally.taken() < count && Instant::now() < until {
            let started = Instant::now();
            tally.add(self.probe().await);
            if let Some(wait) = every.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        tally.lags()
    }

    /// One probe: the lag from the conversion's 202 to the first answer showing its
    /// attribution.
    pub async fn probe(&mut self) -> Result<Duration, Failure> {
        let n = self.next;
        self.next += 1;
        let session = format!("probe-{}-{n}", self.tag);
        let detection_id = format!("pd-{}-{n}", self.tag);
        let conversion_id = format!("pc-{}-{n}", self.tag);
        let now = chrono::Utc::now();
        let millis = chrono::SecondsFormat::Millis;
        // A second before the conversion, so that it is inside the window whatever the
        // clocks' resolution.
        let seen = (now - chrono::Duration::seconds(1)).to_rfc3339_opts(millis, true);
        let bought = now.to_rfc3339_opts(millis, true);
        let detection = format!(
            r#"{{"events":[{{"type":"detection","event_id":"{detection_id}","event_time":"{seen}","keys":{{"session_token":"{session}"}},"label":"barcode","confidence":0.9,"model_version":"v3","entity_id":"sku-probe"}}]}}"#
        );
        let conversion = format!(
            r#"{{"events":[{{"type":"conversion","event_id":"{conversion_id}","event_time":"{bought}","keys":{{"session_token":"{session}"}},"name":"purchase","value":10.0}}]}}"#
        );
        self.send_event(&detection).await?;
        self.send_event(&conversion).await?;
        let accepted = Instant::now();

        let poll = format!(
            "GET /v1/attributions?conversion_event_id={conversion_id} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\n\r\n",
            self.host, self.authorization
        );
        loop {
            let (status, body) = exchange(&mut self.polls, self.address, poll.as_bytes())
                .await
                .ok_or(Failure::Request("attributions request failed"))?;
            if status != 200 {
                return Err(Failure::Request("attributions answered other than 200"));
            }
            if credits(&body, &detection_id) {
                return Ok(accepted.elapsed());
            }
            if accepted.elapsed() > self.timeout {
                return Err(Failure::Timeout);
            }
            tokio::time::sleep(self.poll_every).await;
        }
    }

    async fn send_event(&mut self, body: &str) -> Result<(), Failure> {
        let request = format!(
            "POST /v1/events HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.host,
            self.authorization,
            body.len()
        );
        let (status, answer) = exchange(&mut self.events, self.address, request.as_bytes())
            .await
            .ok_or(Failure::Request("event request failed"))?;
        let accepted = serde_json::from_slice::<Value>(&answer)
            .ok()
            .and_then(|v| v["accepted"].as_u64());
        if status == 202 && accepted == Some(1) {
            Ok(())
        } else {
            Err(Failure::Request("event not accepted"))
        }
    }
}

/// One exchange on the kept connection, or on a new one if it is gone (the server closes
/// keep-alive connections idle between phases). Resending is safe: events are idempotent.
async fn exchange(
    slot: &mut Option<Connection>,
    address: SocketAddr,
    request: &[u8],
) -> Option<(u16, Vec<u8>)> {
    if let Some(connection) = slot.as_mut()
        && let Some(answer) = connection.exchange(request).await
    {
        return Some(answer);
    }
    let mut connection = Connection::open(address).await?;
    let answer = connection.exchange(request).await?;
    *slot = Some(connection);
    Some(answer)
}

/// Whether an attributions answer credits `detection_id`.
fn credits(body: &[u8], detection_id: &str) -> bool {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v["attributions"].as_array().map(|list| {
                list.iter()
                    .any(|a| a["detection_event_id"].as_str() == Some(detection_id))
            })
        })
        .unwrap_or(false)
}

/// How far matching has got, read from the database: conversions stored, and conversions
/// with at least one attribution (every conversion of the load and the probes has one once
/// matched: its session's detections precede it).
pub async fn matched(database_url: &str) -> (i64, i64) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(database_url)
        .await
        .expect("connect to count matches");
    let (conversions,): (i64,) = sqlx::query_as("SELECT count(*) FROM conversions")
        .fetch_one(&mut conn)
        .await
        .expect("count conversions");
    let (attributed,): (i64,) =
        sqlx::query_as("SELECT count(DISTINCT conversion_event_id) FROM attributions")
            .fetch_one(&mut conn)
            .await
            .expect("count attributed conversions");
    (conversions, attributed)
}

/// Waits until the matcher has caught up with everything accepted so far: shards work
/// first come, first served, so a probe per shard (eight probes in eight fresh sessions
/// reach every one of two shards but with odds of 1 in 128) is attributed only after the
/// backlog ahead of it. Returns how long that took, or `None` past `timeout`.
pub async fn drain(base_url: &str, api_key: &str, timeout: Duration) -> Option<Duration> {
    let started = Instant::now();
    let probes = (0..8).map(|i| async move {
        let mut prober = Prober::new(base_url, api_key, &format!("drain{i}"));
        prober.timeout = timeout;
        prober.poll_every = DRAIN_POLL_EVERY;
        prober.probe().await.is_ok()
    });
    let all = futures_util::future::join_all(probes).await;
    all.into_iter().all(|ok| ok).then(|| started.elapsed())
}
