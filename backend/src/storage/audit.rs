//! The audit log: one row per administrative change, written in the change's transaction.

use super::TenantScope;
use super::entities::{api_keys, audit_log, users};
use crate::domain::Timestamp;
use crate::storage::scoped;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::Serialize;
use std::collections::HashMap;
use uuid::Uuid;

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

/// One recorded change, as owners read it.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub id: Uuid,
    pub time: Timestamp,
    pub actor: ActorInfo,
    pub action: String,
    pub target: Option<String>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

/// Who made a change, with the person's email or the key's name when they still exist.
#[derive(Debug, Clone, Serialize)]
pub struct ActorInfo {
    /// `user` or `api_key`.
    pub kind: &'static str,
    pub id: Option<Uuid>,
    /// The person's email (`user`) or the key's name (`api_key`).
    pub name: Option<String>,
}

/// The tenant's audit log, newest first: at most `limit` entries older than `before` (an
/// entry id; ids are time-ordered UUIDv7).
pub async fn list(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    limit: u64,
    before: Option<Uuid>,
) -> Result<Vec<AuditEntry>, DbErr> {
    scoped::run(db, tenant, async |txn| {
        let mut query =
            audit_log::Entity::find().filter(audit_log::Column::TenantId.eq(tenant.id().as_uuid()));
        if let Some(before) = before {
            query = query.filter(audit_log::Column::Id.lt(before));
        }
        let rows = query
            .order_by_desc(audit_log::Column::Id)
            .limit(limit)
            .all(txn)
            .await?;
        let names = actor_names(txn, tenant, &rows).await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let (kind, id) = parse_actor(&row.actor);
                AuditEntry {
                    id: row.id,
                    time: Timestamp::from(row.created_at),
                    actor: ActorInfo {
                        kind,
                        id,
                        name: id.and_then(|id| names.get(&id).cloned()),
                    },
                    action: row.action,
                    target: row.target,
                    before: row.before,
                    after: row.after,
                }
            })
            .collect())
    })
    .await
}

/// `user:<id>` or `api_key:<id>`, as [`Actor::stored`] writes it.
fn parse_actor(stored: &str) -> (&'static str, Option<Uuid>) {
    match stored.split_once(':') {
        Some(("user", id)) => ("user", Uuid::parse_str(id).ok()),
        Some(("api_key", id)) => ("api_key", Uuid::parse_str(id).ok()),
        _ => ("unknown", None),
    }
}

/// The emails of the people and the names of the tenant's keys that appear in `rows`.
async fn actor_names(
    db: &impl ConnectionTrait,
    tenant: &TenantScope,
    rows: &[audit_log::Model],
) -> Result<HashMap<Uuid, String>, DbErr> {
    let (mut people, mut keys) = (Vec::new(), Vec::new());
    for row in rows {
        match parse_actor(&row.actor) {
            ("user", Some(id)) => people.push(id),
            ("api_key", Some(id)) => keys.push(id),
            _ => {}
        }
    }
    let mut names = HashMap::new();
    if !people.is_empty() {
        for user in users::Entity::find()
            .filter(users::Column::Id.is_in(people))
            .all(db)
            .await?
        {
            names.insert(user.id, user.email);
        }
    }
    if !keys.is_empty() {
        for key in api_keys::Entity::find()
            .filter(api_keys::Column::TenantId.eq(tenant.id().as_uuid()))
            .filter(api_keys::Column::Id.is_in(keys))
            .all(db)
            .await?
        {
            names.insert(key.id, key.name);
        }
    }
    Ok(names)
}
