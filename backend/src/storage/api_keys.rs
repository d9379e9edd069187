//! A tenant's API keys. The secret itself is never stored, only its SHA-256 hash.

use super::TenantScope;
use super::audit::{self, Actor};
use super::entities::api_keys;
use crate::domain::{ApiKeyId, ApiKeyName, Scopes, TenantId, Timestamp};
use crate::storage::scoped;
use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set,
};
use serde::Serialize;

/// A key as lists show it: everything but the secret.
#[derive(Debug, Clone, Serialize)]
pub struct ApiKeyInfo {
    pub id: ApiKeyId,
    pub name: String,
    pub scopes: Vec<&'static str>,
    pub prefix: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

impl From<api_keys::Model> for ApiKeyInfo {
    fn from(row: api_keys::Model) -> Self {
        Self {
            id: ApiKeyId::from_uuid(row.id),
            name: row.name,
            scopes: Scopes::from_stored(&row.scopes).names(),
            prefix: row.prefix,
            created_at: row.created_at.into(),
            last_used_at: row.last_used_at.map(Timestamp::from),
            revoked_at: row.revoked_at.map(Timestamp::from),
        }
    }
}

/// What a new key's row holds.
#[derive(Debug)]
pub struct NewApiKey<'a> {
    pub name: &'a ApiKeyName,
    pub scopes: &'a Scopes,
    pub prefix: &'a str,
    pub key_hash: String,
}

pub async fn insert(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    actor: Actor,
    key: NewApiKey<'_>,
) -> Result<ApiKeyInfo, DbErr> {
    let id = ApiKeyId::generate();
    let txn = scoped::begin(db, tenant).await?;
    let row = api_keys::ActiveModel {
        tenant_id: Set(tenant.id().as_uuid()),
        id: Set(id.as_uuid()),
        name: Set(key.name.as_str().to_owned()),
        prefix: Set(key.prefix.to_owned()),
        key_hash: Set(key.key_hash),
        scopes: Set(key.scopes.to_stored()),
        created_by: Set(match actor {
            Actor::User(user) => Some(user.as_uuid()),
            Actor::ApiKey(_) => None,
        }),
        created_at: Set(Timestamp::now().as_datetime()),
        last_used_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(&txn)
    .await?;
    let info = ApiKeyInfo::from(row);
    audit::record(
        &txn,
        tenant,
        audit::Entry {
            actor,
            action: "api_key.create",
            target: Some(&id.to_string()),
            before: None,
            after: Some(serde_json::json!({"name": info.name, "scopes": info.scopes, "prefix": info.prefix})),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(info)
}

pub async fn list(db: &DatabaseConnection, tenant: &TenantScope) -> Result<Vec<ApiKeyInfo>, DbErr> {
    scoped::run(db, tenant, async |txn| {
        Ok(api_keys::Entity::find()
            .filter(api_keys::Column::TenantId.eq(tenant.id().as_uuid()))
            .order_by_desc(api_keys::Column::CreatedAt)
            .all(txn)
            .await?
            .into_iter()
            .map(ApiKeyInfo::from)
            .collect())
    })
    .await
}

/// The stored hash of one of the tenant's keys, to invalidate caches before revoking it.
pub async fn hash_of(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    id: ApiKeyId,
) -> Result<Option<String>, DbErr> {
    scoped::run(db, tenant, async |txn| {
        Ok(
            api_keys::Entity::find_by_id((tenant.id().as_uuid(), id.as_uuid()))
                .one(txn)
                .await?
                .map(|row| row.key_hash),
        )
    })
    .await
}

/// Marks a key revoked. Revoking a revoked key changes nothing. Returns false when the
/// tenant has no such key.
pub async fn revoke(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    actor: Actor,
    id: ApiKeyId,
) -> Result<bool, DbErr> {
    let txn = scoped::begin(db, tenant).await?;
    let Some(row) = api_keys::Entity::find_by_id((tenant.id().as_uuid(), id.as_uuid()))
        .one(&txn)
        .await?
    else {
        return Ok(false);
    };
    if row.revoked_at.is_none() {
        let name = row.name.clone();
        let mut active: api_keys::ActiveModel = row.into();
        active.revoked_at = Set(Some(Utc::now()));
        active.update(&txn).await?;
        audit::record(
            &txn,
            tenant,
            audit::Entry {
                actor,
                action: "api_key.revoke",
                target: Some(&id.to_string()),
                before: Some(serde_json::json!({"name": name, "revoked": false})),
                after: Some(serde_json::json!({"name": name, "revoked": true})),
            },
        )
        .await?;
    }
    txn.commit().await?;
    Ok(true)
}

/// Who a presented key belongs to, when it is live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOwner {
    pub tenant_id: TenantId,
    pub key_id: ApiKeyId,
    pub scopes: Scopes,
}

/// Finds the live (not revoked) key with this hash. Not tenant-scoped: this is how the
/// tenant of an API request is found in the first place.
pub async fn find_live_by_hash(
    db: &DatabaseConnection,
    key_hash: &str,
) -> Result<Option<KeyOwner>, DbErr> {
    Ok(api_keys::Entity::find()
        .filter(api_keys::Column::KeyHash.eq(key_hash))
        .filter(api_keys::Column::RevokedAt.is_null())
        .one(db)
        .await?
        .map(|row| KeyOwner {
            tenant_id: TenantId::from_uuid(row.tenant_id),
            key_id: ApiKeyId::from_uuid(row.id),
            scopes: Scopes::from_stored(&row.scopes),
        }))
}

/// Records that a key was used (callers throttle this to about once a minute per key).
pub async fn touch_last_used(
    db: &DatabaseConnection,
    tenant_id: TenantId,
    key_id: ApiKeyId,
) -> Result<(), DbErr> {
    api_keys::Entity::update_many()
        .col_expr(
            api_keys::Column::LastUsedAt,
            sea_orm::sea_query::Expr::value(Utc::now()),
        )
        .filter(api_keys::Column::TenantId.eq(tenant_id.as_uuid()))
        .filter(api_keys::Column::Id.eq(key_id.as_uuid()))
        .exec(db)
        .await?;
    Ok(())
}
