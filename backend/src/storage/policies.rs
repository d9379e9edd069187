//! A tenant's policies. A tenant without a row has the defaults.

use super::TenantScope;
use super::audit::{self, Actor};
use super::entities::tenant_policies;
use crate::domain::TenantId;
use crate::domain::events::Consent;
use crate::domain::policy::{ConsentPolicy, RetentionPolicy, TenantPolicy};
use crate::storage::scoped;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QuerySelect, Set,
};

/// The tenant's policies. Takes a bare tenant id because ingestion reads it for the tenant
/// that authenticated the request.
pub async fn get(db: &impl ConnectionTrait, tenant: TenantId) -> Result<TenantPolicy, DbErr> {
    Ok(tenant_policies::Entity::find_by_id(tenant.as_uuid())
        .one(db)
        .await?
        .map(from_row)
        .unwrap_or_default())
}

/// [`get`] for a request, in the request role's transaction.
pub async fn for_tenant(
    db: &DatabaseConnection,
    tenant: &TenantScope,
) -> Result<TenantPolicy, DbErr> {
    scoped::run(db, tenant, async |txn| get(txn, tenant.id()).await).await
}

/// Replaces the consent policy; returns the policy before the change.
pub async fn put_consent(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    actor: Actor,
    policy: ConsentPolicy,
) -> Result<ConsentPolicy, DbErr> {
    let before = change(db, tenant, actor, "consent_policy.update", |current| {
        let before = serde_json::to_value(current.consent).ok();
        current.consent = policy;
        (before, serde_json::to_value(policy).ok())
    })
    .await?;
    Ok(before.consent)
}

/// Replaces the retention policy; returns the policy before the change.
pub async fn put_retention(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    actor: Actor,
    policy: RetentionPolicy,
) -> Result<RetentionPolicy, DbErr> {
    let before = change(db, tenant, actor, "retention_policy.update", |current| {
        let before = serde_json::to_value(current.retention).ok();
        current.retention = policy;
        (before, serde_json::to_value(policy).ok())
    })
    .await?;
    Ok(before.retention)
}

/// Applies `edit` to the tenant's policies and writes the result with its audit entry, in one
/// transaction. `edit` answers the audit entry's before and after. Returns the old policies.
async fn change(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    actor: Actor,
    action: &'static str,
    edit: impl FnOnce(&mut TenantPolicy) -> (Option<serde_json::Value>, Option<serde_json::Value>),
) -> Result<TenantPolicy, DbErr> {
    let txn = scoped::begin(db, tenant).await?;
    // Locks the row, so two concurrent changes of different policies cannot undo each other.
    let before = get_for_update(&txn, tenant.id()).await?;
    let mut after = before;
    let (audit_before, audit_after) = edit(&mut after);
    tenant_policies::Entity::insert(to_row(tenant.id(), &after))
        .on_conflict(
            OnConflict::column(tenant_policies::Column::TenantId)
                .update_columns([
                    tenant_policies::Column::ConsentDefault,
                    tenant_policies::Column::StripKeysWithoutConsent,
                    tenant_policies::Column::DetectionsDays,
                    tenant_policies::Column::ConversionsDays,
                    tenant_policies::Column::AttributionsDays,
                    tenant_policies::Column::InvalidEventsDays,
                    tenant_policies::Column::MaxEventAgeDays,
                    tenant_policies::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
    audit::record(
        &txn,
        tenant,
        audit::Entry {
            actor,
            action,
            target: None,
            before: audit_before,
            after: audit_after,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(before)
}

/// The tenant's policies, with its row locked until the transaction ends (a tenant without
/// a row has nothing to lock; the insert's conflict clause then settles a race).
async fn get_for_update(
    db: &impl ConnectionTrait,
    tenant: TenantId,
) -> Result<TenantPolicy, DbErr> {
    let mut query = tenant_policies::Entity::find_by_id(tenant.as_uuid());
    if db.get_database_backend() == DbBackend::Postgres {
        query = query.lock_exclusive();
    }
    Ok(query.one(db).await?.map(from_row).unwrap_or_default())
}

fn to_row(tenant: TenantId, policy: &TenantPolicy) -> tenant_policies::ActiveModel {
    let (consent, retention) = (policy.consent, policy.retention);
    tenant_policies::ActiveModel {
        tenant_id: Set(tenant.as_uuid()),
        consent_default: Set(consent.default.as_str().to_owned()),
        strip_keys_without_consent: Set(consent.strip_keys_without_consent),
        detections_days: Set(i32::from(retention.detections_days)),
        conversions_days: Set(i32::from(retention.conversions_days)),
        attributions_days: Set(i32::from(retention.attributions_days)),
        invalid_events_days: Set(i32::from(retention.invalid_events_days)),
        max_event_age_days: Set(i32::from(retention.max_event_age_days)),
        updated_at: Set(chrono::Utc::now()),
    }
}

fn from_row(row: tenant_policies::Model) -> TenantPolicy {
    let days = |value: i32, default: u16| u16::try_from(value).unwrap_or(default);
    let defaults = RetentionPolicy::default();
    TenantPolicy {
        consent: ConsentPolicy {
            default: Consent::parse(&row.consent_default).unwrap_or(Consent::Granted),
            strip_keys_without_consent: row.strip_keys_without_consent,
        },
        retention: RetentionPolicy {
            detections_days: days(row.detections_days, defaults.detections_days),
            conversions_days: days(row.conversions_days, defaults.conversions_days),
            attributions_days: days(row.attributions_days, defaults.attributions_days),
            invalid_events_days: days(row.invalid_events_days, defaults.invalid_events_days),
            max_event_age_days: days(row.max_event_age_days, defaults.max_event_age_days),
        },
    }
}
