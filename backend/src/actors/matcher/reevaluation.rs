//! Re-evaluation after a goal change: every session holding the goal's conversions inside the
//! horizon settles them again, in the background, through the shards (so it is serialised
//! with live matching) while ingestion goes on. The goal's progress is kept for the API.

use super::messages::SessionKey;
use super::{Matcher, Work, done_signal};
use crate::auth::TenantScope;
use crate::domain::{TenantId, Timestamp};
use crate::matching::Text;
use crate::matching::session::GoalId;
use crate::storage::sessions;
use sea_orm::DbErr;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// Sessions sent to the shards at a time.
const CHUNK: usize = 500;

/// Where a goal's re-evaluation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// `running` or `done`.
    pub status: &'static str,
    pub sessions_total: usize,
    pub sessions_done: usize,
}

/// Each goal's latest re-evaluation in this process.
#[derive(Debug, Default)]
pub(super) struct ProgressBook {
    /// Goal → (run number, progress); a newer run of the same goal replaces an older one.
    runs: Mutex<HashMap<GoalId, (u64, Progress)>>,
    next_run: Mutex<u64>,
}

impl ProgressBook {
    pub(super) fn get(&self, goal_id: GoalId) -> Option<Progress> {
        self.lock().get(&goal_id).map(|(_, progress)| *progress)
    }

    fn begin(&self, goal_id: GoalId) -> u64 {
        let run = {
            let mut next = self.next_run.lock().unwrap_or_else(|p| p.into_inner());
            *next += 1;
            *next
        };
        self.lock().insert(
            goal_id,
            (
                run,
                Progress {
                    status: "running",
                    sessions_total: 0,
                    sessions_done: 0,
                },
            ),
        );
        run
    }

    /// Records progress of `run`; false when a newer run of the goal has started (this one
    /// can stop: the newer one covers everything).
    fn update(&self, goal_id: GoalId, run: u64, progress: Progress) -> bool {
        let mut runs = self.lock();
        match runs.get_mut(&goal_id) {
            Some((current, entry)) if *current == run => {
                *entry = progress;
                true
            }
            _ => false,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<GoalId, (u64, Progress)>> {
        // Whole values only; nothing half-written to guard against.
        self.runs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub(super) fn start(matcher: Matcher, tenant: TenantId, goal_id: GoalId) {
    let run = matcher.progress.begin(goal_id);
    actix::spawn(async move {
        let mut delay = Duration::from_millis(100);
        loop {
            match reevaluate(&matcher, tenant, goal_id, run).await {
                Ok(()) => return,
                Err(err) => {
                    tracing::warn!(error = %err, goal = %goal_id, "re-evaluation failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
    });
}

async fn reevaluate(
    matcher: &Matcher,
    tenant: TenantId,
    goal_id: GoalId,
    run: u64,
) -> Result<(), DbErr> {
    // Fresh from the database: the change has committed, a cached copy may predate it.
    let goals = matcher.goals.load(&matcher.db, tenant).await?;
    let mut progress = Progress {
        status: "running",
        sessions_total: 0,
        sessions_done: 0,
    };
    // Deleted or inactive: its rows went with the change and the shards forgot it.
    let Some(active) = goals.active(goal_id) else {
        progress.status = "done";
        matcher.progress.update(goal_id, run, progress);
        return Ok(());
    };
    let since = Timestamp::from_millis(Timestamp::now().as_millis().saturating_sub(goals.horizon))
        .unwrap_or_else(Timestamp::now)
        .as_datetime();
    let values = sessions::conversion_key_values(
        &matcher.db,
        &TenantScope::authenticated(tenant),
        &active.goal.conversion_name,
        &active.goal.key,
        since,
    )
    .await?;
    progress.sessions_total = values.len();
    if !matcher.progress.update(goal_id, run, progress) {
        return Ok(());
    }
    for chunk in values.chunks(CHUNK) {
        let (done, finished) = done_signal();
        let work: Vec<Work> = chunk
            .iter()
            .map(|value| Work::Reevaluate {
                session: SessionKey {
                    tenant,
                    name: active.goal.key.clone(),
                    value: Text::from(value.as_str()),
                },
                goal_id,
                done: done.clone(),
            })
            .collect();
        drop(done);
        matcher.route(work);
        let _ = finished.await;
        progress.sessions_done += chunk.len();
        if !matcher.progress.update(goal_id, run, progress) {
            return Ok(());
        }
    }
    progress.status = "done";
    matcher.progress.update(goal_id, run, progress);
    Ok(())
}
