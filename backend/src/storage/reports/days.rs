//! The label report's figures per UTC day and model version, for the dashboard's chart:
//! detections by the day of their `event_time`, and matched (direct) conversions by the day
//! of the detection they are attributed to — the day the report's range selects them by.
//!
//! The same filters as the report (range, model versions, goal and its labels), the same
//! sources: on PostgreSQL the rollup for whole days and `detections` for the partial days at
//! the edges; attributions always raw.

use super::{LabelQuery, Sql, TenantScope, midnight, row_filters, run, whole_days};
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{DatabaseConnection, DbBackend, DbErr, Statement};
use std::collections::BTreeMap;

/// One (day, model version) of the chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayFigures {
    pub day: NaiveDate,
    pub model_version: String,
    pub detections: i64,
    /// Distinct conversions directly attributed to that day's detections of that version.
    pub matched_conversions: i64,
}

/// Every (day, model version) with detections or matched conversions, ordered by day, then
/// model version.
pub async fn per_day(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    query: &LabelQuery,
) -> Result<Vec<DayFigures>, DbErr> {
    let backend = db.get_database_backend();
    let (detections, matched) = tokio::try_join!(
        run(db, tenant, detections_per_day(backend, tenant, query)),
        run(db, tenant, matched_per_day(backend, tenant, query)),
    )?;
    let mut days: BTreeMap<(NaiveDate, String), (i64, i64)> = BTreeMap::new();
    for row in &detections {
        let key = (
            day(&row.try_get::<String>("", "day")?)?,
            row.try_get("", "model_version")?,
        );
        days.entry(key).or_default().0 += row.try_get::<i64>("", "n")?;
    }
    for row in &matched {
        let key = (
            day(&row.try_get::<String>("", "day")?)?,
            row.try_get("", "model_version")?,
        );
        days.entry(key).or_default().1 += row.try_get::<i64>("", "n")?;
    }
    Ok(days
        .into_iter()
        .map(
            |((day, model_version), (detections, matched_conversions))| DayFigures {
                day,
                model_version,
                detections,
                matched_conversions,
            },
        )
        .collect())
}

/// Both backends answer the day as `YYYY-MM-DD` text, so that one reader serves both.
fn day(text: &str) -> Result<NaiveDate, DbErr> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|err| DbErr::Type(format!("a report day `{text}`: {err}")))
}

/// The UTC day of a timestamp column, as `YYYY-MM-DD`. SQLite stores timestamps as RFC 3339
/// text, which `date()` reads (offset included).
fn day_of(backend: DbBackend, column: &str) -> String {
    match backend {
        DbBackend::Postgres => format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"),
        _ => format!("date({column})"),
    }
}

fn detections_per_day(backend: DbBackend, tenant: &TenantScope, query: &LabelQuery) -> Statement {
    let mut sql = Sql::new(backend, tenant);
    let full_days = (backend == DbBackend::Postgres)
        .then(|| whole_days(query.from, query.to))
        .flatten();
    let mut branches = Vec::new();
    let raw = |sql: &mut Sql, from: DateTime<Utc>, to: DateTime<Utc>| {
        let tenant = sql.tenant();
        let from = sql.param(from);
        let to = sql.param(to);
        let filters = row_filters(sql, query);
        format!(
            "SELECT {day} AS day, model_version, count(*) AS n FROM detections \
             WHERE tenant_id = {tenant} AND NOT is_test AND event_time >= {from} \
             AND event_time < {to}{filters} GROUP BY 1, 2",
            day = day_of(backend, "event_time")
        )
    };
    match full_days {
        None => branches.push(raw(&mut sql, query.from, query.to)),
        Some((first, end)) => {
            let tenant = sql.tenant();
            let first_param = sql.param(first);
            let end_param = sql.param(end);
            let filters = row_filters(&mut sql, query);
            branches.push(format!(
                "SELECT to_char(day, 'YYYY-MM-DD') AS day, model_version, sum(detections) AS n \
                 FROM report_detection_days WHERE tenant_id = {tenant} AND day >= {first_param} \
                 AND day < {end_param}{filters} GROUP BY 1, 2"
            ));
            branches.push(raw(&mut sql, query.from, midnight(first)));
            branches.push(raw(&mut sql, midnight(end), query.to));
        }
    }
    let union = branches.join(" UNION ALL ");
    // One line per (day, version), whichever branch it came from.
    sql.finish(format!(
        "SELECT day, model_version, CAST(sum(n) AS BIGINT) AS n FROM ({union}) AS u \
         GROUP BY day, model_version"
    ))
}

fn matched_per_day(backend: DbBackend, tenant: &TenantScope, query: &LabelQuery) -> Statement {
    let mut sql = Sql::new(backend, tenant);
    let tenant = sql.tenant();
    let from = sql.param(query.from);
    let to = sql.param(query.to);
    let goal = super::goal_condition(&mut sql, query);
    let filters = row_filters(&mut sql, query);
    // A conversion credited by several goals or detections of one day and version counts
    // once there, as in a report row.
    sql.finish(format!(
        "SELECT {day} AS day, model_version, CAST(count(DISTINCT conversion_event_id) AS BIGINT) AS n \
         FROM attributions WHERE tenant_id = {tenant} AND NOT is_test AND kind = 'direct' \
         AND detection_time >= {from} AND detection_time < {to}{goal}{filters} \
         GROUP BY 1, 2",
        day = day_of(backend, "detection_time")
    ))
}
