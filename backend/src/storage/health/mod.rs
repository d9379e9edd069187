//! What the dashboard's Tracking health pages read: traffic per hour and its lateness and
//! consent, rejections by hour and error code, conversions whose goal key no detection
//! carries, and recent test events with what they matched.
//!
//! Every statement is scoped by tenant and bounded by a period. Accepted events are taken
//! by `received_time` (when they arrived, the axis a broken integration shows on), with an
//! extra bound on `event_time` implied by the ingest rules, so that the
//! `(tenant_id, event_time)` index can serve the scan.

pub mod broken_keys;
pub mod rejections;
pub mod test_events;
pub mod traffic;

use super::TenantScope;
use super::sql::Sql;
use chrono::{DateTime, Duration, Utc};
use sea_orm::DbBackend;

/// The arrivals a health figure covers: received in [from, to).
#[derive(Debug, Clone, Copy)]
pub struct Period {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The tenant's `max_event_age_days`: an accepted event's `event_time` is at most this
    /// much before its `received_time` (and at most five minutes after it).
    pub max_event_age: Duration,
}

impl Period {
    /// The `event_time` range every event received in the period lies in. A tenant that
    /// lowered its maximum age since may have older events; they are left out (rare, and
    /// only in the days right after the change).
    fn event_time_bounds(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        (
            self.from - self.max_event_age - Duration::minutes(1),
            self.to + crate::domain::events::MAX_FUTURE + Duration::minutes(1),
        )
    }
}

/// The conditions that select the events received in `period`.
fn received_in(sql: &mut Sql, period: &Period) -> String {
    let (first, last) = period.event_time_bounds();
    let received = sql.range("received_time", period.from, period.to);
    let happened = sql.range("event_time", first, last);
    format!("{received}{happened}")
}

/// The UTC hour of a timestamp column as `YYYY-MM-DD HH` text, the same on both backends.
/// SQLite stores timestamps as RFC 3339 text, which `strftime` reads (offset included).
fn hour_of(backend: DbBackend, column: &str) -> String {
    match backend {
        DbBackend::Postgres => format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24')"),
        _ => format!("strftime('%Y-%m-%d %H', {column})"),
    }
}

/// The UTC hour of `at` in the form [`hour_of`] gives.
pub fn hour_key(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H").to_string()
}
