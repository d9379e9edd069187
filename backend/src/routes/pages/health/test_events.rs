//! `/app/health/test-events`: the recent test events and what they matched, for checking
//! an integration. Raw data: owners, admins and analysts.

use super::super::{SignedIn, base_url, encode, html, issue_csrf};
use super::period;
use crate::error::PageError;
use crate::state::AppState;
use crate::storage::health::test_events::{self, TestEvent, TestMatch};
use crate::storage::{goals, policies};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use dashboard::{HealthTabs, TestEventRow, TestEventsPage, TestMatchView};
use std::collections::HashMap;
use uuid::Uuid;

const DAYS: u32 = 7;
/// Test events shown at most: a QA session's worth.
const LIMIT: u64 = 100;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/app/health/test-events", web::get().to(show));
}

async fn show(
    state: web::Data<AppState>,
    request: HttpRequest,
    member: SignedIn,
) -> Result<HttpResponse, PageError> {
    if !member.role.can_read_events() {
        return Err(PageError::Forbidden(
            "Test events are raw events, for owners, admins and analysts",
        ));
    }
    let tenant = member.caller.tenant();
    let policy = policies::for_tenant(&state.db, tenant).await?;
    let period = period(
        Utc::now(),
        i64::from(DAYS) * 24,
        policy.retention.max_event_age_days,
    );
    let (found, goals) = tokio::try_join!(
        test_events::recent(&state.db, tenant, &period, LIMIT),
        goals::list(&state.db, tenant),
    )?;
    let names: HashMap<Uuid, String> = goals.into_iter().map(|g| (g.id, g.spec.name)).collect();
    let events = found
        .events
        .into_iter()
        .map(|event| row(event, &found.matches, &names))
        .collect();
    let csrf = issue_csrf(&request)?;
    let page = TestEventsPage {
        chrome: member.chrome(&csrf, "health"),
        tabs: HealthTabs {
            current: "test-events",
            raw_data: true,
        },
        days: DAYS,
        events,
        more: found.more,
        base_url: base_url(&request),
    };
    html(StatusCode::OK, &page, &csrf)
}

fn row(event: TestEvent, matches: &[TestMatch], names: &HashMap<Uuid, String>) -> TestEventRow {
    let mut views: Vec<TestMatchView> = matches
        .iter()
        .filter_map(|m| {
            let other = if event.is_detection {
                (m.detection_event_id == event.event_id).then_some(&m.conversion_event_id)
            } else {
                (m.conversion_event_id == event.event_id).then_some(&m.detection_event_id)
            }?;
            Some(TestMatchView {
                goal: names
                    .get(&m.goal_id)
                    .cloned()
                    .unwrap_or_else(|| "a deleted goal".to_owned()),
                kind: m.kind.clone(),
                other_event_id: other.clone(),
            })
        })
        .collect();
    // Direct credit first.
    views.sort_by_key(|v| v.kind != "direct");
    TestEventRow {
        received: event
            .received_time
            .format("%Y-%m-%d %H:%M:%S UTC")
            .to_string(),
        kind: if event.is_detection {
            "detection"
        } else {
            "conversion"
        },
        explain_href: (!event.is_detection)
            .then(|| format!("/app/explain?event_id={}", encode(&event.event_id))),
        event_id: event.event_id,
        what: event.what,
        keys: keys_text(event.keys.as_ref()),
        consent: event.consent,
        matches: views,
    }
}

/// `name=value` pairs in name order; a note when the consent policy stripped the keys.
fn keys_text(keys: Option<&serde_json::Value>) -> String {
    let Some(object) = keys.and_then(serde_json::Value::as_object) else {
        return "none stored (consent denied)".to_owned();
    };
    let mut pairs: Vec<String> = object
        .iter()
        .map(|(name, value)| format!("{name}={}", value.as_str().unwrap_or_default()))
        .collect();
    pairs.sort();
    pairs.join(" ")
}

#[cfg(test)]
mod tests {
    use super::keys_text;
    use serde_json::json;

    #[test]
    fn keys_read_as_pairs_and_stripped_keys_say_why() {
        let keys = json!({"user_id": "u-1", "session_token": "s-1"});
        assert_eq!(keys_text(Some(&keys)), "session_token=s-1 user_id=u-1");
        assert_eq!(keys_text(None), "none stored (consent denied)");
    }
}
