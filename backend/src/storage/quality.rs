//! The detections the quality page looks at: a tenant's live detections of a bounded range,
//! with only the fields matching reads (not properties, source or bbox), so that rule 6 can
//! be applied to them by the matching core. Served by the (tenant, event time) index.

use super::TenantScope;
use super::entities::detections;
use super::sessions::keys_from_json;
use crate::matching::{Detection, Id, Text};
use crate::storage::scoped;
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QuerySelect, prelude::Json,
};
use std::collections::HashSet;

/// A range's live detections, or how it overflowed the limit.
#[derive(Debug)]
pub enum Loaded {
    Detections(Vec<Detection>),
    /// More than the limit: nothing is loaded, so that no figure is of a part of the range.
    TooMany,
}

type Row = (
    String,
    DateTime<Utc>,
    String,
    String,
    f64,
    Option<Json>,
    String,
    bool,
    String,
);

/// The tenant's non-test detections with an event time in [from, to), at most `limit`.
pub async fn detections(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: u64,
) -> Result<Loaded, DbErr> {
    scoped::run(db, tenant, async |txn| {
        use detections::Column as C;
        let rows: Vec<Row> = detections::Entity::find()
            .select_only()
            .columns([
                C::EventId,
                C::EventTime,
                C::Label,
                C::EntityId,
                C::Confidence,
                C::Keys,
                C::Consent,
                C::Filtered,
                C::ModelVersion,
            ])
            .filter(C::TenantId.eq(tenant.id().as_uuid()))
            .filter(C::IsTest.eq(false))
            .filter(C::EventTime.gte(from))
            .filter(C::EventTime.lt(to))
            // One more than the limit tells "exactly the limit" from "over it".
            .limit(limit.saturating_add(1))
            .into_tuple()
            .all(txn)
            .await?;
        if rows.len() as u64 > limit {
            return Ok(Loaded::TooMany);
        }
        // Labels and model versions repeat: one shared copy of each.
        let mut texts: HashSet<Text> = HashSet::new();
        let mut shared = |text: String| -> Text {
            if let Some(existing) = texts.get(text.as_str()) {
                return existing.clone();
            }
            let text = Text::from(text);
            texts.insert(text.clone());
            text
        };
        Ok(Loaded::Detections(
            rows.into_iter()
                .map(
                    |(
                        event_id,
                        event_time,
                        label,
                        entity_id,
                        confidence,
                        keys,
                        consent,
                        filtered,
                        model_version,
                    )| Detection {
                        event_id: Id::from(event_id),
                        event_time: event_time.timestamp_millis(),
                        label: shared(label),
                        entity_id: Id::from(entity_id),
                        confidence,
                        keys: keys_from_json(keys.as_ref()),
                        consent_granted: consent == "granted",
                        filtered,
                        is_test: false,
                        model_version: shared(model_version),
                        category: None,
                    },
                )
                .collect(),
        ))
    })
    .await
}
