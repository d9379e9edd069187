//! The API-key cache in the hot store, in front of the `api_keys` table.
//!
//! Revocation must work at once, even against a request that is filling the cache at the
//! same moment. So a revocation first writes a tombstone (overwriting any entry), then marks
//! the row revoked; a fill only ever uses set-if-absent, so it can never replace a tombstone.
//! Whichever order the two race in, the key is refused from the tombstone on.

use crate::cache::HotStore;
use crate::domain::{ApiKeyId, Scopes, TenantId};
use crate::storage::api_keys::{self, KeyOwner};
use sea_orm::{DatabaseConnection, DbErr};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// How long an entry (live or tombstone) stays cached. Correctness does not depend on it.
const CACHE_TTL: Duration = Duration::from_secs(600);
const TOMBSTONE: &str = "revoked";

#[derive(Serialize, Deserialize)]
struct CachedOwner {
    tenant_id: TenantId,
    key_id: ApiKeyId,
    scopes: String,
}

/// Finds the live key with this hash, through the cache. A cache outage falls back to the
/// database, which holds the truth.
pub async fn lookup(
    store: &HotStore,
    db: &DatabaseConnection,
    key_hash: &str,
) -> Result<Option<KeyOwner>, DbErr> {
    let cache_key = store.api_key_key(key_hash);
    match store.get(&cache_key).await {
        Ok(Some(cached)) if cached == TOMBSTONE => return Ok(None),
        Ok(Some(cached)) => {
            if let Ok(owner) = serde_json::from_str::<CachedOwner>(&cached) {
                return Ok(Some(KeyOwner {
                    tenant_id: owner.tenant_id,
                    key_id: owner.key_id,
                    scopes: Scopes::from_stored(&owner.scopes),
                }));
            }
        }
        Ok(None) => {}
        // The store logs the outage once; this is per request.
        Err(err) => {
            tracing::debug!(error = %err, "API-key cache unavailable; reading the database")
        }
    }
    let owner = api_keys::find_live_by_hash(db, key_hash).await?;
    if let Some(owner) = &owner {
        let cached = CachedOwner {
            tenant_id: owner.tenant_id,
            key_id: owner.key_id,
            scopes: owner.scopes.to_stored(),
        };
        if let Ok(json) = serde_json::to_string(&cached) {
            // Never overwrite: the entry present may be a tombstone written meanwhile.
            let _ = store.set_if_absent(&cache_key, &json, CACHE_TTL).await;
        }
    }
    Ok(owner)
}

/// Makes every cached copy of the key refuse it. Call before marking the row revoked; if this
/// fails the revocation must not go ahead, or a cached copy could outlive it.
pub async fn tombstone(store: &HotStore, key_hash: &str) -> Result<(), crate::cache::CacheError> {
    store
        .set(&store.api_key_key(key_hash), TOMBSTONE, CACHE_TTL)
        .await
}

/// How often a key's last-used time is written.
const TOUCH_INTERVAL: Duration = Duration::from_secs(60);

/// When this process last considered writing each key's last-used time. Checked first so
/// that most requests cost neither a task nor a Redis command; the Redis marker then keeps
/// several processes from all writing the same minute.
static RECENTLY_TOUCHED: LazyLock<Mutex<HashMap<ApiKeyId, Instant>>> =
    LazyLock::new(Mutex::default);

/// Writes the key's last-used time at most about once a minute, off the request path.
pub fn touch_in_background(store: &HotStore, db: &DatabaseConnection, owner: &KeyOwner) {
    let now = Instant::now();
    {
        let mut touched = RECENTLY_TOUCHED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if touched
            .get(&owner.key_id)
            .is_some_and(|last| now.duration_since(*last) < TOUCH_INTERVAL)
        {
            return;
        }
        if touched.len() > 10_000 {
            touched.retain(|_, last| now.duration_since(*last) < TOUCH_INTERVAL);
        }
        touched.insert(owner.key_id, now);
    }
    let store = store.clone();
    let db = db.clone();
    let (tenant, key) = (owner.tenant_id, owner.key_id);
    tokio::spawn(async move {
        let marker = store.api_key_touched_key(tenant, key);
        // Without Redis, the once-a-minute check of this process above is the only limit.
        let due = store.set_if_absent(&marker, "1", TOUCH_INTERVAL).await;
        if matches!(due, Ok(true) | Err(_))
            && let Err(err) = api_keys::touch_last_used(&db, tenant, key).await
        {
            tracing::warn!(error = %err, "could not record an API key's last use");
        }
    });
}
