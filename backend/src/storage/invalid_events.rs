//! Reading the invalid-events log: the API's newest-first list, and the dashboard's pages of
//! it, filtered by error code, paged by a cursor (the last entry shown) rather than an
//! offset so that a page costs the same however far back it is.

use super::TenantScope;
use super::entities::invalid_events;
use crate::domain::Timestamp;
use crate::storage::scoped;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde::Serialize;
use uuid::Uuid;

/// One entry of the invalid-events log as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct InvalidEventView {
    pub received_time: Timestamp,
    pub payload: serde_json::Value,
    pub errors: serde_json::Value,
}

/// The tenant's most recent invalid events, newest first.
pub async fn recent_invalid(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    limit: u64,
) -> Result<Vec<InvalidEventView>, DbErr> {
    let page = log_page(
        db,
        tenant,
        &LogQuery {
            limit,
            ..LogQuery::default()
        },
    )
    .await?;
    Ok(page
        .entries
        .into_iter()
        .map(|row| InvalidEventView {
            received_time: row.received_time.into(),
            payload: row.payload,
            errors: row.errors,
        })
        .collect())
}

/// Which part of the log to read.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// Only entries with an error of this code.
    pub code: Option<String>,
    /// Only entries older than this one (the last of the previous page).
    pub before: Option<Uuid>,
    pub limit: u64,
}

/// One entry, with its id (the cursor of the next page).
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub id: Uuid,
    pub received_time: DateTime<Utc>,
    pub event_type: Option<String>,
    pub event_id: Option<String>,
    pub payload: serde_json::Value,
    pub errors: serde_json::Value,
}

#[derive(Debug, Clone, Default)]
pub struct LogPage {
    /// Newest first.
    pub entries: Vec<LogEntry>,
    /// Whether older entries match too.
    pub more: bool,
}

/// Entries of the tenant's log, newest first (ties by id). A `before` that is not one of
/// the tenant's entries reads as the end of the log.
pub async fn log_page(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    query: &LogQuery,
) -> Result<LogPage, DbErr> {
    scoped::run(db, tenant, async |txn| {
    use invalid_events::Column as C;
    let tenant_id = tenant.id().as_uuid();
    let mut select = invalid_events::Entity::find().filter(C::TenantId.eq(tenant_id));
    if let Some(before) = query.before {
        let Some(last) = invalid_events::Entity::find_by_id((tenant_id, before))
            .one(txn)
            .await?
        else {
            return Ok(LogPage::default());
        };
        select = select.filter(
            Condition::any()
                .add(C::ReceivedTime.lt(last.received_time))
                .add(
                    Condition::all()
                        .add(C::ReceivedTime.eq(last.received_time))
                        .add(C::Id.lt(last.id)),
                ),
        );
    }
    if let Some(code) = &query.code {
        let has_code = match txn.get_database_backend() {
            DbBackend::Postgres => Expr::cust_with_values(
                "EXISTS (SELECT 1 FROM json_array_elements(CASE WHEN json_typeof(errors) = 'array' \
                 THEN errors ELSE '[]'::json END) AS e WHERE e ->> 'code' = $1)",
                [code.as_str()],
            ),
            // The path is a value too: a `$` in the text would read as a placeholder.
            _ => Expr::cust_with_values(
                "EXISTS (SELECT 1 FROM json_each(errors) AS e WHERE json_extract(e.value, ?) = ?)",
                ["$.code", code.as_str()],
            ),
        };
        select = select.filter(has_code);
    }
    let mut entries: Vec<LogEntry> = select
        .order_by_desc(C::ReceivedTime)
        .order_by_desc(C::Id)
        .limit(query.limit + 1)
        .all(txn)
        .await?
        .into_iter()
        .map(|row| LogEntry {
            id: row.id,
            received_time: row.received_time,
            event_type: row.event_type,
            event_id: row.event_id,
            payload: row.payload,
            errors: row.errors,
        })
        .collect();
    let more = entries.len() as u64 > query.limit;
    entries.truncate(query.limit as usize);
    Ok(LogPage { entries, more })
}).await
}
