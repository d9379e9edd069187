//! `GET/POST /v1/members`, `PATCH/DELETE /v1/members/{user_id}` (owner or admin).
//!
//! Only an owner may grant or take away the owner role, and a tenant always keeps at least
//! one owner.

use super::{CONTROL_BODY_LIMIT, FieldCheck, read_json, required};
use crate::auth::{Caller, password};
use crate::domain::{Email, Password, Role, UserId};
use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::members::{self, AddMemberError, Member, MemberChangeError};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/members", web::get().to(list))
        .route("/members", web::post().to(add))
        .route("/members/{user_id}", web::patch().to(change_role))
        .route("/members/{user_id}", web::delete().to(remove));
}

async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require_manager()?;
    let members = members::list(&state.db, caller.tenant()).await?;
    Ok(HttpResponse::Ok().json(json!({ "members": members })))
}

#[derive(Deserialize)]
struct AddBody {
    email: Option<String>,
    password: Option<String>,
    role: Option<String>,
}

async fn add(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require_manager()?;
    let body: AddBody = read_json(&request, payload, CONTROL_BODY_LIMIT).await?;
    let member = add_member(
        &state,
        &caller,
        body.email.as_deref(),
        body.password.as_deref(),
        body.role.as_deref(),
    )
    .await?;
    Ok(HttpResponse::Created().json(member))
}

/// Adds a member from the fields as sent, checked the API's way (the API and the dashboard's
/// members page both call this). Answers every field problem at once.
pub async fn add_member(
    state: &AppState,
    caller: &Caller,
    email: Option<&str>,
    new_password: Option<&str>,
    role: Option<&str>,
) -> Result<Member, ApiError> {
    caller.require_manager()?;
    let mut check = FieldCheck::default();
    let email = check.take(required("email", email).and_then(|v| Email::parse("email", v)));
    let new_password =
        check.take(required("password", new_password).and_then(|v| Password::parse("password", v)));
    let role = check.take(required("role", role).and_then(|v| Role::parse("role", v)));
    check.finish()?;
    let (Some(email), Some(new_password), Some(role)) = (email, new_password, role) else {
        return Err(ApiError::internal("a checked field is missing"));
    };
    let hash = web::block(move || password::hash(new_password.expose()))
        .await?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    members::add(
        &state.db,
        caller.tenant(),
        caller.actor(),
        &email,
        hash,
        role,
    )
    .await
    .map_err(|e| match e {
        AddMemberError::EmailTaken => {
            ApiError::Conflict("an account with this email already exists".into())
        }
        AddMemberError::OwnerOnly => ApiError::Forbidden("only an owner can add another owner"),
        AddMemberError::NotAllowed => ApiError::Forbidden("this needs the owner or admin role"),
        AddMemberError::Db(db) => db.into(),
    })
}

#[derive(Deserialize)]
struct ChangeRoleBody {
    role: Option<String>,
}

async fn change_role(
    state: web::Data<AppState>,
    caller: Caller,
    user_id: web::Path<Uuid>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require_manager()?;
    let body: ChangeRoleBody = read_json(&request, payload, CONTROL_BODY_LIMIT).await?;
    let user_id = UserId::from_uuid(user_id.into_inner());
    let member = set_role(&state, &caller, user_id, body.role.as_deref()).await?;
    Ok(HttpResponse::Ok().json(member))
}

/// Gives a member the role `role`, as sent (the API and the members page both call this).
pub async fn set_role(
    state: &AppState,
    caller: &Caller,
    user_id: UserId,
    role: Option<&str>,
) -> Result<Member, ApiError> {
    caller.require_manager()?;
    let mut check = FieldCheck::default();
    let role = check.take(required("role", role).and_then(|v| Role::parse("role", v)));
    check.finish()?;
    let Some(role) = role else {
        return Err(ApiError::internal("a checked field is missing"));
    };
    members::change_role(&state.db, caller.tenant(), caller.actor(), user_id, role)
        .await
        .map_err(change_error)
}

async fn remove(
    state: web::Data<AppState>,
    caller: Caller,
    user_id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    remove_member(&state, &caller, UserId::from_uuid(user_id.into_inner())).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Takes a member out of the tenant (the API and the members page both call this).
pub async fn remove_member(
    state: &AppState,
    caller: &Caller,
    user_id: UserId,
) -> Result<(), ApiError> {
    caller.require_manager()?;
    members::remove(&state.db, caller.tenant(), caller.actor(), user_id)
        .await
        .map_err(change_error)
}

fn change_error(err: MemberChangeError) -> ApiError {
    match err {
        MemberChangeError::NotFound => ApiError::NotFound,
        MemberChangeError::LastOwner => {
            ApiError::Conflict("a tenant must keep at least one owner".into())
        }
        MemberChangeError::OwnerOnly => {
            ApiError::Forbidden("only an owner can grant or take away the owner role")
        }
        MemberChangeError::NotAllowed => ApiError::Forbidden("this needs the owner or admin role"),
        MemberChangeError::Db(db) => db.into(),
    }
}
