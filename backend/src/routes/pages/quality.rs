//! `/app/quality`: detection quality, kept apart from conversion metrics. Per label and
//! model version: detections, edge-filtered ones and mean confidence; per goal: the share
//! under its `min_confidence` and what its dedup rule (matching rule 6) leaves.
//!
//! Rule 6 is a chain ("kept if at least the gap after the last kept one"), not something a
//! window function restates, so the range's detections are read and put to the matching
//! core. That bounds the page: a range of at most [`MAX_DAYS`] days (the last
//! [`DEFAULT_DAYS`] without dates) and at most [`MAX_DETECTIONS`] detections in it.

mod figures;

use super::reports::filters::{Filters, Rejected};
use super::reports::{goal_options, pairs, parse_pairs, require_reports};
use super::{SignedIn, html, issue_csrf};
use crate::actors::matcher::matching_goal;
use crate::error::PageError;
use crate::state::AppState;
use crate::storage::goals::{self, GoalView};
use crate::storage::quality::{self, Loaded};
use crate::storage::reports::GoalFilter;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{Duration, NaiveDate, Utc};
use dashboard::{GoalQuality, GoalQualityRow, QualityPage, QualityRow};

/// Days shown when the form gives no start: the last 7, today included.
const DEFAULT_DAYS: i64 = 7;
/// Longest range: the detections of a range are read whole.
const MAX_DAYS: i64 = 31;
/// Detections read at most; a range with more asks for a shorter one rather than show
/// figures of a part of it.
const MAX_DETECTIONS: u64 = 100_000;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/app/quality", web::get().to(show));
}

/// Filters that can be used: the range and the goals whose figures to show.
struct Chosen {
    filters: Filters,
    goals: Vec<GoalView>,
}

async fn show(
    state: web::Data<AppState>,
    request: HttpRequest,
    member: SignedIn,
) -> Result<HttpResponse, PageError> {
    require_reports(&member)?;
    let csrf = issue_csrf(&request)?;
    let tenant = member.caller.tenant();
    let goals = goals::list(&state.db, tenant).await?;
    let mut page = QualityPage {
        chrome: member.chrome(&csrf, "quality"),
        from: String::new(),
        to: String::new(),
        goals: Vec::new(),
        errors: Vec::new(),
        covers: String::new(),
        default_days: DEFAULT_DAYS,
        max_days: MAX_DAYS,
        too_many: None,
        rows: Vec::new(),
        goal_figures: Vec::new(),
    };
    let Chosen {
        filters,
        goals: shown,
    } = match choose(&request, &goals) {
        Ok(chosen) => chosen,
        Err(rejected) => {
            let Rejected { raw, problems } = *rejected;
            page.goals = goal_options(&goals, &raw.goal);
            (page.from, page.to, page.errors) = (raw.from, raw.to, problems);
            return html(StatusCode::OK, &page, &csrf);
        }
    };
    page.from = filters.from.to_string();
    page.to = filters.to.to_string();
    page.goals = goal_options(
        &goals,
        &filters.goal.map(|g| g.to_string()).unwrap_or_default(),
    );
    page.covers = covers(filters.from, filters.to);
    let (from, to) = filters.range();
    let stream = match quality::detections(&state.db, tenant, from, to, MAX_DETECTIONS).await? {
        Loaded::Detections(stream) => stream,
        Loaded::TooMany => {
            page.too_many = Some(format!(
                "{} holds more than {MAX_DETECTIONS} detections, more than this page reads \
                 at once; choose a shorter range.",
                page.covers
            ));
            return html(StatusCode::OK, &page, &csrf);
        }
    };
    // One goal chosen: its labels only, as the reports narrow to a goal's labels.
    let labels: Option<&[String]> = filters
        .goal
        .and(shown.first())
        .map(|goal| goal.spec.detection_labels.as_slice());
    page.rows = figures::per_label(&stream)
        .into_iter()
        .filter(|((label, _), _)| labels.is_none_or(|labels| labels.iter().any(|l| **l == **label)))
        .map(|((label, model_version), row)| QualityRow {
            label: label.to_string(),
            model_version: model_version.to_string(),
            detections: row.detections,
            filtered: row.filtered,
            average_confidence: format!("{:.2}", row.average_confidence()),
        })
        .collect();
    page.goal_figures = shown
        .iter()
        .map(|goal| goal_quality(goal, &stream))
        .collect();
    html(StatusCode::OK, &page, &csrf)
}

/// The filters with the quality page's own default and bound on the range; the goal is
/// checked as on the reports page (another tenant's goal reads as an unknown one).
fn choose(request: &HttpRequest, goals: &[GoalView]) -> Result<Chosen, Box<Rejected>> {
    let mut pairs = pairs(request).map_err(|problem| {
        Box::new(Rejected {
            raw: Default::default(),
            problems: vec![problem],
        })
    })?;
    with_default_start(&mut pairs, Utc::now().date_naive());
    let (filters, goal) = parse_pairs(&pairs, goals)?;
    let days = (filters.to - filters.from).num_days() + 1;
    if days > MAX_DAYS {
        return Err(Box::new(Rejected {
            raw: filters.raw(),
            problems: vec![format!(
                "The range spans {days} days; this page covers at most {MAX_DAYS}."
            )],
        }));
    }
    let shown = match goal {
        Some(GoalFilter::One { id, .. }) => goals.iter().filter(|g| g.id == id).cloned().collect(),
        _ => goals.iter().filter(|g| g.spec.active).cloned().collect(),
    };
    Ok(Chosen {
        filters,
        goals: shown,
    })
}

/// Without a start date, the range is the [`DEFAULT_DAYS`] up to the end date (today when
/// none is given); an end date that is not one is left for the filters to report.
fn with_default_start(pairs: &mut Vec<(String, String)>, today: NaiveDate) {
    let given = |name: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    if !given("from").is_empty() {
        return;
    }
    let to = match given("to").as_str() {
        "" => today,
        text => match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            Ok(day) => day,
            Err(_) => return,
        },
    };
    pairs.retain(|(name, _)| name != "from");
    pairs.push((
        "from".to_owned(),
        (to - Duration::days(DEFAULT_DAYS - 1)).to_string(),
    ));
}

fn covers(from: NaiveDate, to: NaiveDate) -> String {
    let days = (to - from).num_days() + 1;
    if days == 1 {
        format!("{from} (1 day, UTC)")
    } else {
        format!("{from} to {to} ({days} days, UTC)")
    }
}

fn goal_quality(goal: &GoalView, stream: &[crate::matching::Detection]) -> GoalQuality {
    let spec = &goal.spec;
    let rows = figures::per_goal(&matching_goal(spec), stream)
        .into_iter()
        .map(|((label, model_version), row)| GoalQualityRow {
            label: label.to_string(),
            model_version: model_version.to_string(),
            detections: row.detections,
            below_threshold: row.below_threshold,
            below_share: share(row.below_threshold, row.detections),
            passing: row.passing,
            after_dedup: row.kept,
            duplicate_share: share(row.passing - row.kept, row.passing),
        })
        .collect();
    GoalQuality {
        name: if spec.active {
            spec.name.clone()
        } else {
            format!("{} (inactive)", spec.name)
        },
        min_confidence: format!("{:.2}", spec.min_confidence),
        dedup: match spec.dedup_seconds {
            0 => "sighting (no dedup gap)".to_owned(),
            seconds => format!("{seconds} s"),
        },
        key: spec.key.clone(),
        requires_consent: spec.requires_consent,
        rows,
    }
}

/// `part / whole` as a percentage with one decimal; "–" of nothing.
fn share(part: usize, whole: usize) -> String {
    if whole == 0 {
        return "–".to_owned();
    }
    format!("{:.1} %", part as f64 * 100.0 / whole as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap_or_default()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn start(list: &[(&str, &str)]) -> Option<String> {
        let mut given = pairs(list);
        with_default_start(&mut given, day("2026-12-03"));
        given.into_iter().find(|(n, _)| n == "from").map(|(_, v)| v)
    }

    #[test]
    fn without_a_start_the_range_is_the_last_seven_days_of_its_end() {
        assert_eq!(start(&[]).as_deref(), Some("2026-11-27"));
        assert_eq!(
            start(&[("from", ""), ("to", "2026-12-01")]).as_deref(),
            Some("2026-11-25")
        );
        assert_eq!(
            start(&[("from", "2026-12-02")]).as_deref(),
            Some("2026-12-02")
        );
        assert_eq!(start(&[("to", "someday")]), None, "left for the filters");
    }

    #[test]
    fn the_range_reads_as_days() {
        assert_eq!(
            covers(day("2026-11-27"), day("2026-12-03")),
            "2026-11-27 to 2026-12-03 (7 days, UTC)"
        );
        assert_eq!(
            covers(day("2026-12-03"), day("2026-12-03")),
            "2026-12-03 (1 day, UTC)"
        );
        assert_eq!(share(1, 8), "12.5 %");
        assert_eq!(share(0, 0), "–");
    }
}
