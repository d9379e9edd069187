//! Re-evaluation after a goal change: every session holding the goal's conversions inside the
//! horizon settles them again, in the background, through the shards (so it is serialised
//! with live matching) while ingestion goes on.
//!
//! Each change schedules a job in its own transaction (`storage::reevaluations`). The
//! process that made the change claims it at once; every process also looks for jobs whose
//! lease has run out (their process died, or none claimed them) every second, so a job runs
//! once across the processes and resumes after the cursor its last run recorded.

use super::messages::SessionKey;
use super::{Matcher, Work, done_signal};
use crate::auth::TenantScope;
use crate::domain::{TenantId, Timestamp};
use crate::matching::Text;
use crate::matching::session::GoalId;
use crate::storage::reevaluations::{self, Job, Step};
use crate::storage::sessions;
use chrono::Utc;
use sea_orm::DbErr;
use std::time::Duration;

/// Sessions sent to the shards at a time; the job's progress is recorded after each chunk.
const CHUNK: usize = 500;
/// How long a claimed job is its process's without a progress record; a chunk takes far
/// less, so only a dead (or stuck) process loses its jobs.
const LEASE: chrono::Duration = chrono::Duration::seconds(30);

/// Runs the goal's newly scheduled re-evaluation in this process, unless another has
/// claimed it first.
pub(super) fn start(matcher: Matcher, tenant: TenantId, goal_id: GoalId) {
    actix::spawn(async move {
        claim_and_run(&matcher, Some((tenant, goal_id))).await;
    });
}

/// Claims and runs the jobs nobody runs (called every second with the checkpoint).
pub(super) async fn sweep(matcher: &Matcher) {
    claim_and_run(matcher, None).await;
}

async fn claim_and_run(matcher: &Matcher, only: Option<(TenantId, GoalId)>) {
    let now = Utc::now();
    match reevaluations::claim(&matcher.db, &matcher.node, only, now, now + LEASE).await {
        Ok(jobs) => {
            for job in jobs {
                actix::spawn(run(matcher.clone(), job));
            }
        }
        Err(err) => tracing::warn!(error = %err, "cannot look for goal re-evaluations"),
    }
}

/// Runs a claimed job until it is done or no longer this process's, retrying after errors.
async fn run(matcher: Matcher, mut job: Job) {
    let mut delay = Duration::from_millis(100);
    loop {
        match reevaluate(&matcher, &mut job).await {
            Ok(()) => return,
            Err(err) => {
                tracing::warn!(error = %err, goal = %job.goal_id, "re-evaluation failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}

async fn reevaluate(matcher: &Matcher, job: &mut Job) -> Result<(), DbErr> {
    let (tenant, goal_id) = (job.tenant, job.goal_id);
    // Fresh from the database: the change has committed, a cached copy may predate it.
    let goals = matcher.goals.load(&matcher.db, tenant).await?;
    if goals.revisions.get(&goal_id) != Some(&job.revision) {
        // Changed again since: the newer change's job covers everything.
        return Ok(());
    }
    // Inactive: its rows went with the change and the shards forgot it.
    let Some(active) = goals.active(goal_id) else {
        let step = Step {
            cursor: None,
            sessions_done: 0,
            sessions_total: 0,
            finished: true,
        };
        record(matcher, job, step).await?;
        return Ok(());
    };
    let since = Timestamp::from_millis(Timestamp::now().as_millis().saturating_sub(goals.horizon))
        .unwrap_or_else(Timestamp::now)
        .as_datetime();
    let mut values = sessions::conversion_key_values(
        &matcher.db,
        &TenantScope::authenticated(tenant),
        &active.goal.conversion_name,
        &active.goal.key,
        since,
    )
    .await?;
    // In one order every time, so that a resumed run can go on after the cursor.
    values.sort_unstable();
    if let Some(cursor) = &job.cursor {
        values.retain(|value| value > cursor);
    }
    let mut done = job.sessions_done;
    let total = done + values.len() as i64;
    let step = Step {
        cursor: job.cursor.as_deref(),
        sessions_done: done,
        sessions_total: total,
        finished: values.is_empty(),
    };
    if !record(matcher, job, step).await? {
        return Ok(());
    }
    for chunk in values.chunks(CHUNK) {
        let (signal, finished) = done_signal();
        let work: Vec<Work> = chunk
            .iter()
            .map(|value| Work::Reevaluate {
                session: SessionKey {
                    tenant,
                    name: active.goal.key.clone(),
                    value: Text::from(value.as_str()),
                },
                goal_id,
                done: signal.clone(),
            })
            .collect();
        drop(signal);
        matcher.route(work);
        let _ = finished.await;
        done += chunk.len() as i64;
        let step = Step {
            cursor: chunk.last().map(String::as_str),
            sessions_done: done,
            sessions_total: total,
            finished: done == total,
        };
        if !record(matcher, job, step).await? {
            return Ok(());
        }
        // A retry after an error resumes here, not from the start.
        job.cursor = chunk.last().cloned();
        job.sessions_done = done;
    }
    Ok(())
}

/// Records the job's progress and renews its lease; false when this process no longer runs it.
async fn record(matcher: &Matcher, job: &Job, step: Step<'_>) -> Result<bool, DbErr> {
    let lease_until = Utc::now() + LEASE;
    reevaluations::record(&matcher.db, &matcher.node, job, step, lease_until).await
}
