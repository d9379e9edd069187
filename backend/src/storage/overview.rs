//! What the dashboard's overview shows: a tenant's live event counts, how many conversions
//! matched, how quickly attributions follow conversions, and the last events received.

use super::TenantScope;
use super::entities::{attributions, conversions, detections};
use crate::storage::scoped;
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

/// Attribution lags measured at most, newest first: enough for a stable median and p95.
const LAG_SAMPLE: u64 = 5_000;
const RECENT: u64 = 10;

#[derive(Debug, Default)]
pub struct Overview {
    pub detections: u64,
    pub conversions: u64,
    /// Conversions with a direct attribution by any goal.
    pub matched_conversions: u64,
    /// Milliseconds from a conversion's receipt to its direct attribution, sorted.
    pub lags_ms: Vec<i64>,
    pub recent: Vec<RecentRow>,
}

#[derive(Debug)]
pub struct RecentRow {
    pub is_detection: bool,
    pub event_id: String,
    pub what: String,
    pub received_time: DateTime<Utc>,
    pub is_test: bool,
}

/// Live events with an event time from `since` on; lags of attributions written from
/// `lag_since` on; the last events received from `recent_since` on (a bound that lets the
/// received-time index serve the query).
pub async fn overview(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    since: DateTime<Utc>,
    lag_since: DateTime<Utc>,
    recent_since: DateTime<Utc>,
) -> Result<Overview, DbErr> {
    scoped::run(db, tenant, async |txn| {
        let tenant_id = tenant.id().as_uuid();
        let detections = detections::Entity::find()
            .filter(detections::Column::TenantId.eq(tenant_id))
            .filter(detections::Column::EventTime.gte(since))
            .filter(detections::Column::IsTest.eq(false))
            .count(txn)
            .await?;
        let conversions = conversions::Entity::find()
            .filter(conversions::Column::TenantId.eq(tenant_id))
            .filter(conversions::Column::EventTime.gte(since))
            .filter(conversions::Column::IsTest.eq(false))
            .count(txn)
            .await?;
        let matched_conversions = attributions::Entity::find()
            .select_only()
            .column(attributions::Column::ConversionEventId)
            .distinct()
            .filter(attributions::Column::TenantId.eq(tenant_id))
            .filter(attributions::Column::Kind.eq("direct"))
            .filter(attributions::Column::IsTest.eq(false))
            .filter(attributions::Column::ConversionTime.gte(since))
            .count(txn)
            .await?;

        let written: Vec<(String, DateTime<Utc>)> = attributions::Entity::find()
            .select_only()
            .column(attributions::Column::ConversionEventId)
            .column(attributions::Column::CreatedAt)
            .filter(attributions::Column::TenantId.eq(tenant_id))
            .filter(attributions::Column::Kind.eq("direct"))
            .filter(attributions::Column::CreatedAt.gte(lag_since))
            .order_by_desc(attributions::Column::CreatedAt)
            .limit(LAG_SAMPLE)
            .into_tuple()
            .all(txn)
            .await?;
        let mut received = std::collections::HashMap::new();
        let ids: Vec<&str> = written.iter().map(|(id, _)| id.as_str()).collect();
        for chunk in ids.chunks(1_000) {
            let rows: Vec<(String, DateTime<Utc>)> = conversions::Entity::find()
                .select_only()
                .column(conversions::Column::EventId)
                .column(conversions::Column::ReceivedTime)
                .filter(conversions::Column::TenantId.eq(tenant_id))
                .filter(conversions::Column::EventId.is_in(chunk.iter().copied()))
                .into_tuple()
                .all(txn)
                .await?;
            received.extend(rows);
        }
        let mut lags_ms: Vec<i64> = written
            .iter()
            .filter_map(|(id, at)| {
                received
                    .get(id)
                    .map(|r: &DateTime<Utc>| (*at - *r).num_milliseconds().max(0))
            })
            .collect();
        lags_ms.sort_unstable();

        let recent_detections = detections::Entity::find()
            .filter(detections::Column::TenantId.eq(tenant_id))
            .filter(detections::Column::ReceivedTime.gte(recent_since))
            .order_by_desc(detections::Column::ReceivedTime)
            .limit(RECENT)
            .all(txn)
            .await?
            .into_iter()
            .map(|d| RecentRow {
                is_detection: true,
                event_id: d.event_id,
                what: d.label,
                received_time: d.received_time,
                is_test: d.is_test,
            });
        let recent_conversions = conversions::Entity::find()
            .filter(conversions::Column::TenantId.eq(tenant_id))
            .filter(conversions::Column::ReceivedTime.gte(recent_since))
            .order_by_desc(conversions::Column::ReceivedTime)
            .limit(RECENT)
            .all(txn)
            .await?
            .into_iter()
            .map(|c| RecentRow {
                is_detection: false,
                event_id: c.event_id,
                what: c.name,
                received_time: c.received_time,
                is_test: c.is_test,
            });
        let mut recent: Vec<RecentRow> = recent_detections.chain(recent_conversions).collect();
        recent.sort_by_key(|row| std::cmp::Reverse(row.received_time));
        recent.truncate(RECENT as usize);

        Ok(Overview {
            detections,
            conversions,
            matched_conversions,
            lags_ms,
            recent,
        })
    })
    .await
}
