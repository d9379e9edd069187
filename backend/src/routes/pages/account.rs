//! Sign up, log in, log out: the dashboard's way in and out.

use super::{check_csrf, html, issue_csrf, redirect};
use crate::auth::{Caller, CallerKind, cookies};
use crate::error::{ApiError, PageError};
use crate::routes::accounts::{log_in, sign_up};
use crate::state::AppState;
use crate::storage::accounts;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use dashboard::{FieldErrors, LoginPage, SignupPage};
use serde::Deserialize;

const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/signup", web::get().to(signup_form))
        .route("/signup", web::post().to(signup))
        .route("/login", web::get().to(login_form))
        .route("/login", web::post().to(login))
        .route("/logout", web::post().to(logout));
}

#[derive(Debug, Deserialize)]
struct SignupFields {
    csrf: Option<String>,
    organization: Option<String>,
    email: Option<String>,
    password: Option<String>,
}

async fn signup_form(request: HttpRequest) -> Result<HttpResponse, PageError> {
    let csrf = issue_csrf(&request)?;
    let page = SignupPage {
        csrf: csrf.token.clone(),
        organization: String::new(),
        email: String::new(),
        errors: FieldErrors::default(),
        version: VERSION,
    };
    html(StatusCode::OK, &page, &csrf)
}

async fn signup(
    state: web::Data<AppState>,
    request: HttpRequest,
    form: web::Form<SignupFields>,
) -> Result<HttpResponse, PageError> {
    check_csrf(&request, form.csrf.as_deref())?;
    let outcome = sign_up(
        &state,
        form.organization.as_deref(),
        form.email.as_deref(),
        form.password.as_deref(),
    )
    .await;
    let mut errors = FieldErrors::default();
    let status = match outcome {
        Ok(issued) => {
            let cookie = cookies::session(&issued.token, state.jwt.ttl());
            return Ok(redirect("/app", Some(cookie)));
        }
        Err(ApiError::InvalidFields(problems)) => {
            for problem in problems {
                errors.add(problem.field.clone(), problem.message.clone());
            }
            StatusCode::BAD_REQUEST
        }
        Err(ApiError::Conflict(_)) => {
            errors.add(
                "email",
                "An account with this email already exists. Log in instead.",
            );
            StatusCode::CONFLICT
        }
        Err(other) => return Err(other.into()),
    };
    let csrf = issue_csrf(&request)?;
    let page = SignupPage {
        csrf: csrf.token.clone(),
        organization: form.organization.clone().unwrap_or_default(),
        email: form.email.clone().unwrap_or_default(),
        errors,
        version: VERSION,
    };
    html(status, &page, &csrf)
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    logged_out: Option<String>,
}

#[derive(Debug, Deserialize)]
struct LoginFields {
    csrf: Option<String>,
    email: Option<String>,
    password: Option<String>,
}

async fn login_form(
    request: HttpRequest,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, PageError> {
    let csrf = issue_csrf(&request)?;
    let page = LoginPage {
        csrf: csrf.token.clone(),
        email: String::new(),
        error: None,
        notice: query
            .logged_out
            .as_ref()
            .map(|_| "You are logged out.".to_owned()),
        version: VERSION,
    };
    html(StatusCode::OK, &page, &csrf)
}

async fn login(
    state: web::Data<AppState>,
    request: HttpRequest,
    form: web::Form<LoginFields>,
) -> Result<HttpResponse, PageError> {
    check_csrf(&request, form.csrf.as_deref())?;
    let outcome = log_in(
        &state,
        &request,
        form.email.as_deref(),
        form.password.as_deref(),
    )
    .await;
    let (status, error) = match outcome {
        Ok(issued) => {
            let cookie = cookies::session(&issued.token, state.jwt.ttl());
            return Ok(redirect("/app", Some(cookie)));
        }
        Err(ApiError::InvalidFields(_)) => (
            StatusCode::BAD_REQUEST,
            "Enter your email and your password.".to_owned(),
        ),
        Err(ApiError::Unauthorized) => (
            StatusCode::UNAUTHORIZED,
            "Wrong email or password.".to_owned(),
        ),
        Err(ApiError::TooManyRequests { retry_after_secs }) => (
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many failed attempts. Try again in {retry_after_secs} seconds."),
        ),
        Err(other) => return Err(other.into()),
    };
    let csrf = issue_csrf(&request)?;
    let page = LoginPage {
        csrf: csrf.token.clone(),
        email: form.email.clone().unwrap_or_default(),
        error: Some(error),
        notice: None,
        version: VERSION,
    };
    html(status, &page, &csrf)
}

#[derive(Debug, Deserialize)]
struct LogoutFields {
    csrf: Option<String>,
}

/// Ends every session of the member (see `POST /v1/auth/logout`) and clears the cookie. A
/// cookie that no longer works is simply cleared.
async fn logout(
    state: web::Data<AppState>,
    request: HttpRequest,
    form: web::Form<LogoutFields>,
) -> Result<HttpResponse, PageError> {
    check_csrf(&request, form.csrf.as_deref())?;
    if let Some(token) = cookies::session_token(&request)
        && let Ok(caller) = Caller::from_session_token(&state, &token).await
        && let CallerKind::Member { user_id, .. } = caller.kind()
    {
        accounts::end_sessions(&state.db, *user_id)
            .await
            .map_err(ApiError::from)?;
    }
    Ok(redirect(
        "/login?logged_out=1",
        Some(cookies::clear_session()),
    ))
}
