//! `POST /v1/api-keys`, `GET /v1/api-keys`, `DELETE /v1/api-keys/{id}` (owner or admin).

use super::{CONTROL_BODY_LIMIT, FieldCheck, read_json, required};
use crate::auth::{Caller, api_key, key_cache};
use crate::domain::{ApiKeyId, ApiKeyName, Scopes};
use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::api_keys::{self, ApiKeyInfo, NewApiKey};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api-keys", web::post().to(create))
        .route("/api-keys", web::get().to(list))
        .route("/api-keys/{id}", web::delete().to(revoke));
}

#[derive(Deserialize)]
struct CreateBody {
    name: Option<String>,
    scopes: Option<Vec<String>>,
}

async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require_manager()?;
    let body: CreateBody = read_json(&request, payload, CONTROL_BODY_LIMIT).await?;
    let (info, secret) = create_key(
        &state,
        &caller,
        body.name.as_deref(),
        body.scopes.as_deref(),
    )
    .await?;
    Ok(HttpResponse::Created().json(json!({
        "id": info.id,
        "name": info.name,
        "scopes": info.scopes,
        "key": secret,
        "prefix": info.prefix,
        "created_at": info.created_at,
    })))
}

/// Creates a key for the caller's tenant (an owner or admin); returns it with its secret,
/// which is shown this once and stored only as a hash.
pub(crate) async fn create_key(
    state: &AppState,
    caller: &Caller,
    name: Option<&str>,
    scopes: Option<&[String]>,
) -> Result<(ApiKeyInfo, String), ApiError> {
    caller.require_manager()?;
    let mut check = FieldCheck::default();
    let name = check.take(required("name", name).and_then(|v| ApiKeyName::parse("name", v)));
    let scopes = check.take(required("scopes", scopes).and_then(|v| Scopes::parse("scopes", v)));
    check.finish()?;
    let (Some(name), Some(scopes)) = (name, scopes) else {
        return Err(ApiError::internal("a checked field is missing"));
    };
    let generated = api_key::generate().map_err(|e| ApiError::internal(e.to_string()))?;
    let info = api_keys::insert(
        &state.db,
        caller.tenant(),
        caller.actor(),
        NewApiKey {
            name: &name,
            scopes: &scopes,
            prefix: &generated.display_prefix,
            key_hash: generated.hash,
        },
    )
    .await?;
    Ok((info, generated.secret))
}

async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require_manager()?;
    let keys = api_keys::list(&state.db, caller.tenant()).await?;
    Ok(HttpResponse::Ok().json(json!({ "api_keys": keys })))
}

async fn revoke(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    revoke_key(&state, &caller, ApiKeyId::from_uuid(id.into_inner())).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Revokes one of the caller's tenant's keys (an owner or admin); it stops working at once.
/// Another tenant's key, or none, is `NotFound`.
pub(crate) async fn revoke_key(
    state: &AppState,
    caller: &Caller,
    id: ApiKeyId,
) -> Result<(), ApiError> {
    caller.require_manager()?;
    let hash = api_keys::hash_of(&state.db, caller.tenant(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    // Refuse the key in every cache before the row changes; if that is impossible, change
    // nothing and let the client retry, rather than leave a revoked key working.
    key_cache::tombstone(&state.hot, &hash).await.map_err(|err| {
        tracing::error!(error = %err, "cannot invalidate the API-key cache; revocation refused");
        ApiError::Unavailable { retry_after_secs: 2 }
    })?;
    if !api_keys::revoke(&state.db, caller.tenant(), caller.actor(), id).await? {
        return Err(ApiError::NotFound);
    }
    Ok(())
}
