//! The request-serving role's transactions: every tenant-scoped storage function runs its
//! statements in one, so PostgreSQL's row-level security (migration 000007) holds even where
//! a query's own `tenant_id` filter were missing.
//!
//! The role and the tenant are both set transaction-locally (`set_config(.., true)`, the same
//! as `SET LOCAL`), so they end with the transaction and are never left on a pooled
//! connection for the next request. On SQLite (the embedded default) there is no row-level
//! security: the transaction is a plain one.

use super::TenantScope;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, Statement,
    TransactionTrait,
};

/// The role requests run as; its policy shows only the named tenant's rows.
pub const REQUEST_ROLE: &str = "sightline_app";

/// Begins a transaction as [`REQUEST_ROLE`] for `tenant`.
pub async fn begin(
    db: &DatabaseConnection,
    tenant: &TenantScope,
) -> Result<DatabaseTransaction, DbErr> {
    let txn = db.begin().await?;
    if db.get_database_backend() == DbBackend::Postgres {
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT set_config('role', $1, true), set_config('sightline.tenant_id', $2, true)",
            [REQUEST_ROLE.into(), tenant.id().to_string().into()],
        ))
        .await?;
    }
    Ok(txn)
}

/// Runs `work` in a [`begin`] transaction and commits it: the shape of a tenant-scoped read.
pub async fn run<T>(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    work: impl AsyncFnOnce(&DatabaseTransaction) -> Result<T, DbErr>,
) -> Result<T, DbErr> {
    let txn = begin(db, tenant).await?;
    let value = work(&txn).await?;
    txn.commit().await?;
    Ok(value)
}
