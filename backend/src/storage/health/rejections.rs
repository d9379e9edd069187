//! Rejected events received in a period: per hour, and per error code (an event with
//! several errors counts once under each of its codes).

use super::{Period, Sql, TenantScope, hour_of};
use crate::storage::scoped;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use std::collections::BTreeMap;

/// How often one error code occurred.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeCount {
    pub code: String,
    /// Rejected events with at least one error of this code.
    pub events: i64,
    /// Errors of this code (an event can have several, on different fields).
    pub errors: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rejections {
    /// Per UTC hour (`YYYY-MM-DD HH`); hours without rejections are absent.
    pub per_hour: BTreeMap<String, i64>,
    pub total: i64,
    /// Most frequent first, then by code.
    pub by_code: Vec<CodeCount>,
}

pub async fn rejections(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    period: &Period,
) -> Result<Rejections, DbErr> {
    scoped::run(db, tenant, async |txn| {
        let backend = txn.get_database_backend();
        let (hours, codes) = tokio::try_join!(
            txn.query_all_raw(per_hour(backend, tenant, period)),
            txn.query_all_raw(per_code(backend, tenant, period)),
        )?;
        let mut rejections = Rejections::default();
        for row in hours {
            let n: i64 = row.try_get("", "n")?;
            rejections.total += n;
            rejections.per_hour.insert(row.try_get("", "hour")?, n);
        }
        for row in codes {
            rejections.by_code.push(CodeCount {
                code: row.try_get("", "code")?,
                events: row.try_get("", "events")?,
                errors: row.try_get("", "errors")?,
            });
        }
        rejections
            .by_code
            .sort_by(|a, b| b.events.cmp(&a.events).then_with(|| a.code.cmp(&b.code)));
        Ok(rejections)
    })
    .await
}

/// The invalid-events log has only a receipt time (a rejected event's own time may be
/// missing or malformed); `(tenant_id, received_time)` is indexed.
fn per_hour(backend: DbBackend, tenant: &TenantScope, period: &Period) -> Statement {
    let mut sql = Sql::new(backend, tenant);
    let tenant = sql.tenant();
    let received = sql.range("received_time", period.from, period.to);
    let hour = hour_of(backend, "received_time");
    sql.finish(format!(
        "SELECT {hour} AS hour, CAST(count(*) AS BIGINT) AS n FROM invalid_events \
         WHERE tenant_id = {tenant}{received} GROUP BY 1"
    ))
}

/// The errors are a JSON array of `{"field", "code", "message"}`, opened with the
/// backend's JSON table function.
fn per_code(backend: DbBackend, tenant: &TenantScope, period: &Period) -> Statement {
    let mut sql = Sql::new(backend, tenant);
    let tenant = sql.tenant();
    let received = sql.range("i.received_time", period.from, period.to);
    let (errors, code) = match backend {
        DbBackend::Postgres => (
            "CROSS JOIN LATERAL json_to_recordset(CASE WHEN json_typeof(i.errors) = 'array' \
             THEN i.errors ELSE '[]'::json END) AS e(code text)",
            "e.code",
        ),
        _ => (
            "CROSS JOIN json_each(i.errors) AS e",
            "json_extract(e.value, '$.code')",
        ),
    };
    sql.finish(format!(
        "SELECT {code} AS code, CAST(count(DISTINCT i.id) AS BIGINT) AS events, \
         CAST(count(*) AS BIGINT) AS errors \
         FROM invalid_events AS i {errors} \
         WHERE i.tenant_id = {tenant}{received} AND {code} IS NOT NULL GROUP BY {code}"
    ))
}
