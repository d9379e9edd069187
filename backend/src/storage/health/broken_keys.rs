//! Per goal: the conversions it could credit (its conversion name, live, received in the
//! period) whose value of the goal's key is carried by no live detection in the goal's
//! window before them, whatever the detection's label or confidence. For those, the
//! tracking key is not passed on between the vision system and the business system, so no
//! rule of the goal can ever match them; the explain page tells the other reasons apart.
//!
//! One correlated `NOT EXISTS` per conversion: conversions are usually far fewer than
//! detections, and each probe is an index lookup (the GIN index on `keys` on PostgreSQL;
//! the `(tenant_id, event_time)` range on SQLite). The most recent [`SAMPLE`] conversions
//! of a goal are examined at most.

use super::{Period, Sql, TenantScope, received_in};
use crate::storage::scoped;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};

/// Conversions per goal examined at most, the most recently received.
pub const SAMPLE: i64 = 10_000;

/// The goal a figure is about.
#[derive(Debug, Clone)]
pub struct GoalKey {
    pub conversion_name: String,
    /// A key name (`^[a-z][a-z0-9_]{0,31}$`, checked when the goal was stored).
    pub key: String,
    pub window_seconds: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyCoverage {
    /// Conversions examined (at most [`SAMPLE`]).
    pub conversions: i64,
    /// Of those, without a value for the goal's key (sent without it, or stored without
    /// keys because consent was denied and the policy strips them).
    pub without_key: i64,
    /// Of those, with a value no detection in the window carries.
    pub unseen_key: i64,
}

impl KeyCoverage {
    /// Conversions that no detection can ever match by the key.
    pub fn broken(&self) -> i64 {
        self.without_key + self.unseen_key
    }
}

pub async fn key_coverage(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    period: &Period,
    goal: &GoalKey,
) -> Result<KeyCoverage, DbErr> {
    scoped::run(db, tenant, async |txn| {
        let row = txn
            .query_one_raw(statement(txn.get_database_backend(), tenant, period, goal))
            .await?;
        let Some(row) = row else {
            return Ok(KeyCoverage::default());
        };
        Ok(KeyCoverage {
            conversions: row.try_get("", "conversions")?,
            without_key: row.try_get("", "without_key")?,
            unseen_key: row.try_get("", "unseen_key")?,
        })
    })
    .await
}

fn statement(
    backend: DbBackend,
    tenant: &TenantScope,
    period: &Period,
    goal: &GoalKey,
) -> Statement {
    // Parameters are added in the order they appear in the text (SQLite's are positional):
    // the correlated subquery of the select list first, then the conversions it reads.
    let mut sql = Sql::new(backend, tenant);
    let detection = match backend {
        DbBackend::Postgres => {
            let tenant = sql.tenant();
            let key = sql.param(goal.key.as_str());
            let window = sql.param(goal.window_seconds);
            format!(
                "d.tenant_id = {tenant} AND NOT d.is_test \
                 AND d.\"keys\" @> jsonb_build_object(CAST({key} AS text), c.v) \
                 AND d.event_time >= c.event_time - CAST({window} AS BIGINT) * interval '1 second' \
                 AND d.event_time <= c.event_time"
            )
        }
        _ => {
            let tenant = sql.tenant();
            let earliest = sql.param(format!("-{} seconds", goal.window_seconds + 1));
            let key = sql.param(json_path(&goal.key));
            let window = sql.param(goal.window_seconds);
            // Text bounds a second wider than the window let the index narrow the scan
            // (timestamps are RFC 3339 text, compared as text); `julianday` decides exactly.
            format!(
                "d.tenant_id = {tenant} AND NOT d.is_test \
                 AND d.event_time >= strftime('%Y-%m-%dT%H:%M:%S', c.event_time, {earliest}) \
                 AND d.event_time < strftime('%Y-%m-%dT%H:%M:%S', c.event_time, '+1 seconds') \
                 AND json_extract(d.\"keys\", {key}) = c.v \
                 AND julianday(d.event_time) >= julianday(c.event_time) - {window} / 86400.0 \
                 AND julianday(d.event_time) <= julianday(c.event_time)"
            )
        }
    };
    let value = match backend {
        DbBackend::Postgres => format!(
            "\"keys\" ->> CAST({} AS text)",
            sql.param(goal.key.as_str())
        ),
        _ => format!(
            "json_extract(\"keys\", {})",
            sql.param(json_path(&goal.key))
        ),
    };
    let tenant = sql.tenant();
    let name = sql.param(goal.conversion_name.as_str());
    let received = received_in(&mut sql, period);
    let limit = sql.param(SAMPLE);
    sql.finish(format!(
        "SELECT CAST(count(*) AS BIGINT) AS conversions, \
         CAST(coalesce(sum(CASE WHEN c.v IS NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS without_key, \
         CAST(coalesce(sum(CASE WHEN c.v IS NOT NULL AND NOT EXISTS \
             (SELECT 1 FROM detections AS d WHERE {detection}) \
         THEN 1 ELSE 0 END), 0) AS BIGINT) AS unseen_key \
         FROM (SELECT {value} AS v, event_time FROM conversions \
               WHERE tenant_id = {tenant} AND NOT is_test AND name = {name}{received} \
               ORDER BY received_time DESC LIMIT {limit}) AS c"
    ))
}

/// SQLite's JSON path of a top-level key.
fn json_path(key: &str) -> String {
    format!("$.{key}")
}
