//! Reading events the way matching needs them: a session's events (by tenant, key name and
//! key value), the events received since a checkpoint (start-up recovery), the key values
//! of a goal's conversions (re-evaluation), and the matching checkpoints themselves: one row
//! per server process, which a live process takes over when that process dies.
//!
//! Key lookups differ by backend: PostgreSQL asks the GIN index with `"keys" @> {...}`,
//! SQLite reads the value with `json_extract`.

use super::TenantScope;
use super::entities::{conversions, detections, matching_checkpoint};
use crate::matching::{Conversion, Detection, Id, Keys, Text};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Condition, LockBehavior, LockType, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, Statement, TransactionTrait, Value,
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
    db: &impl ConnectionTrait,
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
    db: &impl ConnectionTrait,
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

/// Before any checkpoint: every stored event is to be matched. The Unix epoch rather than
/// chrono's minimum, which PostgreSQL's timestamps cannot hold; no accepted event is older.
pub const NEVER: DateTime<Utc> = DateTime::UNIX_EPOCH;

/// Registers the process `node`'s checkpoint row at start, and says from when it must
/// re-match: from its own row's time when a run under the same name left one (a restart);
/// from [`NEVER`] when no row exists at all (no process has matched anything in this database
/// yet, or the rows were deleted); else nothing. The table is locked meanwhile, so of
/// processes starting together only the first finds it empty.
pub async fn register_checkpoint(
    db: &DatabaseConnection,
    node: &str,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, DbErr> {
    let txn = db.begin().await?;
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared("LOCK TABLE matching_checkpoint IN EXCLUSIVE MODE")
            .await?;
    }
    let own = matching_checkpoint::Entity::find_by_id(node)
        .one(&txn)
        .await?;
    let recover_from = match own {
        Some(row) => Some(row.received_before),
        None if matching_checkpoint::Entity::find()
            .one(&txn)
            .await?
            .is_none() =>
        {
            Some(NEVER)
        }
        None => None,
    };
    save_checkpoint(&txn, node, recover_from.unwrap_or(now), now).await?;
    txn.commit().await?;
    Ok(recover_from)
}

/// Writes `node`'s checkpoint: every event it received before `received_before` is
/// matched, and it is alive at `now` (its heartbeat).
pub async fn save_checkpoint(
    db: &impl ConnectionTrait,
    node: &str,
    received_before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    matching_checkpoint::Entity::insert(matching_checkpoint::ActiveModel {
        id: Set(node.to_owned()),
        received_before: Set(received_before),
        heartbeat_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(matching_checkpoint::Column::Id)
            .update_columns([
                matching_checkpoint::Column::ReceivedBefore,
                matching_checkpoint::Column::HeartbeatAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Takes over the checkpoints of processes whose heartbeat is older than `dead_before`: in
/// one transaction, their rows go and `node`'s own row moves back to the earliest of them,
/// so the duty to re-match what they may have left unmatched passes to `node` at once, and
/// passes on again if `node` dies too. `hold` is called with that earliest time before the
/// own row is written; it must keep `node`'s checkpoint from passing the time (while the
/// caller re-matches) and return what the own row is to say now. Returns the time taken
/// over, if any row was.
pub async fn take_over_checkpoints(
    db: &DatabaseConnection,
    node: &str,
    dead_before: DateTime<Utc>,
    now: DateTime<Utc>,
    hold: impl FnOnce(DateTime<Utc>) -> DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, DbErr> {
    let txn = db.begin().await?;
    let mut query = matching_checkpoint::Entity::find()
        .filter(matching_checkpoint::Column::Id.ne(node))
        .filter(matching_checkpoint::Column::HeartbeatAt.lt(dead_before));
    if txn.get_database_backend() == DbBackend::Postgres {
        // Another process taking the same rows over skips them rather than waiting.
        query = query.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let dead = query.all(&txn).await?;
    let Some(earliest) = dead.iter().map(|row| row.received_before).min() else {
        return Ok(None);
    };
    let own = hold(earliest);
    matching_checkpoint::Entity::delete_many()
        .filter(matching_checkpoint::Column::Id.is_in(dead.iter().map(|row| row.id.clone())))
        .exec(&txn)
        .await?;
    save_checkpoint(&txn, node, own, now).await?;
    txn.commit().await?;
    Ok(Some(earliest))
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
