//! A tenant's policies. A tenant without a row has the defaults.

use super::TenantScope;
use super::audit::{self, Actor};
use super::entities::tenant_policies;
use crate::domain::TenantId;
use crate::domain::events::Consent;
use crate::domain::policy::{ConsentPolicy, RetentionPolicy, TenantPolicy};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, Set, TransactionTrait};

/// The tenant's policies. Takes a bare tenant id because ingestion reads it for the tenant
/// that authenticated the request.
pub async fn get(db: &impl ConnectionTrait, tenant: TenantId) -> Result<TenantPolicy, DbErr> {
    Ok(tenant_policies::Entity::find_by_id(tenant.as_uuid())
        .one(db)
        .await?
        .map(from_row)
        .unwrap_or_default())
}

/// Replaces the consent policy; returns the policy before the change.
pub async fn put_consent(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    actor: Actor,
    policy: ConsentPolicy,
) -> Result<ConsentPolicy, DbErr> {
    let txn = db.begin().await?;
    let before = get(&txn, tenant.id()).await?;
    let retention = before.retention;
    let row = tenant_policies::ActiveModel {
        tenant_id: Set(tenant.id().as_uuid()),
        consent_default: Set(policy.default.as_str().to_owned()),
        strip_keys_without_consent: Set(policy.strip_keys_without_consent),
        detections_days: Set(i32::from(retention.detections_days)),
        conversions_days: Set(i32::from(retention.conversions_days)),
        attributions_days: Set(i32::from(retention.attributions_days)),
        invalid_events_days: Set(i32::from(retention.invalid_events_days)),
        max_event_age_days: Set(i32::from(retention.max_event_age_days)),
        updated_at: Set(chrono::Utc::now()),
    };
    tenant_policies::Entity::insert(row)
        .on_conflict(
            OnConflict::column(tenant_policies::Column::TenantId)
                .update_columns([
                    tenant_policies::Column::ConsentDefault,
                    tenant_policies::Column::StripKeysWithoutConsent,
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
            action: "consent_policy.update",
            target: None,
            before: serde_json::to_value(before.consent).ok(),
            after: serde_json::to_value(policy).ok(),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(before.consent)
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
