//! Nothing accepted escapes matching. Every event is committed before its 202 and matched
//! after; if the process dies in between, the event is still unmatched afterwards.
//!
//! Each server process keeps a checkpoint row of its own (named by its node id), saying
//! "every event this process received before T is matched", and touches it every second: the
//! writer below moves T to the oldest received time still in flight. A process that starts
//! under the name of a dead one (a restart) re-matches everything received since that row's
//! T at once; a row whose heartbeat has stopped for [`LEASE`] is taken over by whichever live
//! process gets to it first, which re-matches from its T. Matching is idempotent, so events
//! matched twice change nothing; re-matching starts [`MARGIN`] early in case a clock stepped.

use super::{Matcher, Work, done_signal, work_for};
use crate::domain::{TenantId, Timestamp};
use crate::matching::session::SessionEvent;
use crate::storage::sessions::{self, NEVER, ScanPosition};
use chrono::{DateTime, Utc};
use sea_orm::DbErr;
use std::time::Duration;

/// How often the checkpoint is written (and dead processes looked for).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// How long a process's heartbeat may stop before its checkpoint is taken over: several
/// missed writes, so that a slow second or a short database outage takes nothing over.
const LEASE: chrono::Duration = chrono::Duration::seconds(5);
/// Re-matched before the checkpoint too, in case the clock stepped back.
const MARGIN: chrono::Duration = chrono::Duration::seconds(5);
/// Events per recovery page; a page is matched before the next is read.
const PAGE: u64 = 2000;

/// Starts the re-match of what this node's previous run left (`recover_from`, found when
/// its checkpoint was registered) and the checkpoint writer, in the background.
pub(super) fn start(matcher: Matcher, recover_from: Option<DateTime<Utc>>) {
    // Held until the scan is done, so that no checkpoint written meanwhile passes it; taken
    // before the writer starts.
    let recovery = recover_from.map(|since| {
        let since = if since == NEVER {
            NEVER
        } else {
            since - MARGIN
        };
        (since, hold(&matcher, since))
    });
    start_checkpoints(matcher.clone());
    if let Some((since, hold)) = recovery {
        actix::spawn(rematch(matcher, since, hold, "start-up recovery"));
    }
}

/// Keeps the checkpoint at or before `since` while it lives.
fn hold(matcher: &Matcher, since: DateTime<Utc>) -> std::sync::Arc<super::Token> {
    matcher
        .in_flight
        .hold(Timestamp::from_millis(since.timestamp_millis()).unwrap_or_else(Timestamp::now))
}

/// Re-matches everything received since `since`, retrying until it succeeds, then lets the
/// checkpoint pass.
async fn rematch(
    matcher: Matcher,
    since: DateTime<Utc>,
    hold: std::sync::Arc<super::Token>,
    what: &'static str,
) {
    let count = retrying(what, LONGEST_WAIT, || received_since(&matcher, since)).await;
    drop(hold);
    if count > 0 {
        tracing::info!(events = count, "{what} re-matched events");
    }
}

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

/// Every second: writes this node's checkpoint (its heartbeat), then takes over the
/// checkpoints of dead nodes, then claims the goal re-evaluations nobody runs. One task does both in turn, so a checkpoint computed before a
/// take-over's hold can never be written after the take-over moved the row back.
fn start_checkpoints(matcher: Matcher) {
    actix::spawn(async move {
        let mut interval = tokio::time::interval(CHECKPOINT_EVERY);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            // Stop with the server: this task holds the last handle once the rest is gone.
            if std::sync::Arc::strong_count(&matcher.shards) == 1 {
                release(&matcher).await;
                return;
            }
            let matched_before = matcher.in_flight.matched_before().as_datetime();
            if let Err(err) =
                sessions::save_checkpoint(&matcher.db, &matcher.node, matched_before, Utc::now())
                    .await
            {
                tracing::warn!(error = %err, "cannot save the matching checkpoint");
                continue;
            }
            take_over_dead(&matcher).await;
            super::reevaluation::sweep(&matcher).await;
        }
    });
}

/// Takes over the checkpoints whose heartbeat stopped and re-matches from the earliest, in
/// the background.
async fn take_over_dead(matcher: &Matcher) {
    let mut held = None;
    let now = Utc::now();
    let taken =
        sessions::take_over_checkpoints(&matcher.db, &matcher.node, now - LEASE, now, |earliest| {
            let since = if earliest == NEVER {
                NEVER
            } else {
                earliest - MARGIN
            };
            held = Some((since, hold(matcher, since)));
            matcher.in_flight.matched_before().as_datetime()
        })
        .await;
    match (taken, held) {
        (Ok(Some(_)), Some((since, hold))) => {
            crate::metrics::CHECKPOINTS_TAKEN_OVER.add(1);
            tracing::info!(since = %since, "took over the matching checkpoint of a stopped process");
            actix::spawn(rematch(matcher.clone(), since, hold, "take-over recovery"));
        }
        (Err(err), _) => tracing::warn!(error = %err, "cannot look for stopped processes"),
        _ => {}
    }
}

/// The server is stopping: what is still queued goes unmatched, so the checkpoint is given
/// up (a heartbeat at the epoch) for the next process to take over at once.
async fn release(matcher: &Matcher) {
    let matched_before = matcher.in_flight.matched_before().as_datetime();
    if let Err(err) =
        sessions::save_checkpoint(&matcher.db, &matcher.node, matched_before, NEVER).await
    {
        tracing::warn!(error = %err, "cannot release the matching checkpoint");
    }
}
