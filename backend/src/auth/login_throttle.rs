//! Login throttling: after too many failed logins for one account or from one client address
//! within the lock-out window, logins answer 429 until the window ends.
//!
//! Counters live in the hot store. If it is unreachable, logins are allowed (fail open) and
//! a debug line is logged (the store logs the outage itself once): an outage of the cache
//! must not lock every user out.

use crate::cache::HotStore;
use crate::config::Settings;
use crate::error::ApiError;

/// The two counters one login attempt is charged to.
#[derive(Debug)]
pub struct Attempt<'a> {
    pub email: &'a str,
    pub address: &'a str,
}

/// Refuses the attempt with 429 when either counter is at its limit.
pub async fn check(
    store: &HotStore,
    settings: &Settings,
    attempt: &Attempt<'_>,
) -> Result<(), ApiError> {
    let limits = [
        (
            store.login_account_key(attempt.email),
            settings.login_max_failures_per_account,
        ),
        (
            store.login_address_key(attempt.address),
            settings.login_max_failures_per_address,
        ),
    ];
    for (key, limit) in limits {
        match store.counter(&key).await {
            Ok((failures, seconds_left)) if failures >= limit => {
                return Err(ApiError::TooManyRequests {
                    retry_after_secs: seconds_left.max(1),
                });
            }
            Ok(_) => {}
            Err(err) => {
                tracing::debug!(error = %err, "login throttle unavailable; allowing the attempt")
            }
        }
    }
    Ok(())
}

/// Counts a failed attempt against both the account and the address.
pub async fn record_failure(store: &HotStore, settings: &Settings, attempt: &Attempt<'_>) {
    for key in [
        store.login_account_key(attempt.email),
        store.login_address_key(attempt.address),
    ] {
        if let Err(err) = store.increment(&key, 1, settings.login_lockout).await {
            tracing::debug!(error = %err, "could not count a failed login");
        }
    }
}

/// A successful login clears the account's counter (not the address's: one good password
/// must not reset an address that is guessing at many accounts).
pub async fn record_success(store: &HotStore, attempt: &Attempt<'_>) {
    if let Err(err) = store.delete(&store.login_account_key(attempt.email)).await {
        tracing::debug!(error = %err, "could not reset the login failure counter");
    }
}
