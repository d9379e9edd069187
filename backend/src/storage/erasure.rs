//! Erasure of one identity (API.md `DELETE /v1/identities/{key}/{value}`): every event of the
//! tenant carrying one (key name, key value), every attribution that references one of those
//! events, and every invalid event whose payload `keys` carry the value, in one transaction
//! with its audit entry.
//!
//! The audit entry names the key, never the value: keeping the value would undo the erasure.
//! The daily report rollup (`report_detection_days`) needs nothing here: its delete trigger
//! recomputes the days the deleted detections fell on, in the same transaction.

use super::TenantScope;
use super::audit::{self, Actor};
use super::entities::attributions;
use super::session_versions;
use super::sessions::keys_from_json;
use crate::domain::events::{KeyName, KeyValue};
use crate::storage::scoped;
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter,
    Statement, Value,
};
use serde::Serialize;

/// Ids per `IN (...)` list: well under PostgreSQL's 65535 bind parameters.
const CHUNK: usize = 1000;

/// What an erasure deleted, as the API answers it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Deleted {
    pub detections: u64,
    pub conversions: u64,
    pub attributions: u64,
    pub invalid_events: u64,
}

/// A deleted event: its id and event time (to find its attributions by index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasedEvent {
    pub event_id: String,
    pub event_time: DateTime<Utc>,
}

/// The events an erasure removed, and every session they were part of: matching must forget
/// them all and settle what remains (see `actors::matcher::erasure`).
#[derive(Debug, Clone, Default)]
pub struct ErasedEvents {
    pub detections: Vec<ErasedEvent>,
    pub conversions: Vec<ErasedEvent>,
    /// Every (key name, key value) the deleted events carried, each once, sorted.
    pub sessions: Vec<(String, String)>,
}

/// Deletes the tenant's identity `key` = `value` and records it in the audit log.
pub async fn erase_identity(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    actor: Actor,
    key: &KeyName,
    value: &KeyValue,
) -> Result<(Deleted, ErasedEvents), DbErr> {
    let txn = scoped::begin(db, tenant).await?;
    let mut erased = ErasedEvents::default();
    let mut sessions = Vec::new();
    for (table, into) in [
        ("detections", &mut erased.detections),
        ("conversions", &mut erased.conversions),
    ] {
        for (event, keys) in delete_events(&txn, tenant, table, key, value).await? {
            into.push(event);
            sessions.extend(keys);
        }
    }
    sessions.sort_unstable();
    sessions.dedup();
    erased.sessions = sessions;
    // Before the attributions go: a matching round of another process still working on
    // these sessions is waited for (its rows are deleted below), and every later one finds
    // its copy of them outdated and reads them again, without the erased events.
    session_versions::invalidate(&txn, tenant, &erased.sessions).await?;
    let deleted = Deleted {
        detections: erased.detections.len() as u64,
        conversions: erased.conversions.len() as u64,
        attributions: delete_attributions_of(&txn, tenant, &erased).await?,
        invalid_events: delete_invalid_events(&txn, tenant, key, value).await?,
    };
    audit::record(
        &txn,
        tenant,
        audit::Entry {
            actor,
            action: "identity.erase",
            target: Some(key.as_str()),
            before: None,
            after: Some(serde_json::json!({ "key": key.as_str(), "deleted": deleted })),
        },
    )
    .await?;
    txn.commit().await?;
    Ok((deleted, erased))
}

/// Deletes the table's events carrying `key` = `value`; returns each with its key pairs.
async fn delete_events(
    txn: &impl ConnectionTrait,
    tenant: &TenantScope,
    table: &str,
    key: &KeyName,
    value: &KeyValue,
) -> Result<Vec<(ErasedEvent, Vec<(String, String)>)>, DbErr> {
    let backend = txn.get_database_backend();
    let tenant_id: Value = tenant.id().as_uuid().into();
    let statement = match backend {
        // `@>` is what the GIN index over the keys serves.
        DbBackend::Postgres => Statement::from_sql_and_values(
            backend,
            format!(
                "DELETE FROM {table} WHERE tenant_id = $1 AND \"keys\" @> $2::jsonb \
                 RETURNING event_id, event_time, \"keys\""
            ),
            [
                tenant_id,
                serde_json::json!({ key.as_str(): value.as_str() })
                    .to_string()
                    .into(),
            ],
        ),
        _ => Statement::from_sql_and_values(
            backend,
            format!(
                "DELETE FROM {table} WHERE tenant_id = ? AND json_extract(\"keys\", ?) = ? \
                 RETURNING event_id, event_time, \"keys\""
            ),
            [
                tenant_id,
                // A key name is `[a-z][a-z0-9_]*`: safe inside a JSON path.
                format!("$.{}", key.as_str()).into(),
                value.as_str().into(),
            ],
        ),
    };
    txn.query_all_raw(statement)
        .await?
        .iter()
        .map(|row| {
            let keys: Option<serde_json::Value> = row.try_get("", "keys")?;
            let pairs = keys_from_json(keys.as_ref())
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect();
            let event = ErasedEvent {
                event_id: row.try_get("", "event_id")?,
                event_time: row.try_get("", "event_time")?,
            };
            Ok((event, pairs))
        })
        .collect()
}

/// Deletes every attribution of the tenant that references one of the erased events; returns
/// how many. Run again once matching has forgotten the events, for any row a matching round
/// in flight during the erasure wrote after it.
pub async fn delete_attributions_of(
    db: &impl ConnectionTrait,
    tenant: &TenantScope,
    erased: &ErasedEvents,
) -> Result<u64, DbErr> {
    let tenant_id = tenant.id().as_uuid();
    let mut count = 0;
    for chunk in erased.conversions.chunks(CHUNK) {
        count += attributions::Entity::delete_many()
            .filter(attributions::Column::TenantId.eq(tenant_id))
            .filter(
                attributions::Column::ConversionEventId
                    .is_in(chunk.iter().map(|e| e.event_id.as_str())),
            )
            .exec(db)
            .await?
            .rows_affected;
    }
    for chunk in erased.detections.chunks(CHUNK) {
        // An attribution's detection time is its detection's event time (both whole
        // milliseconds), so the time list cannot miss a row; it lets PostgreSQL use the
        // (tenant, detection time) index instead of reading every attribution of the tenant.
        count += attributions::Entity::delete_many()
            .filter(attributions::Column::TenantId.eq(tenant_id))
            .filter(attributions::Column::DetectionTime.is_in(chunk.iter().map(|e| e.event_time)))
            .filter(
                attributions::Column::DetectionEventId
                    .is_in(chunk.iter().map(|e| e.event_id.as_str())),
            )
            .exec(db)
            .await?
            .rows_affected;
    }
    Ok(count)
}

/// Deletes the tenant's invalid events whose payload has a `keys` object holding `key` with
/// `value` (as a string, or a number written the same way: a rejected payload may hold either).
/// Every entry with that name is looked at, so a payload repeating the key is caught too.
async fn delete_invalid_events(
    txn: &impl ConnectionTrait,
    tenant: &TenantScope,
    key: &KeyName,
    value: &KeyValue,
) -> Result<u64, DbErr> {
    let backend = txn.get_database_backend();
    let tenant_id: Value = tenant.id().as_uuid().into();
    let statement = match backend {
        DbBackend::Postgres => Statement::from_sql_and_values(
            backend,
            "DELETE FROM invalid_events WHERE tenant_id = $1 \
             AND json_typeof(payload::json -> 'keys') = 'object' \
             AND EXISTS (SELECT 1 FROM json_each(payload::json -> 'keys') AS k \
                         WHERE k.key = $2 AND json_typeof(k.value) IN ('string', 'number') \
                         AND k.value #>> '{}' = $3)",
            [tenant_id, key.as_str().into(), value.as_str().into()],
        ),
        _ => Statement::from_sql_and_values(
            backend,
            "DELETE FROM invalid_events WHERE tenant_id = ? \
             AND json_type(payload, '$.keys') = 'object' \
             AND EXISTS (SELECT 1 FROM json_each(invalid_events.payload, '$.keys') AS k \
                         WHERE k.key = ? AND k.type IN ('text', 'integer', 'real') \
                         AND CAST(k.atom AS TEXT) = ?)",
            [tenant_id, key.as_str().into(), value.as_str().into()],
        ),
    };
    Ok(txn.execute_raw(statement).await?.rows_affected())
}
