//! The history checker of the fault tests. A [`Sender`] delivers events the way a careful
//! client does (a refused or cut-off request is sent again until every event is answered
//! `accepted` or `duplicate`) and records every answer in a [`History`]. After the fault run,
//! [`History::check_stored`] compares that record with the database: no event answered
//! `accepted` is missing, none is stored twice, nothing is stored that was never sent; the
//! attributions are then compared with the reference implementation (`reference::judge`).

use crate::TestApp;
use crate::fixtures::batch;
use crate::reference::rng::Rng;
use futures_util::future::join_all;
use sea_orm::ConnectionTrait;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// An event's identity: its type and id (ids are unique per type).
pub type Identity = (String, String);

/// Everything a fault run's client saw.
#[derive(Debug, Default)]
pub struct History {
    /// How many times each event was answered `accepted`: more than once would mean it was
    /// stored twice.
    accepted: BTreeMap<Identity, usize>,
    /// Events answered `duplicate` (a retry of an event whose earlier answer was lost).
    duplicates: BTreeSet<Identity>,
    /// Every event sent, answered or not.
    sent: BTreeSet<Identity>,
    /// Requests answered, by status.
    pub statuses: BTreeMap<u16, usize>,
    /// 503 answers without a `Retry-After` header.
    pub unavailable_without_retry_after: usize,
    /// Requests that got no answer at all (the connection was refused or cut).
    pub connection_failures: usize,
    /// Events answered `rejected`, with the answer: a fault must never make a valid event
    /// invalid.
    pub rejections: Vec<String>,
    /// Every request, answered or not, in the order they finished: a fault may slow the
    /// service down, and a test bounds how much.
    pub requests: Vec<Timing>,
}

/// When one request was sent and how long its answer (or its failure) took.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub sent_at: Instant,
    pub latency: Duration,
}

/// What [`History::check_stored`] found.
#[derive(Debug, PartialEq, Eq)]
pub struct StoredCheck {
    /// Answered `accepted` but not in the database.
    pub lost: Vec<Identity>,
    /// Stored more than once (impossible with the primary key; checked all the same).
    pub duplicated: Vec<Identity>,
    /// Answered `accepted` more than once.
    pub accepted_twice: Vec<Identity>,
    /// In the database but never sent.
    pub unknown: Vec<Identity>,
    /// Sent but never answered `accepted` or `duplicate`.
    pub unanswered: Vec<Identity>,
}

impl StoredCheck {
    pub fn is_clean(&self) -> bool {
        self.lost.is_empty()
            && self.duplicated.is_empty()
            && self.accepted_twice.is_empty()
            && self.unknown.is_empty()
            && self.unanswered.is_empty()
    }
}

fn identity(event: &Value) -> Identity {
    let text = |field: &str| event[field].as_str().unwrap_or_default().to_owned();
    (text("type"), text("event_id"))
}

impl History {
    /// Events answered `accepted` at least once.
    pub fn accepted_count(&self) -> usize {
        self.accepted.len()
    }

    /// Requests answered with `status`.
    pub fn answered(&self, status: u16) -> usize {
        self.statuses.get(&status).copied().unwrap_or(0)
    }

    /// Compares the record with `stored`, the stored events' identities and row counts.
    pub fn compare(&self, stored: &BTreeMap<Identity, i64>) -> StoredCheck {
        let answered: BTreeSet<&Identity> =
            self.accepted.keys().chain(self.duplicates.iter()).collect();
        StoredCheck {
            lost: self
                .accepted
                .keys()
                .filter(|id| !stored.contains_key(*id))
                .cloned()
                .collect(),
            duplicated: stored
                .iter()
                .filter(|(_, count)| **count > 1)
                .map(|(id, _)| id.clone())
                .collect(),
            accepted_twice: self
                .accepted
                .iter()
                .filter(|(_, times)| **times > 1)
                .map(|(id, _)| id.clone())
                .collect(),
            unknown: stored
                .keys()
                .filter(|id| !self.sent.contains(*id))
                .cloned()
                .collect(),
            unanswered: self
                .sent
                .iter()
                .filter(|id| !answered.contains(id))
                .cloned()
                .collect(),
        }
    }

    fn record_sent(&mut self, events: &[Value]) {
        self.sent.extend(events.iter().map(identity));
    }

    /// Records a 202's per-event results; returns the events still to deliver.
    fn record_results(&mut self, events: Vec<Value>, body: &Value) -> Vec<Value> {
        let results = body["results"].as_array().cloned().unwrap_or_default();
        assert_eq!(results.len(), events.len(), "one result per event: {body}");
        let mut again = Vec::new();
        for (event, result) in events.into_iter().zip(results) {
            let id = identity(&event);
            match result["status"].as_str() {
                Some("accepted") => *self.accepted.entry(id).or_insert(0) += 1,
                Some("duplicate") => {
                    self.duplicates.insert(id);
                }
                Some("rejected") => {
                    self.rejections.push(format!("{event} answered {result}"));
                }
                _ => again.push(event),
            }
        }
        again
    }
}

/// The identities of the events stored for `tenant_id`, with how many rows each has.
pub async fn stored_events(app: &TestApp, tenant_id: &str) -> BTreeMap<Identity, i64> {
    let db = app.db().await;
    let mut stored: BTreeMap<Identity, i64> = BTreeMap::new();
    for (kind, table) in [("detection", "detections"), ("conversion", "conversions")] {
        let sql = format!(
            "SELECT event_id, count(*) AS n FROM {table} \
                 WHERE tenant_id = '{tenant_id}'::uuid GROUP BY event_id"
        );
        let rows = db
            .query_all_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                sql.clone(),
            ))
            .await
            .unwrap_or_else(|err| panic!("{sql}: {err}"));
        for row in rows {
            let id: String = row.try_get("", "event_id").expect("event_id");
            let count: i64 = row.try_get("", "n").expect("count");
            stored.insert((kind.to_owned(), id), count);
        }
    }
    db.close().await.ok();
    stored
}

/// A client that keeps sending until each event is answered, recording everything.
#[allow(missing_debug_implementations)] // an HTTP client: nothing useful to print
pub struct Sender {
    client: awc::Client,
    /// Where requests go, in turn (a request sent again goes to the next).
    base_urls: Vec<String>,
    next_url: std::cell::Cell<usize>,
    key: String,
    /// How long to wait before sending a refused request again.
    pub pause: Duration,
    /// When to give up on an event that is still refused.
    pub give_up_after: Duration,
    history: RefCell<History>,
}

impl Sender {
    /// Sends to `base_url` (which must stay the same across restarts: see
    /// [`TestApp::restart_process`]) with the ingest key `key`.
    pub fn new(base_url: &str, key: &str) -> Self {
        Self::across(std::slice::from_ref(&base_url.to_owned()), key)
    }

    /// Sends to every one of `base_urls` in turn (server processes sharing one database), so
    /// that consecutive requests, and the resending of one, go to different processes.
    pub fn across(base_urls: &[String], key: &str) -> Self {
        assert!(!base_urls.is_empty(), "a sender needs somewhere to send");
        Self {
            client: awc::Client::builder()
                .timeout(Duration::from_secs(10))
                .finish(),
            base_urls: base_urls.to_vec(),
            next_url: std::cell::Cell::new(0),
            key: key.to_owned(),
            pause: Duration::from_millis(100),
            give_up_after: Duration::from_secs(60),
            history: RefCell::default(),
        }
    }

    /// Compares the record with the events stored for `tenant_id`.
    pub async fn check_stored(&self, app: &TestApp, tenant_id: &str) -> StoredCheck {
        let stored = stored_events(app, tenant_id).await;
        self.history.borrow().compare(&stored)
    }

    /// The record so far.
    pub fn history(&self) -> std::cell::Ref<'_, History> {
        self.history.borrow()
    }

    /// Delivers one batch: sends it again (the unanswered part of it) after every refusal or
    /// broken connection, until each event is answered or [`Sender::give_up_after`] passes.
    pub async fn deliver(&self, mut events: Vec<Value>) {
        self.history.borrow_mut().record_sent(&events);
        let started = Instant::now();
        while !events.is_empty() {
            assert!(
                started.elapsed() < self.give_up_after,
                "{} events still refused after {:?}; history: {:?}",
                events.len(),
                self.give_up_after,
                self.history.borrow().statuses
            );
            let sent_at = Instant::now();
            let sent = self
                .client
                .post(format!("{}/v1/events", self.next_base_url()))
                .insert_header(("Authorization", format!("Bearer {}", self.key)))
                .send_json(&batch(events.clone()))
                .await;
            let mut response = match sent {
                Ok(response) => response,
                Err(_) => {
                    self.record_unanswered(sent_at);
                    actix_web::rt::time::sleep(self.pause).await;
                    continue;
                }
            };
            let status = response.status().as_u16();
            let retry_after = response.headers().contains_key("retry-after");
            let body = response.body().limit(16 * 1024 * 1024).await;
            self.history.borrow_mut().requests.push(Timing {
                sent_at,
                latency: sent_at.elapsed(),
            });
            events = self.record(events, status, retry_after, body.ok().as_deref());
            if !events.is_empty() {
                actix_web::rt::time::sleep(self.pause).await;
            }
        }
    }

    fn next_base_url(&self) -> &str {
        let index = self.next_url.get();
        self.next_url.set((index + 1) % self.base_urls.len());
        &self.base_urls[index]
    }

    /// Records a request that got no answer at all.
    fn record_unanswered(&self, sent_at: Instant) {
        let mut history = self.history.borrow_mut();
        history.connection_failures += 1;
        history.requests.push(Timing {
            sent_at,
            latency: sent_at.elapsed(),
        });
    }

    /// Records one answer; returns the events still to deliver.
    fn record(
        &self,
        events: Vec<Value>,
        status: u16,
        retry_after: bool,
        body: Option<&[u8]>,
    ) -> Vec<Value> {
        let mut history = self.history.borrow_mut();
        *history.statuses.entry(status).or_insert(0) += 1;
        match (status, body) {
            (202, Some(bytes)) => {
                let body: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
                history.record_results(events, &body)
            }
            (202, None) => {
                // The answer was cut off: its outcome is unknown, so send again.
                history.connection_failures += 1;
                events
            }
            (503, _) if !retry_after => {
                history.unavailable_without_retry_after += 1;
                events
            }
            _ => events,
        }
    }

    /// Delivers `events` in a random order, in batches of random sizes (1 to `max_batch`),
    /// `in_flight` requests at a time.
    pub async fn deliver_all(
        &self,
        events: &[Value],
        rng: &mut Rng,
        max_batch: i64,
        in_flight: usize,
    ) {
        let mut order: Vec<Value> = events.to_vec();
        rng.shuffle(&mut order);
        let mut batches: Vec<Vec<Value>> = Vec::new();
        while !order.is_empty() {
            let size = usize::try_from(rng.range(1, max_batch)).expect("a positive size");
            let rest = order.split_off(size.min(order.len()));
            batches.push(std::mem::replace(&mut order, rest));
        }
        let mut batches = batches.into_iter().peekable();
        while batches.peek().is_some() {
            let group: Vec<Vec<Value>> = batches.by_ref().take(in_flight).collect();
            join_all(group.into_iter().map(|events| self.deliver(events))).await;
        }
    }
}
