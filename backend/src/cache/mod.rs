//! The hot store: what can be rebuilt, kept in Redis when configured and in process
//! otherwise: login failure counters, the API-key cache, rate-limit counters and the hot
//! copies of evicted matching sessions.
//!
//! This is the only place where Redis keys are built; every key starts with the configured
//! prefix, and tenant-owned entries carry the tenant id right after it.
//!
//! Redis holds only what can be rebuilt, so an outage must cost speed, never answers: every
//! command has a short deadline, and after a failure a circuit breaker makes commands fail at
//! once (callers fall back) until a background probe finds Redis answering again. The store
//! logs the outage once when it starts and once when it ends; callers log at debug level.

mod breaker;
mod local;

use crate::config::Settings;
use crate::domain::{ApiKeyId, TenantId};
use breaker::{Admission, Breaker, Change};
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The longest a caller waits on Redis. Redis answers in about a millisecond on the same
/// network; a command this late means Redis is unreachable or overwhelmed, and the caller is
/// better served by its fallback than by waiting for reconnects and retries.
const COMMAND_DEADLINE: Duration = Duration::from_millis(500);

/// How long commands fail fast after Redis failed, before a probe asks it again.
const COOL_OFF: Duration = Duration::from_secs(1);

/// A failure of the hot store. Callers decide whether to fall back or fail.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// Redis failed recently; it is not asked again until a probe finds it answering.
    #[error("hot store unavailable: Redis failed recently")]
    FailingFast,
    #[error("hot store unavailable: {0}")]
    Failed(String),
}

impl From<redis::RedisError> for CacheError {
    fn from(err: redis::RedisError) -> Self {
        Self::Failed(err.to_string())
    }
}

/// A key in the hot store, built only by [`HotStore`]'s key functions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey(String);

#[derive(Clone)]
enum Backend {
    Redis(Redis),
    Local(local::LocalStore),
}

/// What a [`HotStore::spend`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    Admitted,
    /// Not spent: what the bucket owed already.
    Refused {
        owed: Duration,
    },
}

/// [`HotStore::spend`] in Redis: KEYS[1] the bucket, ARGV[1] the cost and ARGV[2] the
/// allowance, in microseconds. Answers `{1, owed after}` or `{0, owed before}`. The key
/// expires once the bucket is paid off. (Lua numbers are doubles: microseconds of the epoch
/// stay exact up to the year 2255.)
const SPEND_SCRIPT: &str = r#"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local paid_off = now
local stored = redis.call('GET', KEYS[1])
if stored then paid_off = math.max(tonumber(stored), now) end
local owed = paid_off - now + tonumber(ARGV[1])
if owed > tonumber(ARGV[2]) then return {0, paid_off - now} end
redis.call('SET', KEYS[1], string.format('%d', paid_off + tonumber(ARGV[1])),
    'PX', math.floor(owed / 1000) + 1)
return {1, owed}
"#;

/// The Redis connection and the breaker in front of it, shared by every clone of the store.
#[derive(Clone)]
struct Redis {
    conn: ConnectionManager,
    breaker: Arc<Mutex<Breaker>>,
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
    ///
    /// Only a malformed URL is an error. A Redis that does not answer yet leaves the server
    /// starting degraded (logged once) rather than not at all: a node restarted during a
    /// Redis outage must come back and serve, as the nodes that stayed up do.
    pub async fn connect(settings: &Settings) -> Result<Self, CacheError> {
        let backend = match &settings.redis_url {
            Some(url) => {
                let client = redis::Client::open(url.expose())?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(Some(Duration::from_millis(1500)))
                    .set_number_of_retries(2);
                Backend::Redis(Redis {
                    conn: ConnectionManager::new_lazy_with_config(client, config)?,
                    breaker: Arc::new(Mutex::new(Breaker::new(COOL_OFF))),
                })
            }
            None => Backend::Local(local::LocalStore::default()),
        };
        let store = Self {
            backend,
            prefix: settings.redis_prefix.clone(),
        };
        // Connects now rather than on the first request; a failure opens the breaker.
        let _ = store.ping().await;
        Ok(store)
    }

    /// A store kept in this process only, whatever the settings: the fallback of callers
    /// that must keep counting while Redis is down.
    pub fn in_process(prefix: &str) -> Self {
        Self {
            backend: Backend::Local(local::LocalStore::default()),
            prefix: prefix.to_owned(),
        }
    }

    /// The prefix every key starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn is_redis(&self) -> bool {
        matches!(self.backend, Backend::Redis(_))
    }

    /// Checks that the store answers.
    pub async fn ping(&self) -> Result<(), CacheError> {
        match &self.backend {
            Backend::Redis(server) => {
                let mut conn = server.conn.clone();
                let _: String = server
                    .run(async move { redis::cmd("PING").query_async(&mut conn).await })
                    .await?;
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

    /// A tenant's ingest rate bucket (see [`HotStore::spend`]).
    pub fn ingest_rate_key(&self, tenant: TenantId) -> CacheKey {
        CacheKey(format!("{}:t:{tenant}:ingest_bucket", self.prefix))
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
            Backend::Redis(server) => {
                let mut pipe = redis::pipe();
                for key in keys {
                    pipe.cmd("GETDEL").arg(&key.0);
                }
                let mut conn = server.conn.clone();
                server
                    .run(async move { pipe.query_async(&mut conn).await })
                    .await
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
            Backend::Redis(server) => {
                let mut pipe = redis::pipe();
                for key in keys {
                    pipe.del(&key.0).ignore();
                }
                let mut conn = server.conn.clone();
                server
                    .run(async move { pipe.query_async(&mut conn).await })
                    .await
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
            Backend::Redis(server) => {
                let mut pipe = redis::pipe();
                for (key, value) in entries {
                    pipe.pset_ex(&key.0, value, millis(ttl)).ignore();
                }
                let mut conn = server.conn.clone();
                server
                    .run(async move { pipe.query_async(&mut conn).await })
                    .await
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
            Backend::Redis(server) => {
                let mut conn = server.conn.clone();
                server.run(async move { conn.get(&key.0).await }).await
            }
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
            Backend::Redis(server) => {
                let mut command = redis::cmd("SET");
                command
                    .arg(&key.0)
                    .arg(value)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis(ttl));
                let mut conn = server.conn.clone();
                let set: Option<String> = server
                    .run(async move { command.query_async(&mut conn).await })
                    .await?;
                Ok(set.is_some())
            }
            Backend::Local(local) => Ok(local.set_if_absent(&key.0, value, ttl)),
        }
    }

    /// Sets `key`, replacing any value.
    pub async fn set(&self, key: &CacheKey, value: &str, ttl: Duration) -> Result<(), CacheError> {
        match &self.backend {
            Backend::Redis(server) => {
                let mut conn = server.conn.clone();
                server
                    .run(async move { conn.pset_ex(&key.0, value, millis(ttl)).await })
                    .await
            }
            Backend::Local(local) => {
                local.set(&key.0, value, ttl);
                Ok(())
            }
        }
    }

    pub async fn delete(&self, key: &CacheKey) -> Result<(), CacheError> {
        match &self.backend {
            Backend::Redis(server) => {
                let mut conn = server.conn.clone();
                server.run(async move { conn.del(&key.0).await }).await
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
            Backend::Redis(server) => {
                let mut pipe = redis::pipe();
                pipe.atomic()
                    .incr(&key.0, amount)
                    .cmd("PEXPIRE")
                    .arg(&key.0)
                    .arg(millis(window))
                    .arg("NX")
                    .pttl(&key.0);
                let mut conn = server.conn.clone();
                let (count, _, ttl): (u64, i64, i64) = server
                    .run(async move { pipe.query_async(&mut conn).await })
                    .await?;
                Ok((count, seconds_left(ttl)))
            }
            Backend::Local(local) => Ok(local.increment(&key.0, amount, window)),
        }
    }

    /// Spends `cost` from a rate bucket, if what the bucket then owes is at most
    /// `allowance`; a refused spend changes nothing. The key holds the time (microseconds of
    /// the Unix epoch) at which the bucket is paid off, which moves on by `cost` with each
    /// spend and never lags behind now (the generic cell rate algorithm). In Redis the clock
    /// is Redis's own, so every process counts against one clock.
    pub async fn spend(
        &self,
        key: &CacheKey,
        cost: Duration,
        allowance: Duration,
    ) -> Result<Spend, CacheError> {
        let (cost, allowance) = (micros(cost), micros(allowance));
        let (admitted, owed) = match &self.backend {
            Backend::Redis(server) => {
                let mut command = redis::cmd("EVAL");
                command
                    .arg(SPEND_SCRIPT)
                    .arg(1)
                    .arg(&key.0)
                    .arg(cost)
                    .arg(allowance);
                let mut conn = server.conn.clone();
                let (admitted, owed): (i64, i64) = server
                    .run(async move { command.query_async(&mut conn).await })
                    .await?;
                (admitted == 1, u64::try_from(owed).unwrap_or(0))
            }
            Backend::Local(local) => local.spend(&key.0, cost, allowance),
        };
        let owed = Duration::from_micros(owed);
        Ok(if admitted {
            Spend::Admitted
        } else {
            Spend::Refused { owed }
        })
    }

    /// The current value of a counter and the seconds until it expires.
    pub async fn counter(&self, key: &CacheKey) -> Result<(u64, u64), CacheError> {
        match &self.backend {
            Backend::Redis(server) => {
                let mut pipe = redis::pipe();
                pipe.get(&key.0).pttl(&key.0);
                let mut conn = server.conn.clone();
                let (count, ttl): (Option<u64>, i64) = server
                    .run(async move { pipe.query_async(&mut conn).await })
                    .await?;
                Ok((count.unwrap_or(0), seconds_left(ttl)))
            }
            Backend::Local(local) => Ok(local.counter(&key.0)),
        }
    }
}

impl Redis {
    /// Runs one command (or pipeline) through the breaker, within the deadline.
    async fn run<T>(
        &self,
        command: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, CacheError> {
        match self.breaker().admit(Instant::now()) {
            Admission::Call => {}
            Admission::FailFast => return Err(CacheError::FailingFast),
            Admission::FailFastAndProbe => {
                self.probe_in_background();
                return Err(CacheError::FailingFast);
            }
        }
        match tokio::time::timeout(COMMAND_DEADLINE, command).await {
            Ok(Ok(value)) => {
                let change = self.breaker().succeeded();
                self.note(change, None);
                Ok(value)
            }
            Ok(Err(err)) if !is_outage(&err) => {
                // Redis answered, with an error: a bug to fix, not an outage to ride out.
                tracing::warn!(error = %err, "Redis refused a command");
                Err(err.into())
            }
            Ok(Err(err)) => {
                let change = self.breaker().failed(Instant::now());
                self.note(change, Some(&err));
                Err(err.into())
            }
            Err(_) => {
                let err = format!("no answer within {COMMAND_DEADLINE:?}");
                let change = self.breaker().failed(Instant::now());
                self.note(change, Some(&err));
                Err(CacheError::Failed(err))
            }
        }
    }

    /// Asks Redis whether it answers, off every request's path, and opens or closes the
    /// breaker accordingly.
    fn probe_in_background(&self) {
        let server = self.clone();
        tokio::spawn(async move {
            // The first PING after an outage may only collect the old connection's error
            // (and start the reconnect); the second then waits for that reconnect.
            let mut answered = server.ping_within_deadline().await;
            if answered.is_err() {
                answered = server.ping_within_deadline().await;
            }
            // The breaker's guard is released before logging.
            match answered {
                Ok(()) => {
                    let change = server.breaker().succeeded();
                    server.note(change, None);
                }
                Err(err) => {
                    let change = server.breaker().failed(Instant::now());
                    server.note(change, Some(&err));
                }
            }
        });
    }

    async fn ping_within_deadline(&self) -> Result<(), String> {
        let mut conn = self.conn.clone();
        let ping = async move { redis::cmd("PING").query_async::<String>(&mut conn).await };
        match tokio::time::timeout(COMMAND_DEADLINE, ping).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err(format!("no answer within {COMMAND_DEADLINE:?}")),
        }
    }

    /// One log line per outage: when it starts and when it ends.
    fn note(&self, change: Option<Change>, err: Option<&dyn std::fmt::Display>) {
        match change {
            Some(Change::WentDown) => tracing::warn!(
                error = %err.map(ToString::to_string).unwrap_or_default(),
                "Redis is unreachable; serving without it (rate limits in process, API keys \
                 from the database, sessions from the database) until it answers again"
            ),
            Some(Change::CameBack) => tracing::info!("Redis answers again; using it"),
            None => {}
        }
    }

    fn breaker(&self) -> MutexGuard<'_, Breaker> {
        // A few plain fields, each transition one assignment: nothing half-written to fear.
        self.breaker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Whether the error means Redis could not be reached, rather than that it refused a command.
fn is_outage(err: &redis::RedisError) -> bool {
    err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_unrecoverable_error()
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
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
