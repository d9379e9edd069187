//! `/app/goals`: the goals, their re-evaluation, and the forms that create and change them.
//! The forms are turned into the API's goal body and checked by the same parser, so the
//! page and the API accept exactly the same goals and say the same things about bad ones.

use super::{SignedIn, check_csrf, html, issue_csrf, redirect};
use crate::domain::goals::GoalSpec;
use crate::error::PageError;
use crate::state::AppState;
use crate::storage::goals::{self, GoalView};
use crate::storage::reevaluations::{self, Progress};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use dashboard::{FieldErrors, GoalEditPage, GoalForm, GoalRow, GoalsPage};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/app/goals", web::get().to(list))
        .route("/app/goals", web::post().to(create))
        .route("/app/goals/{id}", web::get().to(edit))
        .route("/app/goals/{id}", web::post().to(update));
}

const UNITS: [(&str, i64); 4] = [
    ("days", 86_400),
    ("hours", 3_600),
    ("minutes", 60),
    ("seconds", 1),
];

fn require_reader(member: &SignedIn) -> Result<(), PageError> {
    if member.role.can_read_events() {
        Ok(())
    } else {
        Err(PageError::Forbidden(
            "Goals are for owners, admins and analysts",
        ))
    }
}

fn require_manager(member: &SignedIn) -> Result<(), PageError> {
    if member.role.can_manage() {
        Ok(())
    } else {
        Err(PageError::Forbidden(
            "Goals are changed by owners and admins",
        ))
    }
}

/// The goal form as posted.
#[derive(Debug, Deserialize)]
struct GoalFields {
    csrf: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    labels: String,
    #[serde(default)]
    conversion_name: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    window: String,
    #[serde(default)]
    window_unit: String,
    #[serde(default)]
    min_confidence: String,
    #[serde(default)]
    dedup_seconds: String,
    requires_consent: Option<String>,
    active: Option<String>,
}

impl GoalFields {
    fn form(&self) -> GoalForm {
        GoalForm {
            name: self.name.clone(),
            labels: self.labels.clone(),
            conversion_name: self.conversion_name.clone(),
            key: self.key.clone(),
            window: self.window.clone(),
            window_unit: self.window_unit.clone(),
            min_confidence: self.min_confidence.clone(),
            dedup_seconds: self.dedup_seconds.clone(),
            requires_consent: self.requires_consent.is_some(),
            active: self.active.is_some(),
        }
    }

    /// The API's goal body. A number that does not parse goes in as the text typed, so the
    /// goal parser names the field.
    fn body(&self) -> Map<String, Value> {
        let number = |text: &str| -> Value {
            text.trim()
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::from(text.trim()))
        };
        let multiplier = UNITS
            .iter()
            .find(|(unit, _)| *unit == self.window_unit)
            .map_or(1, |(_, seconds)| *seconds);
        let window = match self.window.trim().parse::<i64>() {
            Ok(value) => Value::from(value.saturating_mul(multiplier)),
            Err(_) => Value::from(self.window.trim()),
        };
        let confidence = if self.min_confidence.trim().is_empty() {
            Value::from(0.0)
        } else {
            self.min_confidence
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(|v| serde_json::Number::from_f64(v).map(Value::Number))
                .unwrap_or_else(|| Value::from(self.min_confidence.trim()))
        };
        let labels: Vec<&str> = self
            .labels
            .split(',')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let mut body = Map::new();
        body.insert("name".into(), json!(self.name));
        body.insert("detection_labels".into(), json!(labels));
        body.insert("conversion_name".into(), json!(self.conversion_name.trim()));
        body.insert("key".into(), json!(self.key.trim()));
        body.insert("window_seconds".into(), window);
        body.insert("min_confidence".into(), confidence);
        if !self.dedup_seconds.trim().is_empty() {
            body.insert("dedup_seconds".into(), number(&self.dedup_seconds));
        }
        body.insert(
            "requires_consent".into(),
            json!(self.requires_consent.is_some()),
        );
        body.insert("active".into(), json!(self.active.is_some()));
        body
    }
}

fn form_of(spec: &GoalSpec) -> GoalForm {
    let (unit, seconds) = UNITS
        .iter()
        .find(|(_, seconds)| spec.window_seconds % seconds == 0)
        .copied()
        .unwrap_or(("seconds", 1));
    GoalForm {
        name: spec.name.clone(),
        labels: spec.detection_labels.join(", "),
        conversion_name: spec.conversion_name.clone(),
        key: spec.key.clone(),
        window: (spec.window_seconds / seconds).to_string(),
        window_unit: unit.to_owned(),
        min_confidence: spec.min_confidence.to_string(),
        dedup_seconds: spec.dedup_seconds.to_string(),
        requires_consent: spec.requires_consent,
        active: spec.active,
    }
}

fn duration(seconds: i64) -> String {
    match UNITS.iter().find(|(_, unit)| seconds % unit == 0) {
        Some(("days", unit)) => format!("{} d", seconds / unit),
        Some(("hours", unit)) => format!("{} h", seconds / unit),
        Some(("minutes", unit)) => format!("{} min", seconds / unit),
        _ => format!("{seconds} s"),
    }
}

fn describe(progress: Option<Progress>) -> String {
    let sessions = |n: i64| if n == 1 { "session" } else { "sessions" };
    match progress {
        Some(p) if p.status == "done" => format!(
            "re-evaluated {} {}",
            p.sessions_total,
            sessions(p.sessions_total)
        ),
        Some(p) => format!(
            "re-evaluating: {} of {} {}",
            p.sessions_done,
            p.sessions_total,
            sessions(p.sessions_total)
        ),
        None => String::new(),
    }
}

fn row(goal: GoalView, progress: Option<Progress>) -> GoalRow {
    let spec = &goal.spec;
    GoalRow {
        id: goal.id.to_string(),
        name: spec.name.clone(),
        labels: spec.detection_labels.join(", "),
        conversion_name: spec.conversion_name.clone(),
        key: spec.key.clone(),
        window: duration(spec.window_seconds),
        min_confidence: format!("{:.2}", spec.min_confidence),
        dedup: if spec.dedup_seconds == 0 {
            "–".to_owned()
        } else {
            duration(spec.dedup_seconds)
        },
        requires_consent: spec.requires_consent,
        active: spec.active,
        reevaluation: describe(progress),
    }
}

fn problems_of(problems: Vec<crate::domain::FieldProblem>) -> FieldErrors {
    let mut errors = FieldErrors::default();
    for problem in problems {
        errors.add(problem.field.clone(), problem.message.clone());
    }
    errors
}

/// The latest re-evaluation of one of the tenant's goals.
async fn progress_of(
    state: &AppState,
    tenant: &crate::auth::TenantScope,
    goal_id: uuid::Uuid,
) -> Result<Option<Progress>, sea_orm::DbErr> {
    Ok(reevaluations::progress(&state.db, tenant)
        .await?
        .remove(&goal_id))
}

async fn list_page(
    state: &AppState,
    request: &HttpRequest,
    member: &SignedIn,
    status: StatusCode,
    form: GoalForm,
    errors: FieldErrors,
) -> Result<HttpResponse, PageError> {
    let goals = goals::list(&state.db, member.caller.tenant()).await?;
    let mut progress = reevaluations::progress(&state.db, member.caller.tenant()).await?;
    let csrf = issue_csrf(request)?;
    let page = GoalsPage {
        chrome: member.chrome(&csrf, "goals"),
        goals: goals
            .into_iter()
            .map(|g| {
                let progress = progress.remove(&g.id);
                row(g, progress)
            })
            .collect(),
        form,
        errors,
    };
    html(status, &page, &csrf)
}

async fn list(
    state: web::Data<AppState>,
    request: HttpRequest,
    member: SignedIn,
) -> Result<HttpResponse, PageError> {
    require_reader(&member)?;
    list_page(
        &state,
        &request,
        &member,
        StatusCode::OK,
        GoalForm::default(),
        FieldErrors::default(),
    )
    .await
}

async fn create(
    state: web::Data<AppState>,
    request: HttpRequest,
    member: SignedIn,
    fields: web::Form<GoalFields>,
) -> Result<HttpResponse, PageError> {
    check_csrf(&request, fields.csrf.as_deref())?;
    require_manager(&member)?;
    let spec = match GoalSpec::parse(&fields.body()) {
        Ok(spec) => spec,
        Err(problems) => {
            return list_page(
                &state,
                &request,
                &member,
                StatusCode::BAD_REQUEST,
                fields.form(),
                problems_of(problems),
            )
            .await;
        }
    };
    let caller = &member.caller;
    let goal = goals::create(&state.db, caller.tenant(), caller.actor(), &spec).await?;
    state
        .ingest
        .matcher
        .goal_changed(caller.tenant().id(), goal.id);
    Ok(redirect("/app/goals", None))
}

fn goal_id(raw: &str) -> Result<Uuid, PageError> {
    Uuid::parse_str(raw).map_err(|_| PageError::NotFound)
}

#[derive(Debug, Deserialize)]
struct EditQuery {
    saved: Option<String>,
}

async fn edit(
    state: web::Data<AppState>,
    request: HttpRequest,
    member: SignedIn,
    id: web::Path<String>,
    query: web::Query<EditQuery>,
) -> Result<HttpResponse, PageError> {
    require_manager(&member)?;
    let goal = goals::get(&state.db, member.caller.tenant(), goal_id(&id)?)
        .await?
        .ok_or(PageError::NotFound)?;
    let csrf = issue_csrf(&request)?;
    let page = GoalEditPage {
        chrome: member.chrome(&csrf, "goals"),
        id: goal.id.to_string(),
        form: form_of(&goal.spec),
        errors: FieldErrors::default(),
        reevaluation: describe(progress_of(&state, member.caller.tenant(), goal.id).await?),
        saved: query.saved.is_some(),
    };
    html(StatusCode::OK, &page, &csrf)
}

async fn update(
    state: web::Data<AppState>,
    request: HttpRequest,
    member: SignedIn,
    id: web::Path<String>,
    fields: web::Form<GoalFields>,
) -> Result<HttpResponse, PageError> {
    check_csrf(&request, fields.csrf.as_deref())?;
    require_manager(&member)?;
    let id = goal_id(&id)?;
    let caller = &member.caller;
    let spec = match GoalSpec::parse(&fields.body()) {
        Ok(spec) => spec,
        Err(problems) => {
            // Still only the tenant's own goal: another's id answers 404, not a form.
            goals::get(&state.db, caller.tenant(), id)
                .await?
                .ok_or(PageError::NotFound)?;
            let csrf = issue_csrf(&request)?;
            let page = GoalEditPage {
                chrome: member.chrome(&csrf, "goals"),
                id: id.to_string(),
                form: fields.form(),
                errors: problems_of(problems),
                reevaluation: describe(progress_of(&state, caller.tenant(), id).await?),
                saved: false,
            };
            return html(StatusCode::BAD_REQUEST, &page, &csrf);
        }
    };
    let goal = goals::replace(&state.db, caller.tenant(), caller.actor(), id, &spec)
        .await?
        .ok_or(PageError::NotFound)?;
    state
        .ingest
        .matcher
        .goal_changed(caller.tenant().id(), goal.id);
    Ok(redirect(&format!("/app/goals/{}?saved=1", goal.id), None))
}
