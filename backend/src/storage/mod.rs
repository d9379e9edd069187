//! Storage: the database connection, migrations, and tenant-scoped queries.
//!
//! Every function that reads or writes a tenant's rows takes the caller's [`TenantScope`]
//! first, so a query without a tenant filter cannot be written by accident.

pub mod accounts;
pub mod api_keys;
pub mod attributions;
pub mod audit;
pub mod availability;
pub mod entities;
pub mod erasure;
pub mod events;
pub mod goals;
pub mod health;
pub mod invalid_events;
pub mod members;
pub mod overview;
pub mod policies;
pub mod quality;
pub mod reevaluations;
pub mod reports;
pub mod retention;
pub mod scoped;
pub mod session_versions;
pub mod sessions;
mod sql;

use crate::config::Settings;
use migrations::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, SqlErr,
    Statement, TransactionTrait,
};
use std::time::Duration;

pub use crate::auth::TenantScope;

/// Opens the configured database: PostgreSQL when `DATABASE_URL` is set, else the SQLite file
/// `sightline.db` in the data directory (created if missing).
pub async fn connect(settings: &Settings) -> Result<DatabaseConnection, DbErr> {
    let url = match &settings.database_url {
        Some(url) => url.expose().to_owned(),
        None => {
            std::fs::create_dir_all(&settings.data_dir).map_err(|e| {
                DbErr::Custom(format!(
                    "cannot create data directory {}: {e}",
                    settings.data_dir.display()
                ))
            })?;
            format!(
                "sqlite://{}?mode=rwc",
                settings.data_dir.join("sightline.db").display()
            )
        }
    };
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(settings.database_max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(settings.database_acquire_timeout)
        .sqlx_logging(false);
    if settings.is_embedded_database() {
        // SQLite allows one writer at a time; a single connection avoids "database is
        // locked" errors under concurrent requests.
        options.max_connections(1);
    }
    Database::connect(options).await
}

/// Where the database's schema stands against this release's migrations, once `migrate` is
/// done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schema {
    /// This release's migrations are all applied, and no others.
    Current,
    /// This release's migrations are all applied, and so are these, which this release does
    /// not know: a later release migrated the database. Nothing was applied. A migration must
    /// work with the release before it (infra/operations.md, "Upgrades"), so an older node
    /// that restarts during a rollout still starts.
    Newer(Vec<String>),
}

/// Applies every pending migration, unless the database is ahead of this release.
///
/// On PostgreSQL, processes starting together take turns: the migrations run in one
/// transaction that first takes an advisory lock, so the first process applies them and the
/// others then find nothing left to do (sea-orm's migrator takes no lock of its own, and two
/// at once fail on duplicate catalogue entries).
pub async fn migrate(db: &DatabaseConnection) -> Result<Schema, DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        let schema = compare_with_this_release(db).await?;
        if schema == Schema::Current {
            Migrator::up(db, None).await?;
        }
        return Ok(schema);
    }
    let turn = db.begin().await?;
    turn.execute_raw(Statement::from_string(
        DbBackend::Postgres,
        format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"),
    ))
    .await?;
    let schema = compare_with_this_release(&turn).await?;
    if schema == Schema::Current {
        Migrator::up(&turn, None).await?;
    }
    turn.commit().await?;
    Ok(schema)
}

/// Compares the applied migrations with this release's. Pending ones of this release count as
/// `Current` (they are about to be applied). A database that has migrations this release does
/// not know and lacks some of its own was not migrated by a later release of this one, and is
/// refused.
async fn compare_with_this_release(db: &impl ConnectionTrait) -> Result<Schema, DbErr> {
    let known: Vec<String> = Migrator::migrations()
        .iter()
        .map(|migration| migration.name().to_owned())
        .collect();
    let applied: Vec<String> = Migrator::get_migration_models(db)
        .await?
        .into_iter()
        .map(|model| model.version)
        .collect();
    let unknown: Vec<String> = applied
        .iter()
        .filter(|version| !known.contains(version))
        .cloned()
        .collect();
    if unknown.is_empty() {
        return Ok(Schema::Current);
    }
    let missing: Vec<&str> = known
        .iter()
        .filter(|version| !applied.contains(version))
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        Ok(Schema::Newer(unknown))
    } else {
        Err(DbErr::Custom(format!(
            "the database has migrations this release does not know ({}) but lacks some of its \
             own ({}): it was not migrated by a later release of this one",
            unknown.join(", "),
            missing.join(", ")
        )))
    }
}

/// The advisory lock key the migrations run under ("SIGHTMIG" in ASCII).
const MIGRATION_LOCK: i64 = 0x5349_4748_544d_4947;

/// Whether `err` is a unique-constraint violation (a taken email, a duplicate key).
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}
