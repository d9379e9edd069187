//! The per-tenant ingest rate limit: events per second, as a bucket that one second of the
//! limit fills and that empties at the limit's pace (the generic cell rate algorithm). A
//! tenant may so send a second's worth of events at once after a pause, and after that at
//! most the limit, evenly: a flood is admitted as a steady stream, not in a burst at the
//! start of each second, which other tenants would feel. The bucket is in Redis when
//! configured (shared by every process) and in the hot store's in-process stand-in otherwise.
//! If Redis fails, this process counts on its own until Redis is back: an outage of the cache
//! must not stop ingestion, and a runaway client is still held to the limit on each node (so
//! to at most the limit times the node count overall).
//!
//! Two things keep a flood past the limit from taking the CPU that other tenants need (used
//! by `routes/events.rs`):
//! - once the bucket is full, this process refuses the tenant's requests before reading their
//!   bodies, until even a one-event request would fit;
//! - a tenant refused again within a second of its last refusal did not wait the
//!   `Retry-After` it was given, and gets its answer only after about that second: a client
//!   that ignores `Retry-After` then makes about as many requests a second as it keeps in
//!   flight. The hold is drawn between half a second and one and a half, so that requests
//!   refused together do not all come back at the same moment, to be admitted together as a
//!   burst.

use crate::cache::{HotStore, Spend};
use crate::domain::TenantId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How much the bucket holds: one second of the limit.
const ALLOWANCE: Duration = Duration::from_secs(1);
/// What a refusal tells the client to wait, and how long a refusal of a client that did
/// not wait is held.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct RateLimiter {
    store: HotStore,
    /// The buckets of this process alone, used while `store` fails.
    fallback: HotStore,
    events_per_second: u64,
    refusals: Arc<Mutex<HashMap<TenantId, Refusals>>>,
}

/// What this process knows of a tenant it refused recently.
#[derive(Debug, Clone, Copy, Default)]
struct Refusals {
    /// When it last answered one of the tenant's requests 429.
    answered: Option<Instant>,
    /// Until then not even one event fits in the tenant's bucket.
    full_until: Option<Instant>,
}

impl Refusals {
    /// Whether this still means anything at `now`; the others are dropped, so the map holds
    /// only the tenants refused within about a second.
    fn is_current(&self, now: Instant) -> bool {
        self.answered
            .is_some_and(|at| now.duration_since(at) < RETRY_AFTER)
            || self.full_until.is_some_and(|until| now < until)
    }
}

impl RateLimiter {
    pub fn new(store: HotStore, events_per_second: u64) -> Self {
        Self {
            fallback: HotStore::in_process(store.prefix()),
            store,
            events_per_second: events_per_second.max(1),
            refusals: Arc::default(),
        }
    }

    /// The bookkeeping under this lock is never left half-done by a panic, so a poisoned
    /// lock is still sound to use.
    fn lock(&self) -> MutexGuard<'_, HashMap<TenantId, Refusals>> {
        self.refusals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `change` on the tenant's entry, dropping the entries that no longer mean
    /// anything.
    fn with_refusals<T>(&self, tenant: TenantId, change: impl FnOnce(&mut Refusals) -> T) -> T {
        let now = Instant::now();
        let mut refusals = self.lock();
        refusals.retain(|_, refusals| refusals.is_current(now));
        change(refusals.entry(tenant).or_default())
    }

    /// Whether the tenant's bucket is known to be full, so that this request is refused
    /// before its body is read.
    pub fn is_full(&self, tenant: TenantId) -> bool {
        let now = Instant::now();
        self.lock()
            .get(&tenant)
            .and_then(|refusals| refusals.full_until)
            .is_some_and(|until| now < until)
    }

    /// How long to hold the 429 that is about to answer one of the tenant's requests: the
    /// first is answered at once, one within [`RETRY_AFTER`] of the tenant's last is held
    /// from half to one and a half times that.
    pub fn hold_refusal(&self, tenant: TenantId) -> Duration {
        let now = Instant::now();
        let previous = self.with_refusals(tenant, |refusals| refusals.answered.replace(now));
        match previous {
            Some(at) if now.duration_since(at) < RETRY_AFTER => spread(RETRY_AFTER),
            _ => Duration::ZERO,
        }
    }

    /// Spends `events` from the tenant's bucket; `Err(seconds)` to wait when they do not
    /// fit (nothing is spent then).
    pub async fn admit(&self, tenant: TenantId, events: u64) -> Result<(), u64> {
        let key = self.store.ingest_rate_key(tenant);
        let cost = self.cost(events);
        let spent = match self.store.spend(&key, cost, ALLOWANCE).await {
            Ok(spent) => Ok(spent),
            Err(err) => {
                // The store logs the outage once; this is per batch.
                tracing::debug!(error = %err, "counting the ingest rate in process");
                self.fallback.spend(&key, cost, ALLOWANCE).await
            }
        };
        match spent {
            Ok(Spend::Admitted) => Ok(()),
            Ok(Spend::Refused { owed }) => {
                // Not even one event fits until what is owed is down to the allowance less
                // one event's cost.
                let full_for = (owed + self.cost(1)).saturating_sub(ALLOWANCE);
                let full_until = Instant::now() + full_for;
                self.with_refusals(tenant, |refusals| refusals.full_until = Some(full_until));
                Err(RETRY_AFTER.as_secs())
            }
            // The in-process store does not fail; were it to, ingestion goes on.
            Err(_) => Ok(()),
        }
    }

    /// What `events` cost at the limit's pace.
    fn cost(&self, events: u64) -> Duration {
        let micros = u128::from(events) * 1_000_000 / u128::from(self.events_per_second);
        Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }
}

/// A duration drawn evenly between half and one and a half times `mean`.
fn spread(mean: Duration) -> Duration {
    let fraction = getrandom::u32().map_or(0.5, |draw| f64::from(draw) / f64::from(u32::MAX));
    mean / 2 + mean.mul_f64(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(n: u128) -> TenantId {
        TenantId::from_uuid(uuid::Uuid::from_u128(n))
    }

    #[actix_web::test]
    async fn a_full_bucket_refuses_until_an_event_fits_again_for_that_tenant_only() {
        // Four events a second: one event costs 250 ms.
        let limiter = RateLimiter::new(HotStore::in_process("rate-limit-test"), 4);
        assert_eq!(limiter.admit(tenant(1), 4).await, Ok(()));
        assert!(!limiter.is_full(tenant(1)), "nothing was refused yet");
        assert_eq!(limiter.admit(tenant(1), 1).await, Err(1));
        assert!(limiter.is_full(tenant(1)));
        assert!(!limiter.is_full(tenant(2)));
        assert_eq!(limiter.admit(tenant(2), 4).await, Ok(()));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!limiter.is_full(tenant(1)));
        assert_eq!(limiter.admit(tenant(1), 1).await, Ok(()));
    }

    #[actix_web::test]
    async fn a_batch_too_large_to_fit_leaves_the_bucket_open_to_smaller_ones() {
        let limiter = RateLimiter::new(HotStore::in_process("rate-limit-test"), 4);
        assert_eq!(limiter.admit(tenant(1), 5).await, Err(1));
        assert!(!limiter.is_full(tenant(1)));
        assert_eq!(limiter.admit(tenant(1), 4).await, Ok(()));
    }

    #[test]
    fn a_refusal_soon_after_the_last_is_held_for_the_retry_wait() {
        let limiter = RateLimiter::new(HotStore::in_process("rate-limit-test"), 4);
        assert_eq!(limiter.hold_refusal(tenant(1)), Duration::ZERO);
        let holds: Vec<Duration> = (0..50).map(|_| limiter.hold_refusal(tenant(1))).collect();
        assert!(
            holds
                .iter()
                .all(|hold| *hold >= RETRY_AFTER / 2 && *hold <= RETRY_AFTER * 3 / 2),
            "{holds:?}"
        );
        // Spread, so that refusals made together are not answered together.
        assert!(holds.iter().any(|hold| *hold != holds[0]), "{holds:?}");
        assert_eq!(limiter.hold_refusal(tenant(2)), Duration::ZERO);
    }
}
