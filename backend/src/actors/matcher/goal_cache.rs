//! Each tenant's goals as matching uses them, cached in process.
//!
//! A change made through this process invalidates the tenant at once, one made through another
//! as soon as this process hears of it (`crate::cluster`); entries also expire after a few
//! seconds. A stale entry can cost a retry, never a wrong row: attribution writes
//! check the goals' revisions.

use crate::auth::TenantScope;
use crate::domain::TenantId;
use crate::domain::goals::GoalSpec;
use crate::ingest::policy_cache::PolicyCache;
use crate::matching::session::GoalId;
use crate::matching::{Goal, Millis, Text};
use crate::storage::goals;
use sea_orm::{DatabaseConnection, DbErr};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

const TTL: Duration = Duration::from_secs(5);
/// Added to the horizon for clock skew between event sources and the server.
const HORIZON_MARGIN: Millis = 3_600_000;
const DAY: Millis = 86_400_000;

/// An active goal.
#[derive(Debug, Clone)]
pub struct ActiveGoal {
    pub id: GoalId,
    pub goal: Goal,
}

/// What matching knows of one tenant's goals.
#[derive(Debug)]
pub struct TenantGoals {
    pub active: Vec<ActiveGoal>,
    /// Revision of every goal of the tenant, active or not.
    pub revisions: HashMap<GoalId, i32>,
    /// How far back events can still matter: the longest active window plus the tenant's
    /// accepted event age, plus a margin.
    pub horizon: Millis,
    /// How long detections are kept (the retention period): older ones count as deleted,
    /// whether or not the purge has removed them yet.
    pub detections_kept: Millis,
    /// How long a conversion can still hold attributions: the shorter of the conversion and
    /// attribution periods (an attribution of an older conversion would be expired at birth).
    pub conversions_kept: Millis,
    /// Changes whenever any goal, the horizon or a retention period changes: a session's hot
    /// copy is only trusted under the goals it was kept under (see `hot_copy`).
    pub fingerprint: u64,
}

impl TenantGoals {
    /// The active goals on key `name`.
    pub fn on_key<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a ActiveGoal> + 'a {
        self.active.iter().filter(move |g| &*g.goal.key == name)
    }

    pub fn uses_key(&self, name: &str) -> bool {
        self.on_key(name).next().is_some()
    }

    pub fn active(&self, id: GoalId) -> Option<&ActiveGoal> {
        self.active.iter().find(|g| g.id == id)
    }
}

/// The cache.
#[derive(Debug)]
pub struct GoalCache {
    policies: Arc<PolicyCache>,
    entries: Mutex<HashMap<TenantId, (Arc<TenantGoals>, Instant)>>,
    /// Bumped by every invalidation.
    generation: AtomicU64,
}

impl GoalCache {
    pub fn new(policies: Arc<PolicyCache>) -> Self {
        Self {
            policies,
            entries: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }

    pub async fn get(
        &self,
        db: &DatabaseConnection,
        tenant: TenantId,
    ) -> Result<Arc<TenantGoals>, DbErr> {
        if let Some((goals, expires)) = self.lock().get(&tenant)
            && *expires > Instant::now()
        {
            return Ok(Arc::clone(goals));
        }
        self.load(db, tenant).await
    }

    /// Reads the tenant's goals from the database (and caches them), whatever is cached.
    pub async fn load(
        &self,
        db: &DatabaseConnection,
        tenant: TenantId,
    ) -> Result<Arc<TenantGoals>, DbErr> {
        // A read that started before an invalidation must not be cached after it.
        let generation = self.generation.load(Ordering::SeqCst);
        let scope = TenantScope::authenticated(tenant);
        let rows = goals::with_revisions(db, &scope).await?;
        let policy = self.policies.get(db, tenant).await?;
        let revisions = rows.iter().map(|g| (g.id, g.revision)).collect();
        let active: Vec<ActiveGoal> = rows
            .iter()
            .filter(|g| g.spec.active)
            .map(|g| ActiveGoal {
                id: g.id,
                goal: matching_goal(&g.spec),
            })
            .collect();
        let longest_window = active.iter().map(|g| g.goal.window).max().unwrap_or(0);
        let horizon =
            longest_window + i64::from(policy.retention.max_event_age_days) * DAY + HORIZON_MARGIN;
        let mut versions: Vec<(GoalId, i32, bool)> = rows
            .iter()
            .map(|g| (g.id, g.revision, g.spec.active))
            .collect();
        versions.sort_unstable();
        let retention = policy.retention;
        let detections_kept = i64::from(retention.detections_days) * DAY;
        let conversions_kept =
            i64::from(retention.conversions_days.min(retention.attributions_days)) * DAY;
        // The retention periods are in it too: a resident session has forgotten what was
        // past them, so after a longer period it must be read again from storage.
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (versions, horizon, detections_kept, conversions_kept).hash(&mut hasher);
        let goals = Arc::new(TenantGoals {
            active,
            revisions,
            horizon,
            detections_kept,
            conversions_kept,
            fingerprint: hasher.finish(),
        });
        let mut entries = self.lock();
        if self.generation.load(Ordering::SeqCst) == generation {
            entries.insert(tenant, (Arc::clone(&goals), Instant::now() + TTL));
        }
        Ok(goals)
    }

    pub fn invalidate(&self, tenant: TenantId) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.remove(&tenant);
    }

    pub fn invalidate_all(&self) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.clear();
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<TenantId, (Arc<TenantGoals>, Instant)>> {
        // Entries are replaced whole; a poisoned lock holds nothing half-written.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A goal definition in matching's terms (milliseconds, shared text).
pub fn matching_goal(spec: &GoalSpec) -> Goal {
    Goal {
        detection_labels: spec
            .detection_labels
            .iter()
            .map(|l| Text::from(l.as_str()))
            .collect(),
        conversion_name: Text::from(spec.conversion_name.as_str()),
        key: Text::from(spec.key.as_str()),
        window: spec.window_seconds * 1000,
        min_confidence: spec.min_confidence,
        dedup: spec.dedup_seconds * 1000,
        requires_consent: spec.requires_consent,
    }
}
