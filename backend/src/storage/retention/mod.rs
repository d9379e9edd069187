//! The retention purge's queries: expired rows deleted a bounded batch at a time, the record
//! of each run, and the oldest row each class still holds. Every query is scoped by tenant;
//! only [`tenant_ids`], which the purge walks, reads across tenants.
//!
//! Each class is read through an index that starts with `tenant_id` and its time column:
//! `(tenant_id, event_time)` on detections and conversions (migration 000002),
//! `(tenant_id, received_time)` on invalid events (000002) and `(tenant_id,
//! conversion_time)` on attributions (000006). So a batch is an index range scan of the
//! oldest rows and "the oldest kept" is one index probe, however large the tenant.

pub mod lock;

use super::TenantScope;
use super::entities::{retention_purges, tenants};
use crate::domain::TenantId;
use crate::domain::retention::DataClass;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, Statement, Value,
};

/// Where a class lives: its table, the column it expires by, and its primary key without
/// `tenant_id`.
struct Layout {
    table: &'static str,
    time: &'static str,
    key: &'static str,
}

fn layout(class: DataClass) -> Layout {
    match class {
        DataClass::Detections => Layout {
            table: "detections",
            time: "event_time",
            key: "event_id",
        },
        DataClass::Conversions => Layout {
            table: "conversions",
            time: "event_time",
            key: "event_id",
        },
        DataClass::Attributions => Layout {
            table: "attributions",
            time: "conversion_time",
            key: "goal_id, conversion_event_id, detection_event_id",
        },
        DataClass::InvalidEvents => Layout {
            table: "invalid_events",
            time: "received_time",
            key: "id",
        },
    }
}

/// Every tenant, in id order: the purge visits each in turn.
pub async fn tenant_ids(db: &DatabaseConnection) -> Result<Vec<TenantId>, DbErr> {
    let ids: Vec<uuid::Uuid> = tenants::Entity::find()
        .select_only()
        .column(tenants::Column::Id)
        .order_by_asc(tenants::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    Ok(ids.into_iter().map(TenantId::from_uuid).collect())
}

/// Deletes at most `limit` of the tenant's rows of `class` older than `before`, oldest
/// first, in one statement (its own short transaction); answers how many went. A batch
/// shorter than `limit` means nothing older is left.
pub async fn delete_expired(
    db: &impl ConnectionTrait,
    tenant: &TenantScope,
    class: DataClass,
    before: DateTime<Utc>,
    limit: u64,
) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let Layout { table, time, key } = layout(class);
    // Numbered parameters, so the tenant is bound once and used twice.
    let [p1, p2, p3] = match backend {
        DbBackend::Postgres => ["$1", "$2", "$3"],
        _ => ["?1", "?2", "?3"],
    };
    let sql = format!(
        "DELETE FROM {table} WHERE tenant_id = {p1} AND ({key}) IN \
         (SELECT {key} FROM {table} WHERE tenant_id = {p1} AND {time} < {p2} \
          ORDER BY {time} LIMIT {p3})"
    );
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let values: [Value; 3] = [tenant.id().as_uuid().into(), before.into(), limit.into()];
    let result = db
        .execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    Ok(result.rows_affected())
}

/// The time of the tenant's oldest row of `class` (by the column it expires by); `None`
/// when it holds none.
pub async fn oldest_kept(
    db: &impl ConnectionTrait,
    tenant: &TenantScope,
    class: DataClass,
) -> Result<Option<DateTime<Utc>>, DbErr> {
    let backend = db.get_database_backend();
    let Layout { table, time, .. } = layout(class);
    let mark = match backend {
        DbBackend::Postgres => "$1",
        _ => "?",
    };
    let sql = format!("SELECT min({time}) AS oldest FROM {table} WHERE tenant_id = {mark}");
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [tenant.id().as_uuid().into()],
        ))
        .await?;
    match row {
        Some(row) => row.try_get::<Option<DateTime<Utc>>>("", "oldest"),
        None => Ok(None),
    }
}

/// Records a run of the purge over one class: when, and how many rows it deleted.
pub async fn record_run(
    db: &impl ConnectionTrait,
    tenant: &TenantScope,
    class: DataClass,
    at: DateTime<Utc>,
    deleted: u64,
) -> Result<(), DbErr> {
    let deleted = i64::try_from(deleted).unwrap_or(i64::MAX);
    retention_purges::Entity::insert(retention_purges::ActiveModel {
        tenant_id: Set(tenant.id().as_uuid()),
        class: Set(class.as_str().to_owned()),
        last_run_at: Set(at),
        last_run_deleted: Set(deleted),
        total_deleted: Set(deleted),
    })
    .on_conflict(
        OnConflict::columns([
            retention_purges::Column::TenantId,
            retention_purges::Column::Class,
        ])
        .update_columns([
            retention_purges::Column::LastRunAt,
            retention_purges::Column::LastRunDeleted,
        ])
        .value(
            retention_purges::Column::TotalDeleted,
            Expr::col((
                retention_purges::Entity,
                retention_purges::Column::TotalDeleted,
            ))
            .add(deleted),
        )
        .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// The last run of the purge over one class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastRun {
    pub at: DateTime<Utc>,
    pub deleted: u64,
    pub total_deleted: u64,
}

/// The purge's last run per class for the tenant; a class never purged is absent.
pub async fn last_runs(
    db: &impl ConnectionTrait,
    tenant: &TenantScope,
) -> Result<Vec<(DataClass, LastRun)>, DbErr> {
    let rows = retention_purges::Entity::find()
        .filter(retention_purges::Column::TenantId.eq(tenant.id().as_uuid()))
        .all(db)
        .await?;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            Some((
                DataClass::parse(&row.class)?,
                LastRun {
                    at: row.last_run_at,
                    deleted: count(row.last_run_deleted),
                    total_deleted: count(row.total_deleted),
                },
            ))
        })
        .collect())
}
