//! `/app/reports`: the label report as a page (filters, sortable table, daily chart) and
//! `/app/reports.csv`, the same query as CSV for the session cookie (the JSON API takes only
//! bearer tokens). The figures come from `storage::reports`, as the API's do, and the CSV is
//! the API's own rendering.

pub(super) mod filters;

use super::{SignedIn, html, issue_csrf};
use crate::error::PageError;
use crate::routes::reports::query::MAX_LIMIT;
use crate::routes::reports::render;
use crate::state::AppState;
use crate::storage::goals::{self, GoalView};
use crate::storage::reports::{self, DayFigures, GoalFilter, GroupBy, LabelQuery, LabelReport};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{NaiveDate, Utc};
use dashboard::{Column, DailyChart, FilterOption, ReportRow, ReportTotals, ReportsPage, Series};
use filters::{Filters, Raw, Rejected, SortKey};
use std::collections::BTreeMap;

/// Rows the page shows at most; the CSV has every row (up to the API's own limit).
const PAGE_ROWS: usize = 1_000;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/app/reports", web::get().to(show))
        .route("/app/reports.csv", web::get().to(download));
}

/// The decoded query string; one that does not decode is a problem shown on the page.
pub(super) fn pairs(request: &HttpRequest) -> Result<Vec<(String, String)>, String> {
    web::Query::<Vec<(String, String)>>::from_query(request.query_string())
        .map(web::Query::into_inner)
        .map_err(|_| "The address's filters could not be read; choose them again.".to_owned())
}

pub(super) fn require_reports(member: &SignedIn) -> Result<(), PageError> {
    if member.role.can_read_reports() {
        Ok(())
    } else {
        Err(PageError::Forbidden("Your role cannot read reports"))
    }
}

/// The filters, with the goal checked against the tenant's goals (another tenant's goal
/// reads as an unknown one).
pub(super) fn parse(
    request: &HttpRequest,
    goals: &[GoalView],
) -> Result<(Filters, Option<GoalFilter>), Box<Rejected>> {
    let pairs = pairs(request).map_err(|problem| {
        Box::new(Rejected {
            raw: Raw::default(),
            problems: vec![problem],
        })
    })?;
    parse_pairs(&pairs, goals)
}

/// [`parse`] of decoded pairs, for the pages that share the report's filters.
pub(super) fn parse_pairs(
    pairs: &[(String, String)],
    goals: &[GoalView],
) -> Result<(Filters, Option<GoalFilter>), Box<Rejected>> {
    let filters = Filters::parse(pairs, Utc::now().date_naive())?;
    let goal = match filters.goal {
        None => None,
        Some(id) => match goals.iter().find(|goal| goal.id == id) {
            Some(goal) => Some(GoalFilter::One {
                id,
                labels: goal.spec.detection_labels.clone(),
            }),
            None => {
                return Err(Box::new(Rejected {
                    raw: filters.raw(),
                    problems: vec![
                        "“Goal” is not one of your goals; pick one from the list.".into(),
                    ],
                }));
            }
        },
    };
    Ok((filters, goal))
}

pub(super) fn label_query(filters: &Filters, goal: Option<GoalFilter>) -> LabelQuery {
    let (from, to) = filters.range();
    LabelQuery {
        from,
        to,
        model_versions: filters.model_versions.clone(),
        goal: goal.unwrap_or(GoalFilter::AllActive),
        group_by: filters.group_by,
    }
}

async fn show(
    state: web::Data<AppState>,
    request: HttpRequest,
    member: SignedIn,
) -> Result<HttpResponse, PageError> {
    require_reports(&member)?;
    let csrf = issue_csrf(&request)?;
    let goals = goals::list(&state.db, member.caller.tenant()).await?;
    let chrome = member.chrome(&csrf, "reports");
    let page = match parse(&request, &goals) {
        Err(rejected) => invalid_page(chrome, &goals, rejected.raw, rejected.problems),
        Ok((filters, goal)) => {
            let query = label_query(&filters, goal);
            // The chart's query runs over every model version, so that the form can offer
            // all of them; the chart keeps the chosen ones.
            let all_versions = LabelQuery {
                model_versions: Vec::new(),
                ..query.clone()
            };
            let tenant = member.caller.tenant();
            let (mut report, days) = tokio::try_join!(
                reports::labels(&state.db, tenant, &query),
                reports::per_day(&state.db, tenant, &all_versions),
            )?;
            filters.sort_rows(&mut report.rows);
            report_page(chrome, &goals, &filters, report, &days)
        }
    };
    html(StatusCode::OK, &page, &csrf)
}

async fn download(
    state: web::Data<AppState>,
    request: HttpRequest,
    member: SignedIn,
) -> Result<HttpResponse, PageError> {
    require_reports(&member)?;
    let goals = goals::list(&state.db, member.caller.tenant()).await?;
    let Ok((filters, goal)) = parse(&request, &goals) else {
        // The page says what is wrong with the same filters.
        return Ok(HttpResponse::SeeOther()
            .insert_header((
                header::LOCATION,
                format!("/app/reports?{}", request.query_string()),
            ))
            .finish());
    };
    let mut report = reports::labels(
        &state.db,
        member.caller.tenant(),
        &label_query(&filters, goal),
    )
    .await?;
    filters.sort_rows(&mut report.rows);
    let total_rows = report.rows.len();
    report.rows.truncate(MAX_LIMIT);
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/csv; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("x-total-rows", total_rows.to_string()))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"sightline-labels-{}-{}.csv\"",
                filters.from, filters.to
            ),
        ))
        .body(render::csv(&report.rows, filters.group_by)))
}

pub(super) fn goal_options(goals: &[GoalView], selected: &str) -> Vec<FilterOption> {
    goals
        .iter()
        .map(|goal| {
            let id = goal.id.to_string();
            FilterOption {
                selected: id == selected,
                label: if goal.spec.active {
                    goal.spec.name.clone()
                } else {
                    format!("{} (inactive)", goal.spec.name)
                },
                value: id,
            }
        })
        .collect()
}

fn group_options(selected: GroupBy) -> Vec<FilterOption> {
    [GroupBy::Entity, GroupBy::Category]
        .into_iter()
        .map(|group| FilterOption {
            value: filters::group_name(group).to_owned(),
            label: filters::group_name(group).to_owned(),
            selected: group == selected,
        })
        .collect()
}

pub(super) fn version_options<'a>(
    names: impl Iterator<Item = &'a String>,
    chosen: &[String],
) -> Vec<FilterOption> {
    names
        .map(|name| FilterOption {
            value: name.clone(),
            label: name.clone(),
            selected: chosen.contains(name),
        })
        .collect()
}

/// The form with the values as given, its problems, and no report.
fn invalid_page(
    chrome: dashboard::Chrome,
    goals: &[GoalView],
    raw: Raw,
    errors: Vec<String>,
) -> ReportsPage {
    ReportsPage {
        chrome,
        goals: goal_options(goals, &raw.goal),
        model_versions: version_options(raw.model_versions.iter(), &raw.model_versions),
        group_by: group_options(if raw.group_by == "category" {
            GroupBy::Category
        } else {
            GroupBy::Entity
        }),
        from: raw.from,
        to: raw.to,
        sort: String::new(),
        dir: String::new(),
        errors,
        group_title: "entity",
        columns: Vec::new(),
        rows: Vec::new(),
        total_rows: 0,
        totals: ReportTotals::default(),
        csv_href: String::new(),
        chart: None,
    }
}

fn report_page(
    chrome: dashboard::Chrome,
    goals: &[GoalView],
    filters: &Filters,
    report: LabelReport,
    days: &[DayFigures],
) -> ReportsPage {
    let group_title = filters::group_name(filters.group_by);
    let columns = SortKey::ALL
        .into_iter()
        .map(|key| {
            let current = key == filters.sort;
            // A click on the current column turns it round; on another starts its way.
            let descending = if current {
                !filters.descending
            } else {
                key.default_descending()
            };
            Column {
                key: key.key(),
                title: match key {
                    SortKey::Label => "label",
                    SortKey::Group => group_title,
                    SortKey::ModelVersion => "model version",
                    SortKey::Detections => "detections",
                    SortKey::Matched => "matched",
                    SortKey::Assisted => "assisted",
                    SortKey::Value => "value",
                    SortKey::FirstDetect => "first detection (UTC)",
                },
                numeric: key.is_numeric(),
                href: format!("/app/reports?{}", filters.query(key, descending)),
                sorted: current.then_some(if filters.descending {
                    "descending"
                } else {
                    "ascending"
                }),
            }
        })
        .collect();
    // Every version in the range, and the chosen ones even without data (so they can be
    // unticked).
    let mut versions: BTreeMap<&String, ()> = days.iter().map(|d| (&d.model_version, ())).collect();
    versions.extend(filters.model_versions.iter().map(|v| (v, ())));
    let total_rows = report.rows.len();
    ReportsPage {
        chrome,
        from: filters.from.to_string(),
        to: filters.to.to_string(),
        goals: goal_options(
            goals,
            &filters.goal.map(|g| g.to_string()).unwrap_or_default(),
        ),
        model_versions: version_options(versions.keys().copied(), &filters.model_versions),
        group_by: group_options(filters.group_by),
        sort: filters.sort.key().to_owned(),
        dir: if filters.descending { "desc" } else { "asc" }.to_owned(),
        errors: Vec::new(),
        group_title,
        columns,
        rows: report.rows.iter().take(PAGE_ROWS).map(row).collect(),
        total_rows,
        totals: ReportTotals {
            detections: report.totals.detections,
            matched_conversions: report.totals.matched_conversions,
            assisted_conversions: report.totals.assisted_conversions,
            conversion_value: money(report.totals.conversion_value),
        },
        csv_href: format!(
            "/app/reports.csv?{}&format=csv",
            filters.query(filters.sort, filters.descending)
        ),
        chart: chart(filters, days).render(),
    }
}

fn row(row: &reports::LabelRow) -> ReportRow {
    let (label, group, model_version) = &row.key;
    ReportRow {
        detection_label: label.clone(),
        group: group.clone().unwrap_or_default(),
        model_version: model_version.clone(),
        detections: row.detections,
        matched_conversions: row.matched_conversions,
        assisted_conversions: row.assisted_conversions,
        conversion_value: money(row.conversion_value),
        first_detect_time: row
            .first_detect_time
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
    }
}

/// Values are summed as sent, in whatever currencies: two decimals, no symbol.
fn money(value: f64) -> String {
    format!("{value:.2}")
}

/// One series per chosen model version (all when none is chosen), over every day of the
/// range, zero where a day has nothing.
fn chart(filters: &Filters, days: &[DayFigures]) -> DailyChart {
    let range = filters.days();
    let index: BTreeMap<NaiveDate, usize> =
        range.iter().enumerate().map(|(i, d)| (*d, i)).collect();
    let mut series: BTreeMap<&str, Series> = BTreeMap::new();
    for figures in days {
        if !filters.model_versions.is_empty()
            && !filters.model_versions.contains(&figures.model_version)
        {
            continue;
        }
        // Days outside the page's range cannot come back from the query; skip them anyway.
        let Some(&i) = index.get(&figures.day) else {
            continue;
        };
        let entry = series
            .entry(figures.model_version.as_str())
            .or_insert_with(|| Series {
                name: figures.model_version.clone(),
                detections: vec![0; range.len()],
                matched: vec![0; range.len()],
            });
        entry.detections[i] += figures.detections;
        entry.matched[i] += figures.matched_conversions;
    }
    DailyChart {
        days: range.iter().map(NaiveDate::to_string).collect(),
        series: series.into_values().collect(),
    }
}
