//! HTTP routes, by resource. JSON API handlers live beside the dashboard's page handlers.

pub(crate) mod accounts;
pub(crate) mod api_keys;
pub(crate) mod attributions;
mod audit;
mod body;
mod client_address;
mod events;
mod goals;
mod health;
mod home;
mod identities;
mod members;
mod pages;
mod policies;
mod reports;

use crate::domain::FieldProblem;
use crate::error::ApiError;
use actix_web::error::{PathError, QueryPayloadError};
use actix_web::{HttpRequest, web};
use body::read_json;

/// Largest JSON body the control-plane endpoints accept.
pub(crate) const CONTROL_BODY_LIMIT: usize = 64 * 1024;

/// Mounts every route and the extractor settings that turn bad input into clear errors.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PathConfig::default().error_handler(path_error))
        .app_data(web::QueryConfig::default().error_handler(query_error))
        .configure(health::configure)
        .configure(home::configure)
        .configure(pages::configure)
        .service(
            web::scope("/v1")
                .configure(accounts::configure)
                .configure(api_keys::configure)
                .configure(members::configure)
                .configure(audit::configure)
                .configure(events::configure)
                .configure(goals::configure)
                .configure(attributions::configure)
                .configure(policies::configure)
                .configure(identities::configure)
                .configure(reports::configure),
        )
        .default_service(web::to(not_found));
}

async fn not_found() -> actix_web::HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::NotFound)
}

/// An id in a path that does not parse cannot name anything: 404, as for a missing id.
fn path_error(_: PathError, _: &HttpRequest) -> actix_web::Error {
    ApiError::NotFound.into()
}

fn query_error(err: QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    ApiError::BadRequest(format!("the query string is not valid: {err}")).into()
}

/// Collects the problems of a request body, so that all of them are reported at once.
#[derive(Debug, Default)]
struct FieldCheck(Vec<FieldProblem>);

impl FieldCheck {
    /// Keeps the value, or records its problem.
    fn take<T>(&mut self, parsed: Result<T, FieldProblem>) -> Option<T> {
        parsed.map_err(|problem| self.0.push(problem)).ok()
    }

    /// Fails with every problem recorded, if any.
    fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::InvalidFields(self.0))
        }
    }
}

/// A field the body must have.
fn required<'a, T: ?Sized>(field: &str, value: Option<&'a T>) -> Result<&'a T, FieldProblem> {
    value.ok_or_else(|| FieldProblem::new(field, "missing_field", format!("`{field}` is required")))
}
