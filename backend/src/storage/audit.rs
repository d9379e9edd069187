//! The audit log: one row per administrative change, written in the change's transaction.

use super::TenantScope;
use super::entities::audit_log;
use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, Set};

/// Who made a change.
#[derive(Debug, Clone, Copy)]
pub enum Actor {
    User(crate::domain::UserId),
    ApiKey(crate::domain::ApiKeyId),
}

impl Actor {
    fn stored(self) -> String {
        match self {
            Actor::User(id) => format!("user:{id}"),
            Actor::ApiKey(id) => format!("api_key:{id}"),
        }
    }
}

/// One change to record.
#[derive(Debug)]
pub struct Entry<'a> {
    pub actor: Actor,
    /// Dotted verb, e.g. `member.role_change`.
    pub action: &'static str,
    pub target: Option<&'a str>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

pub async fn record(
    db: &impl ConnectionTrait,
    tenant: &TenantScope,
    entry: Entry<'_>,
) -> Result<(), DbErr> {
    audit_log::ActiveModel {
        tenant_id: Set(tenant.id().as_uuid()),
        id: Set(uuid::Uuid::now_v7()),
        actor: Set(entry.actor.stored()),
        action: Set(entry.action.to_owned()),
        target: Set(entry.target.map(str::to_owned)),
        before: Set(entry.before),
        after: Set(entry.after),
        created_at: Set(chrono::Utc::now()),
    }
    .insert(db)
    .await?;
    Ok(())
}
