//! Per-session versions in PostgreSQL (migration 000008): how several server processes
//! serialise the work on one session and tell whether the copy of a session they hold in
//! memory is still the latest.
//!
//! A matching round [`claim`]s its sessions' rows at the start of its transaction: each row
//! is locked until the round commits (so two processes never settle one session at once) and
//! gets the round's new version, while the version it replaces comes back as `previous`. A
//! process whose copy of a session carries that previous version holds the latest state; any
//! other copy is read again from the events, inside the same transaction. Versions come from
//! one sequence, so a version is never given out twice, even to a row deleted and made again.
//!
//! PostgreSQL only: on SQLite (one process) there is nothing to coordinate.

use super::TenantScope;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};
use std::collections::HashMap;
use uuid::Uuid;

/// A session as its row names it: (tenant, key name, key value).
pub type SessionRow = (Uuid, String, String);

/// What a round's claim found.
#[derive(Debug, Default)]
pub struct Claim {
    /// The version the round gives every session it claimed.
    pub version: i64,
    /// Per session, the version it had before (`None`: no row yet).
    pub previous: HashMap<SessionRow, Option<i64>>,
}

/// Rows per statement: three arrays, so well under any parameter limit; bounded so that one
/// statement's lock set stays moderate.
const CHUNK: usize = 5000;

/// Locks the rows of `sessions` (creating the missing ones) until the transaction ends and
/// gives them all one new version; `sessions` must not repeat one. Rows are taken in key
/// order, the same in every process, so two rounds waiting on each other's sessions cannot
/// deadlock.
pub async fn claim(txn: &impl ConnectionTrait, sessions: &[SessionRow]) -> Result<Claim, DbErr> {
    let mut claim = Claim::default();
    if sessions.is_empty() || txn.get_database_backend() != DbBackend::Postgres {
        return Ok(claim);
    }
    let mut sorted: Vec<&SessionRow> = sessions.iter().collect();
    sorted.sort_unstable();
    claim.version = next_version(txn).await?;
    for chunk in sorted.chunks(CHUNK) {
        let tenants: Vec<Uuid> = chunk.iter().map(|s| s.0).collect();
        let names: Vec<String> = chunk.iter().map(|s| s.1.clone()).collect();
        let values: Vec<String> = chunk.iter().map(|s| s.2.clone()).collect();
        // `WITH ORDINALITY` keeps the order given (sorted above, the same bytewise order in
        // every process) as the order rows are inserted and locked in.
        let rows = txn
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO session_versions \
                     (tenant_id, key_name, key_value, version, previous, updated_at) \
                 SELECT k.tenant_id, k.key_name, k.key_value, $4, NULL, now() \
                 FROM unnest($1::uuid[], $2::text[], $3::text[]) WITH ORDINALITY \
                     AS k(tenant_id, key_name, key_value, position) \
                 ORDER BY k.position \
                 ON CONFLICT (tenant_id, key_name, key_value) DO UPDATE \
                 SET previous = session_versions.version, version = EXCLUDED.version, \
                     updated_at = EXCLUDED.updated_at \
                 RETURNING tenant_id, key_name, key_value, previous",
                [
                    tenants.into(),
                    names.into(),
                    values.into(),
                    claim.version.into(),
                ],
            ))
            .await?;
        for row in rows {
            let session: SessionRow = (
                row.try_get_by_index(0)?,
                row.try_get_by_index(1)?,
                row.try_get_by_index(2)?,
            );
            claim.previous.insert(session, row.try_get_by_index(3)?);
        }
    }
    Ok(claim)
}

/// Gives the tenant's sessions `sessions` (key name, key value) a version no process holds,
/// waiting for any round working on them: used before their events are erased, so that
/// every process reads them again from storage.
pub async fn invalidate(
    txn: &impl ConnectionTrait,
    tenant: &TenantScope,
    sessions: &[(String, String)],
) -> Result<(), DbErr> {
    if sessions.is_empty() || txn.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let rows: Vec<SessionRow> = sessions
        .iter()
        .map(|(name, value)| (tenant.id().as_uuid(), name.clone(), value.clone()))
        .collect();
    claim(txn, &rows).await.map(drop)
}

/// Deletes the rows of sessions no round has claimed since `before`: they are only kept to
/// tell whether a copy in memory is current, and a missing row makes any copy read again.
/// Returns how many went.
pub async fn forget_unused(
    db: &impl ConnectionTrait,
    before: chrono::DateTime<chrono::Utc>,
    limit: u64,
) -> Result<u64, DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(0);
    }
    let result = db
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "DELETE FROM session_versions WHERE ctid IN \
                 (SELECT ctid FROM session_versions WHERE updated_at < $1 LIMIT $2 \
                  FOR UPDATE SKIP LOCKED)",
            [before.into(), (limit as i64).into()],
        ))
        .await?;
    Ok(result.rows_affected())
}

async fn next_version(txn: &impl ConnectionTrait) -> Result<i64, DbErr> {
    let row = txn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT nextval('session_version_seq')",
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("nextval returned no row".into()))?;
    row.try_get_by_index(0)
}
