//! The hot store: what can be rebuilt, kept in Redis when configured and in process
//! otherwise: login failure counters, the API-key cache, rate-limit counters and the hot
//! copies of evicted matching sessions.
//!
//! This is the only place where Redis keys are built; every key starts with the configured
//! prefix, and tenant-owned entries carry the tenant id right after it.

mod local;

use crate::config::Settings;
use crate::domain::{ApiKeyId, TenantId};
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// A failure of the hot store. Callers decide whether to fall back or fail.
#[derive(Debug, thiserror::Error)]
#[error("hot store unavailable: {0}")]
pub struct CacheError(String);

impl From<redis::RedisError> for CacheError {
    fn from(err: redis::RedisError) -> Self {
        Self(err.to_string())
    }
}

/// A key in the hot store, built only by [`HotStore`]'s key functions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey(String);

#[derive(Clone)]
enum Backend {
    Redis(ConnectionManager),
    Local(local::LocalStore),
}

/// Redis, or its in-process stand-in.
#[derive(Clone)]
pub struct HotStore {
    backend: Backend,
    prefix: String,
}

impl std::fmt::Debug for HotStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.backend {
            Backend::Redis(_) => "redis",
            Backend::Local(_) => "in-process",
        };
        f.debug_struct("HotStore")
            .field("backend", &kind)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl HotStore {
    /// Connects to Redis when `REDIS_URL` is set; otherwise keeps everything in process.
    pub async fn connect(settings: &Settings) -> Result<Self, CacheError> {
        let backend = match &settings.redis_url {
            Some(url) => {
                let client = redis::Client::open(url.expose())?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(Some(Duration::from_millis(1500)))
                    .set_number_of_retries(2);
                Backend::Redis(ConnectionManager::new_with_config(client, config).await?)
            }
            None => Backend::Local(local::LocalStore::default()),
        };
        Ok(Self {
            backend,
            prefix: settings.redis_prefix.clone(),
        })
    }

    pub fn is_redis(&self) -> bool {
        matches!(self.backend, Backend::Redis(_))
    }

    /// Checks that the store answers.
    pub async fn ping(&self) -> Result<(), CacheError> {
        match &self.backend {
            Backend::Redis(conn) => {
                let mut conn = conn.clone();
                let _: String = redis::cmd("PING").query_async(&mut conn).await?;
                Ok(())
            }
            Backend::Local(_) => Ok(()),
        }
    }

    // ---- keys ------------------------------------------------------------------------

    /// Failed logins for one email (hashed: raw identifiers never reach the store).
    pub fn login_account_key(&self, email: &str) -> CacheKey {
        CacheKey(format!(
            "{}:login:account:{}",
            self.prefix,
            short_hash(email)
        ))
    }

    /// Failed logins from one client address.
    pub fn login_address_key(&self, address: &str) -> CacheKey {
        CacheKey(format!(
            "{}:login:address:{}",
            self.prefix,
            short_hash(address)
        ))
    }

    /// The cached owner of an API key, by the key's hash.
    pub fn api_key_key(&self, key_hash: &str) -> CacheKey {
        CacheKey(format!("{}:api_key:{key_hash}", self.prefix))
    }

    /// Events a tenant sent in one second (`epoch_second`), for the ingest rate limit.
    pub fn ingest_rate_key(&self, tenant: TenantId, epoch_second: i64) -> CacheKey {
        CacheKey(format!(
            "{}:t:{tenant}:ingest_rate:{epoch_second}",
            self.prefix
        ))
    }

    /// Marks that a key's last-used time was written recently.
    pub fn api_key_touched_key(&self, tenant: TenantId, key: ApiKeyId) -> CacheKey {
        CacheKey(format!("{}:t:{tenant}:api_key_touched:{key}", self.prefix))
    }

    /// The hot copy of an evicted matching session (the key value hashed, like every
    /// identifier here).
    pub fn session_copy_key(&self, tenant: TenantId, name: &str, value: &str) -> CacheKey {
        CacheKey(format!(
            "{}:t:{tenant}:session:{}",
            self.prefix,
            short_hash(&format!("{name}\0{value}"))
        ))
    }

    // ---- operations --------------------------------------------------------------------

    /// Reads and deletes each key (one pipelined round trip on Redis).
    pub async fn take_many(&self, keys: &[CacheKey]) -> Result<Vec<Option<String>>, CacheError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        match &self.backend {
            Backend::Redis(conn) => {
                let mut pipe = redis::pipe();
                for key in keys {
                    pipe.cmd("GETDEL").arg(&key.0);
                }
                Ok(pipe.query_async(&mut conn.clone()).await?)
            }
            Backend::Local(local) => Ok(keys
                .iter()
                .map(|key| {
                    let value = local.get(&key.0);
                    local.delete(&key.0);
                    value
                })
                .collect()),
        }
    }

    /// Deletes each key (one pipelined round trip on Redis).
    pub async fn delete_many(&self, keys: &[CacheKey]) -> Result<(), CacheError> {
        if keys.is_empty() {
            return Ok(());
        }
        match &self.backend {
            Backend::Redis(conn) => {
                let mut pipe = redis::pipe();
                for key in keys {
                    pipe.del(&key.0).ignore();
                }
                let _: () = pipe.query_async(&mut conn.clone()).await?;
                Ok(())
            }
            Backend::Local(local) => {
                for key in keys {
                    local.delete(&key.0);
                }
                Ok(())
            }
        }
    }

    /// Sets each (key, value), replacing what is there (one pipelined round trip on Redis).
    pub async fn set_many(
        &self,
        entries: &[(CacheKey, String)],
        ttl: Duration,
    ) -> Result<(), CacheError> {
        if entries.is_empty() {
            return Ok(());
        }
        match &self.backend {
            Backend::Redis(conn) => {
                let mut pipe = redis::pipe();
                for (key, value) in entries {
                    pipe.pset_ex(&key.0, value, millis(ttl)).ignore();
                }
                let _: () = pipe.query_async(&mut conn.clone()).await?;
                Ok(())
            }
            Backend::Local(local) => {
                for (key, value) in entries {
                    local.set(&key.0, value, ttl);
                }
                Ok(())
            }
        }
    }

    pub async fn get(&self, key: &CacheKey) -> Result<Option<String>, CacheError> {
        match &self.backend {
            Backend::Redis(conn) => Ok(conn.clone().get(&key.0).await?),
            Backend::Local(local) => Ok(local.get(&key.0)),
        }
    }

    /// Sets `key` unless it exists; returns whether it was set.
    pub async fn set_if_absent(
        &self,
        key: &CacheKey,
        value: &str,
        ttl: Duration,
    ) -> Result<bool, CacheError> {
        match &self.backend {
            Backend::Redis(conn) => {
                let set: Option<String> = redis::cmd("SET")
                    .arg(&key.0)
                    .arg(value)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis(ttl))
                    .query_async(&mut conn.clone())
                    .await?;
                Ok(set.is_some())
            }
            Backend::Local(local) => Ok(local.set_if_absent(&key.0, value, ttl)),
        }
    }

    /// Sets `key`, replacing any value.
    pub async fn set(&self, key: &CacheKey, value: &str, ttl: Duration) -> Result<(), CacheError> {
        match &self.backend {
            Backend::Redis(conn) => {
                let _: () = conn.clone().pset_ex(&key.0, value, millis(ttl)).await?;
                Ok(())
            }
            Backend::Local(local) => {
                local.set(&key.0, value, ttl);
                Ok(())
            }
        }
    }

    pub async fn delete(&self, key: &CacheKey) -> Result<(), CacheError> {
        match &self.backend {
            Backend::Redis(conn) => {
                let _: () = conn.clone().del(&key.0).await?;
                Ok(())
            }
            Backend::Local(local) => {
                local.delete(&key.0);
                Ok(())
            }
        }
    }

    /// Adds `amount` to a counter that lives for `window` from its first increment. Returns
    /// the new count and the seconds until the counter expires.
    pub async fn increment(
        &self,
        key: &CacheKey,
        amount: u64,
        window: Duration,
    ) -> Result<(u64, u64), CacheError> {
        match &self.backend {
            Backend::Redis(conn) => {
                let (count, _, ttl): (u64, i64, i64) = redis::pipe()
                    .atomic()
                    .incr(&key.0, amount)
                    .cmd("PEXPIRE")
                    .arg(&key.0)
                    .arg(millis(window))
                    .arg("NX")
                    .pttl(&key.0)
                    .query_async(&mut conn.clone())
                    .await?;
                Ok((count, seconds_left(ttl)))
            }
            Backend::Local(local) => Ok(local.increment(&key.0, amount, window)),
        }
    }

    /// The current value of a counter and the seconds until it expires.
    pub async fn counter(&self, key: &CacheKey) -> Result<(u64, u64), CacheError> {
        match &self.backend {
            Backend::Redis(conn) => {
                let (count, ttl): (Option<u64>, i64) = redis::pipe()
                    .get(&key.0)
                    .pttl(&key.0)
                    .query_async(&mut conn.clone())
                    .await?;
                Ok((count.unwrap_or(0), seconds_left(ttl)))
            }
            Backend::Local(local) => Ok(local.counter(&key.0)),
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Whole seconds, rounded up, from a PTTL answer (negative: no expiry or no key).
fn seconds_left(pttl: i64) -> u64 {
    u64::try_from(pttl).map(|ms| ms.div_ceil(1000)).unwrap_or(0)
}

fn short_hash(value: &str) -> String {
    hex::encode(&Sha256::digest(value.as_bytes())[..16])
}
