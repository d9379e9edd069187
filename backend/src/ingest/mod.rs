//! Ingestion: a batch of raw events in, a result per event out.
//!
//! Parse every event (pure), sort out duplicates and rejections ([`plan`]), apply the tenant's
//! consent policy, then store through the group-commit [`writer`]. Validation mode does all
//! but the storing.

mod plan;
pub mod policy_cache;
pub mod rate_limit;
pub mod writer;

use crate::actors::matcher::Matcher;
use crate::auth::TenantScope;
use crate::domain::events::{EventKind, ParseContext, parse_event};
use crate::domain::{FieldProblem, TenantId, Timestamp};
use crate::storage::events::{EventRow, InvalidRow, existing_ids};
use plan::Slot;
use policy_cache::PolicyCache;
use rate_limit::RateLimiter;
use sea_orm::{DatabaseConnection, DbErr};
use serde::Serialize;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use writer::{WriteError, Writer};

/// Most events in one request.
pub const MAX_EVENTS_PER_BATCH: usize = 1000;
/// Largest request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Store the events, or only say what would happen to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Store,
    Validate,
}

/// Why a batch was not processed at all. Nothing in it was accepted.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the tenant's rate limit is exceeded")]
    RateLimited { retry_after_secs: u64 },
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// The per-event answer, in the order sent.
#[derive(Debug, Serialize)]
pub struct BatchReport {
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: usize,
    pub results: Vec<EventResult>,
}

#[derive(Debug, Serialize)]
pub struct EventResult {
    pub index: usize,
    /// As sent, when it was a string.
    pub event_id: Option<String>,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldProblem>>,
}

/// Everything ingestion needs besides the database.
#[derive(Debug)]
pub struct Ingestor {
    pub writer: Writer,
    pub policies: Arc<PolicyCache>,
    pub matcher: Matcher,
    pub rate_limiter: RateLimiter,
}

/// What became of one event, once storage has answered.
enum Status {
    Accepted,
    Duplicate,
    Rejected(Vec<FieldProblem>),
}

impl Ingestor {
    /// A tenant's consent or retention policy changed: the next event of this process, and
    /// matching, use the new one.
    pub fn policy_changed(&self, tenant: TenantId) {
        self.policies.invalidate(tenant);
        self.matcher.policy_changed(tenant);
    }

    /// Processes one batch for `tenant`.
    pub async fn ingest(
        &self,
        db: &DatabaseConnection,
        tenant: &TenantScope,
        raw_events: Vec<Value>,
        mode: Mode,
    ) -> Result<BatchReport, IngestError> {
        let count = u64::try_from(raw_events.len()).unwrap_or(u64::MAX);
        self.rate_limiter
            .admit(tenant.id(), count)
            .await
            .map_err(|retry_after_secs| IngestError::RateLimited { retry_after_secs })?;

        let policy = self.policies.get(db, tenant.id()).await?;
        // A stored request holds a token from here until its events are matched, so the
        // matching checkpoint cannot pass them (see `actors::matcher::recovery`).
        let (received_time, token) = match mode {
            Mode::Store => {
                let (received_time, token) = self.matcher.begin_request();
                (received_time, Some(token))
            }
            Mode::Validate => (Timestamp::now(), None),
        };
        let context = ParseContext {
            now: received_time.as_datetime(),
            max_event_age: chrono::Duration::days(i64::from(policy.retention.max_event_age_days)),
        };
        let slots = plan::plan(
            raw_events
                .iter()
                .map(|raw| parse_event(raw, &context))
                .collect(),
        );

        // An invalid event whose identity is already stored is a duplicate, not a rejection.
        let stored_before = stored_identities(db, tenant, &slots, mode).await?;
        let is_stored = |kind: EventKind, id: &str| {
            stored_before.get(&kind).is_some_and(|ids| ids.contains(id))
        };

        let mut rows = Vec::new();
        let mut invalid = Vec::new();
        let mut statuses: Vec<Option<Status>> = Vec::with_capacity(slots.len());
        for (slot, raw) in slots.into_iter().zip(&raw_events) {
            let status = match slot {
                Slot::Duplicate => Some(Status::Duplicate),
                Slot::Rejected { identity, .. }
                    if identity
                        .as_ref()
                        .is_some_and(|(kind, id)| is_stored(*kind, id.as_str())) =>
                {
                    Some(Status::Duplicate)
                }
                Slot::Rejected { identity, errors } => {
                    if mode == Mode::Store {
                        invalid.push(InvalidRow {
                            tenant_id: tenant.id(),
                            received_time,
                            identity,
                            payload: raw.clone(),
                            errors: errors.clone(),
                        });
                    }
                    Some(Status::Rejected(errors))
                }
                Slot::Candidate(event) if mode == Mode::Validate => {
                    Some(if is_stored(event.kind(), event.event_id.as_str()) {
                        Status::Duplicate
                    } else {
                        Status::Accepted
                    })
                }
                Slot::Candidate(event) => {
                    let consent = policy.consent.effective(event.consent);
                    rows.push(EventRow {
                        tenant_id: tenant.id(),
                        keep_keys: policy.consent.keeps_keys(consent),
                        consent,
                        event: *event,
                        received_time,
                    });
                    None // decided by the write
                }
            };
            statuses.push(status);
        }

        if let Some(token) = token
            && !(rows.is_empty() && invalid.is_empty())
        {
            let inserted = self
                .writer
                .write(tenant.id(), rows, invalid, token)
                .await
                .map_err(|err| match err {
                    WriteError::Overloaded | WriteError::TimedOut | WriteError::Storage(_) => {
                        IngestError::Unavailable(err.to_string())
                    }
                })?;
            let mut inserted = inserted.into_iter();
            for status in statuses.iter_mut().filter(|s| s.is_none()) {
                *status = Some(if inserted.next().unwrap_or(false) {
                    Status::Accepted
                } else {
                    Status::Duplicate
                });
            }
        }

        Ok(report(&raw_events, statuses))
    }
}

/// The stored identities among the batch's invalid events (and, when validating, among its
/// candidates too), by kind. One query per kind, and none when nothing needs checking.
async fn stored_identities(
    db: &DatabaseConnection,
    tenant: &TenantScope,
    slots: &[Slot],
    mode: Mode,
) -> Result<HashMap<EventKind, HashSet<String>>, DbErr> {
    let mut wanted: HashMap<EventKind, Vec<&str>> = HashMap::new();
    for slot in slots {
        match slot {
            Slot::Rejected {
                identity: Some((kind, id)),
                ..
            } => wanted.entry(*kind).or_default().push(id.as_str()),
            Slot::Candidate(event) if mode == Mode::Validate => wanted
                .entry(event.kind())
                .or_default()
                .push(event.event_id.as_str()),
            _ => {}
        }
    }
    let mut found = HashMap::new();
    for (kind, ids) in wanted {
        found.insert(kind, existing_ids(db, tenant, kind, &ids).await?);
    }
    Ok(found)
}

fn report(raw_events: &[Value], statuses: Vec<Option<Status>>) -> BatchReport {
    let mut report = BatchReport {
        accepted: 0,
        duplicates: 0,
        rejected: 0,
        results: Vec::with_capacity(statuses.len()),
    };
    for (index, (raw, status)) in raw_events.iter().zip(statuses).enumerate() {
        let (status, errors) = match status.unwrap_or(Status::Duplicate) {
            Status::Accepted => {
                report.accepted += 1;
                ("accepted", None)
            }
            Status::Duplicate => {
                report.duplicates += 1;
                ("duplicate", None)
            }
            Status::Rejected(errors) => {
                report.rejected += 1;
                ("rejected", Some(errors))
            }
        };
        report.results.push(EventResult {
            index,
            event_id: raw
                .get("event_id")
                .and_then(Value::as_str)
                .map(shown_event_id),
            status,
            errors,
        });
    }
    report
}

/// An event id as echoed back: at most 128 characters (longer ones were rejected anyway).
fn shown_event_id(id: &str) -> String {
    if id.chars().count() <= 128 {
        id.to_owned()
    } else {
        id.chars().take(128).collect::<String>() + "…"
    }
}
