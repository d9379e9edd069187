//! `POST /v1/events`, `POST /v1/events/validate` and `GET /v1/invalid-events`.

use super::body::read_bytes;
use crate::auth::Caller;
use crate::domain::TenantId;
use crate::domain::{Role, Scope};
use crate::error::ApiError;
use crate::ingest::rate_limit::{RETRY_AFTER, RateLimiter};
use crate::ingest::{IngestError, MAX_BODY_BYTES, MAX_EVENTS_PER_BATCH, Mode};
use crate::state::AppState;
use crate::storage::invalid_events::recent_invalid;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/events", web::post().to(ingest))
        .route("/events/validate", web::post().to(validate))
        .route("/invalid-events", web::get().to(invalid_events));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    events: Vec<Value>,
}

async fn ingest(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    handle(state, caller, request, payload, Mode::Store).await
}

async fn validate(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    handle(state, caller, request, payload, Mode::Validate).await
}

async fn handle(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    payload: web::Payload,
    mode: Mode,
) -> Result<HttpResponse, ApiError> {
    caller.require_access(Scope::Ingest, Role::can_manage)?;
    let tenant = caller.tenant().id();
    let limiter = &state.ingest.rate_limiter;
    if limiter.is_full(tenant) {
        return Err(refusal(limiter, tenant, RETRY_AFTER.as_secs()).await);
    }
    let bytes = read_bytes(&request, payload, MAX_BODY_BYTES).await?;
    let batch: Batch = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body must be a JSON object {{\"events\": [...]}}: {e}"
        ))
    })?;
    if batch.events.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "`events` must hold 1 to {MAX_EVENTS_PER_BATCH} events"
        )));
    }
    if batch.events.len() > MAX_EVENTS_PER_BATCH {
        return Err(ApiError::PayloadTooLarge(format!(
            "a batch holds at most {MAX_EVENTS_PER_BATCH} events; this one has {}",
            batch.events.len()
        )));
    }
    let outcome = state
        .ingest
        .ingest(&state.db, caller.tenant(), batch.events, mode)
        .await;
    match outcome {
        Ok(report) => Ok(HttpResponse::Accepted().json(report)),
        Err(IngestError::RateLimited { retry_after_secs }) => {
            Err(refusal(limiter, tenant, retry_after_secs).await)
        }
        Err(IngestError::Unavailable(cause)) => {
            tracing::warn!(%cause, "ingest refused: storage unavailable");
            Err(ApiError::Unavailable {
                retry_after_secs: 1,
            })
        }
        Err(IngestError::Db(db)) => Err(db.into()),
    }
}

/// The tenant's 429, held first when the tenant was refused a moment ago and so did not wait
/// (see `ingest::rate_limit`).
async fn refusal(limiter: &RateLimiter, tenant: TenantId, retry_after_secs: u64) -> ApiError {
    let hold = limiter.hold_refusal(tenant);
    if !hold.is_zero() {
        tokio::time::sleep(hold).await;
    }
    ApiError::TooManyRequests { retry_after_secs }
}

#[derive(Deserialize)]
struct InvalidEventsQuery {
    limit: Option<u64>,
}

async fn invalid_events(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<InvalidEventsQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require_access(Scope::Read, Role::can_read_events)?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest(
            "`limit` must be from 1 to 1000".into(),
        ));
    }
    let events = recent_invalid(&state.db, caller.tenant(), limit).await?;
    Ok(HttpResponse::Ok().json(json!({ "invalid_events": events })))
}
