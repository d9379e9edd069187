//! The per-tenant ingest rate limit: events per second, counted in fixed one-second windows,
//! in Redis when configured (shared by every process) and in the hot store's in-process
//! stand-in otherwise. If Redis fails, this process counts on its own until Redis is back:
//! an outage of the cache must not stop ingestion, and a runaway client is still held to the
//! limit on each node (so to at most the limit times the node count overall).

use crate::cache::HotStore;
use crate::domain::TenantId;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RateLimiter {
    store: HotStore,
    /// The counters of this process alone, used while `store` fails.
    fallback: HotStore,
    events_per_second: u64,
}

/// Each counter lives a little longer than its second, so that a late increment still finds it.
const WINDOW: Duration = Duration::from_secs(2);

impl RateLimiter {
    pub fn new(store: HotStore, events_per_second: u64) -> Self {
        Self {
            fallback: HotStore::in_process(store.prefix()),
            store,
            events_per_second,
        }
    }

    /// Counts `events` for the tenant; `Err(seconds)` when over the limit, with how long to
    /// wait.
    pub async fn admit(&self, tenant: TenantId, events: u64) -> Result<(), u64> {
        let second = chrono::Utc::now().timestamp();
        let key = self.store.ingest_rate_key(tenant, second);
        let counted = match self.store.increment(&key, events, WINDOW).await {
            Ok(counted) => Ok(counted),
            Err(err) => {
                // The store logs the outage once; this is per batch.
                tracing::debug!(error = %err, "counting the ingest rate in process");
                self.fallback.increment(&key, events, WINDOW).await
            }
        };
        match counted {
            Ok((count, _)) if count > self.events_per_second => Err(1),
            Ok(_) => Ok(()),
            // The in-process store does not fail; were it to, ingestion goes on.
            Err(_) => Ok(()),
        }
    }
}
