//! `/app/members`: the tenant's members and their roles, for owners and admins. The API's
//! own member functions do the work, so the rules (only owners grant owner, a tenant keeps
//! an owner) hold here exactly as there.

use super::{SignedIn, check_csrf, html, issue_csrf, redirect};
use crate::auth::CallerKind;
use crate::domain::{Role, UserId};
use crate::error::{ApiError, PageError};
use crate::routes::members::{add_member, remove_member, set_role};
use crate::state::AppState;
use crate::storage::members::{self, Member};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use dashboard::{FieldErrors, MemberRow, MembersPage};
use serde::Deserialize;
use uuid::Uuid;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/app/members", web::get().to(show))
        .route("/app/members", web::post().to(add))
        .route("/app/members/{user_id}/role", web::post().to(change_role))
        .route("/app/members/{user_id}/remove", web::post().to(remove));
}

fn require_manager(member: &SignedIn) -> Result<(), PageError> {
    if member.role.can_manage() {
        Ok(())
    } else {
        Err(PageError::Forbidden(
            "Members are managed by owners and admins",
        ))
    }
}

/// What the page shows besides the list.
#[derive(Default)]
struct Outcome {
    notice: Option<&'static str>,
    refusal: Option<String>,
    email: String,
    role: Option<String>,
    errors: FieldErrors,
}

async fn render(
    state: &AppState,
    request: &HttpRequest,
    member: &SignedIn,
    status: StatusCode,
    outcome: Outcome,
) -> Result<HttpResponse, PageError> {
    let list = members::list(&state.db, member.caller.tenant()).await?;
    let you = match member.caller.kind() {
        CallerKind::Member { user_id, .. } => Some(*user_id),
        _ => None,
    };
    let csrf = issue_csrf(request)?;
    let page = MembersPage {
        chrome: member.chrome(&csrf, "members"),
        members: list.into_iter().map(|m| member_row(m, you)).collect(),
        can_grant_owner: member.role == Role::Owner,
        notice: outcome.notice,
        refusal: outcome.refusal,
        email: outcome.email,
        role: outcome.role.unwrap_or_else(|| "viewer".to_owned()),
        errors: outcome.errors,
    };
    html(status, &page, &csrf)
}

fn member_row(member: Member, you: Option<UserId>) -> MemberRow {
    MemberRow {
        user_id: member.user_id.to_string(),
        is_you: Some(member.user_id) == you,
        email: member.email,
        role: member.role.as_str().to_owned(),
        joined: member
            .created_at
            .as_datetime()
            .format("%Y-%m-%d")
            .to_string(),
    }
}

#[derive(Debug, Deserialize)]
struct ShowQuery {
    done: Option<String>,
}

async fn show(
    state: web::Data<AppState>,
    request: HttpRequest,
    member: SignedIn,
    query: web::Query<ShowQuery>,
) -> Result<HttpResponse, PageError> {
    require_manager(&member)?;
    let notice = match query.done.as_deref() {
        Some("added") => Some("Member added. They can sign in now with the password you chose."),
        Some("role") => Some("Role changed. It applies on the member's next request."),
        Some("removed") => Some("Member removed. Their sessions stop working at once."),
        _ => None,
    };
    let outcome = Outcome {
        notice,
        ..Outcome::default()
    };
    render(&state, &request, &member, StatusCode::OK, outcome).await
}

#[derive(Debug, Deserialize)]
struct AddFields {
    csrf: Option<String>,
    email: Option<String>,
    password: Option<String>,
    role: Option<String>,
}

async fn add(
    state: web::Data<AppState>,
    request: HttpRequest,
    member: SignedIn,
    form: web::Form<AddFields>,
) -> Result<HttpResponse, PageError> {
    check_csrf(&request, form.csrf.as_deref())?;
    require_manager(&member)?;
    let added = add_member(
        &state,
        &member.caller,
        form.email.as_deref(),
        form.password.as_deref(),
        form.role.as_deref(),
    )
    .await;
    let mut outcome = Outcome {
        email: form.email.clone().unwrap_or_default(),
        role: form.role.clone(),
        ..Outcome::default()
    };
    let status = match added {
        Ok(_) => return Ok(redirect("/app/members?done=added", None)),
        Err(ApiError::InvalidFields(problems)) => {
            for problem in problems {
                outcome.errors.add(problem.field, problem.message);
            }
            StatusCode::BAD_REQUEST
        }
        Err(ApiError::Conflict(message)) => {
            outcome.errors.add("email", capitalised(&message));
            StatusCode::CONFLICT
        }
        Err(ApiError::Forbidden(message)) => {
            outcome.errors.add("role", capitalised(message));
            StatusCode::FORBIDDEN
        }
        Err(other) => return Err(other.into()),
    };
    render(&state, &request, &member, status, outcome).await
}

#[derive(Debug, Deserialize)]
struct RoleFields {
    csrf: Option<String>,
    role: Option<String>,
}

async fn change_role(
    state: web::Data<AppState>,
    request: HttpRequest,
    member: SignedIn,
    user_id: web::Path<String>,
    form: web::Form<RoleFields>,
) -> Result<HttpResponse, PageError> {
    check_csrf(&request, form.csrf.as_deref())?;
    require_manager(&member)?;
    let user_id = parse_user_id(&user_id)?;
    let changed = set_role(&state, &member.caller, user_id, form.role.as_deref()).await;
    answer_change(&state, &request, &member, changed.map(|_| ()), "role").await
}

#[derive(Debug, Deserialize)]
struct RemoveFields {
    csrf: Option<String>,
}

async fn remove(
    state: web::Data<AppState>,
    request: HttpRequest,
    member: SignedIn,
    user_id: web::Path<String>,
    form: web::Form<RemoveFields>,
) -> Result<HttpResponse, PageError> {
    check_csrf(&request, form.csrf.as_deref())?;
    require_manager(&member)?;
    let user_id = parse_user_id(&user_id)?;
    let removed = remove_member(&state, &member.caller, user_id).await;
    answer_change(&state, &request, &member, removed, "removed").await
}

/// An id that does not parse cannot name a member: 404, as for another tenant's.
fn parse_user_id(raw: &str) -> Result<UserId, PageError> {
    Uuid::parse_str(raw)
        .map(UserId::from_uuid)
        .map_err(|_| PageError::NotFound)
}

/// After a role change or removal: the list again, or why it was refused, on the same page.
async fn answer_change(
    state: &AppState,
    request: &HttpRequest,
    member: &SignedIn,
    result: Result<(), ApiError>,
    done: &str,
) -> Result<HttpResponse, PageError> {
    let (status, refusal) = match result {
        Ok(()) => return Ok(redirect(&format!("/app/members?done={done}"), None)),
        Err(ApiError::NotFound) => return Err(PageError::NotFound),
        Err(ApiError::Conflict(message)) => (StatusCode::CONFLICT, capitalised(&message)),
        Err(ApiError::Forbidden(message)) => (StatusCode::FORBIDDEN, capitalised(message)),
        Err(ApiError::InvalidFields(problems)) => (
            StatusCode::BAD_REQUEST,
            problems.first().map_or_else(
                || "That role does not exist.".to_owned(),
                |p| capitalised(&p.message),
            ),
        ),
        Err(other) => return Err(other.into()),
    };
    let outcome = Outcome {
        refusal: Some(refusal),
        ..Outcome::default()
    };
    render(state, request, member, status, outcome).await
}

/// The API's lower-case message as a sentence for the page.
fn capitalised(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}
