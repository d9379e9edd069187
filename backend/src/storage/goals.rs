//! A tenant's goals.

use super::TenantScope;
use super::attributions;
use super::audit::{self, Actor};
use super::entities::goals;
use super::reevaluations;
use super::scoped;
use crate::domain::Timestamp;
use crate::domain::goals::GoalSpec;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::Serialize;
use std::collections::HashMap;
use uuid::Uuid;

/// A goal as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct GoalView {
    pub id: Uuid,
    #[serde(flatten)]
    pub spec: GoalSpec,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<goals::Model> for GoalView {
    fn from(row: goals::Model) -> Self {
        let detection_labels = row
            .detection_labels
            .as_array()
            .map(|labels| {
                labels
                    .iter()
                    .filter_map(|l| l.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            id: row.id,
            spec: GoalSpec {
                name: row.name,
                detection_labels,
                conversion_name: row.conversion_name,
                key: row.key,
                window_seconds: i64::from(row.window_seconds),
                min_confidence: row.min_confidence,
                dedup_seconds: i64::from(row.dedup_seconds),
                requires_consent: row.requires_consent,
                active: row.active,
            },
            created_at: row.created_at.into(),
            updated_at: row.updated_at.into(),
        }
    }
}

/// The row's columns from a spec (the spec's ranges fit `i32`: at most 90 days in seconds).
fn set_spec(row: &mut goals::ActiveModel, spec: &GoalSpec) {
    row.name = Set(spec.name.clone());
    row.detection_labels = Set(serde_json::json!(spec.detection_labels));
    row.conversion_name = Set(spec.conversion_name.clone());
    row.key = Set(spec.key.clone());
    row.window_seconds = Set(i32::try_from(spec.window_seconds).unwrap_or(i32::MAX));
    row.min_confidence = Set(spec.min_confidence);
    row.dedup_seconds = Set(i32::try_from(spec.dedup_seconds).unwrap_or(i32::MAX));
    row.requires_consent = Set(spec.requires_consent);
    row.active = Set(spec.active);
}

pub async fn create(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    actor: Actor,
    spec: &GoalSpec,
) -> Result<GoalView, DbErr> {
    let now = Timestamp::now().as_datetime();
    let mut row = goals::ActiveModel {
        tenant_id: Set(tenant.id().as_uuid()),
        id: Set(Uuid::now_v7()),
        created_at: Set(now),
        updated_at: Set(now),
        revision: Set(1),
        ..Default::default()
    };
    set_spec(&mut row, spec);
    let txn = scoped::begin(db, tenant).await?;
    let view = GoalView::from(row.insert(&txn).await?);
    reevaluations::schedule(&txn, tenant, view.id, 1).await?;
    audit::record(
        &txn,
        tenant,
        audit::Entry {
            actor,
            action: "goal.create",
            target: Some(&view.id.to_string()),
            before: None,
            after: serde_json::to_value(&view.spec).ok(),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(view)
}

pub async fn list(db: &DatabaseConnection, tenant: &TenantScope) -> Result<Vec<GoalView>, DbErr> {
    scoped::run(db, tenant, async |txn| {
        Ok(goals::Entity::find()
            .filter(goals::Column::TenantId.eq(tenant.id().as_uuid()))
            .order_by_asc(goals::Column::CreatedAt)
            .order_by_asc(goals::Column::Id)
            .all(txn)
            .await?
            .into_iter()
            .map(GoalView::from)
            .collect())
    })
    .await
}

pub async fn get(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    id: Uuid,
) -> Result<Option<GoalView>, DbErr> {
    scoped::run(db, tenant, async |txn| {
        Ok(goals::Entity::find_by_id((tenant.id().as_uuid(), id))
            .one(txn)
            .await?
            .map(GoalView::from))
    })
    .await
}

/// Replaces a goal's definition; `None` when the tenant has no such goal.
pub async fn replace(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    actor: Actor,
    id: Uuid,
    spec: &GoalSpec,
) -> Result<Option<GoalView>, DbErr> {
    let txn = scoped::begin(db, tenant).await?;
    let Some(existing) = goals::Entity::find_by_id((tenant.id().as_uuid(), id))
        .one(&txn)
        .await?
    else {
        return Ok(None);
    };
    let before = GoalView::from(existing.clone());
    let revision = existing.revision.wrapping_add(1);
    let mut row: goals::ActiveModel = existing.into();
    set_spec(&mut row, spec);
    row.updated_at = Set(Timestamp::now().as_datetime());
    row.revision = Set(revision);
    let view = GoalView::from(row.update(&txn).await?);
    // Re-evaluation rebuilds them under the new definition.
    attributions::delete_goal(&txn, tenant, id).await?;
    reevaluations::schedule(&txn, tenant, id, revision).await?;
    audit::record(
        &txn,
        tenant,
        audit::Entry {
            actor,
            action: "goal.update",
            target: Some(&id.to_string()),
            before: serde_json::to_value(&before.spec).ok(),
            after: serde_json::to_value(&view.spec).ok(),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(Some(view))
}

/// Deletes a goal; false when the tenant has no such goal.
pub async fn delete(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    actor: Actor,
    id: Uuid,
) -> Result<bool, DbErr> {
    let txn = scoped::begin(db, tenant).await?;
    let Some(existing) = goals::Entity::find_by_id((tenant.id().as_uuid(), id))
        .one(&txn)
        .await?
    else {
        return Ok(false);
    };
    let before = GoalView::from(existing);
    goals::Entity::delete_by_id((tenant.id().as_uuid(), id))
        .exec(&txn)
        .await?;
    attributions::delete_goal(&txn, tenant, id).await?;
    audit::record(
        &txn,
        tenant,
        audit::Entry {
            actor,
            action: "goal.delete",
            target: Some(&id.to_string()),
            before: serde_json::to_value(&before.spec).ok(),
            after: None,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(true)
}

/// A goal as matching needs it: its definition and the revision it was read at.
#[derive(Debug, Clone)]
pub struct GoalRevision {
    pub id: Uuid,
    pub revision: i32,
    pub spec: GoalSpec,
}

/// Every goal of the tenant, active or not, with its revision.
pub async fn with_revisions(
    db: &impl ConnectionTrait,
    tenant: &TenantScope,
) -> Result<Vec<GoalRevision>, DbErr> {
    Ok(goals::Entity::find()
        .filter(goals::Column::TenantId.eq(tenant.id().as_uuid()))
        .all(db)
        .await?
        .into_iter()
        .map(|row| {
            let revision = row.revision;
            let view = GoalView::from(row);
            GoalRevision {
                id: view.id,
                revision,
                spec: view.spec,
            }
        })
        .collect())
}

/// The current revision of every goal of `tenants`, per tenant, read under a share lock on
/// PostgreSQL, so that no goal can change or go until the calling transaction ends. A
/// matching round checks them against the revisions it computed with.
pub async fn lock_revisions(
    txn: &impl ConnectionTrait,
    tenants: &[Uuid],
) -> Result<HashMap<Uuid, HashMap<Uuid, i32>>, DbErr> {
    if tenants.is_empty() {
        return Ok(HashMap::new());
    }
    let mut query = goals::Entity::find()
        .select_only()
        .column(goals::Column::TenantId)
        .column(goals::Column::Id)
        .column(goals::Column::Revision)
        .filter(goals::Column::TenantId.is_in(tenants.iter().copied()));
    if txn.get_database_backend() == DbBackend::Postgres {
        // SQLite has a single writer: its transactions are serialised already.
        query = query.lock_shared();
    }
    let rows: Vec<(Uuid, Uuid, i32)> = query.into_tuple().all(txn).await?;
    let mut revisions: HashMap<Uuid, HashMap<Uuid, i32>> = HashMap::new();
    for (tenant, goal, revision) in rows {
        revisions.entry(tenant).or_default().insert(goal, revision);
    }
    Ok(revisions)
}
