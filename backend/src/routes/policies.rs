//! `GET/PUT /v1/consent-policy`: read by owners, admins and analysts; changed by owners and
//! admins. A change applies to events accepted after it.

use super::{CONTROL_BODY_LIMIT, read_json};
use crate::auth::Caller;
use crate::domain::Role;
use crate::domain::policy::ConsentPolicy;
use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::policies;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/consent-policy", web::get().to(get_consent))
        .route("/consent-policy", web::put().to(put_consent));
}

async fn get_consent(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require_member(Role::can_read_events)?;
    let policy = policies::get(&state.db, caller.tenant().id()).await?;
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
    state.ingest.policies.invalidate(caller.tenant().id());
    Ok(HttpResponse::Ok().json(policy))
}
