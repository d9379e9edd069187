//! `/app/settings`: the consent and retention policies (owners and admins change them;
//! analysts read them).

use super::{SignedIn, check_csrf, html, issue_csrf, redirect};
use crate::domain::events::Consent;
use crate::domain::policy::{ConsentPolicy, PERIODS, RetentionPolicy, TenantPolicy};
use crate::domain::retention::DataClass;
use crate::error::{ApiError, PageError};
use crate::state::AppState;
use crate::storage::{TenantScope, policies, retention};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use dashboard::{FieldErrors, PurgeRow, RetentionField, SettingsPage};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashMap;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/app/settings", web::get().to(show))
        .route("/app/settings/consent", web::post().to(save_consent))
        .route("/app/settings/retention", web::post().to(save_retention));
}

#[derive(Debug, Deserialize)]
struct ShowQuery {
    saved: Option<String>,
}

async fn show(
    state: web::Data<AppState>,
    request: HttpRequest,
    member: SignedIn,
    query: web::Query<ShowQuery>,
) -> Result<HttpResponse, PageError> {
    require_reader(&member)?;
    let policy = policies::for_tenant(&state.db, member.caller.tenant()).await?;
    let stored = policy.retention.days().map(|days| days.to_string());
    let saved = match query.saved.as_deref() {
        Some("retention") => Some("retention"),
        Some(_) => Some("consent"),
        None => None,
    };
    let purges = purge_rows(&state, member.caller.tenant(), &policy).await?;
    let (page, csrf) = page(
        &request,
        &member,
        (&policy, purges),
        stored,
        &FieldErrors::default(),
        saved,
    )?;
    html(StatusCode::OK, &page, &csrf)
}

fn require_reader(member: &SignedIn) -> Result<(), PageError> {
    if member.role.can_read_events() {
        Ok(())
    } else {
        Err(PageError::Forbidden(
            "Privacy settings are for owners, admins and analysts",
        ))
    }
}

/// Per class: its period, the purge's last run and the oldest row kept (one index probe
/// each, through the tenant/time indexes the purge itself uses).
async fn purge_rows(
    state: &AppState,
    tenant: &TenantScope,
    policy: &TenantPolicy,
) -> Result<Vec<PurgeRow>, PageError> {
    let runs = retention::last_runs(&state.db, tenant).await?;
    let when = |at: chrono::DateTime<chrono::Utc>| at.format("%Y-%m-%d %H:%M UTC").to_string();
    let mut rows = Vec::with_capacity(DataClass::ALL.len());
    for class in DataClass::ALL {
        let run = runs.iter().find(|(c, _)| *c == class).map(|(_, run)| *run);
        let oldest = retention::oldest_kept(&state.db, tenant, class).await?;
        let (label, expires_by) = PurgeRow::describe(class.as_str());
        rows.push(PurgeRow {
            class: class.as_str(),
            label,
            expires_by,
            period_days: class.period_days(&policy.retention),
            last_run: run.map(|run| when(run.at)),
            last_deleted: run.map_or(0, |run| run.deleted),
            total_deleted: run.map_or(0, |run| run.total_deleted),
            oldest_kept: oldest.map(when),
        });
    }
    Ok(rows)
}

/// The page with the retention periods shown as `retention` (stored, or as submitted), and
/// what the purge has done.
fn page(
    request: &HttpRequest,
    member: &SignedIn,
    (policy, purges): (&TenantPolicy, Vec<PurgeRow>),
    retention: [String; 5],
    errors: &FieldErrors,
    saved: Option<&'static str>,
) -> Result<(SettingsPage, crate::auth::csrf::Issued), PageError> {
    let csrf = issue_csrf(request)?;
    let mut values = retention.into_iter();
    let retention = PERIODS
        .iter()
        .map(|(name, range)| {
            let value = values.next().unwrap_or_default();
            RetentionField::new(name, (*range.start(), *range.end()), value, errors)
        })
        .collect();
    let page = SettingsPage {
        chrome: member.chrome(&csrf, "settings"),
        consent_default: match policy.consent.default {
            Consent::Granted => "granted",
            Consent::Denied => "denied",
        },
        strip_keys_without_consent: policy.consent.strip_keys_without_consent,
        retention,
        saved,
        purges,
    };
    Ok((page, csrf))
}

#[derive(Debug, Deserialize)]
struct ConsentFields {
    csrf: Option<String>,
    default: Option<String>,
    strip_keys_without_consent: Option<String>,
}

async fn save_consent(
    state: web::Data<AppState>,
    request: HttpRequest,
    member: SignedIn,
    form: web::Form<ConsentFields>,
) -> Result<HttpResponse, PageError> {
    check_csrf(&request, form.csrf.as_deref())?;
    require_manager(&member)?;
    // The API's own parser, so a forged value is refused the same way.
    let default = form.default.clone().map(Value::from);
    let strip = Value::from(form.strip_keys_without_consent.is_some());
    let policy = ConsentPolicy::parse(default.as_ref(), Some(&strip))
        .map_err(|problems| PageError::Api(ApiError::InvalidFields(problems)))?;
    let caller = &member.caller;
    policies::put_consent(&state.db, caller.tenant(), caller.actor(), policy).await?;
    state.ingest.policy_changed(caller.tenant().id());
    Ok(redirect("/app/settings?saved=consent", None))
}

fn require_manager(member: &SignedIn) -> Result<(), PageError> {
    if member.role.can_manage() {
        Ok(())
    } else {
        Err(PageError::Forbidden(
            "Privacy policies are changed by owners and admins",
        ))
    }
}

/// The retention form: the five periods as typed, and the CSRF token.
async fn save_retention(
    state: web::Data<AppState>,
    request: HttpRequest,
    member: SignedIn,
    form: web::Form<HashMap<String, String>>,
) -> Result<HttpResponse, PageError> {
    check_csrf(&request, form.get("csrf").map(String::as_str))?;
    require_manager(&member)?;
    let typed = PERIODS.map(|(name, _)| form.get(name).cloned().unwrap_or_default());
    // The API's own parser: a number as typed, so text or an empty field is refused the
    // same way as in JSON.
    let body: Map<String, Value> = PERIODS
        .iter()
        .zip(&typed)
        .map(|((name, _), text)| (name.to_string(), typed_number(text)))
        .collect();
    let caller = &member.caller;
    match RetentionPolicy::parse(&body) {
        Ok(policy) => {
            policies::put_retention(&state.db, caller.tenant(), caller.actor(), policy).await?;
            state.ingest.policy_changed(caller.tenant().id());
            Ok(redirect("/app/settings?saved=retention#retention", None))
        }
        Err(problems) => {
            let mut errors = FieldErrors::default();
            for problem in problems {
                errors.add(problem.field, problem.message);
            }
            let policy = policies::for_tenant(&state.db, caller.tenant()).await?;
            let purges = purge_rows(&state, caller.tenant(), &policy).await?;
            let (page, csrf) = page(&request, &member, (&policy, purges), typed, &errors, None)?;
            html(StatusCode::BAD_REQUEST, &page, &csrf)
        }
    }
}

/// A form field as the JSON value a client would have sent: a whole number, nothing, or text.
fn typed_number(text: &str) -> Value {
    let text = text.trim();
    if text.is_empty() {
        Value::Null
    } else if let Ok(number) = text.parse::<u64>() {
        Value::from(number)
    } else {
        Value::from(text)
    }
}
