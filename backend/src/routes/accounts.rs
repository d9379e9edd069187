//! `POST /v1/auth/signup`, `POST /v1/auth/login` and `POST /v1/auth/logout`, and the signup
//! and login both they and the dashboard's forms use.

use super::client_address::client_address;
use super::{CONTROL_BODY_LIMIT, FieldCheck, read_json, required};
use crate::auth::{Caller, CallerKind, login_throttle, password};
use crate::domain::{Email, OrganizationName, Password, TenantId, Timestamp, UserId};
use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::accounts::{self, CreateAccountError};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/signup", web::post().to(signup))
        .route("/auth/login", web::post().to(login))
        .route("/auth/logout", web::post().to(logout));
}

/// Ends every session of the calling member, this token's included: a user who logs out
/// expects a copied token or cookie to stop working too.
async fn logout(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let CallerKind::Member { user_id, .. } = caller.kind() else {
        return Err(ApiError::Forbidden(
            "API keys have no session to end; revoke the key instead",
        ));
    };
    accounts::end_sessions(&state.db, *user_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
struct SignupBody {
    organization: Option<String>,
    email: Option<String>,
    password: Option<String>,
}

async fn signup(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: SignupBody = read_json(&request, payload, CONTROL_BODY_LIMIT).await?;
    let issued = sign_up(
        &state,
        body.organization.as_deref(),
        body.email.as_deref(),
        body.password.as_deref(),
    )
    .await?;
    Ok(HttpResponse::Created().json(json!({
        "tenant_id": issued.tenant_id,
        "user_id": issued.user_id,
        "token": issued.token,
        "expires_at": issued.expires_at,
    })))
}

/// A session token just issued, and whose it is.
#[derive(Debug)]
pub(crate) struct Issued {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub token: String,
    pub expires_at: Timestamp,
}

/// Creates a tenant and its owner, and logs the owner in: the signup of the API and of the
/// dashboard. Every field problem is reported at once.
pub(crate) async fn sign_up(
    state: &AppState,
    organization: Option<&str>,
    email: Option<&str>,
    password: Option<&str>,
) -> Result<Issued, ApiError> {
    let mut check = FieldCheck::default();
    let organization = check.take(
        required("organization", organization)
            .and_then(|v| OrganizationName::parse("organization", v)),
    );
    let email = check.take(required("email", email).and_then(|v| Email::parse("email", v)));
    let new_password =
        check.take(required("password", password).and_then(|v| Password::parse("password", v)));
    check.finish()?;
    let (Some(organization), Some(email), Some(new_password)) = (organization, email, new_password)
    else {
        return Err(ApiError::internal("a checked field is missing"));
    };

    let hash = web::block(move || password::hash(new_password.expose()))
        .await?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let (tenant_id, user_id) =
        accounts::create_tenant_with_owner(&state.db, &organization, &email, hash)
            .await
            .map_err(|e| match e {
                CreateAccountError::EmailTaken => {
                    ApiError::Conflict("an account with this email already exists".into())
                }
                CreateAccountError::Db(db) => db.into(),
            })?;
    let (token, expires_at) = state
        .jwt
        .issue(user_id, tenant_id, 0)
        .map_err(ApiError::internal)?;
    tracing::info!(%tenant_id, "tenant signed up");
    Ok(Issued {
        tenant_id,
        user_id,
        token,
        expires_at: Timestamp::from(expires_at),
    })
}

#[derive(Deserialize)]
struct LoginBody {
    email: Option<String>,
    password: Option<String>,
}

async fn login(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: LoginBody = read_json(&request, payload, CONTROL_BODY_LIMIT).await?;
    let issued = log_in(
        &state,
        &request,
        body.email.as_deref(),
        body.password.as_deref(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({
        "token": issued.token,
        "expires_at": issued.expires_at,
    })))
}

/// Checks an email and password (throttled per address and email) and issues a session
/// token: the login of the API and of the dashboard. A wrong email and a wrong password fail
/// alike, in the same time.
pub(crate) async fn log_in(
    state: &AppState,
    request: &HttpRequest,
    email: Option<&str>,
    given_password: Option<&str>,
) -> Result<Issued, ApiError> {
    let mut check = FieldCheck::default();
    let email = check.take(required("email", email));
    let given_password = check.take(required("password", given_password));
    check.finish()?;
    let (Some(email), Some(given_password)) = (email, given_password) else {
        return Err(ApiError::internal("a checked field is missing"));
    };
    // An email that does not parse cannot have an account; it fails like a wrong password.
    let email = Email::parse("email", email).ok();
    // Behind a load balancer the TCP peer is the balancer; without this, every client
    // would share one counter and anyone could lock every login out.
    let address = client_address(request, &state.settings.trusted_proxies)
        .map(|ip| ip.to_string())
        .unwrap_or_default();
    let normalised = email
        .as_ref()
        .map_or_else(|| "-".to_owned(), |e| e.as_str().to_owned());
    let attempt = login_throttle::Attempt {
        email: &normalised,
        address: &address,
    };
    state.login_throttle.check(&attempt).await?;

    let record = match &email {
        Some(email) => accounts::find_login(&state.db, email).await?,
        None => None,
    };
    let given_password = given_password.to_owned();
    let verified = match record {
        Some(record) => {
            let stored = record.password_hash.clone();
            web::block(move || password::verify(&given_password, &stored))
                .await?
                .then_some(record)
        }
        None => {
            web::block(move || password::verify_against_nothing(&given_password)).await?;
            None
        }
    };
    let Some(record) = verified else {
        state.login_throttle.record_failure(&attempt).await;
        return Err(ApiError::Unauthorized);
    };
    state.login_throttle.record_success(&attempt).await;
    let (token, expires_at) = state
        .jwt
        .issue(record.user_id, record.tenant_id, record.session_version)
        .map_err(ApiError::internal)?;
    Ok(Issued {
        tenant_id: record.tenant_id,
        user_id: record.user_id,
        token,
        expires_at: Timestamp::from(expires_at),
    })
}
