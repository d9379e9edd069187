//! `GET/PUT /v1/consent-policy` and `GET/PUT /v1/retention-policy`: read by owners, admins
//! and analysts; changed by owners and admins. A change applies to events accepted after it.

use super::{CONTROL_BODY_LIMIT, read_json};
use crate::auth::Caller;
use crate::domain::Role;
use crate::domain::policy::{ConsentPolicy, RetentionPolicy};
use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::policies;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/consent-policy", web::get().to(get_consent))
        .route("/consent-policy", web::put().to(put_consent))
        .route("/retention-policy", web::get().to(get_retention))
        .route("/retention-policy", web::put().to(put_retention));
}

async fn get_consent(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require_member(Role::can_read_events)?;
    let policy = policies::for_tenant(&state.db, caller.tenant()).await?;
    Ok(HttpResponse::Ok().json(policy.consent))
}

async fn put_consent(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require_manager()?;
    let body: Map<String, Value> = read_json(&request, payload, CONTROL_BODY_LIMIT).await?;
    let policy = ConsentPolicy::parse(body.get("default"), body.get("strip_keys_without_consent"))
        .map_err(ApiError::InvalidFields)?;
    policies::put_consent(&state.db, caller.tenant(), caller.actor(), policy).await?;
    // This process applies the new policy to the very next event.
    state.ingest.policy_changed(caller.tenant().id());
    Ok(HttpResponse::Ok().json(policy))
}

async fn get_retention(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require_member(Role::can_read_events)?;
    let policy = policies::for_tenant(&state.db, caller.tenant()).await?;
    Ok(HttpResponse::Ok().json(policy.retention))
}

async fn put_retention(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require_manager()?;
    let body: Map<String, Value> = read_json(&request, payload, CONTROL_BODY_LIMIT).await?;
    let policy = RetentionPolicy::parse(&body).map_err(ApiError::InvalidFields)?;
    policies::put_retention(&state.db, caller.tenant(), caller.actor(), policy).await?;
    // The oldest event accepted, and the matching horizon, change with the very next event.
    state.ingest.policy_changed(caller.tenant().id());
    Ok(HttpResponse::Ok().json(policy))
}
