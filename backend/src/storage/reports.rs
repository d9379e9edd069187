//! The label report (`GET /v1/reports/labels`): detections per (label, entity or category,
//! model version) with the conversions attributed to them, aggregated at query time; and
//! the same figures per (label, model version) alone for the model versions page
//! ([`per_version`]), from the same statements.
//!
//! Three plain statements, each a scan and an aggregate with no join on event tables, so
//! that the plan cannot collapse when the planner has no statistics (this project's
//! PostgreSQL runs without autovacuum): the detection groups, the attribution figures per
//! group, and the attribution totals. They run concurrently, each on its own pooled
//! connection. The rows are the detection groups; the attribution figures are attached to
//! them here.
//!
//! On PostgreSQL, detections are read from the daily rollup `report_detection_days` for the
//! whole UTC days of the range, and from `detections` for the partial days at its edges;
//! triggers keep the rollup exact (migration 000005). Attributions are always read raw:
//! their cost grows with the attributions in the range, not with the detections.
//!
//! Attributions carry copies of their detection's label, entity, category, model version
//! and event time (`detection_time`), so they are grouped on their own table. Test events
//! match only test events, so an attribution's `is_test` is its detection's too.

mod days;

pub use days::{DayFigures, per_day};

use super::TenantScope;
use super::scoped;
use super::sql::Sql;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, QueryResult, Statement};
use std::collections::HashMap;
use uuid::Uuid;

/// What the second column of a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Entity,
    Category,
}

/// What a statement's rows are: the report's (label, entity or category, model version), or
/// the model versions page's (label, model version).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rows {
    Grouped(GroupBy),
    PerVersion,
}

impl Rows {
    /// The row's second field, read from `detections` or `attributions`.
    fn select(self) -> &'static str {
        match self {
            Rows::Grouped(GroupBy::Entity) => "entity_id",
            Rows::Grouped(GroupBy::Category) => "category",
            // Always absent, so that the rows keep the report's shape.
            Rows::PerVersion => "NULL",
        }
    }

    /// The same field in the rollup, where a missing category is '' (NULL everywhere else).
    fn select_rolled_up(self) -> &'static str {
        match self {
            Rows::Grouped(GroupBy::Category) => "nullif(category, '')",
            other => other.select(),
        }
    }

    /// What an aggregate groups by besides the label and model version; nothing per version
    /// (PostgreSQL refuses a constant there).
    fn group_by(self) -> Option<&'static str> {
        match self {
            Rows::Grouped(_) => Some(self.select()),
            Rows::PerVersion => None,
        }
    }
}

/// Whose attributions count.
#[derive(Debug, Clone)]
pub enum GoalFilter {
    /// Every active goal of the tenant; every label.
    AllActive,
    /// One goal: only its detection labels, only its attributions.
    One { id: Uuid, labels: Vec<String> },
}

/// What the report covers.
#[derive(Debug, Clone)]
pub struct LabelQuery {
    /// Inclusive, on the detection's `event_time`.
    pub from: DateTime<Utc>,
    /// Exclusive.
    pub to: DateTime<Utc>,
    /// Empty: every model version.
    pub model_versions: Vec<String>,
    pub goal: GoalFilter,
    pub group_by: GroupBy,
}

/// The identity of a row: (label, entity id or category, model version). A category can be
/// absent (`None`); an entity id never is.
pub type RowKey = (String, Option<String>, String);

/// One row of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelRow {
    pub key: RowKey,
    pub detections: i64,
    pub matched_conversions: i64,
    pub assisted_conversions: i64,
    pub conversion_value: f64,
    pub first_detect_time: DateTime<Utc>,
}

/// The report's totals: each conversion once, whichever rows it appears in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub detections: i64,
    pub matched_conversions: i64,
    pub assisted_conversions: i64,
    pub conversion_value: f64,
}

/// Every row (unordered) and the totals.
#[derive(Debug, Clone, Default)]
pub struct LabelReport {
    pub rows: Vec<LabelRow>,
    pub totals: Totals,
}

/// The attribution figures of one row.
#[derive(Debug, Default, Clone, Copy)]
struct Credits {
    matched: i64,
    assisted: i64,
    value: f64,
}

/// Runs the report for `tenant`.
pub async fn labels(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    query: &LabelQuery,
) -> Result<LabelReport, DbErr> {
    report(db, tenant, query, Rows::Grouped(query.group_by)).await
}

/// The report with one row per (label, model version), every entity and category together,
/// for the model versions page: the same counting rules, so a conversion credited to two
/// entities of a label and version counts once in that row. `query.group_by` is not used;
/// the rows' second field is always `None`.
pub async fn per_version(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    query: &LabelQuery,
) -> Result<LabelReport, DbErr> {
    report(db, tenant, query, Rows::PerVersion).await
}

async fn report(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    query: &LabelQuery,
    rows: Rows,
) -> Result<LabelReport, DbErr> {
    let backend = db.get_database_backend();
    let groups = detection_groups(backend, tenant, query, rows);
    let per_row = credits_per_row(backend, tenant, query, rows);
    let totals = credit_totals(backend, tenant, query);
    let (groups, per_row, totals) = tokio::try_join!(
        run(db, tenant, groups),
        run(db, tenant, per_row),
        run(db, tenant, totals),
    )?;

    let mut credits: HashMap<RowKey, Credits> = HashMap::with_capacity(per_row.len());
    for row in &per_row {
        credits.insert(
            row_key(row)?,
            Credits {
                matched: row.try_get("", "matched")?,
                assisted: row.try_get("", "assisted")?,
                value: row.try_get::<Option<f64>>("", "value")?.unwrap_or(0.0),
            },
        );
    }
    let mut report = LabelReport::default();
    report.rows.reserve(groups.len());
    for row in &groups {
        let key = row_key(row)?;
        let detections: i64 = row.try_get("", "detections")?;
        let first_detect_time: DateTime<Utc> = row.try_get("", "first_detect_time")?;
        // An attribution's row is always a detection group: its fields are the detection's.
        let credit = credits.get(&key).copied().unwrap_or_default();
        report.totals.detections += detections;
        report.rows.push(LabelRow {
            key,
            detections,
            matched_conversions: credit.matched,
            assisted_conversions: credit.assisted,
            conversion_value: credit.value,
            first_detect_time,
        });
    }
    if let Some(totals) = totals.first() {
        report.totals.matched_conversions = totals.try_get("", "matched")?;
        report.totals.assisted_conversions = totals.try_get("", "assisted")?;
        report.totals.conversion_value = totals.try_get::<Option<f64>>("", "value")?.unwrap_or(0.0);
    }
    Ok(report)
}

/// How PostgreSQL runs a report statement. Working memory enough to group a few hundred
/// thousand attributions in memory (the default 4 MB spills them to disk), and grouping by
/// hashing rather than sorting: without statistics the planner takes every table for a
/// few rows and sorts, and sorting 100,000 attribution lines by their text columns took
/// 3-5 times as long as hashing them on this project's machines (tests/bench/RESULTS.md,
/// "Reports"). The rows are ordered in Rust, so no statement needs a sort.
const PLAN: &str = "SET LOCAL work_mem = '32MB'; SET LOCAL enable_sort = off";

/// Runs one statement in its own request-role transaction (see [`scoped`]), so that a
/// report's statements run side by side on separate connections; on PostgreSQL with the
/// `SET LOCAL`s of [`PLAN`].
async fn run(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    statement: Statement,
) -> Result<Vec<QueryResult>, DbErr> {
    let txn = scoped::begin(db, tenant).await?;
    if db.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared(PLAN).await?;
    }
    let rows = txn.query_all_raw(statement).await?;
    txn.commit().await?;
    Ok(rows)
}

fn row_key(row: &QueryResult) -> Result<RowKey, DbErr> {
    Ok((
        row.try_get("", "label")?,
        row.try_get("", "grp")?,
        row.try_get("", "model_version")?,
    ))
}

/// `SELECT label, <group>, model_version, count, min(event_time)` over the tenant's
/// non-test detections in the range. On PostgreSQL the whole UTC days of the range come
/// from the daily rollup (migration 000005) and only the partial days at its edges from
/// `detections`; SQLite groups `detections` alone.
fn detection_groups(
    backend: DbBackend,
    tenant: &TenantScope,
    query: &LabelQuery,
    rows: Rows,
) -> Statement {
    let mut sql = Sql::new(backend, tenant);
    let full_days = (backend == DbBackend::Postgres)
        .then(|| whole_days(query.from, query.to))
        .flatten();
    let branches = match full_days {
        None => vec![raw_detections(&mut sql, query, rows, query.from, query.to)],
        Some((first, end)) => {
            let rolled = rolled_up_days(&mut sql, query, rows, first, end);
            vec![
                rolled,
                raw_detections(&mut sql, query, rows, query.from, midnight(first)),
                raw_detections(&mut sql, query, rows, midnight(end), query.to),
            ]
        }
    };
    let union = branches.join(" UNION ALL ");
    sql.finish(format!(
        "SELECT label, grp, model_version, CAST(sum(n) AS BIGINT) AS detections, \
         min(t) AS first_detect_time FROM ({union}) AS u \
         GROUP BY label, grp, model_version"
    ))
}

/// The whole UTC days inside [from, to), as [first, end) dates; `None` when there are none.
fn whole_days(from: DateTime<Utc>, to: DateTime<Utc>) -> Option<(NaiveDate, NaiveDate)> {
    let floor = from.date_naive();
    let first = if midnight(floor) == from {
        floor
    } else {
        floor.succ_opt()?
    };
    let end = to.date_naive();
    (first < end).then_some((first, end))
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(NaiveTime::MIN).and_utc()
}

/// The rollup's rows of the days [first, end), one per (day, label, entity, category,
/// model version).
fn rolled_up_days(
    sql: &mut Sql,
    query: &LabelQuery,
    rows: Rows,
    first: NaiveDate,
    end: NaiveDate,
) -> String {
    let tenant = sql.tenant();
    let first = sql.param(first);
    let end = sql.param(end);
    let filters = row_filters(sql, query);
    let group = rows.select_rolled_up();
    format!(
        "SELECT label, {group} AS grp, model_version, detections AS n, first_time AS t \
         FROM report_detection_days WHERE tenant_id = {tenant} AND day >= {first} \
         AND day < {end}{filters}"
    )
}

/// The raw detections of [from, to), one line each.
fn raw_detections(
    sql: &mut Sql,
    query: &LabelQuery,
    rows: Rows,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> String {
    let tenant = sql.tenant();
    let from = sql.param(from);
    let to = sql.param(to);
    let filters = row_filters(sql, query);
    format!(
        "SELECT label, {group} AS grp, model_version, 1 AS n, event_time AS t FROM detections \
         WHERE tenant_id = {tenant} AND NOT is_test AND event_time >= {from} \
         AND event_time < {to}{filters}",
        group = rows.select()
    )
}

/// The attributions that count, reduced to one line per (row, conversion): whether any of
/// them is direct, and the conversion's value. A conversion credited by several goals or
/// several detections of a row is one line, so it counts once in the row, and as matched
/// when any of its credits in the row is direct.
fn credit_lines(sql: &mut Sql, query: &LabelQuery, per_row: Option<Rows>) -> String {
    let tenant = sql.tenant();
    let from = sql.param(query.from);
    let to = sql.param(query.to);
    let goal = goal_condition(sql, query);
    let filters = row_filters(sql, query);
    let (select, group_by) = match per_row {
        Some(rows) => (
            format!("label, {} AS grp, model_version, ", rows.select()),
            match rows.group_by() {
                Some(column) => format!("label, {column}, model_version, "),
                None => "label, model_version, ".to_owned(),
            },
        ),
        None => (String::new(), String::new()),
    };
    format!(
        "SELECT {select}conversion_event_id, \
         max(CASE WHEN kind = 'direct' THEN 1 ELSE 0 END) AS direct, max(value) AS value \
         FROM attributions WHERE tenant_id = {tenant} AND NOT is_test \
         AND detection_time >= {from} AND detection_time < {to}{goal}{filters} \
         GROUP BY {group_by}conversion_event_id"
    )
}

/// Which goals' attributions count.
fn goal_condition(sql: &mut Sql, query: &LabelQuery) -> String {
    match &query.goal {
        GoalFilter::AllActive => {
            // Inactive goals have no attributions once their change is applied; the filter
            // keeps a report consistent with the goal list in between.
            let tenant = sql.tenant();
            format!(" AND goal_id IN (SELECT id FROM goals WHERE tenant_id = {tenant} AND active)")
        }
        GoalFilter::One { id, .. } => format!(" AND goal_id = {}", sql.param(*id)),
    }
}

/// Per row: distinct matched conversions, distinct assisted ones not matched in the row,
/// and the value of the matched ones.
fn credits_per_row(
    backend: DbBackend,
    tenant: &TenantScope,
    query: &LabelQuery,
    rows: Rows,
) -> Statement {
    let mut sql = Sql::new(backend, tenant);
    let lines = credit_lines(&mut sql, query, Some(rows));
    sql.finish(format!(
        "SELECT label, grp, model_version, {FIGURES} FROM ({lines}) AS lines \
         GROUP BY label, grp, model_version"
    ))
}

/// The same figures over the whole report, each conversion once.
fn credit_totals(backend: DbBackend, tenant: &TenantScope, query: &LabelQuery) -> Statement {
    let mut sql = Sql::new(backend, tenant);
    let lines = credit_lines(&mut sql, query, None);
    sql.finish(format!("SELECT {FIGURES} FROM ({lines}) AS lines"))
}

/// Over no lines at all, `sum` is NULL: the counts are coalesced to 0 (the value is read as
/// an optional number).
const FIGURES: &str = "coalesce(sum(direct), 0) AS matched, \
     coalesce(sum(1 - direct), 0) AS assisted, \
     sum(CASE WHEN direct = 1 THEN value END) AS value";

/// The conditions on a row's fields: model versions, and the goal's labels.
fn row_filters(sql: &mut Sql, query: &LabelQuery) -> String {
    let mut conditions = String::new();
    if !query.model_versions.is_empty() {
        let versions = sql.list(&query.model_versions);
        conditions.push_str(&format!(" AND model_version IN ({versions})"));
    }
    if let GoalFilter::One { labels, .. } = &query.goal {
        if labels.is_empty() {
            // A goal always has a label; without one nothing would qualify anyway.
            conditions.push_str(" AND 1 = 0");
        } else {
            let labels = sql.list(labels);
            conditions.push_str(&format!(" AND label IN ({labels})"));
        }
    }
    conditions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap_or_default()
    }

    #[test]
    fn whole_days_are_those_entirely_inside_the_range() {
        assert_eq!(
            whole_days(at("2026-12-01T06:00:00Z"), at("2026-12-03T18:00:00Z")),
            Some((date("2026-12-02"), date("2026-12-03")))
        );
        // Midnight edges belong to the whole days: `from` inclusive, `to` exclusive.
        assert_eq!(
            whole_days(at("2026-12-01T00:00:00Z"), at("2026-12-03T00:00:00Z")),
            Some((date("2026-12-01"), date("2026-12-03")))
        );
        assert_eq!(
            whole_days(
                at("2026-12-01T00:00:00.001Z"),
                at("2026-12-02T23:59:59.999Z")
            ),
            None
        );
        assert_eq!(
            whole_days(at("2026-12-01T06:00:00Z"), at("2026-12-01T18:00:00Z")),
            None
        );
    }
}
