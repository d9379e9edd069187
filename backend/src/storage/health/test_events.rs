//! The tenant's recent test events (`"test": true`) and the attributions between them, for
//! checking an integration before it goes live. Test events match only test events, so
//! every attribution shown here is between two test events.

use super::{Period, TenantScope};
use crate::storage::entities::{attributions, conversions, detections};
use crate::storage::scoped;
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

/// One test event.
#[derive(Debug, Clone)]
pub struct TestEvent {
    pub is_detection: bool,
    pub event_id: String,
    /// A detection's label, a conversion's name.
    pub what: String,
    pub event_time: DateTime<Utc>,
    pub received_time: DateTime<Utc>,
    /// The stored keys object (`None` when the consent policy stripped them).
    pub keys: Option<serde_json::Value>,
    pub consent: String,
}

/// One attribution between test events.
#[derive(Debug, Clone)]
pub struct TestMatch {
    pub goal_id: Uuid,
    pub conversion_event_id: String,
    pub detection_event_id: String,
    /// `direct` or `assisted`.
    pub kind: String,
}

#[derive(Debug, Clone, Default)]
pub struct TestEvents {
    /// Newest received first, at most the limit asked for.
    pub events: Vec<TestEvent>,
    /// Whether there were more in the period.
    pub more: bool,
    /// The attributions of the listed conversions and detections.
    pub matches: Vec<TestMatch>,
}

/// The last `limit` test events received in `period`, and their attributions.
pub async fn recent(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    period: &Period,
    limit: u64,
) -> Result<TestEvents, DbErr> {
    scoped::run(db, tenant, async |txn| {
        let tenant_id = tenant.id().as_uuid();
        let (first, last) = period.event_time_bounds();
        // One more than asked, to tell whether there are more.
        let detections = detections::Entity::find()
            .filter(detections::Column::TenantId.eq(tenant_id))
            .filter(detections::Column::IsTest.eq(true))
            .filter(detections::Column::ReceivedTime.gte(period.from))
            .filter(detections::Column::ReceivedTime.lt(period.to))
            .filter(detections::Column::EventTime.gte(first))
            .filter(detections::Column::EventTime.lt(last))
            .order_by_desc(detections::Column::ReceivedTime)
            .order_by_desc(detections::Column::EventId)
            .limit(limit + 1)
            .all(txn)
            .await?
            .into_iter()
            .map(|d| TestEvent {
                is_detection: true,
                event_id: d.event_id,
                what: d.label,
                event_time: d.event_time,
                received_time: d.received_time,
                keys: d.keys,
                consent: d.consent,
            });
        let conversions = conversions::Entity::find()
            .filter(conversions::Column::TenantId.eq(tenant_id))
            .filter(conversions::Column::IsTest.eq(true))
            .filter(conversions::Column::ReceivedTime.gte(period.from))
            .filter(conversions::Column::ReceivedTime.lt(period.to))
            .filter(conversions::Column::EventTime.gte(first))
            .filter(conversions::Column::EventTime.lt(last))
            .order_by_desc(conversions::Column::ReceivedTime)
            .order_by_desc(conversions::Column::EventId)
            .limit(limit + 1)
            .all(txn)
            .await?
            .into_iter()
            .map(|c| TestEvent {
                is_detection: false,
                event_id: c.event_id,
                what: c.name,
                event_time: c.event_time,
                received_time: c.received_time,
                keys: c.keys,
                consent: c.consent,
            });
        let mut events: Vec<TestEvent> = detections.chain(conversions).collect();
        events.sort_by(|a, b| {
            b.received_time
                .cmp(&a.received_time)
                .then_with(|| b.event_id.cmp(&a.event_id))
        });
        let more = events.len() > limit as usize;
        events.truncate(limit as usize);

        let conversion_ids: Vec<&str> = events
            .iter()
            .filter(|e| !e.is_detection)
            .map(|e| e.event_id.as_str())
            .collect();
        let detection_ids: Vec<&str> = events
            .iter()
            .filter(|e| e.is_detection)
            .map(|e| e.event_id.as_str())
            .collect();
        let mut rows = Vec::new();
        if !conversion_ids.is_empty() {
            // Served by the (tenant_id, conversion_event_id) index.
            rows.extend(
                attributions::Entity::find()
                    .filter(attributions::Column::TenantId.eq(tenant_id))
                    .filter(attributions::Column::IsTest.eq(true))
                    .filter(attributions::Column::ConversionEventId.is_in(conversion_ids))
                    .all(txn)
                    .await?,
            );
        }
        if let Some(earliest) = events
            .iter()
            .filter(|e| e.is_detection)
            .map(|e| e.event_time)
            .min()
        {
            // `detection_time` is the detection's event time: the (tenant_id, detection_time)
            // index narrows the search to the listed detections' times.
            rows.extend(
                attributions::Entity::find()
                    .filter(attributions::Column::TenantId.eq(tenant_id))
                    .filter(attributions::Column::IsTest.eq(true))
                    .filter(attributions::Column::DetectionTime.gte(earliest))
                    .filter(attributions::Column::DetectionEventId.is_in(detection_ids))
                    .all(txn)
                    .await?,
            );
        }
        let mut matches: Vec<TestMatch> = rows
            .into_iter()
            .map(|a| TestMatch {
                goal_id: a.goal_id,
                conversion_event_id: a.conversion_event_id,
                detection_event_id: a.detection_event_id,
                kind: a.kind,
            })
            .collect();
        // A pair between two listed events was read twice.
        matches.sort_by(|a, b| {
            (&a.conversion_event_id, a.goal_id, &a.detection_event_id).cmp(&(
                &b.conversion_event_id,
                b.goal_id,
                &b.detection_event_id,
            ))
        });
        matches.dedup_by(|a, b| {
            a.conversion_event_id == b.conversion_event_id
                && a.goal_id == b.goal_id
                && a.detection_event_id == b.detection_event_id
        });
        Ok(TestEvents {
            events,
            more,
            matches,
        })
    })
    .await
}
