//! A tenant's members and their roles. A tenant always keeps at least one owner.

use super::TenantScope;
use super::accounts::{CreateAccountError, insert_user};
use super::audit::{self, Actor};
use super::entities::{memberships, tenants, users};
use crate::domain::{Email, Role, Timestamp, UserId};
use crate::storage::scoped;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::Serialize;

/// A member as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    pub user_id: UserId,
    pub email: String,
    pub role: Role,
    pub created_at: Timestamp,
}

/// Why a membership change was refused.
#[derive(Debug, thiserror::Error)]
pub enum MemberChangeError {
    #[error("no such member")]
    NotFound,
    #[error("a tenant must keep at least one owner")]
    LastOwner,
    #[error("only an owner can grant or take away the owner role")]
    OwnerOnly,
    #[error("the caller no longer has a role that manages members")]
    NotAllowed,
    #[error(transparent)]
    Db(#[from] DbErr),
}

pub async fn list(db: &DatabaseConnection, tenant: &TenantScope) -> Result<Vec<Member>, DbErr> {
    scoped::run(db, tenant, async |txn| {
        let rows = memberships::Entity::find()
            .filter(memberships::Column::TenantId.eq(tenant.id().as_uuid()))
            .find_also_related(users::Entity)
            .order_by_asc(memberships::Column::CreatedAt)
            .all(txn)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(membership, user)| to_member(membership, user?))
            .collect())
    })
    .await
}

/// Creates a user with `role` in the tenant.
pub async fn add(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    actor: Actor,
    email: &Email,
    password_hash: String,
    role: Role,
) -> Result<Member, AddMemberError> {
    let user_id = UserId::generate();
    let now = Timestamp::now();
    let txn = scoped::begin(db, tenant).await?;
    let actor_role = current_role_of(&txn, tenant, actor)
        .await
        .map_err(|e| match e {
            MemberChangeError::Db(db) => AddMemberError::Db(db),
            _ => AddMemberError::NotAllowed,
        })?;
    if role == Role::Owner && actor_role != Role::Owner {
        return Err(AddMemberError::OwnerOnly);
    }
    insert_user(&txn, user_id, email, password_hash)
        .await
        .map_err(|e| match e {
            CreateAccountError::EmailTaken => AddMemberError::EmailTaken,
            CreateAccountError::Db(db) => AddMemberError::Db(db),
        })?;
    memberships::ActiveModel {
        tenant_id: Set(tenant.id().as_uuid()),
        user_id: Set(user_id.as_uuid()),
        role: Set(role.as_str().to_owned()),
        created_at: Set(now.as_datetime()),
    }
    .insert(&txn)
    .await?;
    let member = Member {
        user_id,
        email: email.as_str().to_owned(),
        role,
        created_at: now,
    };
    audit::record(
        &txn,
        tenant,
        audit::Entry {
            actor,
            action: "member.add",
            target: Some(&user_id.to_string()),
            before: None,
            after: Some(serde_json::json!({"email": member.email, "role": role})),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(member)
}

/// Why a member could not be added.
#[derive(Debug, thiserror::Error)]
pub enum AddMemberError {
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("only an owner can add another owner")]
    OwnerOnly,
    #[error("the caller no longer has a role that manages members")]
    NotAllowed,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Changes a member's role, refusing to leave the tenant without an owner.
pub async fn change_role(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    actor: Actor,
    user_id: UserId,
    new_role: Role,
) -> Result<Member, MemberChangeError> {
    let txn = scoped::begin(db, tenant).await?;
    let (membership, user) = locked_membership(&txn, tenant, user_id).await?;
    let actor_role = current_role_of(&txn, tenant, actor).await?;
    let old_role =
        Role::parse("role", &membership.role).map_err(|_| MemberChangeError::NotFound)?;
    if (old_role == Role::Owner || new_role == Role::Owner) && actor_role != Role::Owner {
        return Err(MemberChangeError::OwnerOnly);
    }
    if old_role == Role::Owner && new_role != Role::Owner && owner_count(&txn, tenant).await? <= 1 {
        return Err(MemberChangeError::LastOwner);
    }
    let created_at = Timestamp::from(membership.created_at);
    let mut active: memberships::ActiveModel = membership.into();
    active.role = Set(new_role.as_str().to_owned());
    active.update(&txn).await?;
    audit::record(
        &txn,
        tenant,
        audit::Entry {
            actor,
            action: "member.role_change",
            target: Some(&user_id.to_string()),
            before: Some(serde_json::json!({"role": old_role})),
            after: Some(serde_json::json!({"role": new_role})),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(Member {
        user_id,
        email: user.email,
        role: new_role,
        created_at,
    })
}

/// Removes a member from the tenant (and their login, which belongs to this tenant only).
pub async fn remove(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    actor: Actor,
    user_id: UserId,
) -> Result<(), MemberChangeError> {
    let txn = scoped::begin(db, tenant).await?;
    let (membership, user) = locked_membership(&txn, tenant, user_id).await?;
    let actor_role = current_role_of(&txn, tenant, actor).await?;
    let role = Role::parse("role", &membership.role).map_err(|_| MemberChangeError::NotFound)?;
    if role == Role::Owner {
        if actor_role != Role::Owner {
            return Err(MemberChangeError::OwnerOnly);
        }
        if owner_count(&txn, tenant).await? <= 1 {
            return Err(MemberChangeError::LastOwner);
        }
    }
    memberships::Entity::delete_many()
        .filter(memberships::Column::TenantId.eq(tenant.id().as_uuid()))
        .filter(memberships::Column::UserId.eq(user_id.as_uuid()))
        .exec(&txn)
        .await?;
    let other_memberships = memberships::Entity::find()
        .filter(memberships::Column::UserId.eq(user_id.as_uuid()))
        .count(&txn)
        .await?;
    if other_memberships == 0 {
        users::Entity::delete_by_id(user_id.as_uuid())
            .exec(&txn)
            .await?;
    }
    audit::record(
        &txn,
        tenant,
        audit::Entry {
            actor,
            action: "member.remove",
            target: Some(&user_id.to_string()),
            before: Some(serde_json::json!({"email": user.email, "role": role})),
            after: None,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Loads a member for a change, after locking the tenant row so that two concurrent changes
/// cannot both remove "the other" owner. (SQLite serialises writers on its own.)
async fn locked_membership(
    txn: &DatabaseTransaction,
    tenant: &TenantScope,
    user_id: UserId,
) -> Result<(memberships::Model, users::Model), MemberChangeError> {
    if txn.get_database_backend() == DbBackend::Postgres {
        tenants::Entity::find_by_id(tenant.id().as_uuid())
            .lock_exclusive()
            .one(txn)
            .await?;
    }
    let found = memberships::Entity::find()
        .filter(memberships::Column::TenantId.eq(tenant.id().as_uuid()))
        .filter(memberships::Column::UserId.eq(user_id.as_uuid()))
        .find_also_related(users::Entity)
        .one(txn)
        .await?;
    match found {
        Some((membership, Some(user))) => Ok((membership, user)),
        _ => Err(MemberChangeError::NotFound),
    }
}

/// The actor's role as of now, inside the locked transaction: the role checked when the
/// request was authenticated may have changed since (another owner demoting this one).
async fn current_role_of(
    txn: &DatabaseTransaction,
    tenant: &TenantScope,
    actor: Actor,
) -> Result<Role, MemberChangeError> {
    let Actor::User(actor_id) = actor else {
        return Err(MemberChangeError::NotAllowed);
    };
    let membership = memberships::Entity::find_by_id((tenant.id().as_uuid(), actor_id.as_uuid()))
        .one(txn)
        .await?
        .ok_or(MemberChangeError::NotAllowed)?;
    let role = Role::parse("role", &membership.role).map_err(|_| MemberChangeError::NotAllowed)?;
    if role.can_manage() {
        Ok(role)
    } else {
        Err(MemberChangeError::NotAllowed)
    }
}

async fn owner_count(txn: &DatabaseTransaction, tenant: &TenantScope) -> Result<u64, DbErr> {
    memberships::Entity::find()
        .filter(memberships::Column::TenantId.eq(tenant.id().as_uuid()))
        .filter(memberships::Column::Role.eq(Role::Owner.as_str()))
        .count(txn)
        .await
}

fn to_member(membership: memberships::Model, user: users::Model) -> Option<Member> {
    Some(Member {
        user_id: UserId::from_uuid(user.id),
        email: user.email,
        role: Role::parse("role", &membership.role).ok()?,
        created_at: membership.created_at.into(),
    })
}
