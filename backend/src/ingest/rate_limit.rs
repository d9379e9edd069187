//! The per-tenant ingest rate limit: events per second, counted in fixed one-second windows,
//! in Redis when configured (shared by every process) and in the hot store's in-process
//! stand-in otherwise. If Redis fails, events are let through (and a warning logged): an
//! outage of the cache must not stop ingestion.

use crate::cache::HotStore;
use crate::domain::TenantId;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RateLimiter {
    store: HotStore,
    events_per_second: u64,
}

impl RateLimiter {
    pub fn new(store: HotStore, events_per_second: u64) -> Self {
        Self {
            store,
            events_per_second,
        }
    }

    /// Counts `events` for the tenant; `Err(seconds)` when over the limit, with how long to
    /// wait.
    pub async fn admit(&self, tenant: TenantId, events: u64) -> Result<(), u64> {
        let second = chrono::Utc::now().timestamp();
        let key = self.store.ingest_rate_key(tenant, second);
        match self
            .store
            .increment(&key, events, Duration::from_secs(2))
            .await
        {
            Ok((count, _)) if count > self.events_per_second => Err(1),
            Ok(_) => Ok(()),
            Err(err) => {
                tracing::warn!(error = %err, "ingest rate limit unavailable; admitting the batch");
                Ok(())
            }
        }
    }
}
