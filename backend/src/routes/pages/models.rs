//! `/app/models`: each detection label's conversion rate per model version, side by side, so
//! that a model rollout's effect on outcomes shows. The figures are the label report's per
//! (label, model version) (`storage::reports::per_version`): the same filters, the same
//! counting rules, the same storage.

use super::reports::{goal_options, label_query, parse, require_reports, version_options};
use super::{SignedIn, html, issue_csrf};
use crate::error::PageError;
use crate::state::AppState;
use crate::storage::goals;
use crate::storage::reports::{self, LabelQuery, LabelRow};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use dashboard::{LabelVersions, ModelsPage, VersionCell};
use std::collections::{BTreeMap, BTreeSet};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/app/models", web::get().to(show));
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
    let chrome = member.chrome(&csrf, "models");
    let page = match parse(&request, &goals) {
        Err(rejected) => {
            let raw = rejected.raw;
            ModelsPage {
                chrome,
                goals: goal_options(&goals, &raw.goal),
                model_versions: version_options(raw.model_versions.iter(), &raw.model_versions),
                from: raw.from,
                to: raw.to,
                errors: rejected.problems,
                versions: Vec::new(),
                rows: Vec::new(),
            }
        }
        Ok((filters, goal)) => {
            // Every version is read, so that the form can offer them all; the ticked ones
            // are the columns.
            let query = LabelQuery {
                model_versions: Vec::new(),
                ..label_query(&filters, goal)
            };
            let report = reports::per_version(&state.db, tenant, &query).await?;
            let comparison = Comparison::of(&report.rows, &filters.model_versions);
            ModelsPage {
                chrome,
                from: filters.from.to_string(),
                to: filters.to.to_string(),
                goals: goal_options(
                    &goals,
                    &filters.goal.map(|g| g.to_string()).unwrap_or_default(),
                ),
                model_versions: version_options(comparison.offered.iter(), &filters.model_versions),
                errors: Vec::new(),
                versions: comparison.shown,
                rows: comparison.rows,
            }
        }
    };
    html(StatusCode::OK, &page, &csrf)
}

/// The report's rows turned round: one per label, one column group per model version.
#[derive(Debug)]
struct Comparison {
    /// Every version with detections, and the ticked ones, byte order.
    offered: Vec<String>,
    /// The column groups: the ticked versions, or every one when none is ticked.
    shown: Vec<String>,
    /// Labels with detections in a shown version, byte order.
    rows: Vec<LabelVersions>,
}

impl Comparison {
    fn of(rows: &[LabelRow], ticked: &[String]) -> Self {
        let mut offered: BTreeSet<&String> = ticked.iter().collect();
        let mut figures: BTreeMap<&str, BTreeMap<&str, &LabelRow>> = BTreeMap::new();
        for row in rows {
            let (label, _, version) = &row.key;
            offered.insert(version);
            // One row per (label, version) from `per_version`.
            figures
                .entry(label.as_str())
                .or_default()
                .insert(version.as_str(), row);
        }
        let shown: Vec<String> = if ticked.is_empty() {
            offered.iter().map(|v| (*v).clone()).collect()
        } else {
            let mut ticked = ticked.to_vec();
            ticked.sort_unstable();
            ticked
        };
        let rows = figures
            .into_iter()
            .filter_map(|(label, versions)| {
                let cells: Vec<Option<VersionCell>> = shown
                    .iter()
                    .map(|version| versions.get(version.as_str()).map(|row| cell(row)))
                    .collect();
                cells.iter().any(Option::is_some).then(|| LabelVersions {
                    label: label.to_owned(),
                    cells,
                })
            })
            .collect();
        Self {
            offered: offered.into_iter().cloned().collect(),
            shown,
            rows,
        }
    }
}

fn cell(row: &LabelRow) -> VersionCell {
    VersionCell {
        detections: row.detections,
        matched_conversions: row.matched_conversions,
        rate: rate(row.matched_conversions, row.detections),
    }
}

/// `part / whole` as a percentage with one decimal; "–" of nothing.
pub(super) fn rate(part: i64, whole: i64) -> String {
    if whole <= 0 {
        return "–".to_owned();
    }
    format!("{:.1} %", part as f64 * 100.0 / whole as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn row(label: &str, version: &str, detections: i64, matched: i64) -> LabelRow {
        LabelRow {
            key: (label.to_owned(), None, version.to_owned()),
            detections,
            matched_conversions: matched,
            assisted_conversions: 0,
            conversion_value: 0.0,
            first_detect_time: Utc::now(),
        }
    }

    /// A label's cells as (detections, matched, rate).
    type Cells = Vec<Option<(i64, i64, String)>>;

    fn figures(comparison: &Comparison) -> Vec<(String, Cells)> {
        comparison
            .rows
            .iter()
            .map(|row| {
                (
                    row.label.clone(),
                    row.cells
                        .iter()
                        .map(|c| {
                            c.as_ref()
                                .map(|c| (c.detections, c.matched_conversions, c.rate.clone()))
                        })
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn each_label_gets_a_cell_per_version_and_a_dash_where_it_has_none() {
        let rows = [
            row("product", "v3", 4, 1),
            row("barcode", "v3", 8, 1),
            row("barcode", "v2", 10, 5),
        ];
        let comparison = Comparison::of(&rows, &[]);
        assert_eq!(comparison.shown, ["v2", "v3"]);
        assert_eq!(
            figures(&comparison),
            [
                (
                    "barcode".to_owned(),
                    vec![
                        Some((10, 5, "50.0 %".into())),
                        Some((8, 1, "12.5 %".into()))
                    ]
                ),
                (
                    "product".to_owned(),
                    vec![None, Some((4, 1, "25.0 %".into()))]
                ),
            ]
        );
    }

    #[test]
    fn ticked_versions_are_the_columns_and_every_version_stays_offered() {
        let rows = [row("barcode", "v3", 8, 1), row("product", "v2", 10, 5)];
        let comparison = Comparison::of(&rows, &["v3".into(), "v9".into()]);
        assert_eq!(comparison.offered, ["v2", "v3", "v9"]);
        assert_eq!(comparison.shown, ["v3", "v9"]);
        assert_eq!(
            figures(&comparison),
            [(
                "barcode".to_owned(),
                vec![Some((8, 1, "12.5 %".into())), None]
            )],
            "a label without a shown version is left out"
        );
    }

    #[test]
    fn a_rate_of_nothing_is_a_dash() {
        assert_eq!(rate(0, 0), "–");
        assert_eq!(rate(1, 3), "33.3 %");
    }
}
