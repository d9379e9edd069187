//! Nothing accepted escapes matching. Every event is committed before its 202 and matched
//! after; if the process dies in between, the event is still unmatched at the next start.
//!
//! A checkpoint in the database says "every event received before T is matched": the
//! writer below moves it to the oldest received time still in flight, every second. At
//! start, everything received since the checkpoint (less a margin for clock steps) is
//! matched again; matching is idempotent, so events matched twice change nothing.

use super::{Matcher, Work, done_signal, work_for};
use crate::domain::{TenantId, Timestamp};
use crate::matching::session::SessionEvent;
use crate::storage::sessions::{self, ScanPosition};
use chrono::{DateTime, Utc};
use sea_orm::DbErr;
use std::time::Duration;

/// How often the checkpoint is written.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// Re-matched before the checkpoint too, in case the clock stepped back.
const MARGIN: chrono::Duration = chrono::Duration::seconds(5);
/// Events per recovery page; a page is matched before the next is read.
const PAGE: u64 = 2000;

/// Starts recovery and the checkpoint writer in the background.
pub(super) fn start(matcher: Matcher) {
    actix::spawn(async move {
        let since = retrying("read the matching checkpoint", LONGEST_WAIT, || async {
            Ok(sessions::checkpoint(&matcher.db)
                .await?
                .map_or(NEVER, |checkpoint| checkpoint - MARGIN))
        })
        .await;
        // Held until the scan is done, so that no checkpoint written meanwhile passes
        // `since`; the writer can start at once.
        let hold = matcher
            .in_flight
            .hold(Timestamp::from_millis(since.timestamp_millis()).unwrap_or_else(Timestamp::now));
        start_checkpoints(matcher.clone());
        let count = retrying("start-up recovery", LONGEST_WAIT, || {
            received_since(&matcher, since)
        })
        .await;
        drop(hold);
        if count > 0 {
            tracing::info!(events = count, "start-up recovery re-matched events");
        }
    });
}

/// Before any checkpoint: every stored event is re-matched. The Unix epoch rather than
/// chrono's minimum, which PostgreSQL's timestamps cannot hold; no accepted event is older.
const NEVER: DateTime<Utc> = DateTime::UNIX_EPOCH;

/// The longest wait between two attempts at start-up.
const LONGEST_WAIT: Duration = Duration::from_secs(10);

/// Runs `attempt` until it succeeds, waiting longer after each failure, up to `longest`: the
/// checkpoint stays behind until recovery succeeds, so retrying later loses nothing.
pub(super) async fn retrying<T, F, Fut>(what: &str, longest: Duration, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, DbErr>>,
{
    let mut delay = Duration::from_millis(100);
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(err) => {
                tracing::warn!(error = %err, "cannot {what} yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(longest);
            }
        }
    }
}

/// Re-matches every event received since `since`; returns how many.
pub(super) async fn received_since(matcher: &Matcher, since: DateTime<Utc>) -> Result<u64, DbErr> {
    Ok(scan(matcher, since, Kind::Detections).await?
        + scan(matcher, since, Kind::Conversions).await?)
}

#[derive(Clone, Copy)]
enum Kind {
    Detections,
    Conversions,
}

/// Re-matches one table's events received since `since`, a page at a time.
async fn scan(matcher: &Matcher, since: DateTime<Utc>, kind: Kind) -> Result<u64, DbErr> {
    let mut after: Option<ScanPosition> = None;
    let mut count = 0;
    loop {
        let page: Vec<(uuid::Uuid, DateTime<Utc>, SessionEvent)> = match kind {
            Kind::Detections => {
                sessions::received_detections(&matcher.db, since, after.as_ref(), PAGE)
                    .await?
                    .into_iter()
                    .map(|(t, r, d)| (t, r, SessionEvent::Detection(d)))
                    .collect()
            }
            Kind::Conversions => {
                sessions::received_conversions(&matcher.db, since, after.as_ref(), PAGE)
                    .await?
                    .into_iter()
                    .map(|(t, r, c)| (t, r, SessionEvent::Conversion(c)))
                    .collect()
            }
        };
        let Some((tenant, received, last)) = page.last() else {
            return Ok(count);
        };
        after = Some((*received, *tenant, last.event_id().to_string()));
        count += page.len() as u64;
        let token = matcher.in_flight.hold(Timestamp::from(*received));
        let (done, finished) = done_signal();
        let work: Vec<Work> = page
            .into_iter()
            .flat_map(|(tenant, _, event)| {
                work_for(TenantId::from_uuid(tenant), event, &token, Some(&done))
            })
            .collect();
        drop(done);
        matcher.route(work);
        let _ = finished.await;
    }
}

fn start_checkpoints(matcher: Matcher) {
    actix::spawn(async move {
        let mut interval = tokio::time::interval(CHECKPOINT_EVERY);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_written: Option<Timestamp> = None;
        loop {
            interval.tick().await;
            // Stop with the server: this task holds the last handle once the rest is gone.
            if std::sync::Arc::strong_count(&matcher.shards) == 1 {
                return;
            }
            let matched_before = matcher.in_flight.matched_before();
            if last_written == Some(matched_before) {
                continue;
            }
            match sessions::save_checkpoint(&matcher.db, matched_before.as_datetime()).await {
                Ok(()) => last_written = Some(matched_before),
                Err(err) => tracing::warn!(error = %err, "cannot save the matching checkpoint"),
            }
        }
    });
}
