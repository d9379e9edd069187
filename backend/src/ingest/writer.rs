//! Group commit: the events of many concurrent requests are written to the database together,
//! and each request is answered only after the batch holding its rows has committed.
//!
//! Requests wait in a bounded queue, fair between tenants ([`queue`]). A few writer tasks each
//! take one tenant's waiting requests (up to a size bound), write them as one statement, and
//! reply to every request in it. Under load requests queue while a write is in flight, so
//! batches grow on their own; at low load a request is written at once, with no waiting. When
//! the queue is full (storage slow or down) a request is refused at once, never left hanging,
//! and nothing in it is acknowledged.

mod queue;

use crate::actors::matcher::Matcher;
use crate::actors::matcher::in_flight::Token;
use crate::domain::TenantId;
use crate::storage::availability::{is_retryable_conflict, is_unavailable};
use crate::storage::events::{EventRow, InvalidRow, write_batch};
use queue::{FairQueue, Refused};
use sea_orm::DatabaseConnection;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// How the writer is sized.
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    /// Writer tasks writing batches concurrently; one tenant's batches take at most half of
    /// them (rounded up).
    pub writers: usize,
    /// Requests that may wait in the queue before new ones are refused.
    pub queue_capacity: usize,
    /// Largest number of events in one batch (a single request may exceed it alone).
    pub max_batch_events: usize,
    /// How long a request waits for its batch to commit before it is answered 503.
    pub reply_timeout: Duration,
}

/// Why a write did not happen. In every case nothing of the request was acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("the write queue is full")]
    Overloaded,
    #[error("storage did not answer in time")]
    TimedOut,
    #[error("storage failed: {0}")]
    Storage(String),
}

/// One request's rows and where to send the outcome.
struct Job {
    events: Vec<EventRow>,
    invalid: Vec<InvalidRow>,
    /// Keeps the matching checkpoint behind these events until they are matched.
    token: Arc<Token>,
    reply: oneshot::Sender<Result<Vec<bool>, String>>,
}

/// The handle requests use to write.
#[derive(Debug, Clone)]
pub struct Writer {
    queue: Arc<Handle>,
    reply_timeout: Duration,
}

/// The requests' side of the queue: once every [`Writer`] is gone (the server is shutting
/// down), the writer tasks write what waits and stop.
struct Handle(Arc<FairQueue<Job>>);

impl Drop for Handle {
    fn drop(&mut self) {
        self.0.close();
    }
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Handle")
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("events", &self.events.len())
            .field("invalid", &self.invalid.len())
            .finish()
    }
}

impl Writer {
    /// Starts the writer tasks on the current runtime.
    /// Committed events go on to `matcher`.
    pub fn start(db: DatabaseConnection, matcher: Matcher, config: WriterConfig) -> Self {
        let writers = config.writers.max(1);
        let queue = Arc::new(FairQueue::new(
            config.queue_capacity,
            config.max_batch_events,
            writers,
        ));
        for _ in 0..writers {
            tokio::spawn(run(db.clone(), matcher.clone(), Arc::clone(&queue)));
        }
        Self {
            queue: Arc::new(Handle(queue)),
            reply_timeout: config.reply_timeout,
        }
    }

    /// Writes one request's rows, all of `tenant`'s; returns, per event, whether it was
    /// inserted (`false`: a duplicate of a stored event).
    pub async fn write(
        &self,
        tenant: TenantId,
        events: Vec<EventRow>,
        invalid: Vec<InvalidRow>,
        token: Arc<Token>,
    ) -> Result<Vec<bool>, WriteError> {
        let (reply, outcome) = oneshot::channel();
        let size = events.len() + invalid.len();
        let job = Job {
            events,
            invalid,
            token,
            reply,
        };
        // Closed only once no writer handle is left, so not while this one is in use.
        self.queue
            .0
            .push(tenant, job, size)
            .map_err(|(refused, _)| match refused {
                Refused::Full | Refused::Closed => WriteError::Overloaded,
            })?;
        match tokio::time::timeout(self.reply_timeout, outcome).await {
            Ok(Ok(Ok(inserted))) => Ok(inserted),
            Ok(Ok(Err(cause))) => Err(WriteError::Storage(cause)),
            Ok(Err(_)) | Err(_) => Err(WriteError::TimedOut),
        }
    }
}

async fn run(db: DatabaseConnection, matcher: Matcher, queue: Arc<FairQueue<Job>>) {
    while let Some(mut batch) = queue.next_batch().await {
        let jobs = std::mem::take(&mut batch.jobs);
        write(&db, &matcher, jobs).await;
        // The tenant's writer is given back only now that its batch is written.
        drop(batch);
    }
}

/// Writes a batch of jobs and replies to each.
async fn write(db: &DatabaseConnection, matcher: &Matcher, batch: Vec<Job>) {
    // Two requests in one batch may carry the same event: the first (in queue order) is the
    // one written, the others are duplicates of it. The statement must not see it twice.
    let mut first_seen: HashMap<
        (
            crate::domain::TenantId,
            crate::domain::events::EventKind,
            &str,
        ),
        usize,
    > = HashMap::new();
    let mut candidates: Vec<&EventRow> = Vec::new();
    let mut slots: Vec<Vec<Option<usize>>> = Vec::with_capacity(batch.len());
    for job in &batch {
        let mut job_slots = Vec::with_capacity(job.events.len());
        for row in &job.events {
            let identity = (row.tenant_id, row.event.kind(), row.event.event_id.as_str());
            let slot = match first_seen.get(&identity) {
                Some(_) => None,
                None => {
                    first_seen.insert(identity, candidates.len());
                    candidates.push(row);
                    Some(candidates.len() - 1)
                }
            };
            job_slots.push(slot);
        }
        slots.push(job_slots);
    }
    let invalid: Vec<&InvalidRow> = batch.iter().flat_map(|job| job.invalid.iter()).collect();

    let started = std::time::Instant::now();
    let mut outcome = write_batch(db, &candidates, &invalid).await;
    // Rows are written in one order everywhere, so this is rare (another statement locking
    // the same rows in another order); nothing was committed, so once more is safe.
    if outcome.as_ref().is_err_and(is_retryable_conflict) {
        tracing::warn!(
            events = candidates.len(),
            "batch write lost a lock conflict; writing it again"
        );
        outcome = write_batch(db, &candidates, &invalid).await;
    }
    tracing::debug!(
        jobs = batch.len(),
        events = candidates.len(),
        micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        "batch written"
    );
    if let Err(err) = &outcome {
        tracing::error!(error = %err, events = candidates.len(), "batch write failed");
        // A broken connection may have lost only the answer, not the commit: the events may
        // be stored, and the client's retry will find them `duplicate` and not match them.
        if is_unavailable(err)
            && let Some(since) = candidates.iter().map(|row| row.received_time).min()
        {
            matcher.rematch_since(since);
        }
    }
    let outcome = outcome.map_err(|err| err.to_string());
    for (job, job_slots) in batch.into_iter().zip(slots) {
        let reply: Result<Vec<bool>, String> = match &outcome {
            Ok(inserted) => Ok(job_slots
                .iter()
                .map(|slot| slot.is_some_and(|index| inserted.get(index).copied().unwrap_or(false)))
                .collect()),
            Err(cause) => Err(cause.clone()),
        };
        // Only newly stored events are matched: a duplicate's first copy was matched when
        // it was stored. Handed over before the 202, and the token keeps the checkpoint
        // behind them even if this process dies right after.
        if let Ok(inserted) = &reply {
            let fresh: Vec<&EventRow> = job
                .events
                .iter()
                .zip(inserted)
                .filter_map(|(row, &new)| new.then_some(row))
                .collect();
            matcher.submit(&fresh, &job.token);
        }
        // The request may have timed out and gone; its rows are committed all the same and a
        // retry will find them as duplicates.
        let _ = job.reply.send(reply);
    }
}
