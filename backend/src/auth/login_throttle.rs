//! Login throttling: after too many failed logins for one account or from one client address
//! within the lock-out window, logins answer 429 until the window ends.
//!
//! Counters live in the hot store, shared by every process. If it is unreachable, this process
//! counts on its own until it is back (a debug line per attempt; the store logs the outage
//! itself once): an outage of the cache must neither lock every user out nor open the door to
//! unlimited guessing, so a guesser is still held to the limits on each node (to at most the
//! limits times the node count overall). Failures counted during the outage are not carried
//! over to the shared counters when the store returns.

use crate::cache::{CacheKey, HotStore};
use crate::config::Settings;
use crate::error::ApiError;
use std::time::Duration;

/// The two counters one login attempt is charged to.
#[derive(Debug)]
pub struct Attempt<'a> {
    pub email: &'a str,
    pub address: &'a str,
}

/// The failed-login counters, per account and per client address.
#[derive(Debug, Clone)]
pub struct LoginThrottle {
    store: HotStore,
    /// The counters of this process alone, used while `store` fails.
    fallback: HotStore,
    max_failures_per_account: u64,
    max_failures_per_address: u64,
    lockout: Duration,
}

impl LoginThrottle {
    pub fn new(store: HotStore, settings: &Settings) -> Self {
        Self {
            fallback: HotStore::in_process(store.prefix()),
            store,
            max_failures_per_account: settings.login_max_failures_per_account,
            max_failures_per_address: settings.login_max_failures_per_address,
            lockout: settings.login_lockout,
        }
    }

    /// Refuses the attempt with 429 when either counter is at its limit.
    pub async fn check(&self, attempt: &Attempt<'_>) -> Result<(), ApiError> {
        let limits = [
            (
                self.store.login_account_key(attempt.email),
                self.max_failures_per_account,
            ),
            (
                self.store.login_address_key(attempt.address),
                self.max_failures_per_address,
            ),
        ];
        for (key, limit) in limits {
            let (failures, seconds_left) = self.counter(&key).await;
            if failures >= limit {
                return Err(ApiError::TooManyRequests {
                    retry_after_secs: seconds_left.max(1),
                });
            }
        }
        Ok(())
    }

    /// Counts a failed attempt against both the account and the address.
    pub async fn record_failure(&self, attempt: &Attempt<'_>) {
        for key in [
            self.store.login_account_key(attempt.email),
            self.store.login_address_key(attempt.address),
        ] {
            if let Err(err) = self.store.increment(&key, 1, self.lockout).await {
                tracing::debug!(error = %err, "counting a failed login in process");
                // The in-process store does not fail.
                let _ = self.fallback.increment(&key, 1, self.lockout).await;
            }
        }
    }

    /// A successful login clears the account's counter (not the address's: one good password
    /// must not reset an address that is guessing at many accounts).
    pub async fn record_success(&self, attempt: &Attempt<'_>) {
        let key = self.store.login_account_key(attempt.email);
        if let Err(err) = self.store.delete(&key).await {
            tracing::debug!(error = %err, "resetting the login failure counter in process");
        }
        let _ = self.fallback.delete(&key).await;
    }

    /// The failures counted under `key` and the seconds left in their window: the shared
    /// count, or this process's own while the shared store fails.
    async fn counter(&self, key: &CacheKey) -> (u64, u64) {
        match self.store.counter(key).await {
            Ok(counted) => counted,
            Err(err) => {
                tracing::debug!(error = %err, "reading the login failure counter in process");
                self.fallback.counter(key).await.unwrap_or((0, 0))
            }
        }
    }
}
