//! The model versions page: per detection label, each model version's detections, matched
//! conversions and conversion rate side by side, so that a rollout's effect on outcomes
//! shows. Figures arrive counted and formatted; the page only lays them out.

use crate::pages::Chrome;
use crate::reports::FilterOption;
use askama::Template;
use askama_web::WebTemplate;

/// One model version's figures for one label.
#[derive(Debug, Clone)]
pub struct VersionCell {
    pub detections: i64,
    pub matched_conversions: i64,
    /// `matched_conversions / detections` as a percentage, e.g. "12.5 %".
    pub rate: String,
}

/// One detection label: a cell per shown model version, `None` where that version saw
/// nothing of the label.
#[derive(Debug, Clone)]
pub struct LabelVersions {
    pub label: String,
    pub cells: Vec<Option<VersionCell>>,
}

#[derive(Debug, Template, WebTemplate)]
#[template(path = "pages/models.html")]
pub struct ModelsPage {
    pub chrome: Chrome,
    /// The form's values as given (`YYYY-MM-DD`, UTC days, both inclusive).
    pub from: String,
    pub to: String,
    pub goals: Vec<FilterOption>,
    /// Every model version in the range (and any ticked one), to narrow the comparison.
    pub model_versions: Vec<FilterOption>,
    /// Problems with the filters; when there are any, no figures are shown.
    pub errors: Vec<String>,
    /// The column groups, in order; each row has one cell per entry.
    pub versions: Vec<String>,
    pub rows: Vec<LabelVersions>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(rows: Vec<LabelVersions>, errors: Vec<String>) -> ModelsPage {
        ModelsPage {
            chrome: Chrome {
                organization: "Acme".into(),
                email: "v@acme.test".into(),
                role: "viewer",
                can_manage: false,
                csrf: "t".repeat(64),
                section: "models",
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
                value: "v<3>".into(),
                label: "v<3>".into(),
                selected: true,
            }],
            errors,
            versions: vec!["v2".into(), "<i>v3</i>".into()],
            rows,
        }
    }

    fn row() -> LabelVersions {
        LabelVersions {
            label: "<b>barcode</b>".into(),
            cells: vec![
                None,
                Some(VersionCell {
                    detections: 120,
                    matched_conversions: 15,
                    rate: "12.5 %".into(),
                }),
            ],
        }
    }

    #[test]
    fn versions_are_column_groups_with_right_aligned_escaped_figures() {
        let html = page(vec![row()], vec![]).render().expect("renders");
        assert!(!html.contains("<b>barcode</b>") && !html.contains("<i>v3</i>"));
        assert!(!html.contains("v<3>") && !html.contains("Scan <to>"));
        assert!(html.contains(r#"<th scope="colgroup" colspan="3""#));
        assert!(html.contains(r#"<td class="num">120</td>"#));
        assert!(html.contains(r#"<td class="num rate">12.5 %</td>"#));
        assert_eq!(html.matches(r#"<td class="num none">–</td>"#).count(), 3);
        assert!(html.contains(r#"aria-current="page">Models"#));
    }

    #[test]
    fn an_empty_range_says_what_to_do_next() {
        let html = page(vec![], vec![]).render().expect("renders");
        assert!(html.contains("No detections"));
        assert!(html.contains("model_version"), "says which field to send");
        assert!(html.contains(r#"href="/app/models""#), "clears the filters");
        assert!(!html.contains("<table"));
    }

    #[test]
    fn filter_problems_are_shown_instead_of_figures() {
        let html = page(vec![row()], vec!["“From” must be a date".into()])
            .render()
            .expect("renders");
        assert!(html.contains("“From” must be a date"));
        assert!(!html.contains("<table"));
    }
}
