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
use chrono::{DateTime, Duration, Utc};
use sea_orm::{DbBackend, Statement, Value};
use uuid::Uuid;

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

/// A statement being written: its parameters, with placeholders numbered for the backend.
struct Sql {
    backend: DbBackend,
    tenant: Uuid,
    params: Vec<Value>,
}

impl Sql {
    fn new(backend: DbBackend, tenant: &TenantScope) -> Self {
        Self {
            backend,
            tenant: tenant.id().as_uuid(),
            params: Vec::new(),
        }
    }

    /// Adds a parameter; returns its placeholder. Placeholders must appear in the text in
    /// the order they were added (SQLite's `?` are positional).
    fn param(&mut self, value: impl Into<Value>) -> String {
        self.params.push(value.into());
        match self.backend {
            DbBackend::Postgres => format!("${}", self.params.len()),
            _ => "?".to_owned(),
        }
    }

    fn tenant(&mut self) -> String {
        self.param(self.tenant)
    }

    /// `AND <column> >= .. AND <column> < ..` for [from, to).
    fn range(&mut self, column: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> String {
        let from = self.param(from);
        let to = self.param(to);
        format!(" AND {column} >= {from} AND {column} < {to}")
    }

    /// The conditions that select the events received in `period`.
    fn received_in(&mut self, period: &Period) -> String {
        let (first, last) = period.event_time_bounds();
        let received = self.range("received_time", period.from, period.to);
        let happened = self.range("event_time", first, last);
        format!("{received}{happened}")
    }

    fn finish(self, sql: String) -> Statement {
        Statement::from_sql_and_values(self.backend, sql, self.params)
    }
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
