//! One purge of a tenant at a time across every process on one PostgreSQL: a session-level
//! advisory lock per tenant, held on a pooled connection of its own for the whole purge.
//!
//! The lock only excludes other purgers; the batches run on other connections, each its own
//! short transaction, so no transaction lives as long as the purge. If the process dies, its
//! connection closes and PostgreSQL releases the lock. A lock whose release failed (or that
//! is dropped unreleased) takes its connection down with it rather than return a connection
//! that still holds the lock to the pool. SQLite (the embedded default) is one process: the
//! lock is always granted and holds nothing.

use crate::domain::TenantId;
use sea_orm::{DatabaseConnection, DbBackend, DbErr, RuntimeErr};
use sqlx::pool::PoolConnection;

/// The advisory-lock class of the retention purge ("purg"), so that other users of advisory
/// locks (per-session serialisation later) never collide with it.
pub const PURGE_LOCK_CLASS: i32 = 0x7075_7267;

/// The lock's key within [`PURGE_LOCK_CLASS`]: the tenant's id folded to 32 bits. Two tenants
/// with the same key cannot be purged at the same moment by two processes; one waits for the
/// next run, which costs minutes, never correctness.
pub fn purge_lock_key(tenant: TenantId) -> i32 {
    let id = tenant.as_uuid().as_u128();
    let folded = (id ^ (id >> 32) ^ (id >> 64) ^ (id >> 96)) as u32;
    i32::from_ne_bytes(folded.to_ne_bytes())
}

/// A held purge lock; release it with [`TenantLock::release`].
#[derive(Debug)]
pub struct TenantLock {
    connection: Option<PoolConnection<sqlx::Postgres>>,
    key: i32,
}

/// Takes the tenant's purge lock if no other process holds it; `None` when one does.
pub async fn try_lock(
    db: &DatabaseConnection,
    tenant: TenantId,
) -> Result<Option<TenantLock>, DbErr> {
    let key = purge_lock_key(tenant);
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(Some(TenantLock {
            connection: None,
            key,
        }));
    }
    let mut connection = db
        .get_postgres_connection_pool()
        .acquire()
        .await
        .map_err(db_err)?;
    let (granted,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1, $2)")
        .bind(PURGE_LOCK_CLASS)
        .bind(key)
        .fetch_one(&mut *connection)
        .await
        .map_err(db_err)?;
    Ok(granted.then_some(TenantLock {
        connection: Some(connection),
        key,
    }))
}

impl TenantLock {
    /// Releases the lock and returns its connection to the pool.
    pub async fn release(mut self) -> Result<(), DbErr> {
        let Some(mut connection) = self.connection.take() else {
            return Ok(());
        };
        let released = sqlx::query("SELECT pg_advisory_unlock($1, $2)")
            .bind(PURGE_LOCK_CLASS)
            .bind(self.key)
            .execute(&mut *connection)
            .await;
        match released {
            Ok(_) => Ok(()),
            Err(err) => {
                // Closing the connection releases the lock on the server side.
                drop(connection.detach());
                Err(db_err(err))
            }
        }
    }
}

impl Drop for TenantLock {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            // Unreleased (an error or a cancelled purge): never back into the pool with the
            // lock still held.
            drop(connection.detach());
        }
    }
}

fn db_err(err: sqlx::Error) -> DbErr {
    DbErr::Conn(RuntimeErr::SqlxError(err.into()))
}
