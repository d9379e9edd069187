//! Storing events: the group-commit write (insert or ignore), existence checks for
//! idempotency, and the writing of the invalid-events log (read in `invalid_events`).
//!
//! On PostgreSQL a whole batch (detections, conversions and the invalid events of many
//! requests) is one statement built on `UNNEST` over column arrays: one round
//! trip, atomic, any number of rows. On SQLite (the embedded default) the same rows go
//! through sea-orm, one insert per row inside one transaction.

use super::TenantScope;
use super::entities::{conversions, detections, invalid_events};
use crate::domain::events::{Consent, Event, EventBody, EventId, EventKind};
use crate::domain::{FieldProblem, TenantId, Timestamp};
use crate::storage::scoped;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter, QuerySelect, Set,
    TransactionTrait,
};
use std::collections::HashSet;

/// An event ready to store: parsed, with the tenant's consent policy applied.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub tenant_id: TenantId,
    pub event: Event,
    /// Effective consent.
    pub consent: Consent,
    /// False when the consent policy strips this event's keys.
    pub keep_keys: bool,
    pub received_time: Timestamp,
}

impl EventRow {
    fn identity(&self) -> (TenantId, EventKind, &str) {
        (
            self.tenant_id,
            self.event.kind(),
            self.event.event_id.as_str(),
        )
    }
}

/// A rejected event, as the invalid-events log keeps it.
#[derive(Debug, Clone)]
pub struct InvalidRow {
    pub tenant_id: TenantId,
    pub received_time: Timestamp,
    pub identity: Option<(EventKind, EventId)>,
    pub payload: serde_json::Value,
    pub errors: Vec<FieldProblem>,
}

/// Stores `events` (insert or ignore) and `invalid` in one transaction. Returns, for each
/// event in order, whether it was inserted; `false` means an event with the same tenant, type
/// and `event_id` was already stored. No two of `events` may share that identity.
///
/// The rows are written in (tenant, type, event id) order, the same in every writer and
/// process, so two batches holding some of the same events (a client's retry through
/// another node while its first request is still being written) wait for each other rather
/// than deadlock on the unique index.
pub async fn write_batch(
    db: &DatabaseConnection,
    events: &[&EventRow],
    invalid: &[&InvalidRow],
) -> Result<Vec<bool>, DbErr> {
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_unstable_by_key(|&i| {
        let row = events[i];
        (
            row.tenant_id.as_uuid(),
            row.event.kind(),
            row.event.event_id.as_str(),
        )
    });
    let sorted: Vec<&EventRow> = order.iter().map(|&i| events[i]).collect();
    let inserted_sorted = match db.get_database_backend() {
        DbBackend::Postgres => {
            postgres::write_batch(db.get_postgres_connection_pool(), &sorted, invalid).await?
        }
        _ => write_batch_generic(db, &sorted, invalid).await?,
    };
    let mut inserted = vec![false; events.len()];
    for (position, &index) in order.iter().enumerate() {
        inserted[index] = inserted_sorted.get(position).copied().unwrap_or(false);
    }
    Ok(inserted)
}

/// Which of `ids` (of one kind) the tenant already has.
pub async fn existing_ids(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    kind: EventKind,
    ids: &[&str],
) -> Result<HashSet<String>, DbErr> {
    scoped::run(db, tenant, async |txn| {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let tenant_id = tenant.id().as_uuid();
        let ids: Vec<String> = ids.iter().map(|id| (*id).to_owned()).collect();
        let found: Vec<String> = match kind {
            EventKind::Detection => {
                detections::Entity::find()
                    .select_only()
                    .column(detections::Column::EventId)
                    .filter(detections::Column::TenantId.eq(tenant_id))
                    .filter(detections::Column::EventId.is_in(ids))
                    .into_tuple()
                    .all(txn)
                    .await?
            }
            EventKind::Conversion => {
                conversions::Entity::find()
                    .select_only()
                    .column(conversions::Column::EventId)
                    .filter(conversions::Column::TenantId.eq(tenant_id))
                    .filter(conversions::Column::EventId.is_in(ids))
                    .into_tuple()
                    .all(txn)
                    .await?
            }
        };
        Ok(found.into_iter().collect())
    })
    .await
}

/// The key object stored on the event row; `None` when the policy stripped the keys.
fn stored_keys(row: &EventRow) -> Option<serde_json::Value> {
    row.keep_keys.then(|| row.event.keys.to_json())
}

fn properties_json(event: &Event) -> Option<serde_json::Value> {
    event.properties.clone().map(serde_json::Value::Object)
}

fn errors_json(errors: &[FieldProblem]) -> serde_json::Value {
    serde_json::to_value(errors).unwrap_or(serde_json::Value::Null)
}

/// The portable path (SQLite): one insert-or-ignore per row, in one transaction.
async fn write_batch_generic(
    db: &DatabaseConnection,
    events: &[&EventRow],
    invalid: &[&InvalidRow],
) -> Result<Vec<bool>, DbErr> {
    let txn = db.begin().await?;
    let mut inserted = Vec::with_capacity(events.len());
    for row in events {
        let (tenant_id, _, event_id) = row.identity();
        let event = &row.event;
        let common_time = event.event_time.as_datetime();
        let rows_inserted = match &event.body {
            EventBody::Detection(d) => {
                let model = detections::ActiveModel {
                    tenant_id: Set(tenant_id.as_uuid()),
                    event_id: Set(event_id.to_owned()),
                    event_time: Set(common_time),
                    received_time: Set(row.received_time.as_datetime()),
                    consent: Set(row.consent.as_str().to_owned()),
                    keys: Set(stored_keys(row)),
                    is_test: Set(event.test),
                    properties: Set(properties_json(event)),
                    label: Set(d.label.as_str().to_owned()),
                    confidence: Set(d.confidence.get()),
                    model_version: Set(d.model_version.as_str().to_owned()),
                    entity_id: Set(d.entity_id.as_str().to_owned()),
                    model: Set(d.model.as_ref().map(|m| m.as_str().to_owned())),
                    category: Set(d.category.as_ref().map(|c| c.as_str().to_owned())),
                    source: Set(d.source.as_ref().map(|s| s.to_json())),
                    bbox: Set(d.bbox.map(|b| serde_json::json!(b))),
                    filtered: Set(d.filtered),
                };
                detections::Entity::insert(model)
                    .on_conflict(
                        OnConflict::columns([
                            detections::Column::TenantId,
                            detections::Column::EventId,
                        ])
                        .do_nothing()
                        .to_owned(),
                    )
                    .exec_without_returning(&txn)
                    .await?
            }
            EventBody::Conversion(c) => {
                let model = conversions::ActiveModel {
                    tenant_id: Set(tenant_id.as_uuid()),
                    event_id: Set(event_id.to_owned()),
                    event_time: Set(common_time),
                    received_time: Set(row.received_time.as_datetime()),
                    consent: Set(row.consent.as_str().to_owned()),
                    keys: Set(stored_keys(row)),
                    is_test: Set(event.test),
                    properties: Set(properties_json(event)),
                    name: Set(c.name.as_str().to_owned()),
                    value: Set(c.value),
                    currency: Set(c.currency.clone()),
                };
                conversions::Entity::insert(model)
                    .on_conflict(
                        OnConflict::columns([
                            conversions::Column::TenantId,
                            conversions::Column::EventId,
                        ])
                        .do_nothing()
                        .to_owned(),
                    )
                    .exec_without_returning(&txn)
                    .await?
            }
        };
        let was_inserted = rows_inserted > 0;
        inserted.push(was_inserted);
    }
    for row in invalid {
        invalid_events::Entity::insert(invalid_events::ActiveModel {
            tenant_id: Set(row.tenant_id.as_uuid()),
            id: Set(uuid::Uuid::now_v7()),
            received_time: Set(row.received_time.as_datetime()),
            event_type: Set(row
                .identity
                .as_ref()
                .map(|(kind, _)| kind.as_str().to_owned())),
            event_id: Set(row.identity.as_ref().map(|(_, id)| id.as_str().to_owned())),
            payload: Set(row.payload.clone()),
            errors: Set(errors_json(&row.errors)),
        })
        .exec_without_returning(&txn)
        .await?;
    }
    txn.commit().await?;
    Ok(inserted)
}

/// The PostgreSQL path: the whole batch as one statement.
mod postgres {
    use super::{EventRow, InvalidRow, errors_json, properties_json, stored_keys};
    use crate::domain::events::{EventBody, EventKind};
    use chrono::{DateTime, Utc};
    use sea_orm::DbErr;
    use std::collections::HashSet;
    use uuid::Uuid;

    /// Inserts detections, conversions and invalid events. Returns the identities of the
    /// inserted events.
    const WRITE_BATCH: &str = r#"
WITH det AS (
    INSERT INTO detections (tenant_id, event_id, event_time, received_time, consent, "keys", is_test,
                            properties, label, confidence, model_version, entity_id, model, category,
                            source, bbox, filtered)
    SELECT r.tenant_id, r.event_id, r.event_time, r.received_time, r.consent, r.keys::jsonb, r.is_test,
           r.properties::json, r.label, r.confidence, r.model_version, r.entity_id, r.model, r.category,
           r.source::json, r.bbox::json, r.filtered
    FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::text[], $6::text[],
                $7::bool[], $8::text[], $9::text[], $10::float8[], $11::text[], $12::text[], $13::text[],
                $14::text[], $15::text[], $16::text[], $17::bool[])
         AS r(tenant_id, event_id, event_time, received_time, consent, keys, is_test, properties, label,
              confidence, model_version, entity_id, model, category, source, bbox, filtered)
    ON CONFLICT (tenant_id, event_id) DO NOTHING
    RETURNING tenant_id, event_id
), conv AS (
    INSERT INTO conversions (tenant_id, event_id, event_time, received_time, consent, "keys", is_test,
                             properties, name, value, currency)
    SELECT r.tenant_id, r.event_id, r.event_time, r.received_time, r.consent, r.keys::jsonb, r.is_test,
           r.properties::json, r.name, r.value, r.currency
    FROM UNNEST($18::uuid[], $19::text[], $20::timestamptz[], $21::timestamptz[], $22::text[], $23::text[],
                $24::bool[], $25::text[], $26::text[], $27::float8[], $28::text[])
         AS r(tenant_id, event_id, event_time, received_time, consent, keys, is_test, properties, name,
              value, currency)
    ON CONFLICT (tenant_id, event_id) DO NOTHING
    RETURNING tenant_id, event_id
), invalid AS (
    INSERT INTO invalid_events (tenant_id, id, received_time, event_type, event_id, payload, errors)
    SELECT v.tenant_id, v.id, v.received_time, v.event_type, v.event_id, v.payload::json, v.errors::json
    FROM UNNEST($29::uuid[], $30::uuid[], $31::timestamptz[], $32::text[], $33::text[], $34::text[], $35::text[])
         AS v(tenant_id, id, received_time, event_type, event_id, payload, errors)
)
SELECT 1::int2, tenant_id, event_id FROM det
UNION ALL
SELECT 2::int2, tenant_id, event_id FROM conv
"#;

    /// Column arrays for one event table.
    #[derive(Default)]
    struct Common {
        tenant_id: Vec<Uuid>,
        event_id: Vec<String>,
        event_time: Vec<DateTime<Utc>>,
        received_time: Vec<DateTime<Utc>>,
        consent: Vec<&'static str>,
        keys: Vec<Option<String>>,
        is_test: Vec<bool>,
        properties: Vec<Option<String>>,
    }

    impl Common {
        fn push(&mut self, row: &EventRow) {
            self.tenant_id.push(row.tenant_id.as_uuid());
            self.event_id.push(row.event.event_id.as_str().to_owned());
            self.event_time.push(row.event.event_time.as_datetime());
            self.received_time.push(row.received_time.as_datetime());
            self.consent.push(row.consent.as_str());
            self.keys.push(stored_keys(row).map(|k| k.to_string()));
            self.is_test.push(row.event.test);
            self.properties
                .push(properties_json(&row.event).map(|p| p.to_string()));
        }
    }

    pub(super) async fn write_batch(
        pool: &sqlx::PgPool,
        events: &[&EventRow],
        invalid: &[&InvalidRow],
    ) -> Result<Vec<bool>, DbErr> {
        let mut det = Common::default();
        let (mut label, mut confidence, mut model_version, mut entity_id) =
            (vec![], vec![], vec![], vec![]);
        let (mut model, mut category, mut source, mut bbox, mut filtered) =
            (vec![], vec![], vec![], vec![], vec![]);
        let mut conv = Common::default();
        let (mut name, mut value, mut currency) = (vec![], vec![], vec![]);

        for row in events {
            match &row.event.body {
                EventBody::Detection(d) => {
                    det.push(row);
                    label.push(d.label.as_str());
                    confidence.push(d.confidence.get());
                    model_version.push(d.model_version.as_str());
                    entity_id.push(d.entity_id.as_str());
                    model.push(d.model.as_ref().map(|m| m.as_str()));
                    category.push(d.category.as_ref().map(|c| c.as_str()));
                    source.push(d.source.as_ref().map(|s| s.to_json().to_string()));
                    bbox.push(d.bbox.map(|b| serde_json::json!(b).to_string()));
                    filtered.push(d.filtered);
                }
                EventBody::Conversion(c) => {
                    conv.push(row);
                    name.push(c.name.as_str());
                    value.push(c.value);
                    currency.push(c.currency.as_deref());
                }
            }
        }

        let mut v_tenant = Vec::with_capacity(invalid.len());
        let mut v_id = Vec::with_capacity(invalid.len());
        let mut v_received = Vec::with_capacity(invalid.len());
        let mut v_type = Vec::with_capacity(invalid.len());
        let mut v_event = Vec::with_capacity(invalid.len());
        let mut v_payload = Vec::with_capacity(invalid.len());
        let mut v_errors = Vec::with_capacity(invalid.len());
        for row in invalid {
            v_tenant.push(row.tenant_id.as_uuid());
            v_id.push(Uuid::now_v7());
            v_received.push(row.received_time.as_datetime());
            v_type.push(row.identity.as_ref().map(|(kind, _)| kind.as_str()));
            v_event.push(row.identity.as_ref().map(|(_, id)| id.as_str()));
            v_payload.push(row.payload.to_string());
            v_errors.push(errors_json(&row.errors).to_string());
        }

        let rows: Vec<(i16, Uuid, String)> = sqlx::query_as(WRITE_BATCH)
            .bind(&det.tenant_id)
            .bind(&det.event_id)
            .bind(&det.event_time)
            .bind(&det.received_time)
            .bind(&det.consent)
            .bind(&det.keys)
            .bind(&det.is_test)
            .bind(&det.properties)
            .bind(&label)
            .bind(&confidence)
            .bind(&model_version)
            .bind(&entity_id)
            .bind(&model)
            .bind(&category)
            .bind(&source)
            .bind(&bbox)
            .bind(&filtered)
            .bind(&conv.tenant_id)
            .bind(&conv.event_id)
            .bind(&conv.event_time)
            .bind(&conv.received_time)
            .bind(&conv.consent)
            .bind(&conv.keys)
            .bind(&conv.is_test)
            .bind(&conv.properties)
            .bind(&name)
            .bind(&value)
            .bind(&currency)
            .bind(&v_tenant)
            .bind(&v_id)
            .bind(&v_received)
            .bind(&v_type)
            .bind(&v_event)
            .bind(&v_payload)
            .bind(&v_errors)
            .fetch_all(pool)
            .await
            .map_err(into_db_err)?;

        let inserted: HashSet<(i16, Uuid, String)> = rows.into_iter().collect();
        Ok(events
            .iter()
            .map(|row| {
                let kind: EventKind = row.event.kind();
                inserted.contains(&(
                    kind.code(),
                    row.tenant_id.as_uuid(),
                    row.event.event_id.as_str().to_owned(),
                ))
            })
            .collect())
    }

    /// Connection failures stay recognisable as such (the API answers 503 for them).
    fn into_db_err(err: sqlx::Error) -> DbErr {
        use sea_orm::RuntimeErr;
        match err {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
                DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout)
            }
            err if crate::storage::availability::driver_error_is_unavailable(&err) => {
                DbErr::Conn(RuntimeErr::SqlxError(err.into()))
            }
            other => DbErr::Query(RuntimeErr::SqlxError(other.into())),
        }
    }
}
