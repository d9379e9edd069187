//! The load generator: HTTP requests of fresh events, closed loop (a fixed number in flight,
//! as fast as the server answers) or open loop (a fixed rate, latency measured from when each
//! request was due, so a slow server cannot hide its queueing).
//!
//! With several server processes (the cluster scenario) it spreads the requests over them,
//! routed by session or sprayed ([`Routing`]).
//!
//! It speaks plain HTTP/1.1 with keep-alive over its own connections: a general-purpose client
//! spent more CPU per request than the server (one core saturated at ~13K requests/s), and on
//! a two-core machine the load generator's cost is taken from the server being measured.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Client {
    inner: Rc<Inner>,
}

struct Inner {
    /// The server processes requests go to (one, except in the cluster scenario).
    targets: Vec<Target>,
    /// Where a request goes among the `targets`.
    routing: Routing,
    authorization: String,
    /// Event streams, each with its own sessions: one, or one per target (the sessions
    /// whose token hashes to it).
    streams: Vec<Stream>,
    /// Requests sent so far: request `n` takes its events from stream `n % streams`.
    requests: Cell<u64>,
    next_id: Cell<u64>,
    /// Sessions (`session_token` values) the events are spread over.
    sessions: u64,
    /// Consecutive events per session visit: 1 spreads every event to the next session, 4
    /// keeps each conversion with its three detections (so that they match).
    group: u64,
    run: u128,
    /// The start of every session token of this client.
    session_prefix: String,
}

/// One server process and its idle keep-alive connections.
struct Target {
    address: SocketAddr,
    host: String,
    idle: RefCell<Vec<Connection>>,
}

/// Events in order, and the sessions they visit.
struct Stream {
    /// Events taken from this stream so far: event `n` is in visit `n / group`.
    next: Cell<u64>,
    /// The session numbers visited in turn; `None`: all of `0..sessions`.
    sessions: Option<Vec<u64>>,
}

/// How requests are spread over several server processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routing {
    /// Every session's events to one process, the one its token hashes to (as a router
    /// hashing the key would send them): a request carries only that process's sessions.
    Routed,
    /// Each request to a process drawn at random, whatever its sessions: a session's
    /// successive visits land on different processes (as behind a round-robin balancer).
    Sprayed,
}

impl Routing {
    pub fn name(self) -> &'static str {
        match self {
            Routing::Routed => "routed",
            Routing::Sprayed => "sprayed",
        }
    }
}

/// What one phase measured.
pub struct Outcome {
    pub requests: u64,
    pub accepted: u64,
    /// Requests not answered 202 (`refused`) plus the `connection_errors`.
    pub errors: u64,
    /// Answers other than 202, by status.
    pub refused: BTreeMap<u16, u64>,
    /// Requests with no readable answer: connection refused or dropped, or a 202 without
    /// its `accepted` count.
    pub connection_errors: u64,
    pub target_rate: f64,
    latencies_us: Vec<u64>,
    elapsed: Duration,
}

impl Client {
    /// The ingest scenario's load: event `n` goes to session `n % 10,000`, so a session
    /// holds only detections or only conversions (kept as it was measured before matching).
    pub fn new(base_url: &str, api_key: &str) -> Self {
        Self::with_sessions(base_url, api_key, 10_000, 1)
    }

    /// Events spread over `sessions` session tokens, `group` consecutive events to each.
    pub fn with_sessions(base_url: &str, api_key: &str, sessions: u64, group: u64) -> Self {
        let stream = Stream {
            next: Cell::new(0),
            sessions: None,
        };
        Self::build(
            &[base_url],
            api_key,
            sessions,
            group,
            Routing::Routed,
            vec![stream],
        )
    }

    /// The cluster scenario's load over the processes at `base_urls`: conversions with their
    /// three detections in `sessions` sessions (`s<run>-<n>`), each session the property of
    /// the process its token hashes to; requests go where `routing` sends them.
    pub fn cluster(base_urls: &[&str], api_key: &str, sessions: u64, routing: Routing) -> Self {
        let mut owned = vec![Vec::new(); base_urls.len().max(1)];
        let mut client = Self::build(base_urls, api_key, sessions, 4, routing, Vec::new());
        let inner = Rc::get_mut(&mut client.inner).expect("not shared yet");
        inner.session_prefix = format!("s{}-", inner.run);
        for session in 0..inner.sessions {
            let token = format!("{}{session}", inner.session_prefix);
            owned[owner(&token, base_urls.len())].push(session);
        }
        assert!(
            owned.iter().all(|sessions| !sessions.is_empty()),
            "every process owns a session (give more sessions)"
        );
        inner.streams = owned
            .into_iter()
            .map(|sessions| Stream {
                next: Cell::new(0),
                sessions: Some(sessions),
            })
            .collect();
        client
    }

    fn build(
        base_urls: &[&str],
        api_key: &str,
        sessions: u64,
        group: u64,
        routing: Routing,
        streams: Vec<Stream>,
    ) -> Self {
        let targets = base_urls
            .iter()
            .map(|base_url| {
                let host = base_url
                    .trim_start_matches("http://")
                    .trim_end_matches('/')
                    .to_owned();
                Target {
                    address: host.parse().expect("the server address is ip:port"),
                    host,
                    idle: RefCell::new(Vec::new()),
                }
            })
            .collect();
        Self {
            inner: Rc::new(Inner {
                targets,
                routing,
                authorization: format!("Bearer {api_key}"),
                streams,
                requests: Cell::new(0),
                next_id: Cell::new(0),
                sessions: sessions.max(1),
                group: group.max(1),
                run: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis())
                    .unwrap_or(0),
                session_prefix: "s-".to_owned(),
            }),
        }
    }

    /// `concurrency` requests in flight at all times, for `duration`.
    pub async fn closed_loop(
        &self,
        batch_size: usize,
        concurrency: usize,
        duration: Duration,
    ) -> Outcome {
        let record = Rc::new(Record::default());
        let started = Instant::now();
        let deadline = started + duration;
        let workers: Vec<_> = (0..concurrency)
            .map(|_| {
                let inner = Rc::clone(&self.inner);
                let record = Rc::clone(&record);
                tokio::task::spawn_local(async move {
                    while Instant::now() < deadline {
                        let sent = Instant::now();
                        let accepted = inner.send(batch_size).await;
                        record.add(sent.elapsed(), accepted);
                    }
                })
            })
            .collect();
        for worker in workers {
            let _ = worker.await;
        }
        record.outcome(started.elapsed(), 0.0)
    }

    /// Requests started at `rate` per second for `duration`, however long each takes.
    pub async fn open_loop(&self, batch_size: usize, rate: f64, duration: Duration) -> Outcome {
        let record = Rc::new(Record::default());
        let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
        let started = Instant::now();
        let mut due = started;
        let mut in_flight = Vec::new();
        while due < started + duration {
            let now = Instant::now();
            if due > now {
                tokio::time::sleep(due - now).await;
            }
            // Start every request that is due by now (the timer is coarser than the interval).
            let now = Instant::now();
            while due <= now && due < started + duration {
                let inner = Rc::clone(&self.inner);
                let record = Rc::clone(&record);
                let scheduled = due;
                in_flight.push(tokio::task::spawn_local(async move {
                    let accepted = inner.send(batch_size).await;
                    record.add(scheduled.elapsed(), accepted);
                }));
                due += interval;
            }
            if in_flight.len() > 4096 {
                in_flight.retain(|task| !task.is_finished());
            }
        }
        for task in in_flight {
            let _ = task.await;
        }
        record.outcome(started.elapsed(), rate)
    }
}

impl Inner {
    /// Sends one request of `batch_size` new events on an idle connection (or a new one);
    /// returns how many events were accepted.
    async fn send(&self, batch_size: usize) -> Result<u64, Failure> {
        let request_number = self.requests.get();
        self.requests.set(request_number + 1);
        let stream = (request_number % self.streams.len() as u64) as usize;
        let target = match self.routing {
            Routing::Routed => stream % self.targets.len(),
            Routing::Sprayed => (mix(request_number) % self.targets.len() as u64) as usize,
        };
        let target = &self.targets[target];
        let body = self.batch(&self.streams[stream], batch_size);
        let mut request = Vec::with_capacity(body.len() + 256);
        request.extend_from_slice(
            format!(
                "POST /v1/events HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                target.host,
                self.authorization,
                body.len()
            )
            .as_bytes(),
        );
        request.extend_from_slice(body.as_bytes());
        let idle = target.idle.borrow_mut().pop();
        let answer = match idle {
            // The server closes connections idle for a while (between phases): on a reused
            // connection that fails, try once more on a new one. Events are idempotent, so a
            // resend can never count twice.
            Some(mut connection) => match connection.exchange(&request).await {
                Some(answer) => Some((connection, answer)),
                None => exchange_on_new_connection(target.address, &request).await,
            },
            None => exchange_on_new_connection(target.address, &request).await,
        };
        let (connection, (status, body)) = answer.ok_or(Failure::Connection)?;
        target.idle.borrow_mut().push(connection);
        if status != 202 {
            return Err(Failure::Status(status));
        }
        accepted_count(&body).ok_or(Failure::Connection)
    }

    /// Fresh events of `stream`: three detections for each conversion.
    fn batch(&self, stream: &Stream, size: usize) -> String {
        use std::fmt::Write;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut body = String::with_capacity(size * 260 + 16);
        body.push_str("{\"events\":[");
        for i in 0..size {
            let id = self.next_id.get();
            self.next_id.set(id + 1);
            // The event's place in its stream sets its session and its type.
            let n = stream.next.get();
            stream.next.set(n + 1);
            if i > 0 {
                body.push(',');
            }
            let visit = n / self.group;
            let session = match &stream.sessions {
                Some(sessions) => sessions[(visit % sessions.len() as u64) as usize],
                None => visit % self.sessions,
            };
            let (run, prefix) = (self.run, &self.session_prefix);
            let _ = if n % 4 == 3 {
                write!(
                    body,
                    r#"{{"type":"conversion","event_id":"c-{run}-{id}","event_time":"{now}","keys":{{"session_token":"{prefix}{session}"}},"name":"purchase","value":19.5,"currency":"EUR"}}"#
                )
            } else {
                write!(
                    body,
                    r#"{{"type":"detection","event_id":"d-{run}-{id}","event_time":"{now}","keys":{{"session_token":"{prefix}{session}","device_id":"cam-{}"}},"label":"barcode","confidence":0.91,"model_version":"v3","entity_id":"sku-{}"}}"#,
                    id % 50,
                    id % 500
                )
            };
        }
        body.push_str("]}");
        body
    }
}

/// Sends `request` on a new connection to `address`; returns it and the answer.
async fn exchange_on_new_connection(
    address: SocketAddr,
    request: &[u8],
) -> Option<(Connection, (u16, Vec<u8>))> {
    let mut connection = Connection::open(address).await?;
    let answer = connection.exchange(request).await?;
    Some((connection, answer))
}

/// The process (of `processes`) that owns the session `token`: its hash modulo their number,
/// the same in every run.
pub fn owner(token: &str, processes: usize) -> usize {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    token.hash(&mut hasher);
    (hasher.finish() % processes.max(1) as u64) as usize
}

/// SplitMix64's finaliser: spreads consecutive request numbers evenly, without a period
/// that a session's revisits could fall in step with.
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Why a request accepted nothing.
#[derive(Debug, Clone, Copy)]
enum Failure {
    /// Answered, with this status other than 202.
    Status(u16),
    /// No readable answer.
    Connection,
}

/// `"accepted":N` from the answer body, without a full JSON parse.
fn accepted_count(body: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("\"accepted\":")? + "\"accepted\":".len();
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// One keep-alive HTTP/1.1 connection.
pub struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Connection {
    pub async fn open(address: SocketAddr) -> Option<Self> {
        let stream = TcpStream::connect(address).await.ok()?;
        stream.set_nodelay(true).ok()?;
        Some(Self {
            stream,
            buffer: Vec::with_capacity(8192),
        })
    }

    /// Writes a request and reads one response: its status and body.
    pub async fn exchange(&mut self, request: &[u8]) -> Option<(u16, Vec<u8>)> {
        self.stream.write_all(request).await.ok()?;
        self.buffer.clear();
        let (header_end, status, length) = loop {
            if let Some(end) = find(&self.buffer, b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buffer[..end]).ok()?;
                let status: u16 = head.get(9..12)?.parse().ok()?;
                let length = head
                    .lines()
                    .find_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                break (end + 4, status, length);
            }
            self.read_more().await?;
        };
        while self.buffer.len() < header_end + length {
            self.read_more().await?;
        }
        Some((
            status,
            self.buffer[header_end..header_end + length].to_vec(),
        ))
    }

    async fn read_more(&mut self) -> Option<()> {
        let mut chunk = [0u8; 8192];
        let read = self.stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        self.buffer.extend_from_slice(&chunk[..read]);
        Some(())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[derive(Default)]
struct Record {
    latencies_us: RefCell<Vec<u64>>,
    accepted: Cell<u64>,
    refused: RefCell<BTreeMap<u16, u64>>,
    connection_errors: Cell<u64>,
}

impl Record {
    fn add(&self, latency: Duration, accepted: Result<u64, Failure>) {
        match accepted {
            Ok(n) => {
                self.accepted.set(self.accepted.get() + n);
                self.latencies_us
                    .borrow_mut()
                    .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
            }
            Err(Failure::Status(status)) => {
                *self.refused.borrow_mut().entry(status).or_default() += 1;
            }
            Err(Failure::Connection) => {
                self.connection_errors.set(self.connection_errors.get() + 1)
            }
        }
    }

    fn outcome(&self, elapsed: Duration, target_rate: f64) -> Outcome {
        let mut latencies_us = self.latencies_us.take();
        latencies_us.sort_unstable();
        let refused = self.refused.take();
        let errors = refused.values().sum::<u64>() + self.connection_errors.get();
        Outcome {
            requests: u64::try_from(latencies_us.len()).unwrap_or(0) + errors,
            accepted: self.accepted.get(),
            errors,
            refused,
            connection_errors: self.connection_errors.get(),
            target_rate,
            latencies_us,
            elapsed,
        }
    }
}

impl Outcome {
    /// The two outcomes as one: their requests, errors and latencies together, over their
    /// summed time.
    pub fn merge(mut self, other: Outcome) -> Outcome {
        self.requests += other.requests;
        self.accepted += other.accepted;
        self.errors += other.errors;
        for (status, count) in other.refused {
            *self.refused.entry(status).or_default() += count;
        }
        self.connection_errors += other.connection_errors;
        self.latencies_us.extend(other.latencies_us);
        self.latencies_us.sort_unstable();
        self.elapsed += other.elapsed;
        self
    }

    pub fn events_per_second(&self) -> f64 {
        self.accepted as f64 / self.elapsed.as_secs_f64()
    }

    pub fn requests_per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// Of the accepted requests' latencies.
    pub fn percentile_ms(&self, percentile: f64) -> f64 {
        percentile_ms(&self.latencies_us, percentile)
    }

    /// Requests answered `status`.
    pub fn answered(&self, status: u16) -> u64 {
        self.refused.get(&status).copied().unwrap_or(0)
    }

    /// The errors in a few words: `none`, or e.g. `429: 12, 503: 1, connection: 2`.
    pub fn describe_errors(&self) -> String {
        let mut parts: Vec<String> = self
            .refused
            .iter()
            .map(|(status, count)| format!("{status}: {count}"))
            .collect();
        if self.connection_errors > 0 {
            parts.push(format!("connection: {}", self.connection_errors));
        }
        if parts.is_empty() {
            "none".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

/// The `percentile` of sorted microseconds, in ms (NaN for none): the nearest rank.
pub fn percentile_ms(sorted_us: &[u64], percentile: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let rank = ((percentile / 100.0) * (sorted_us.len() - 1) as f64).round() as usize;
    sorted_us[rank.min(sorted_us.len() - 1)] as f64 / 1000.0
}
