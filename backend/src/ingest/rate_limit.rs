//! The per-tenant ingest rate limit: events per second, counted in fixed one-second windows,
//! in Redis when configured (shared by every process) and in the hot store's in-process
//! stand-in otherwise. If Redis fails, this process counts on its own until Redis is back:
//! an outage of the cache must not stop ingestion, and a runaway client is still held to the
//! limit on each node (so to at most the limit times the node count overall).
//!
//! A tenant refused in one second stays refused for the rest of it (its counter only grows),
//! so this process remembers the refusal and answers the tenant's further requests of that
//! second before reading their bodies: a flood past the limit then costs little more than its
//! authentication, and does not take the CPU that other tenants' requests need. Those
//! further requests are answered only when the second ends (see `routes/events.rs`).

use crate::cache::HotStore;
use crate::domain::TenantId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RateLimiter {
    store: HotStore,
    /// The counters of this process alone, used while `store` fails.
    fallback: HotStore,
    events_per_second: u64,
    /// The second (Unix time) in which each recently refused tenant was refused.
    refused: Arc<Mutex<HashMap<TenantId, i64>>>,
}

/// Each counter lives a little longer than its second, so that a late increment still finds it.
const WINDOW: Duration = Duration::from_secs(2);

impl RateLimiter {
    pub fn new(store: HotStore, events_per_second: u64) -> Self {
        Self {
            fallback: HotStore::in_process(store.prefix()),
            store,
            events_per_second,
            refused: Arc::default(),
        }
    }

    /// Whether the tenant was refused earlier in the current second, so that this request
    /// is refused too, before its body is read: `Some(what is left of the second)`.
    pub fn refused_this_second(&self, tenant: TenantId) -> Option<Duration> {
        let now = chrono::Utc::now();
        let refused = self
            .refused
            .lock()
            .map(|refused| refused.get(&tenant) == Some(&now.timestamp()))
            .unwrap_or(false);
        refused.then(|| {
            Duration::from_secs(1).saturating_sub(Duration::from_nanos(u64::from(
                now.timestamp_subsec_nanos(),
            )))
        })
    }

    fn remember_refusal(&self, tenant: TenantId, second: i64) {
        if let Ok(mut refused) = self.refused.lock() {
            // Only this second's refusals mean anything; the older ones go, so the map
            // holds at most the tenants refused within about a second.
            refused.retain(|_, at| *at >= second);
            refused.insert(tenant, second);
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
            Ok((count, _)) if count > self.events_per_second => {
                self.remember_refusal(tenant, second);
                Err(1)
            }
            Ok(_) => Ok(()),
            // The in-process store does not fail; were it to, ingestion goes on.
            Err(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(n: u128) -> TenantId {
        TenantId::from_uuid(uuid::Uuid::from_u128(n))
    }

    #[actix_web::test]
    async fn a_refusal_holds_for_the_rest_of_its_second_and_for_that_tenant_only() {
        let limiter = RateLimiter::new(HotStore::in_process("rate-limit-test"), 5);
        // Early in a second, so that the checks below fall in the second of the refusal.
        let into_second = chrono::Utc::now().timestamp_subsec_millis();
        if into_second > 500 {
            let rest = u64::from(1000 - into_second);
            tokio::time::sleep(Duration::from_millis(rest + 10)).await;
        }
        assert_eq!(limiter.refused_this_second(tenant(1)), None);
        assert_eq!(limiter.admit(tenant(1), 5).await, Ok(()));
        assert_eq!(limiter.refused_this_second(tenant(1)), None);
        assert_eq!(limiter.admit(tenant(1), 1).await, Err(1));
        let rest = limiter.refused_this_second(tenant(1));
        assert!(
            rest.is_some_and(|rest| rest > Duration::ZERO && rest <= Duration::from_secs(1)),
            "{rest:?}"
        );
        assert_eq!(limiter.refused_this_second(tenant(2)), None);
    }
}
