//! Tenant policies cached in process for the ingest path, so that a request does not read
//! them from the database every time.
//!
//! A change made through this process invalidates its entry at once, one made through another
//! as soon as this process hears of it (`crate::cluster`). Entries also expire after a few
//! seconds, which bounds how long a process that missed the news keeps an old policy.

use crate::domain::TenantId;
use crate::domain::policy::TenantPolicy;
use crate::storage::policies;
use sea_orm::{DatabaseConnection, DbErr};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const TTL: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
pub struct PolicyCache {
    entries: Mutex<HashMap<TenantId, (TenantPolicy, Instant)>>,
}

impl PolicyCache {
    pub async fn get(
        &self,
        db: &DatabaseConnection,
        tenant: TenantId,
    ) -> Result<TenantPolicy, DbErr> {
        if let Some(policy) = self.cached(tenant) {
            return Ok(policy);
        }
        let policy = policies::get(db, tenant).await?;
        self.lock().insert(tenant, (policy, Instant::now() + TTL));
        Ok(policy)
    }

    /// Forgets the tenant's entry; the next request reads the database.
    pub fn invalidate(&self, tenant: TenantId) {
        self.lock().remove(&tenant);
    }

    /// Forgets every entry.
    pub fn invalidate_all(&self) {
        self.lock().clear();
    }

    fn cached(&self, tenant: TenantId) -> Option<TenantPolicy> {
        let entries = self.lock();
        entries
            .get(&tenant)
            .filter(|(_, expires)| *expires > Instant::now())
            .map(|(policy, _)| *policy)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, (TenantPolicy, Instant)>> {
        // Entries are written whole; a poisoned lock holds nothing half-written.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
