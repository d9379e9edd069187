//! The Reports page: the label-by-conversion table with its filters, sortable columns, CSV
//! link and daily chart. Every link and value arrives ready to show; the server builds the
//! query strings (so that sorting and downloading keep the filters).

use crate::pages::Chrome;
use askama::Template;
use askama_web::WebTemplate;

/// A choice in a filter: a goal, a model version, a grouping.
#[derive(Debug, Clone)]
pub struct FilterOption {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// A column heading: a link that sorts by it (the other way round if it is the sort already).
#[derive(Debug, Clone)]
pub struct Column {
    /// The parameter value, also the heading's id (`sort-<key>`).
    pub key: &'static str,
    pub title: &'static str,
    pub numeric: bool,
    pub href: String,
    /// `ascending` or `descending` when the table is sorted by this column (`aria-sort`).
    pub sorted: Option<&'static str>,
}

/// One row of the table, formatted.
#[derive(Debug, Clone)]
pub struct ReportRow {
    pub detection_label: String,
    /// Entity id or category (empty for detections without a category).
    pub group: String,
    pub model_version: String,
    pub detections: i64,
    pub matched_conversions: i64,
    pub assisted_conversions: i64,
    pub conversion_value: String,
    pub first_detect_time: String,
}

/// The report's totals: each conversion once, whichever rows it appears in.
#[derive(Debug, Clone, Default)]
pub struct ReportTotals {
    pub detections: i64,
    pub matched_conversions: i64,
    pub assisted_conversions: i64,
    pub conversion_value: String,
}

#[derive(Debug, Template, WebTemplate)]
#[template(path = "pages/reports.html")]
pub struct ReportsPage {
    pub chrome: Chrome,
    /// The form's values as given (`YYYY-MM-DD`, UTC days, both inclusive).
    pub from: String,
    pub to: String,
    pub goals: Vec<FilterOption>,
    pub model_versions: Vec<FilterOption>,
    pub group_by: Vec<FilterOption>,
    /// The current sort, carried by the form as hidden fields.
    pub sort: String,
    pub dir: String,
    /// Problems with the filters; when there are any, no report is shown.
    pub errors: Vec<String>,
    /// `entity` or `category`: the second column's heading.
    pub group_title: &'static str,
    pub columns: Vec<Column>,
    pub rows: Vec<ReportRow>,
    /// Rows of the report before the page's limit (the CSV has all of them).
    pub total_rows: usize,
    pub totals: ReportTotals,
    pub csv_href: String,
    /// The rendered chart ([`crate::chart::DailyChart::render`]), already escaped.
    pub chart: Option<String>,
}

impl ReportsPage {
    /// Whether the table holds fewer rows than the report.
    pub fn truncated(&self) -> bool {
        self.rows.len() < self.total_rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(rows: Vec<ReportRow>, errors: Vec<String>) -> ReportsPage {
        ReportsPage {
            chrome: Chrome {
                organization: "Acme".into(),
                email: "v@acme.test".into(),
                role: "viewer",
                can_manage: false,
                csrf: "t".repeat(64),
                section: "reports",
                version: "0.1.0",
            },
            from: "2026-11-04".into(),
            to: "2026-12-03".into(),
            goals: vec![FilterOption {
                value: "g-1".into(),
                label: "Scan <to> purchase".into(),
                selected: true,
            }],
            model_versions: vec![FilterOption {
                value: "v3".into(),
                label: "v3".into(),
                selected: false,
            }],
            group_by: vec![],
            sort: "detections".into(),
            dir: "desc".into(),
            errors,
            group_title: "entity",
            columns: vec![Column {
                key: "detections",
                title: "detections",
                numeric: true,
                href: "/app/reports?sort=detections&dir=asc".into(),
                sorted: Some("descending"),
            }],
            total_rows: rows.len(),
            rows,
            totals: ReportTotals::default(),
            csv_href: "/app/reports.csv?format=csv".into(),
            chart: None,
        }
    }

    fn row() -> ReportRow {
        ReportRow {
            detection_label: "<b>barcode</b>".into(),
            group: "sku-42".into(),
            model_version: "v3".into(),
            detections: 120,
            matched_conversions: 14,
            assisted_conversions: 3,
            conversion_value: "240.50".into(),
            first_detect_time: "2026-12-01 09:00:00".into(),
        }
    }

    #[test]
    fn rows_are_escaped_and_numbers_right_aligned() {
        let html = page(vec![row()], vec![]).render().expect("renders");
        assert!(!html.contains("<b>barcode</b>"));
        assert!(html.contains(r#"<td class="num">120</td>"#));
        assert!(html.contains(r#"aria-sort="descending""#));
        assert!(html.contains("Scan &#60;to&#62; purchase") || html.contains("Scan &lt;to&gt;"));
        assert!(html.contains(r#"href="/app/reports.csv?format=csv""#));
        assert!(html.contains(r#"aria-current="page">Reports"#));
    }

    #[test]
    fn an_empty_report_says_what_to_do_next() {
        let html = page(vec![], vec![]).render().expect("renders");
        assert!(html.contains("No detections"));
        assert!(
            html.contains("/app/reports\""),
            "a link that clears the filters"
        );
        assert!(!html.contains("<table"));
    }

    #[test]
    fn filter_problems_are_shown_instead_of_the_report() {
        let html = page(vec![row()], vec!["`from` must be a date".into()])
            .render()
            .expect("renders");
        assert!(html.contains("`from` must be a date"));
        assert!(!html.contains("<table"));
    }
}
