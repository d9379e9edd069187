//! The dashboard's pages: server-rendered HTML that works without JavaScript. Handlers load
//! data and hand a page struct of the `dashboard` crate over; forms post back here, carry
//! the CSRF token, and are answered with a redirect (no state ever changes on a GET).

mod account;
mod audit;
mod explain;
mod goals;
mod health;
mod keys;
mod members;
mod models;
mod overview;
mod quality;
mod reports;
mod settings;

use crate::auth::{Caller, CallerKind, cookies, csrf};
use crate::domain::Role;
use crate::error::{ApiError, PageError};
use crate::state::AppState;
use crate::storage::accounts;
use actix_web::cookie::Cookie;
use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use std::future::Future;
use std::pin::Pin;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(account::configure)
        .configure(audit::configure)
        .configure(explain::configure)
        .configure(goals::configure)
        .configure(health::configure)
        .configure(keys::configure)
        .configure(members::configure)
        .configure(models::configure)
        .configure(overview::configure)
        .configure(quality::configure)
        .configure(reports::configure)
        .configure(settings::configure);
}

/// A logged-in member on a dashboard page.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub caller: Caller,
    pub role: Role,
    pub organization: String,
    pub email: String,
}

impl SignedIn {
    /// The header and navigation of a signed-in page.
    pub fn chrome(&self, csrf: &csrf::Issued, section: &'static str) -> dashboard::Chrome {
        dashboard::Chrome {
            organization: self.organization.clone(),
            email: self.email.clone(),
            role: self.role.as_str(),
            can_manage: self.role.can_manage(),
            csrf: csrf.token.clone(),
            section,
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

impl FromRequest for SignedIn {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| ApiError::internal("application state is missing"))?
                .clone();
            let token = cookies::session_token(&req).ok_or(PageError::LoginRequired)?;
            let caller = match Caller::from_session_token(&state, &token).await {
                Ok(caller) => caller,
                Err(ApiError::Unauthorized) => return Err(PageError::LoginRequired),
                Err(other) => return Err(other.into()),
            };
            let CallerKind::Member { user_id, role } = *caller.kind() else {
                return Err(PageError::LoginRequired);
            };
            let (organization, email) =
                accounts::member_profile(&state.db, caller.tenant(), user_id)
                    .await?
                    .ok_or(PageError::LoginRequired)?;
            Ok(SignedIn {
                caller,
                role,
                organization,
                email,
            })
        })
    }
}

/// The CSRF token of the page about to be shown (and its cookie, if the browser has none).
fn issue_csrf(request: &HttpRequest) -> Result<csrf::Issued, PageError> {
    csrf::issue(request).map_err(|e| PageError::Api(ApiError::internal(e.to_string())))
}

/// Refuses a form post whose token does not match the browser's.
fn check_csrf(request: &HttpRequest, submitted: Option<&str>) -> Result<(), PageError> {
    if csrf::verify(request, submitted) {
        Ok(())
    } else {
        Err(PageError::BadCsrf)
    }
}

/// A rendered page with `status`, setting the CSRF cookie when it is new. Pages of a
/// signed-in member are never stored by a cache.
fn html(
    status: StatusCode,
    page: &impl askama::Template,
    csrf: &csrf::Issued,
) -> Result<HttpResponse, PageError> {
    let body = page
        .render()
        .map_err(|e| PageError::Api(ApiError::internal(e)))?;
    let mut response = HttpResponse::build(status);
    response
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"));
    if let Some(cookie) = &csrf.cookie {
        response.cookie(cookie.clone());
    }
    Ok(response.body(body))
}

/// After a form: go to `location`, setting `cookie` if given (post/redirect/get).
fn redirect(location: &str, cookie: Option<Cookie<'static>>) -> HttpResponse {
    let mut response = HttpResponse::SeeOther();
    response.insert_header((header::LOCATION, location));
    if let Some(cookie) = cookie {
        response.cookie(cookie);
    }
    response.finish()
}

/// The address clients reach this server at, for ready-to-paste commands.
fn base_url(request: &HttpRequest) -> String {
    let info = request.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

/// Percent-encodes a query string value (everything but RFC 3986's unreserved characters).
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
