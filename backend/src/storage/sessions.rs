//! Reading events the way matching needs them: a session's events (by tenant, key name and
//! key value), the events received since a checkpoint (start-up recovery), the key values
//! of a goal's conversions (re-evaluation), and the matching checkpoint itself.
//!
//! Key lookups differ by backend: PostgreSQL asks the GIN index with `"keys" @> {...}`,
//! SQLite reads the value with `json_extract`.

use super::TenantScope;
use super::entities::{conversions, detections, matching_checkpoint};
use crate::matching::{Conversion, Detection, Id, Keys, Text};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Condition, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, Statement, Value,
};

/// Values per session query: one OR-ed condition each.
const VALUES_PER_QUERY: usize = 100;

/// The stored events of some sessions of one key name, from `since` on.
#[derive(Debug, Default)]
pub struct SessionRows {
    pub detections: Vec<Detection>,
    pub conversions: Vec<Conversion>,
}

/// The events of the tenant whose key `key_name` has one of `values`, with an event time
/// from `since` on.
pub async fn load(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    key_name: &str,
    values: &[&str],
    since: DateTime<Utc>,
) -> Result<SessionRows, DbErr> {
    let mut rows = SessionRows::default();
    for chunk in values.chunks(VALUES_PER_QUERY) {
        let detections = detections::Entity::find()
            .from_raw_sql(session_query(
                "detections",
                db,
                tenant,
                key_name,
                chunk,
                since,
            ))
            .all(db)
            .await?;
        rows.detections
            .extend(detections.into_iter().map(detection_from_row));
        let conversions = conversions::Entity::find()
            .from_raw_sql(session_query(
                "conversions",
                db,
                tenant,
                key_name,
                chunk,
                since,
            ))
            .all(db)
            .await?;
        rows.conversions
            .extend(conversions.into_iter().map(conversion_from_row));
    }
    Ok(rows)
}

fn session_query(
    table: &str,
    db: &DatabaseConnection,
    tenant: &TenantScope,
    key_name: &str,
    values: &[&str],
    since: DateTime<Utc>,
) -> Statement {
    let backend = db.get_database_backend();
    let mut params: Vec<Value> = vec![tenant.id().as_uuid().into(), since.into()];
    let sql = match backend {
        DbBackend::Postgres => {
            let mut any = Vec::with_capacity(values.len());
            for value in values {
                params.push(serde_json::json!({ key_name: value }).to_string().into());
                any.push(format!("\"keys\" @> ${}::jsonb", params.len()));
            }
            format!(
                "SELECT * FROM {table} WHERE tenant_id = $1 AND event_time >= $2 AND ({})",
                any.join(" OR ")
            )
        }
        _ => {
            params.push(format!("$.{key_name}").into());
            let marks = vec!["?"; values.len()].join(", ");
            params.extend(values.iter().map(|v| Value::from(*v)));
            format!(
                "SELECT * FROM {table} WHERE tenant_id = ? AND event_time >= ? \
                 AND json_extract(\"keys\", ?) IN ({marks})"
            )
        }
    };
    Statement::from_sql_and_values(backend, sql, params)
}

/// The distinct values of key `key_name` on the tenant's conversions named
/// `conversion_name`, from `since` on: the sessions a goal's re-evaluation visits.
pub async fn conversion_key_values(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    conversion_name: &str,
    key_name: &str,
    since: DateTime<Utc>,
) -> Result<Vec<String>, DbErr> {
    let backend = db.get_database_backend();
    let tenant_id: Value = tenant.id().as_uuid().into();
    let statement = match backend {
        DbBackend::Postgres => Statement::from_sql_and_values(
            backend,
            "SELECT DISTINCT \"keys\" ->> $1 AS v FROM conversions WHERE tenant_id = $2 \
             AND name = $3 AND event_time >= $4 AND \"keys\" ->> $1 IS NOT NULL",
            [
                key_name.into(),
                tenant_id,
                conversion_name.into(),
                since.into(),
            ],
        ),
        _ => Statement::from_sql_and_values(
            backend,
            "SELECT DISTINCT json_extract(\"keys\", ?) AS v FROM conversions WHERE tenant_id = ? \
             AND name = ? AND event_time >= ? AND v IS NOT NULL",
            [
                format!("$.{key_name}").into(),
                tenant_id,
                conversion_name.into(),
                since.into(),
            ],
        ),
    };
    db.query_all_raw(statement)
        .await?
        .iter()
        .map(|row| row.try_get::<String>("", "v"))
        .collect()
}

/// Where a recovery scan stands: the last (received_time, tenant, event_id) read.
pub type ScanPosition = (DateTime<Utc>, uuid::Uuid, String);

/// Up to `limit` detections (or conversions) received at or after `since`, after `after`, in
/// (received_time, tenant, event_id) order, with their tenant.
pub async fn received_detections(
    db: &DatabaseConnection,
    since: DateTime<Utc>,
    after: Option<&ScanPosition>,
    limit: u64,
) -> Result<Vec<(uuid::Uuid, DateTime<Utc>, Detection)>, DbErr> {
    use detections::Column as C;
    let rows = detections::Entity::find()
        .filter(C::ReceivedTime.gte(since))
        .filter(after_position(
            C::ReceivedTime,
            C::TenantId,
            C::EventId,
            after,
        ))
        .order_by_asc(C::ReceivedTime)
        .order_by_asc(C::TenantId)
        .order_by_asc(C::EventId)
        .limit(limit)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| (row.tenant_id, row.received_time, detection_from_row(row)))
        .collect())
}

/// As [`received_detections`], for conversions.
pub async fn received_conversions(
    db: &DatabaseConnection,
    since: DateTime<Utc>,
    after: Option<&ScanPosition>,
    limit: u64,
) -> Result<Vec<(uuid::Uuid, DateTime<Utc>, Conversion)>, DbErr> {
    use conversions::Column as C;
    let rows = conversions::Entity::find()
        .filter(C::ReceivedTime.gte(since))
        .filter(after_position(
            C::ReceivedTime,
            C::TenantId,
            C::EventId,
            after,
        ))
        .order_by_asc(C::ReceivedTime)
        .order_by_asc(C::TenantId)
        .order_by_asc(C::EventId)
        .limit(limit)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| (row.tenant_id, row.received_time, conversion_from_row(row)))
        .collect())
}

fn after_position<C: ColumnTrait>(
    received: C,
    tenant: C,
    event: C,
    after: Option<&ScanPosition>,
) -> Condition {
    let Some((time, tenant_id, event_id)) = after else {
        return Condition::all();
    };
    Condition::any().add(received.gt(*time)).add(
        Condition::all().add(received.eq(*time)).add(
            Condition::any().add(tenant.gt(*tenant_id)).add(
                Condition::all()
                    .add(tenant.eq(*tenant_id))
                    .add(event.gt(event_id.as_str())),
            ),
        ),
    )
}

/// Checkpoint rows are per matcher; a single process uses this one.
const CHECKPOINT_ID: &str = "matcher";

/// Every event received before the returned instant has been matched; `None` before the
/// first checkpoint.
pub async fn checkpoint(db: &DatabaseConnection) -> Result<Option<DateTime<Utc>>, DbErr> {
    Ok(matching_checkpoint::Entity::find_by_id(CHECKPOINT_ID)
        .one(db)
        .await?
        .map(|row| row.received_before))
}

pub async fn save_checkpoint(
    db: &impl ConnectionTrait,
    received_before: DateTime<Utc>,
) -> Result<(), DbErr> {
    matching_checkpoint::Entity::insert(matching_checkpoint::ActiveModel {
        id: Set(CHECKPOINT_ID.to_owned()),
        received_before: Set(received_before),
    })
    .on_conflict(
        OnConflict::column(matching_checkpoint::Column::Id)
            .update_column(matching_checkpoint::Column::ReceivedBefore)
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// A stored detection as matching sees it.
pub fn detection_from_row(row: detections::Model) -> Detection {
    Detection {
        event_id: Id::from(row.event_id),
        event_time: row.event_time.timestamp_millis(),
        label: Text::from(row.label),
        entity_id: Id::from(row.entity_id),
        confidence: row.confidence,
        keys: keys_from_json(row.keys.as_ref()),
        consent_granted: row.consent == "granted",
        filtered: row.filtered,
        is_test: row.is_test,
        model_version: Text::from(row.model_version),
        category: row.category.map(Text::from),
    }
}

/// A stored conversion as matching sees it.
pub fn conversion_from_row(row: conversions::Model) -> Conversion {
    Conversion {
        event_id: Id::from(row.event_id),
        event_time: row.event_time.timestamp_millis(),
        name: Text::from(row.name),
        keys: keys_from_json(row.keys.as_ref()),
        consent_granted: row.consent == "granted",
        is_test: row.is_test,
        value: row.value,
    }
}

/// `{"name": "value", ...}` as (name, value) pairs sorted by name; stripped keys are none.
pub(super) fn keys_from_json(keys: Option<&serde_json::Value>) -> Keys {
    let mut pairs: Vec<(Text, Text)> = keys
        .and_then(serde_json::Value::as_object)
        .map(|object| {
            object
                .iter()
                .filter_map(|(name, value)| {
                    value
                        .as_str()
                        .map(|value| (Text::from(name.as_str()), Text::from(value)))
                })
                .collect()
        })
        .unwrap_or_default();
    pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    pairs.into()
}

/// One conversion of the tenant, by event id.
pub async fn conversion(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    event_id: &str,
) -> Result<Option<Conversion>, DbErr> {
    Ok(
        conversions::Entity::find_by_id((tenant.id().as_uuid(), event_id.to_owned()))
            .one(db)
            .await?
            .map(conversion_from_row),
    )
}

/// The tenant's detections that share at least one (key name, key value) pair with
/// `keys`, from `since` on, each once, in event-id order.
pub async fn detections_sharing_a_key(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    keys: &[(Text, Text)],
    since: DateTime<Utc>,
) -> Result<Vec<Detection>, DbErr> {
    let mut found: Vec<Detection> = Vec::new();
    for (name, value) in keys {
        let statement = session_query("detections", db, tenant, name, &[value], since);
        let rows = detections::Entity::find()
            .from_raw_sql(statement)
            .all(db)
            .await?;
        found.extend(rows.into_iter().map(detection_from_row));
    }
    found.sort_by(|a, b| a.event_id.cmp(&b.event_id));
    found.dedup_by(|a, b| a.event_id == b.event_id);
    Ok(found)
}
