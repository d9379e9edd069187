//! `GET /v1/reports/labels`: the label-by-conversion table, as JSON or CSV, for every role
//! and for `read`-scoped keys.

pub(crate) mod query;
pub(crate) mod render;

use crate::auth::Caller;
use crate::domain::{Role, Scope};
use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::goals;
use crate::storage::reports::{self, GoalFilter, LabelQuery, LabelRow};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use query::{Format, ReportParams};

/// The header that tells how many rows the report has before `limit`.
const TOTAL_ROWS: &str = "x-total-rows";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/reports/labels", web::get().to(labels));
}

async fn labels(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require_access(Scope::Read, Role::can_read_reports)?;
    // Read here rather than by an extractor, so that 401/403 come before 400.
    let pairs = web::Query::<Vec<(String, String)>>::from_query(request.query_string())
        .map_err(|err| ApiError::BadRequest(format!("the query string is not valid: {err}")))?
        .into_inner();
    let params =
        ReportParams::parse(&pairs, chrono::Utc::now()).map_err(ApiError::InvalidFields)?;

    let goal = match params.goal {
        None => GoalFilter::AllActive,
        // Another tenant's goal answers as a missing one does.
        Some(id) => {
            let goal = goals::get(&state.db, caller.tenant(), id)
                .await?
                .ok_or(ApiError::NotFound)?;
            GoalFilter::One {
                id,
                labels: goal.spec.detection_labels,
            }
        }
    };
    let query = LabelQuery {
        from: params.from,
        to: params.to,
        model_versions: params.model_versions.clone(),
        goal,
        group_by: params.group_by,
    };
    let mut report = reports::labels(&state.db, caller.tenant(), &query).await?;
    let total_rows = report.rows.len();
    sort(&mut report.rows);
    report.rows.truncate(params.limit);

    let mut response = HttpResponse::Ok();
    response
        .insert_header((TOTAL_ROWS, total_rows.to_string()))
        .insert_header((header::VARY, "Accept"));
    let format = params.format.unwrap_or_else(|| negotiate(&request));
    Ok(match format {
        Format::Json => response.json(render::json(&report.rows, &report.totals, params.group_by)),
        Format::Csv => response
            .insert_header((header::CONTENT_TYPE, "text/csv; charset=utf-8"))
            .insert_header((
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"labels.csv\"",
            ))
            .body(render::csv(&report.rows, params.group_by)),
    })
}

/// Most detections first; then label, entity or category (rows without a category last) and
/// model version, each compared byte-wise, so the order is the same on every backend.
pub(crate) fn sort(rows: &mut [LabelRow]) {
    rows.sort_by(|a, b| {
        let (a_label, a_group, a_version) = &a.key;
        let (b_label, b_group, b_version) = &b.key;
        b.detections
            .cmp(&a.detections)
            .then_with(|| a_label.cmp(b_label))
            .then_with(|| a_group.is_none().cmp(&b_group.is_none()))
            .then_with(|| a_group.cmp(b_group))
            .then_with(|| a_version.cmp(b_version))
    });
}

/// CSV when the `Accept` header prefers `text/csv` to `application/json` (by `q`, then by
/// position); JSON otherwise, including when neither is named.
fn negotiate(request: &HttpRequest) -> Format {
    let Some(accept) = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
    else {
        return Format::Json;
    };
    let mut best: Option<(f32, Format)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim();
        let format = if media.eq_ignore_ascii_case("text/csv") {
            Format::Csv
        } else if media.eq_ignore_ascii_case("application/json") {
            Format::Json
        } else {
            continue;
        };
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if q > 0.0 && best.is_none_or(|(best_q, _)| q > best_q) {
            best = Some((q, format));
        }
    }
    best.map_or(Format::Json, |(_, format)| format)
}
