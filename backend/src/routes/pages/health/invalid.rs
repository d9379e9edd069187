//! `/app/health/invalid`: the invalid-events log with payloads and errors, newest first,
//! filtered by error code, a page at a time. Raw data: owners, admins and analysts.

use super::super::{SignedIn, base_url, encode, html, issue_csrf};
use crate::error::PageError;
use crate::state::AppState;
use crate::storage::invalid_events::{LogEntry, LogQuery, log_page};
use crate::storage::policies;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use dashboard::{
    ERROR_CODES, EntryError, FilterOption, HealthTabs, InvalidEntry, InvalidEventsPage,
};
use serde::Deserialize;
use uuid::Uuid;

/// Entries per page: enough to spot a pattern, few enough to read.
const PER_PAGE: u64 = 50;
/// Pretty payloads longer than this are shortened on the page (a rejected event can be as
/// large as a whole batch).
const MAX_PAYLOAD_BYTES: usize = 16 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/app/health/invalid", web::get().to(show));
}

#[derive(Debug, Deserialize)]
struct LogParams {
    code: Option<String>,
    /// The id of the last entry of the previous page.
    before: Option<String>,
}

async fn show(
    state: web::Data<AppState>,
    request: HttpRequest,
    member: SignedIn,
    params: web::Query<LogParams>,
) -> Result<HttpResponse, PageError> {
    if !member.role.can_read_events() {
        return Err(PageError::Forbidden(
            "The invalid-events log shows raw payloads, for owners, admins and analysts",
        ));
    }
    let tenant = member.caller.tenant();
    let asked = params.code.as_deref().map(str::trim).unwrap_or_default();
    let known = ERROR_CODES.iter().any(|(code, _)| *code == asked);
    let code = if known {
        asked.to_owned()
    } else {
        String::new()
    };
    // A cursor that is not an id reads as no cursor: the newest page.
    let before = params
        .before
        .as_deref()
        .and_then(|raw| Uuid::parse_str(raw.trim()).ok());
    let query = LogQuery {
        code: known.then(|| code.clone()),
        before,
        limit: PER_PAGE,
    };
    let (policy, page) = tokio::try_join!(
        policies::for_tenant(&state.db, tenant),
        log_page(&state.db, tenant, &query),
    )?;
    let filter = if code.is_empty() {
        String::new()
    } else {
        format!("code={}&", encode(&code))
    };
    let older_href = page
        .more
        .then(|| page.entries.last())
        .flatten()
        .map(|last| format!("/app/health/invalid?{filter}before={}", last.id));
    let newest_href = format!("/app/health/invalid?{}", filter.trim_end_matches('&'));
    let csrf = issue_csrf(&request)?;
    let view = InvalidEventsPage {
        chrome: member.chrome(&csrf, "health"),
        tabs: HealthTabs {
            current: "invalid",
            raw_data: true,
        },
        codes: ERROR_CODES
            .iter()
            .map(|(value, meaning)| FilterOption {
                value: (*value).to_owned(),
                label: format!("{value} ({meaning})"),
                selected: *value == code,
            })
            .collect(),
        unknown_code: (!asked.is_empty() && !known).then(|| asked.to_owned()),
        code,
        entries: page.entries.into_iter().map(entry).collect(),
        limit: PER_PAGE,
        older_page: before.is_some(),
        older_href,
        newest_href,
        retention_days: i64::from(policy.retention.invalid_events_days),
        base_url: base_url(&request),
    };
    html(StatusCode::OK, &view, &csrf)
}

fn entry(row: LogEntry) -> InvalidEntry {
    let pretty =
        serde_json::to_string_pretty(&row.payload).unwrap_or_else(|_| row.payload.to_string());
    let (payload, cut_bytes) = shorten(pretty, MAX_PAYLOAD_BYTES);
    InvalidEntry {
        received: row
            .received_time
            .format("%Y-%m-%d %H:%M:%S%.3f UTC")
            .to_string(),
        event_type: row.event_type,
        event_id: row.event_id,
        payload,
        cut_bytes,
        errors: row
            .errors
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|error| {
                        let text = |name: &str| error[name].as_str().unwrap_or_default().to_owned();
                        EntryError {
                            field: text("field"),
                            code: text("code"),
                            message: text("message"),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// `text` cut to at most `max` bytes on a character boundary, and how many bytes were cut.
fn shorten(mut text: String, max: usize) -> (String, Option<usize>) {
    if text.len() <= max {
        return (text, None);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = text.len() - end;
    text.truncate(end);
    text.push_str("\n…");
    (text, Some(cut))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_payloads_are_cut_on_a_character_boundary() {
        assert_eq!(shorten("abc".into(), 3), ("abc".to_owned(), None));
        let (text, cut) = shorten("aé".repeat(4), 4);
        assert_eq!(text, "aéa\n…");
        assert_eq!(cut, Some(8));
    }
}
