//! The retention purge: a background task on the actix system that, every
//! `retention_purge_interval`, deletes each tenant's expired detections, conversions,
//! attributions and invalid events (API.md: "within an hour of expiring"), records the run
//! per class, and logs the counts.
//!
//! - **Bounded**: rows go `retention_purge_batch_rows` at a time, oldest first, one statement
//!   (so one short transaction) per batch, until a batch comes back short; a year of backlog
//!   never holds a long lock or a long transaction.
//! - **Idempotent**: a run deletes what is older than the period at that moment; the next run
//!   finds nothing more unless more has expired since.
//! - **Once across processes**: a tenant is purged under its advisory lock (see
//!   [`lock`](crate::storage::retention::lock)); a process that finds it taken skips the
//!   tenant until its next run.
//!
//! Matching: a session in memory may still hold events this purge deletes (it keeps events
//! for the horizon, the longest goal window plus `max_event_age_days`, which can be longer
//! than a period). Matching therefore forgets, on every use of a session, the detections
//! older than the detection period and the conversions older than the conversion or the
//! attribution period (see `round::apply`), whether the purge has run yet or not: a resident
//! session and one rebuilt from storage see the same events, and an expired detection never
//! earns a new attribution.

use crate::domain::TenantId;
use crate::domain::retention::DataClass;
use crate::storage::retention::{self, lock};
use crate::storage::{TenantScope, policies, session_versions};
use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DbErr};
use std::sync::Weak;
use std::time::Duration;

/// How the purge is paced.
#[derive(Debug, Clone, Copy)]
pub struct PurgeConfig {
    /// Time between two runs (the first run comes one interval after start).
    pub interval: Duration,
    /// Most rows one delete statement removes.
    pub batch_rows: u64,
}

/// What one run did for one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantPurge {
    /// Rows deleted per class, in [`DataClass::ALL`] order.
    Purged([(DataClass, u64); 4]),
    /// Another process held the tenant's purge lock.
    Skipped,
}

/// Starts the purge in the background. It stops once `alive` can no longer be upgraded
/// (the server it belongs to has stopped).
pub fn start<T: Send + Sync + 'static>(
    db: DatabaseConnection,
    config: PurgeConfig,
    alive: Weak<T>,
) {
    actix::spawn(async move {
        let mut interval = tokio::time::interval_at(
            tokio::time::Instant::now() + config.interval,
            config.interval,
        );
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let Some(_running) = alive.upgrade() else {
                return;
            };
            if let Err(err) = run_once(&db, config.batch_rows).await {
                tracing::warn!(error = %err, "cannot list the tenants to purge; retrying at the next run");
            }
        }
    });
}

/// Purges every tenant once. A tenant whose purge fails is logged and left for the next
/// run; the others go on.
pub async fn run_once(
    db: &DatabaseConnection,
    batch_rows: u64,
) -> Result<Vec<(TenantId, TenantPurge)>, DbErr> {
    forget_unused_session_versions(db, batch_rows).await;
    let mut outcomes = Vec::new();
    for tenant in retention::tenant_ids(db).await? {
        match purge_tenant(db, tenant, batch_rows, Utc::now()).await {
            Ok(outcome) => outcomes.push((tenant, outcome)),
            Err(err) => {
                tracing::warn!(tenant = %tenant, error = %err, "retention purge failed; retrying at the next run");
            }
        }
    }
    Ok(outcomes)
}

/// How long a session's version row outlives its last use: as long as a hot copy can, since a
/// copy is only used at its row's version. A row deleted earlier would cost a read from the
/// database, never a wrong result.
const SESSION_VERSION_KEPT: chrono::Duration = chrono::Duration::hours(24);

/// Deletes the version rows of sessions unused for [`SESSION_VERSION_KEPT`], a batch at a
/// time (see `storage::session_versions`). Safe in every process at once: rows locked by
/// another are skipped.
async fn forget_unused_session_versions(db: &DatabaseConnection, batch_rows: u64) {
    let before = Utc::now() - SESSION_VERSION_KEPT;
    loop {
        match session_versions::forget_unused(db, before, batch_rows).await {
            Ok(deleted) if deleted >= batch_rows => continue,
            Ok(_) => return,
            Err(err) => {
                tracing::warn!(error = %err, "cannot delete unused session versions; retrying at the next run");
                return;
            }
        }
    }
}

/// Deletes the tenant's rows that have expired at `now`, under its purge lock, and records
/// the run per class.
pub async fn purge_tenant(
    db: &DatabaseConnection,
    tenant: TenantId,
    batch_rows: u64,
    now: DateTime<Utc>,
) -> Result<TenantPurge, DbErr> {
    let Some(held) = lock::try_lock(db, tenant).await? else {
        tracing::debug!(tenant = %tenant, "retention purge skipped: another process is purging this tenant");
        return Ok(TenantPurge::Skipped);
    };
    let scope = TenantScope::authenticated(tenant);
    let outcome = purge_classes(db, &scope, batch_rows, now).await;
    // Released whatever the outcome; a failed release closes the lock's connection instead.
    let released = held.release().await;
    let deleted = outcome?;
    released?;
    if deleted.iter().any(|(_, n)| *n > 0) {
        let [detections, conversions, attributions, invalid_events] = deleted.map(|(_, n)| n);
        tracing::info!(
            tenant = %tenant,
            detections,
            conversions,
            attributions,
            invalid_events,
            "retention purge deleted expired rows"
        );
    }
    Ok(TenantPurge::Purged(deleted))
}

async fn purge_classes(
    db: &DatabaseConnection,
    scope: &TenantScope,
    batch_rows: u64,
    now: DateTime<Utc>,
) -> Result<[(DataClass, u64); 4], DbErr> {
    // Read under the lock, so a period shortened a moment ago applies to this run.
    let policy = policies::get(db, scope.id()).await?.retention;
    let batch_rows = batch_rows.max(1);
    let mut deleted = DataClass::ALL.map(|class| (class, 0));
    for (class, count) in &mut deleted {
        let before = class.expired_before(&policy, now);
        loop {
            let batch = retention::delete_expired(db, scope, *class, before, batch_rows).await?;
            *count += batch;
            if batch < batch_rows {
                break;
            }
        }
        retention::record_run(db, scope, *class, now, *count).await?;
    }
    Ok(deleted)
}
