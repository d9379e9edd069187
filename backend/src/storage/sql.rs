//! A raw SQL statement being written for either backend: its parameters, with placeholders
//! numbered for PostgreSQL (`$1`) or positional for SQLite (`?`), and the tenant it is
//! scoped to. For the read models (reports, health) that the ORM's query builder does not
//! express well.

use super::TenantScope;
use chrono::{DateTime, Utc};
use sea_orm::{DbBackend, Statement, Value};
use uuid::Uuid;

pub(crate) struct Sql {
    backend: DbBackend,
    tenant: Uuid,
    params: Vec<Value>,
}

impl Sql {
    pub(crate) fn new(backend: DbBackend, tenant: &TenantScope) -> Self {
        Self {
            backend,
            tenant: tenant.id().as_uuid(),
            params: Vec::new(),
        }
    }

    /// Adds a parameter; returns its placeholder. Placeholders must appear in the text in
    /// the order they were added (SQLite's `?` are positional).
    pub(crate) fn param(&mut self, value: impl Into<Value>) -> String {
        self.params.push(value.into());
        match self.backend {
            DbBackend::Postgres => format!("${}", self.params.len()),
            _ => "?".to_owned(),
        }
    }

    /// The tenant's id, as a parameter.
    pub(crate) fn tenant(&mut self) -> String {
        self.param(self.tenant)
    }

    /// Each of `values` as a parameter, comma-separated (for `IN (...)`).
    pub(crate) fn list(&mut self, values: &[String]) -> String {
        values
            .iter()
            .map(|value| self.param(value.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `AND <column> >= .. AND <column> < ..` for [from, to).
    pub(crate) fn range(&mut self, column: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> String {
        let from = self.param(from);
        let to = self.param(to);
        format!(" AND {column} >= {from} AND {column} < {to}")
    }

    pub(crate) fn finish(self, sql: String) -> Statement {
        Statement::from_sql_and_values(self.backend, sql, self.params)
    }
}
