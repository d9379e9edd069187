//! `POST/GET /v1/goals`, `GET/PUT/DELETE /v1/goals/{id}`: owners and admins change goals;
//! analysts read them too.

use super::{CONTROL_BODY_LIMIT, read_json};
use crate::auth::Caller;
use crate::domain::Role;
use crate::domain::goals::GoalSpec;
use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::goals::{self, GoalView};
use crate::storage::reevaluations::{self, Progress};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value, json};
use uuid::Uuid;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/goals", web::post().to(create))
        .route("/goals", web::get().to(list))
        .route("/goals/{id}", web::get().to(get))
        .route("/goals/{id}", web::put().to(replace))
        .route("/goals/{id}", web::delete().to(delete));
}

async fn read_spec(request: &HttpRequest, payload: web::Payload) -> Result<GoalSpec, ApiError> {
    let body: Map<String, Value> = read_json(request, payload, CONTROL_BODY_LIMIT).await?;
    GoalSpec::parse(&body).map_err(ApiError::InvalidFields)
}

async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require_manager()?;
    let spec = read_spec(&request, payload).await?;
    let goal = goals::create(&state.db, caller.tenant(), caller.actor(), &spec).await?;
    state
        .ingest
        .matcher
        .goal_changed(caller.tenant().id(), goal.id);
    Ok(HttpResponse::Created().json(with_progress(&state, caller.tenant(), goal).await?))
}

async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require_member(Role::can_read_events)?;
    let mut progress = reevaluations::progress(&state.db, caller.tenant()).await?;
    let goals: Vec<GoalResponse> = goals::list(&state.db, caller.tenant())
        .await?
        .into_iter()
        .map(|goal| GoalResponse {
            reevaluation: progress.remove(&goal.id),
            goal,
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "goals": goals })))
}

async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require_member(Role::can_read_events)?;
    let goal = goals::get(&state.db, caller.tenant(), id.into_inner())
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(with_progress(&state, caller.tenant(), goal).await?))
}

async fn replace(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require_manager()?;
    let spec = read_spec(&request, payload).await?;
    let goal = goals::replace(
        &state.db,
        caller.tenant(),
        caller.actor(),
        id.into_inner(),
        &spec,
    )
    .await?
    .ok_or(ApiError::NotFound)?;
    state
        .ingest
        .matcher
        .goal_changed(caller.tenant().id(), goal.id);
    Ok(HttpResponse::Ok().json(with_progress(&state, caller.tenant(), goal).await?))
}

async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require_manager()?;
    let id = id.into_inner();
    if goals::delete(&state.db, caller.tenant(), caller.actor(), id).await? {
        state.ingest.matcher.goal_changed(caller.tenant().id(), id);
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound)
    }
}

/// A goal with the state of its latest re-evaluation, as the processes running it record it
/// (see `storage::reevaluations`).
#[derive(Debug, serde::Serialize)]
struct GoalResponse {
    #[serde(flatten)]
    goal: GoalView,
    reevaluation: Option<Progress>,
}

async fn with_progress(
    state: &AppState,
    tenant: &crate::auth::TenantScope,
    goal: GoalView,
) -> Result<GoalResponse, ApiError> {
    let reevaluation = reevaluations::progress(&state.db, tenant)
        .await?
        .remove(&goal.id);
    Ok(GoalResponse { goal, reevaluation })
}
