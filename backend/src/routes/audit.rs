//! `GET /v1/audit-log`: every administrative change of the tenant (goals, policies, keys,
//! members, erasures) with who made it, when, and the state before and after. Owners only.

use crate::auth::Caller;
use crate::domain::Role;
use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::audit;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/audit-log", web::get().to(list));
}

/// The default and largest page of the log.
pub const DEFAULT_LIMIT: u64 = 100;
pub const MAX_LIMIT: u64 = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<u64>,
    /// An entry id: answer the entries older than it (the previous page's `next`).
    before: Option<Uuid>,
}

async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require_member(|role| role == Role::Owner)?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "`limit` must be from 1 to {MAX_LIMIT}"
        )));
    }
    let entries = audit::list(&state.db, caller.tenant(), limit, query.before).await?;
    // A full page may have more behind it; `next` is where the following page starts.
    let next = (entries.len() as u64 == limit)
        .then(|| entries.last().map(|entry| entry.id))
        .flatten();
    Ok(HttpResponse::Ok().json(json!({ "entries": entries, "next": next })))
}
