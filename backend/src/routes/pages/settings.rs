//! `/app/settings`: the consent policy (owners and admins change it; analysts read it).

use super::{SignedIn, check_csrf, html, issue_csrf, redirect};
use crate::domain::events::Consent;
use crate::domain::policy::ConsentPolicy;
use crate::error::PageError;
use crate::state::AppState;
use crate::storage::policies;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use dashboard::SettingsPage;
use serde::Deserialize;
use serde_json::Value;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/app/settings", web::get().to(show))
        .route("/app/settings/consent", web::post().to(save_consent));
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
    if !member.role.can_read_events() {
        return Err(PageError::Forbidden(
            "Privacy settings are for owners, admins and analysts",
        ));
    }
    let policy = policies::get(&state.db, member.caller.tenant().id()).await?;
    let csrf = issue_csrf(&request)?;
    let page = SettingsPage {
        chrome: member.chrome(&csrf, "settings"),
        consent_default: match policy.consent.default {
            Consent::Granted => "granted",
            Consent::Denied => "denied",
        },
        strip_keys_without_consent: policy.consent.strip_keys_without_consent,
        saved: query.saved.is_some(),
    };
    html(StatusCode::OK, &page, &csrf)
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
    if !member.role.can_manage() {
        return Err(PageError::Forbidden(
            "The consent policy is changed by owners and admins",
        ));
    }
    // The API's own parser, so a forged value is refused the same way.
    let default = form.default.clone().map(Value::from);
    let strip = Value::from(form.strip_keys_without_consent.is_some());
    let policy = ConsentPolicy::parse(default.as_ref(), Some(&strip))
        .map_err(|problems| PageError::Api(crate::error::ApiError::InvalidFields(problems)))?;
    let caller = &member.caller;
    policies::put_consent(&state.db, caller.tenant(), caller.actor(), policy).await?;
    state.ingest.policies.invalidate(caller.tenant().id());
    Ok(redirect("/app/settings?saved=1", None))
}
