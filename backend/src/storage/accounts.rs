//! Tenants and the people who log in to them.

use super::entities::{memberships, tenants, users};
use super::is_unique_violation;
use crate::domain::{Email, OrganizationName, Role, TenantId, UserId};
use crate::storage::scoped;
use sea_orm::sea_query::ExprTrait;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};

/// Why an account could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateAccountError {
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Creates a tenant and its first owner in one transaction.
pub async fn create_tenant_with_owner(
    db: &DatabaseConnection,
    organization: &OrganizationName,
    email: &Email,
    password_hash: String,
) -> Result<(TenantId, UserId), CreateAccountError> {
    let tenant_id = TenantId::generate();
    let user_id = UserId::generate();
    let now = chrono::Utc::now();
    let txn = db.begin().await?;
    tenants::ActiveModel {
        id: Set(tenant_id.as_uuid()),
        name: Set(organization.as_str().to_owned()),
        created_at: Set(now),
    }
    .insert(&txn)
    .await?;
    insert_user(&txn, user_id, email, password_hash).await?;
    memberships::ActiveModel {
        tenant_id: Set(tenant_id.as_uuid()),
        user_id: Set(user_id.as_uuid()),
        role: Set(Role::Owner.as_str().to_owned()),
        created_at: Set(now),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok((tenant_id, user_id))
}

/// Inserts a user row, mapping a taken email to [`CreateAccountError::EmailTaken`].
pub(super) async fn insert_user(
    db: &impl sea_orm::ConnectionTrait,
    user_id: UserId,
    email: &Email,
    password_hash: String,
) -> Result<(), CreateAccountError> {
    let inserted = users::ActiveModel {
        id: Set(user_id.as_uuid()),
        email: Set(email.as_str().to_owned()),
        password_hash: Set(password_hash),
        session_version: Set(0),
        created_at: Set(chrono::Utc::now()),
    }
    .insert(db)
    .await;
    match inserted {
        Ok(_) => Ok(()),
        Err(err) if is_unique_violation(&err) => Err(CreateAccountError::EmailTaken),
        Err(err) => Err(err.into()),
    }
}

/// What a login needs to check a password and issue a token.
#[derive(Debug, Clone)]
pub struct LoginRecord {
    pub user_id: UserId,
    pub tenant_id: TenantId,
    pub password_hash: String,
    pub session_version: i32,
}

/// Finds the user with this email and the tenant they log in to (their oldest membership).
pub async fn find_login(
    db: &DatabaseConnection,
    email: &Email,
) -> Result<Option<LoginRecord>, DbErr> {
    let Some(user) = users::Entity::find()
        .filter(users::Column::Email.eq(email.as_str()))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let membership = memberships::Entity::find()
        .filter(memberships::Column::UserId.eq(user.id))
        .order_by_asc(memberships::Column::CreatedAt)
        .limit(1)
        .one(db)
        .await?;
    Ok(membership.map(|m| LoginRecord {
        user_id: UserId::from_uuid(user.id),
        tenant_id: TenantId::from_uuid(m.tenant_id),
        password_hash: user.password_hash,
        session_version: user.session_version,
    }))
}

/// The current role and session version of a user in a tenant, if they are still a member.
/// Read on every request with a session token, so that a removed member or a changed role
/// takes effect at once.
pub async fn session_member(
    db: &DatabaseConnection,
    tenant_id: TenantId,
    user_id: UserId,
) -> Result<Option<(Role, i32)>, DbErr> {
    let found = memberships::Entity::find()
        .filter(memberships::Column::TenantId.eq(tenant_id.as_uuid()))
        .filter(memberships::Column::UserId.eq(user_id.as_uuid()))
        .find_also_related(users::Entity)
        .one(db)
        .await?;
    Ok(found.and_then(|(membership, user)| {
        let role = Role::parse("role", &membership.role).ok()?;
        Some((role, user?.session_version))
    }))
}

/// The organisation's name and the member's email, for the dashboard's header.
pub async fn member_profile(
    db: &DatabaseConnection,
    tenant: &super::TenantScope,
    user_id: UserId,
) -> Result<Option<(String, String)>, DbErr> {
    scoped::run(db, tenant, async |txn| {
        let Some(tenant_row) = tenants::Entity::find_by_id(tenant.id().as_uuid())
            .one(txn)
            .await?
        else {
            return Ok(None);
        };
        let user = users::Entity::find_by_id(user_id.as_uuid())
            .one(txn)
            .await?;
        Ok(user.map(|user| (tenant_row.name, user.email)))
    })
    .await
}

/// Ends every session of a user (logout): tokens carry the session version they were
/// issued with, and a token whose version is no longer the user's is refused.
pub async fn end_sessions(db: &DatabaseConnection, user_id: UserId) -> Result<(), DbErr> {
    users::Entity::update_many()
        .col_expr(
            users::Column::SessionVersion,
            sea_orm::sea_query::Expr::col(users::Column::SessionVersion).add(1),
        )
        .filter(users::Column::Id.eq(user_id.as_uuid()))
        .exec(db)
        .await?;
    Ok(())
}
