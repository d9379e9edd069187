//! `/app/explain?event_id=...`: why a conversion did or did not match (owners, admins,
//! analysts), from the same explanation the API gives.

use super::{SignedIn, html, issue_csrf};
use crate::error::{ApiError, PageError};
use crate::routes::attributions::explanation;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use dashboard::{ExplainPage, ExplainedCandidate, ExplainedGoal};
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/app/explain", web::get().to(show));
}

#[derive(Debug, Deserialize)]
struct ExplainQuery {
    event_id: Option<String>,
}

async fn show(
    state: web::Data<AppState>,
    request: HttpRequest,
    member: SignedIn,
    query: web::Query<ExplainQuery>,
) -> Result<HttpResponse, PageError> {
    if !member.role.can_read_events() {
        return Err(PageError::Forbidden(
            "Explanations show raw events, for owners, admins and analysts",
        ));
    }
    let event_id = query.event_id.as_deref().map(str::trim).unwrap_or_default();
    let (status, goals, not_found) = if event_id.is_empty() {
        (StatusCode::OK, None, false)
    } else {
        match explanation(&state, &member.caller, event_id).await {
            Ok(explained) => (
                StatusCode::OK,
                Some(
                    explained
                        .goals
                        .into_iter()
                        .map(|goal| ExplainedGoal {
                            name: goal.name,
                            candidates: goal
                                .candidates
                                .into_iter()
                                .map(|c| ExplainedCandidate {
                                    detection_event_id: c.detection_event_id,
                                    event_time: c
                                        .event_time
                                        .as_datetime()
                                        .format("%Y-%m-%d %H:%M:%S%.3f UTC")
                                        .to_string(),
                                    label: c.label,
                                    entity_id: c.entity_id,
                                    confidence: format!("{:.2}", c.confidence),
                                    verdict: c.verdict,
                                })
                                .collect(),
                        })
                        .collect(),
                ),
                false,
            ),
            Err(ApiError::NotFound) => (StatusCode::NOT_FOUND, None, true),
            Err(other) => return Err(other.into()),
        }
    };
    let csrf = issue_csrf(&request)?;
    let page = ExplainPage {
        chrome: member.chrome(&csrf, "explain"),
        event_id: event_id.to_owned(),
        goals,
        not_found,
    };
    html(status, &page, &csrf)
}
