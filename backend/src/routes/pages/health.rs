//! `/app/health`: Tracking health over the last 24 hours or 7 days, in aggregates only, so
//! every role may read it. The raw pages beside it (the invalid-events log and the test
//! events) are in the submodules, for owners, admins and analysts.

mod invalid;
mod test_events;

use super::{SignedIn, base_url, encode, html, issue_csrf};
use crate::error::PageError;
use crate::state::AppState;
use crate::storage::health::broken_keys::{self, GoalKey};
use crate::storage::health::traffic::LATENESS_BOUNDS;
use crate::storage::health::{Period, hour_key, rejections, traffic};
use crate::storage::{goals, policies};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Duration, DurationRound, Utc};
use dashboard::{
    CodeRow, FilterOption, HealthPage, HealthTabs, HourBar, KeyCoverageRow, LatenessRow,
    code_meaning, percent,
};
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/app/health", web::get().to(show))
        .configure(invalid::configure)
        .configure(test_events::configure);
}

/// The periods the page offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Range {
    Day,
    Week,
}

impl Range {
    const ALL: [Range; 2] = [Range::Day, Range::Week];

    /// The `range` parameter; anything else is the default, the last day.
    fn parse(raw: Option<&str>) -> Self {
        match raw {
            Some("7d") => Range::Week,
            _ => Range::Day,
        }
    }

    fn value(self) -> &'static str {
        match self {
            Range::Day => "24h",
            Range::Week => "7d",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Range::Day => "the last 24 hours",
            Range::Week => "the last 7 days",
        }
    }

    /// The choice in the form (short, for phone widths).
    fn choice(self) -> &'static str {
        match self {
            Range::Day => "24 hours",
            Range::Week => "7 days",
        }
    }

    fn hours(self) -> i64 {
        match self {
            Range::Day => 24,
            Range::Week => 24 * 7,
        }
    }
}

/// The last `hours` UTC hours up to `now`, the current one included (so that the hours of
/// the chart are whole, except the last).
fn period(now: DateTime<Utc>, hours: i64, max_event_age_days: u16) -> Period {
    let this_hour = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
    Period {
        from: this_hour - Duration::hours(hours - 1),
        to: now + Duration::seconds(1),
        max_event_age: Duration::days(i64::from(max_event_age_days)),
    }
}

/// What each lateness bucket holds, in the order of [`LATENESS_BOUNDS`].
const LATENESS_NAMES: [&str; LATENESS_BOUNDS.len()] = [
    "before its event time (the sender's clock is ahead)",
    "under 1 s",
    "1–10 s",
    "10 s – 1 min",
    "1–10 min",
    "10 min – 1 h",
    "1 h – 1 day",
    "1 day or later",
];

#[derive(Debug, Deserialize)]
struct HealthQuery {
    range: Option<String>,
}

async fn show(
    state: web::Data<AppState>,
    request: HttpRequest,
    member: SignedIn,
    query: web::Query<HealthQuery>,
) -> Result<HttpResponse, PageError> {
    let tenant = member.caller.tenant();
    let range = Range::parse(query.range.as_deref());
    let policy = policies::for_tenant(&state.db, tenant).await?;
    let period = period(
        Utc::now(),
        range.hours(),
        policy.retention.max_event_age_days,
    );
    let (traffic, rejections, goals) = tokio::try_join!(
        traffic::traffic(&state.db, tenant, &period),
        rejections::rejections(&state.db, tenant, &period),
        goals::list(&state.db, tenant),
    )?;
    let mut coverage = Vec::new();
    for goal in goals.into_iter().filter(|goal| goal.spec.active) {
        let figures = broken_keys::key_coverage(
            &state.db,
            tenant,
            &period,
            &GoalKey {
                conversion_name: goal.spec.conversion_name.clone(),
                key: goal.spec.key.clone(),
                window_seconds: goal.spec.window_seconds,
            },
        )
        .await?;
        coverage.push(KeyCoverageRow {
            goal: goal.spec.name,
            key: goal.spec.key,
            conversions: figures.conversions,
            without_key: figures.without_key,
            unseen_key: figures.unseen_key,
            broken: figures.broken(),
            share: percent(figures.broken(), figures.conversions),
            sampled: figures.conversions >= broken_keys::SAMPLE,
        });
    }

    let mut hours = Vec::with_capacity(range.hours() as usize);
    let mut hour = period.from;
    while hour < period.to {
        let key = hour_key(hour);
        let accepted = traffic.per_hour.get(&key).copied().unwrap_or_default();
        hours.push(HourBar {
            hour: format!("{key}:00"),
            detections: accepted.detections,
            conversions: accepted.conversions,
            rejected: rejections.per_hour.get(&key).copied().unwrap_or(0),
        });
        hour += Duration::hours(1);
    }
    let raw_data = member.role.can_read_events();
    let live = traffic.live_events();
    let detections: i64 = hours.iter().map(|h| h.detections).sum();
    let conversions: i64 = hours.iter().map(|h| h.conversions).sum();
    let csrf = issue_csrf(&request)?;
    let page = HealthPage {
        chrome: member.chrome(&csrf, "health"),
        tabs: HealthTabs {
            current: "summary",
            raw_data,
        },
        ranges: Range::ALL
            .iter()
            .map(|r| FilterOption {
                value: r.value().to_owned(),
                label: r.choice().to_owned(),
                selected: *r == range,
            })
            .collect(),
        range_label: range.label(),
        from: period.from.format("%Y-%m-%d %H:%M UTC").to_string(),
        detections,
        conversions,
        rejected: rejections.total,
        rejected_share: percent(rejections.total, live + rejections.total),
        consent_denied: traffic.consent_denied,
        consent_denied_share: percent(traffic.consent_denied, live),
        test_events: traffic.test_events,
        chart: dashboard::hourly_chart::render(&hours),
        hours,
        codes: rejections
            .by_code
            .into_iter()
            .map(|row| CodeRow {
                meaning: code_meaning(&row.code),
                log_href: raw_data
                    .then(|| format!("/app/health/invalid?code={}", encode(&row.code))),
                code: row.code,
                events: row.events,
                errors: row.errors,
            })
            .collect(),
        lateness: LATENESS_NAMES
            .iter()
            .zip(traffic.lateness)
            .map(|(bucket, events)| LatenessRow {
                bucket,
                events,
                share: percent(events, live),
            })
            .collect(),
        coverage,
        coverage_sample: broken_keys::SAMPLE,
        base_url: base_url(&request),
    };
    html(StatusCode::OK, &page, &csrf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn a_period_is_whole_utc_hours_up_to_now() {
        let period = period(at("2026-12-03T10:25:00Z"), 24, 7);
        assert_eq!(period.from, at("2026-12-02T11:00:00Z"));
        assert_eq!(period.to, at("2026-12-03T10:25:01Z"));
        assert_eq!(period.max_event_age, Duration::days(7));
    }

    #[test]
    fn an_unknown_range_is_the_last_day() {
        assert_eq!(Range::parse(None), Range::Day);
        assert_eq!(Range::parse(Some("7d")), Range::Week);
        assert_eq!(Range::parse(Some("1y")), Range::Day);
    }
}
