//! The one error type of the JSON API. Each variant documents its status code.
//!
//! Bodies have the shape `{"error": {"code", "message", "errors"?}}`. Internal causes are
//! logged once, here, with their context, and never sent to the client.

use crate::domain::FieldProblem;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// Everything a JSON endpoint can answer other than success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body or query cannot be used at all (not JSON, wrong shape).
    #[error("{0}")]
    BadRequest(String),
    /// 400: the body is well-formed but some fields are invalid; each one is listed.
    #[error("some fields are invalid")]
    InvalidFields(Vec<FieldProblem>),
    /// 401: the credential is missing, malformed, expired, revoked or unknown.
    #[error("a valid API key or session token is required")]
    Unauthorized,
    /// 403: the caller is known but its role or key scope does not allow this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// 404: no such resource in the caller's tenant (another tenant's id looks the same).
    #[error("not found")]
    NotFound,
    /// 409: the request conflicts with the current state (a taken email, the last owner).
    #[error("{0}")]
    Conflict(String),
    /// 413: the body is over the size or count limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 415: the body is not `application/json`.
    #[error("the body must be JSON, sent with Content-Type: application/json")]
    UnsupportedMediaType,
    /// 429: too many requests; retry after the given number of seconds.
    #[error("too many requests; retry after {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    /// 503: a backing service is unavailable; nothing was changed; retry later.
    #[error("the service is temporarily unavailable; retry after {retry_after_secs} s")]
    Unavailable { retry_after_secs: u64 },
    /// 500: a bug or an unexpected failure; the cause is logged, not sent.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(cause.into())
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::InvalidFields(_) => "invalid_fields",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::TooManyRequests { .. } => "rate_limited",
            ApiError::Unavailable { .. } => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        // A database that cannot be reached is an outage, not a bug: say so and let the
        // client retry.
        if crate::storage::availability::is_unavailable(&err) {
            tracing::error!(error = %err, "database unavailable");
            return ApiError::Unavailable {
                retry_after_secs: 2,
            };
        }
        ApiError::internal(err)
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(err: actix_web::error::BlockingError) -> Self {
        ApiError::internal(err.to_string())
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [FieldProblem]>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::InvalidFields(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(cause) = self {
            tracing::error!(error = %cause, debug = ?cause, "internal error");
        }
        let mut response = HttpResponse::build(self.status_code());
        match self {
            ApiError::TooManyRequests { retry_after_secs }
            | ApiError::Unavailable { retry_after_secs } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            ApiError::Unauthorized => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            _ => {}
        }
        let errors = match self {
            ApiError::InvalidFields(problems) => Some(problems.as_slice()),
            _ => None,
        };
        response.json(ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.to_string(),
                errors,
            },
        })
    }
}

/// Everything a dashboard page can answer other than the page: an HTML page that says what
/// happened and what to do, or, for a visitor who is not logged in, the way to the login.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// 303 to `/login`: no session, or one that has ended.
    #[error("log in first")]
    LoginRequired,
    /// 403: the member's role does not allow the page.
    #[error("{0}")]
    Forbidden(&'static str),
    /// 403: a form came without the token of the page that showed it.
    #[error("the form's security token is missing or out of date")]
    BadCsrf,
    /// 404.
    #[error("not found")]
    NotFound,
    /// Whatever the API's error says, as a page.
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<sea_orm::DbErr> for PageError {
    fn from(err: sea_orm::DbErr) -> Self {
        PageError::Api(err.into())
    }
}

impl PageError {
    fn describe(&self) -> (&'static str, String) {
        match self {
            PageError::LoginRequired => ("Log in first", "Your session has ended.".into()),
            PageError::Forbidden(why) => (
                "Not for your role",
                format!("{why}. Ask an owner or admin of your organisation."),
            ),
            PageError::BadCsrf => (
                "This form has expired",
                "Go back, reload the page and send the form again.".into(),
            ),
            PageError::NotFound => ("Not found", "There is nothing at this address.".into()),
            PageError::Api(ApiError::Internal(_)) => (
                "Something went wrong",
                "The error is logged on our side. Please try again in a moment.".into(),
            ),
            PageError::Api(ApiError::Unavailable { .. }) => (
                "Temporarily unavailable",
                "The service is busy or restarting. Please try again in a moment.".into(),
            ),
            PageError::Api(other) => ("This did not work", other.to_string()),
        }
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::LoginRequired => StatusCode::SEE_OTHER,
            PageError::Forbidden(_) | PageError::BadCsrf => StatusCode::FORBIDDEN,
            PageError::NotFound => StatusCode::NOT_FOUND,
            PageError::Api(api) => api.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let PageError::LoginRequired = self {
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/login"))
                .finish();
        }
        if let PageError::Api(ApiError::Internal(cause)) = self {
            tracing::error!(error = %cause, debug = ?cause, "internal error on a page");
        }
        let (title, message) = self.describe();
        let page = dashboard::ErrorPage {
            status: self.status_code().as_u16(),
            title: title.to_owned(),
            message,
            version: env!("CARGO_PKG_VERSION"),
        };
        let body = askama::Template::render(&page).unwrap_or_else(|_| title.to_owned());
        HttpResponse::build(self.status_code())
            .content_type("text/html; charset=utf-8")
            .body(body)
    }
}
