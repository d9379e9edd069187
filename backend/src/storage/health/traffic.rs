//! Accepted events received in a period, per hour and type, with how late they came
//! (`received_time − event_time`), how many carry a denied consent, and the test events
//! kept apart. One grouped scan per event table.

use super::{Period, Sql, TenantScope, hour_of, received_in};
use crate::storage::scoped;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use std::collections::BTreeMap;

/// Lateness buckets, by their upper bound in seconds (exclusive); the first holds events
/// whose event time is after their receipt (a clock ahead of the server's), the last
/// everything from a day on.
pub const LATENESS_BOUNDS: [Option<f64>; 8] = [
    Some(0.0),
    Some(1.0),
    Some(10.0),
    Some(60.0),
    Some(600.0),
    Some(3_600.0),
    Some(86_400.0),
    None,
];

/// The live (non-test) events of one type and hour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HourFigures {
    pub detections: i64,
    pub conversions: i64,
}

/// What arrived in the period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Live events per UTC hour (`YYYY-MM-DD HH`); hours without events are absent.
    pub per_hour: BTreeMap<String, HourFigures>,
    /// Live events per lateness bucket, indexed as [`LATENESS_BOUNDS`].
    pub lateness: [i64; LATENESS_BOUNDS.len()],
    /// Live events whose effective consent is `denied`.
    pub consent_denied: i64,
    /// Test events (`"test": true`), counted in nothing above.
    pub test_events: i64,
}

impl Traffic {
    pub fn live_events(&self) -> i64 {
        self.lateness.iter().sum()
    }
}

pub async fn traffic(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    period: &Period,
) -> Result<Traffic, DbErr> {
    scoped::run(db, tenant, async |txn| {
        let backend = txn.get_database_backend();
        let (detections, conversions) = tokio::try_join!(
            txn.query_all_raw(statement(backend, tenant, period, "detections")),
            txn.query_all_raw(statement(backend, tenant, period, "conversions")),
        )?;
        let mut traffic = Traffic::default();
        for (rows, is_detection) in [(detections, true), (conversions, false)] {
            for row in rows {
                let n: i64 = row.try_get("", "n")?;
                if row.try_get::<i64>("", "test")? != 0 {
                    traffic.test_events += n;
                    continue;
                }
                let hour = traffic
                    .per_hour
                    .entry(row.try_get::<String>("", "hour")?)
                    .or_default();
                if is_detection {
                    hour.detections += n;
                } else {
                    hour.conversions += n;
                }
                let bucket = usize::try_from(row.try_get::<i64>("", "bucket")?)
                    .unwrap_or(0)
                    .min(LATENESS_BOUNDS.len() - 1);
                traffic.lateness[bucket] += n;
                traffic.consent_denied += row.try_get::<i64>("", "denied")?;
            }
        }
        Ok(traffic)
    })
    .await
}

/// Seconds from a row's `event_time` to its `received_time`.
fn lateness_seconds(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => "EXTRACT(EPOCH FROM (received_time - event_time))",
        _ => "((julianday(received_time) - julianday(event_time)) * 86400.0)",
    }
}

/// `CASE` giving the index in [`LATENESS_BOUNDS`] of `late` seconds.
fn bucket_case(late: &str) -> String {
    let mut case = String::from("CASE");
    for (i, bound) in LATENESS_BOUNDS.iter().enumerate() {
        if let Some(bound) = bound {
            case.push_str(&format!(" WHEN {late} < {bound:.1} THEN {i}"));
        } else {
            case.push_str(&format!(" ELSE {i}"));
        }
    }
    case.push_str(" END");
    case
}

fn statement(backend: DbBackend, tenant: &TenantScope, period: &Period, table: &str) -> Statement {
    let mut sql = Sql::new(backend, tenant);
    let tenant = sql.tenant();
    let received = received_in(&mut sql, period);
    let hour = hour_of(backend, "received_time");
    let bucket = bucket_case(lateness_seconds(backend));
    // Integer columns are cast to BIGINT: PostgreSQL would answer INT4, read as i64 below.
    sql.finish(format!(
        "SELECT hour, bucket, test, CAST(count(*) AS BIGINT) AS n, \
         CAST(sum(denied) AS BIGINT) AS denied \
         FROM (SELECT {hour} AS hour, CAST({bucket} AS BIGINT) AS bucket, \
               CAST(CASE WHEN is_test THEN 1 ELSE 0 END AS BIGINT) AS test, \
               CASE WHEN consent = 'denied' THEN 1 ELSE 0 END AS denied \
               FROM {table} WHERE tenant_id = {tenant}{received}) AS e \
         GROUP BY hour, bucket, test"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_lateness_falls_in_one_bucket() {
        let case = bucket_case("late");
        assert!(case.starts_with("CASE WHEN late < 0.0 THEN 0 WHEN late < 1.0 THEN 1"));
        assert!(case.ends_with("WHEN late < 86400.0 THEN 6 ELSE 7 END"));
    }
}
