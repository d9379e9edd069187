//! `/app/keys`: the tenant's API keys, for owners and admins.

use super::{SignedIn, base_url, check_csrf, html, issue_csrf, redirect};
use crate::domain::ApiKeyId;
use crate::error::{ApiError, PageError};
use crate::routes::api_keys::{create_key, revoke_key};
use crate::state::AppState;
use crate::storage::api_keys::{self, ApiKeyInfo};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use dashboard::{CreatedKey, FieldErrors, KeyRow, KeysPage};
use serde::Deserialize;
use uuid::Uuid;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/app/keys", web::get().to(show))
        .route("/app/keys", web::post().to(create))
        .route("/app/keys/{id}/revoke", web::post().to(revoke));
}

/// Administration pages are for owners and admins only, as the API's rules say.
fn require_manager(member: &SignedIn) -> Result<(), PageError> {
    if member.role.can_manage() {
        Ok(())
    } else {
        Err(PageError::Forbidden(
            "API keys are managed by owners and admins",
        ))
    }
}

/// What the page shows besides the list.
struct FormState {
    created: Option<CreatedKey>,
    name: String,
    ingest: bool,
    read: bool,
    errors: FieldErrors,
}

async fn render(
    state: &AppState,
    request: &HttpRequest,
    member: &SignedIn,
    status: StatusCode,
    form: FormState,
) -> Result<HttpResponse, PageError> {
    let keys = api_keys::list(&state.db, member.caller.tenant()).await?;
    let csrf = issue_csrf(request)?;
    let page = KeysPage {
        chrome: member.chrome(&csrf, "keys"),
        keys: keys.into_iter().map(key_row).collect(),
        created: form.created,
        name: form.name,
        ingest: form.ingest,
        read: form.read,
        errors: form.errors,
        base_url: base_url(request),
    };
    html(status, &page, &csrf)
}

fn key_row(key: ApiKeyInfo) -> KeyRow {
    let when =
        |t: crate::domain::Timestamp| t.as_datetime().format("%Y-%m-%d %H:%M UTC").to_string();
    KeyRow {
        id: key.id.to_string(),
        name: key.name,
        prefix: key.prefix,
        scopes: key.scopes.join(", "),
        created: when(key.created_at),
        last_used: key.last_used_at.map_or_else(|| "never".to_owned(), when),
        revoked: key.revoked_at.map(when),
    }
}

async fn show(
    state: web::Data<AppState>,
    request: HttpRequest,
    member: SignedIn,
) -> Result<HttpResponse, PageError> {
    require_manager(&member)?;
    let form = FormState {
        created: None,
        name: String::new(),
        ingest: true,
        read: false,
        errors: FieldErrors::default(),
    };
    render(&state, &request, &member, StatusCode::OK, form).await
}

#[derive(Debug, Deserialize)]
struct CreateFields {
    csrf: Option<String>,
    name: Option<String>,
    scope_ingest: Option<String>,
    scope_read: Option<String>,
}

/// Answers the form itself (no redirect): the secret must be shown once, and only to the
/// request that created it.
async fn create(
    state: web::Data<AppState>,
    request: HttpRequest,
    member: SignedIn,
    form: web::Form<CreateFields>,
) -> Result<HttpResponse, PageError> {
    check_csrf(&request, form.csrf.as_deref())?;
    require_manager(&member)?;
    let (ingest, read) = (form.scope_ingest.is_some(), form.scope_read.is_some());
    let scopes: Vec<String> = [(ingest, "ingest"), (read, "read")]
        .into_iter()
        .filter(|(chosen, _)| *chosen)
        .map(|(_, name)| name.to_owned())
        .collect();
    let name = form.name.clone().unwrap_or_default();
    let mut errors = FieldErrors::default();
    match create_key(&state, &member.caller, Some(name.as_str()), Some(&scopes)).await {
        Ok((info, secret)) => {
            let form = FormState {
                created: Some(CreatedKey {
                    name: info.name,
                    secret,
                }),
                name: String::new(),
                ingest: true,
                read: false,
                errors,
            };
            render(&state, &request, &member, StatusCode::CREATED, form).await
        }
        Err(ApiError::InvalidFields(problems)) => {
            for problem in problems {
                let message = if problem.field == "scopes" {
                    "Choose at least one scope.".to_owned()
                } else {
                    problem.message.clone()
                };
                errors.add(problem.field.clone(), message);
            }
            let form = FormState {
                created: None,
                name,
                ingest,
                read,
                errors,
            };
            render(&state, &request, &member, StatusCode::BAD_REQUEST, form).await
        }
        Err(other) => Err(other.into()),
    }
}

#[derive(Debug, Deserialize)]
struct RevokeFields {
    csrf: Option<String>,
}

async fn revoke(
    state: web::Data<AppState>,
    request: HttpRequest,
    member: SignedIn,
    id: web::Path<String>,
    form: web::Form<RevokeFields>,
) -> Result<HttpResponse, PageError> {
    check_csrf(&request, form.csrf.as_deref())?;
    require_manager(&member)?;
    // An id that does not parse cannot name a key: 404, as for another tenant's.
    let id = Uuid::parse_str(&id).map_err(|_| PageError::NotFound)?;
    match revoke_key(&state, &member.caller, ApiKeyId::from_uuid(id)).await {
        Ok(()) => Ok(redirect("/app/keys", None)),
        Err(ApiError::NotFound) => Err(PageError::NotFound),
        Err(other) => Err(other.into()),
    }
}
