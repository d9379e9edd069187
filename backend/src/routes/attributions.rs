//! `GET /v1/attributions` and `GET /v1/conversions/{event_id}/explain`: raw attribution data,
//! for owners, admins, analysts and `read`-scoped keys.

use crate::actors::matcher::matching_goal;
use crate::auth::Caller;
use crate::domain::goals::MAX_WINDOW_SECONDS;
use crate::domain::{Role, Scope, Timestamp};
use crate::error::ApiError;
use crate::matching;
use crate::state::AppState;
use crate::storage::attributions::{self, ListFilter};
use crate::storage::{goals, sessions};
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

/// Most attributions one request lists.
const MAX_LIMIT: u64 = 10_000;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/attributions", web::get().to(list))
        .route("/conversions/{event_id}/explain", web::get().to(explain));
}

#[derive(Deserialize)]
struct ListQuery {
    goal: Option<Uuid>,
    conversion_event_id: Option<String>,
    limit: Option<u64>,
}

async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require_access(Scope::Read, Role::can_read_events)?;
    let query = query.into_inner();
    let limit = query.limit.unwrap_or(1000);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "`limit` must be from 1 to {MAX_LIMIT}"
        )));
    }
    // Another tenant's goal answers as a missing one does.
    if let Some(goal_id) = query.goal
        && goals::get(&state.db, caller.tenant(), goal_id)
            .await?
            .is_none()
    {
        return Err(ApiError::NotFound);
    }
    let filter = ListFilter {
        goal_id: query.goal,
        conversion_event_id: query.conversion_event_id,
        limit,
    };
    let rows = attributions::list(&state.db, caller.tenant(), &filter).await?;
    Ok(HttpResponse::Ok().json(json!({ "attributions": rows })))
}

#[derive(Debug, Serialize)]
pub(crate) struct Explanation {
    pub conversion_event_id: String,
    pub goals: Vec<GoalExplanation>,
}

#[derive(Debug, Serialize)]
pub(crate) struct GoalExplanation {
    pub goal_id: Uuid,
    pub name: String,
    pub candidates: Vec<Candidate>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Candidate {
    pub detection_event_id: String,
    pub event_time: Timestamp,
    pub label: String,
    pub entity_id: String,
    pub confidence: f64,
    pub verdict: &'static str,
}

/// Every active goal for the conversion's name, each detection sharing a tracking key with
/// it, and the verdict of the matching rules: the same pure core the session actors run.
async fn explain(
    state: web::Data<AppState>,
    caller: Caller,
    event_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(explanation(&state, &caller, &event_id).await?))
}

/// The explanation of one of the caller's tenant's conversions (API and dashboard); an
/// unknown conversion, or another tenant's, is `NotFound`.
pub(crate) async fn explanation(
    state: &AppState,
    caller: &Caller,
    event_id: &str,
) -> Result<Explanation, ApiError> {
    caller.require_access(Scope::Read, Role::can_read_events)?;
    let conversion = sessions::conversion(&state.db, caller.tenant(), event_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let goals: Vec<_> = goals::list(&state.db, caller.tenant())
        .await?
        .into_iter()
        .filter(|goal| goal.spec.active && *goal.spec.conversion_name == *conversion.name)
        .collect();

    // No window reaches further back than the longest one allowed.
    let since = Timestamp::from_millis(
        conversion
            .event_time
            .saturating_sub(MAX_WINDOW_SECONDS * 1000),
    )
    .unwrap_or_else(Timestamp::now)
    .as_datetime();
    let mut detections = if goals.is_empty() {
        Vec::new()
    } else {
        sessions::detections_sharing_a_key(&state.db, caller.tenant(), &conversion.keys, since)
            .await?
    };
    detections.sort_by(|a, b| (a.event_time, &a.event_id).cmp(&(b.event_time, &b.event_id)));

    let explained = goals
        .into_iter()
        .map(|goal| {
            let verdicts = matching::explain(&matching_goal(&goal.spec), &conversion, &detections);
            GoalExplanation {
                goal_id: goal.id,
                name: goal.spec.name,
                candidates: verdicts
                    .into_iter()
                    .map(|(index, verdict)| {
                        let d = &detections[index];
                        Candidate {
                            detection_event_id: d.event_id.to_string(),
                            event_time: Timestamp::from_millis(d.event_time)
                                .unwrap_or_else(Timestamp::now),
                            label: d.label.to_string(),
                            entity_id: d.entity_id.to_string(),
                            confidence: d.confidence,
                            verdict: verdict.as_str(),
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    Ok(Explanation {
        conversion_event_id: conversion.event_id.to_string(),
        goals: explained,
    })
}
