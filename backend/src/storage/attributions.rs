//! Attributions: written as differences by the session actors, read by the API.
//!
//! A change replaces the whole set of one (goal, conversion) in the transaction that also
//! checks the goals' revisions, so that a reader sees either the old set or the new one, and
//! nothing computed under a goal definition that has since changed is ever committed.

use super::TenantScope;
use super::entities::attributions;
use super::goals::lock_revisions;
use crate::domain::Timestamp;
use crate::matching::Credit;
use crate::matching::session::Change;
use crate::storage::scoped;
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde::Serialize;
use std::collections::HashMap;
use uuid::Uuid;

/// Rows per statement: well under PostgreSQL's 65535 bind parameters.
const CHUNK: usize = 1000;

/// One tenant's changes, with the goal revisions they were computed under.
#[derive(Debug)]
pub struct ChangeSet {
    pub tenant: TenantScope,
    pub revisions: HashMap<Uuid, i32>,
    pub changes: Vec<Change>,
}

/// What became of a write.
#[derive(Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    Written,
    /// A goal changed (or went) since the changes were computed: nothing was written.
    StaleGoals,
}

/// Begins a matching round's transaction: the round claims its sessions in it
/// (`session_versions::claim`), reads what it must, and ends it with [`write_changes`].
pub async fn begin_round(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    let txn = db.begin().await?;
    if txn.get_database_backend() == DbBackend::Postgres {
        // Attributions are derived: the events they come from are committed durably before
        // their 202, and start-up recovery re-matches everything after the last durable
        // matching checkpoint. So this commit need not wait for its WAL flush, which on a
        // busy disk is most of a round's latency. Nothing is lost by a crash: WAL is written
        // in order, so a durable checkpoint implies every commit before it is durable too.
        txn.execute_unprepared("SET LOCAL synchronous_commit = off")
            .await?;
    }
    Ok(txn)
}

/// Ends a round's transaction: commits its changes if every goal of every tenant in `sets`
/// (one set per tenant of the round, with or without changes) still has the revision the
/// round computed with, and no goal was added; else rolls back. The goals stay share-locked
/// until the commit, so none can change in between; a goal added after the check is
/// re-evaluated over events that include the round's (they were committed before it).
pub async fn write_changes(
    txn: DatabaseTransaction,
    sets: &[ChangeSet],
) -> Result<WriteOutcome, DbErr> {
    let tenants: Vec<Uuid> = sets.iter().map(|set| set.tenant.id().as_uuid()).collect();
    let current = lock_revisions(&txn, &tenants).await?;
    let stale = sets.iter().any(|set| {
        let now = current.get(&set.tenant.id().as_uuid());
        set.revisions != *now.unwrap_or(&HashMap::new())
    });
    if stale {
        txn.rollback().await?;
        return Ok(WriteOutcome::StaleGoals);
    }
    for set in sets.iter().filter(|set| !set.changes.is_empty()) {
        replace_sets(&txn, &set.tenant, &set.changes).await?;
    }
    txn.commit().await?;
    Ok(WriteOutcome::Written)
}

async fn replace_sets(
    txn: &impl ConnectionTrait,
    tenant: &TenantScope,
    changes: &[Change],
) -> Result<(), DbErr> {
    let tenant_id = tenant.id().as_uuid();
    // New sets have nothing to delete: on a busy ingest path most are new.
    let replaced: Vec<&Change> = changes.iter().filter(|c| c.replaces_stored).collect();
    for chunk in replaced.chunks(CHUNK) {
        let mut which = Condition::any();
        for change in chunk {
            which = which.add(
                Condition::all()
                    .add(attributions::Column::GoalId.eq(change.goal_id))
                    .add(attributions::Column::ConversionEventId.eq(&*change.conversion.event_id)),
            );
        }
        attributions::Entity::delete_many()
            .filter(attributions::Column::TenantId.eq(tenant_id))
            .filter(which)
            .exec(txn)
            .await?;
    }
    let now = Timestamp::now().as_datetime();
    let rows: Vec<attributions::ActiveModel> = changes
        .iter()
        .flat_map(|change| {
            change.credits.iter().map(move |(detection, credit)| {
                let conversion = &change.conversion;
                attributions::ActiveModel {
                    tenant_id: Set(tenant_id),
                    goal_id: Set(change.goal_id),
                    conversion_event_id: Set(conversion.event_id.to_string()),
                    detection_event_id: Set(detection.event_id.to_string()),
                    kind: Set(credit.as_str().to_owned()),
                    conversion_time: Set(millis_to_datetime(conversion.event_time)),
                    detection_time: Set(millis_to_datetime(detection.event_time)),
                    label: Set(detection.label.to_string()),
                    entity_id: Set(detection.entity_id.to_string()),
                    category: Set(detection.category.as_deref().map(str::to_owned)),
                    model_version: Set(detection.model_version.to_string()),
                    value: Set(conversion.value),
                    is_test: Set(conversion.is_test),
                    created_at: Set(now),
                }
            })
        })
        .collect();
    for chunk in rows.chunks(CHUNK) {
        attributions::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// Event times come from stored events, so they are always in range.
fn millis_to_datetime(millis: i64) -> chrono::DateTime<chrono::Utc> {
    Timestamp::from_millis(millis)
        .map(|t| t.as_datetime())
        .unwrap_or_default()
}

/// Removes every attribution of a goal (it changed or went; re-evaluation rebuilds).
pub async fn delete_goal(
    txn: &impl ConnectionTrait,
    tenant: &TenantScope,
    goal_id: Uuid,
) -> Result<u64, DbErr> {
    Ok(attributions::Entity::delete_many()
        .filter(attributions::Column::TenantId.eq(tenant.id().as_uuid()))
        .filter(attributions::Column::GoalId.eq(goal_id))
        .exec(txn)
        .await?
        .rows_affected)
}

/// A stored credit: (goal, conversion event id, detection event id, credit).
pub type StoredCredit = (Uuid, String, String, Credit);

/// The stored attributions of the given conversions, for every goal, read in `txn` (a
/// matching round's, across tenants, so the tenant filter here is what scopes it).
pub async fn stored_for(
    txn: &impl ConnectionTrait,
    tenant: &TenantScope,
    conversion_event_ids: &[String],
) -> Result<Vec<StoredCredit>, DbErr> {
    let mut found = Vec::new();
    for chunk in conversion_event_ids.chunks(CHUNK) {
        let rows: Vec<(Uuid, String, String, String)> = attributions::Entity::find()
            .select_only()
            .column(attributions::Column::GoalId)
            .column(attributions::Column::ConversionEventId)
            .column(attributions::Column::DetectionEventId)
            .column(attributions::Column::Kind)
            .filter(attributions::Column::TenantId.eq(tenant.id().as_uuid()))
            .filter(attributions::Column::ConversionEventId.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(txn)
            .await?;
        found.extend(rows.into_iter().map(|(goal, conversion, detection, kind)| {
            let credit = if kind == "direct" {
                Credit::Direct
            } else {
                Credit::Assisted
            };
            (goal, conversion, detection, credit)
        }));
    }
    Ok(found)
}

/// An attribution as `GET /v1/attributions` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AttributionView {
    pub goal_id: Uuid,
    pub conversion_event_id: String,
    pub detection_event_id: String,
    pub kind: String,
    pub conversion_time: Timestamp,
    pub detection_time: Timestamp,
    pub label: String,
    pub entity_id: String,
    pub model_version: String,
    pub value: Option<f64>,
}

/// Which attributions to list.
#[derive(Debug, Default)]
pub struct ListFilter {
    pub goal_id: Option<Uuid>,
    pub conversion_event_id: Option<String>,
    pub limit: u64,
}

/// The tenant's attributions, newest conversion first; per conversion, the direct one first.
pub async fn list(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    filter: &ListFilter,
) -> Result<Vec<AttributionView>, DbErr> {
    scoped::run(db, tenant, async |txn| {
        let mut query = attributions::Entity::find()
            .filter(attributions::Column::TenantId.eq(tenant.id().as_uuid()));
        if let Some(goal_id) = filter.goal_id {
            query = query.filter(attributions::Column::GoalId.eq(goal_id));
        }
        if let Some(id) = &filter.conversion_event_id {
            query = query.filter(attributions::Column::ConversionEventId.eq(id.as_str()));
        }
        Ok(query
            .order_by_desc(attributions::Column::ConversionTime)
            .order_by_asc(attributions::Column::ConversionEventId)
            .order_by_asc(attributions::Column::GoalId)
            // 'direct' sorts before 'assisted' backwards: direct first.
            .order_by_desc(Expr::col(attributions::Column::Kind))
            .order_by_desc(attributions::Column::DetectionTime)
            .order_by_asc(attributions::Column::DetectionEventId)
            .limit(filter.limit)
            .all(txn)
            .await?
            .into_iter()
            .map(|row| AttributionView {
                goal_id: row.goal_id,
                conversion_event_id: row.conversion_event_id,
                detection_event_id: row.detection_event_id,
                kind: row.kind,
                conversion_time: row.conversion_time.into(),
                detection_time: row.detection_time.into(),
                label: row.label,
                entity_id: row.entity_id,
                model_version: row.model_version,
                value: row.value,
            })
            .collect())
    })
    .await
}
