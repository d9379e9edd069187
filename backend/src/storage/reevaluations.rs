//! Goal re-evaluations as jobs (migration 000008), so that one runs once across the
//! processes sharing the database and resumes when the process running it dies.
//!
//! A goal change schedules its goal's job in the change's own transaction (so no change goes
//! without one). A process runs a job while it holds its lease, renewed with every chunk of
//! sessions done, and records a cursor (the last session value done): a job whose lease ran
//! out is claimed by another process, which goes on after the cursor. A newer change of the
//! goal replaces the job (a new revision, no owner), and the older run's next progress
//! record fails, which stops it.

use super::TenantScope;
use crate::domain::TenantId;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, Value};
use std::collections::HashMap;
use uuid::Uuid;

/// A claimed job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub tenant: TenantId,
    pub goal_id: Uuid,
    /// The goal revision it re-evaluates.
    pub revision: i32,
    /// The last session value done, if any.
    pub cursor: Option<String>,
    pub sessions_done: i64,
}

/// Where a goal's re-evaluation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Progress {
    /// `running` or `done`.
    pub status: &'static str,
    pub sessions_total: i64,
    pub sessions_done: i64,
}

/// Schedules the re-evaluation of the tenant's goal `goal_id` at `revision`, replacing any
/// earlier one of it; in the transaction that changes the goal.
pub async fn schedule(
    txn: &impl ConnectionTrait,
    tenant: &TenantScope,
    goal_id: Uuid,
    revision: i32,
) -> Result<(), DbErr> {
    let backend = txn.get_database_backend();
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        marks(
            backend,
            "INSERT INTO goal_reevaluations (tenant_id, goal_id, revision, status, \
                 sessions_total, sessions_done, cursor, owner, lease_until) \
             VALUES (?, ?, ?, 'running', 0, 0, NULL, NULL, NULL) \
             ON CONFLICT (tenant_id, goal_id) DO UPDATE SET revision = excluded.revision, \
                 status = 'running', sessions_total = 0, sessions_done = 0, cursor = NULL, \
                 owner = NULL, lease_until = NULL",
        ),
        [
            tenant.id().as_uuid().into(),
            goal_id.into(),
            revision.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Claims, for `node` until `lease_until`, the running jobs nobody holds a lease on at
/// `now`: every such job, or only the goal's when `only` names one. Two processes claiming at
/// once never get the same job: the second one's update finds the lease taken.
pub async fn claim(
    db: &DatabaseConnection,
    node: &str,
    only: Option<(TenantId, Uuid)>,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Vec<Job>, DbErr> {
    let backend = db.get_database_backend();
    let mut values: Vec<Value> = vec![node.into(), lease_until.into(), now.into()];
    let mut sql = "UPDATE goal_reevaluations SET owner = ?, lease_until = ? \
                   WHERE status = 'running' AND (lease_until IS NULL OR lease_until < ?)"
        .to_owned();
    if let Some((tenant, goal_id)) = only {
        sql.push_str(" AND tenant_id = ? AND goal_id = ?");
        values.push(tenant.as_uuid().into());
        values.push(goal_id.into());
    }
    sql.push_str(" RETURNING tenant_id, goal_id, revision, cursor, sessions_done");
    db.query_all_raw(Statement::from_sql_and_values(
        backend,
        marks(backend, &sql),
        values,
    ))
    .await?
    .iter()
    .map(|row| {
        Ok(Job {
            tenant: TenantId::from_uuid(row.try_get_by_index(0)?),
            goal_id: row.try_get_by_index(1)?,
            revision: row.try_get_by_index(2)?,
            cursor: row.try_get_by_index(3)?,
            sessions_done: row.try_get_by_index(4)?,
        })
    })
    .collect()
}

/// What a run has done so far.
#[derive(Debug, Clone)]
pub struct Step<'a> {
    pub cursor: Option<&'a str>,
    pub sessions_done: i64,
    pub sessions_total: i64,
    pub finished: bool,
}

/// Records `job`'s progress and renews its lease; false when `node` no longer runs it (the
/// goal changed again, or the lease ran out and another process claimed it): stop then.
pub async fn record(
    db: &DatabaseConnection,
    node: &str,
    job: &Job,
    step: Step<'_>,
    lease_until: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let backend = db.get_database_backend();
    let result = db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            marks(
                backend,
                "UPDATE goal_reevaluations SET cursor = ?, sessions_done = ?, \
                     sessions_total = ?, status = ?, lease_until = ? \
                 WHERE tenant_id = ? AND goal_id = ? AND revision = ? AND owner = ?",
            ),
            [
                step.cursor.map(str::to_owned).into(),
                step.sessions_done.into(),
                step.sessions_total.into(),
                if step.finished { "done" } else { "running" }.into(),
                lease_until.into(),
                job.tenant.as_uuid().into(),
                job.goal_id.into(),
                job.revision.into(),
                node.into(),
            ],
        ))
        .await?;
    Ok(result.rows_affected() == 1)
}

/// The latest re-evaluation of each of the tenant's goals that has one.
pub async fn progress(
    db: &DatabaseConnection,
    tenant: &TenantScope,
) -> Result<HashMap<Uuid, Progress>, DbErr> {
    super::scoped::run(db, tenant, async |txn| {
        let backend = txn.get_database_backend();
        let rows = txn
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                marks(
                    backend,
                    "SELECT goal_id, status, sessions_total, sessions_done \
                     FROM goal_reevaluations WHERE tenant_id = ?",
                ),
                [tenant.id().as_uuid().into()],
            ))
            .await?;
        rows.iter()
            .map(|row| {
                let status: String = row.try_get_by_index(1)?;
                Ok((
                    row.try_get_by_index(0)?,
                    Progress {
                        status: if status == "done" { "done" } else { "running" },
                        sessions_total: row.try_get_by_index(2)?,
                        sessions_done: row.try_get_by_index(3)?,
                    },
                ))
            })
            .collect()
    })
    .await
}

/// `?` placeholders as the backend spells them.
fn marks(backend: DbBackend, sql: &str) -> String {
    match backend {
        DbBackend::Postgres => {
            let mut numbered = String::with_capacity(sql.len() + 16);
            let mut n = 0;
            for c in sql.chars() {
                if c == '?' {
                    n += 1;
                    numbered.push_str(&format!("${n}"));
                } else {
                    numbered.push(c);
                }
            }
            numbered
        }
        _ => sql.to_owned(),
    }
}
