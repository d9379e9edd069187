//! The detection quality page, apart from conversion metrics: per label and model version,
//! how many detections, how confident, how many fall under each goal's threshold, and how
//! many each goal's dedup rule would collapse. Figures arrive counted and formatted.

use crate::pages::Chrome;
use crate::reports::FilterOption;
use askama::Template;
use askama_web::WebTemplate;

/// One (label, model version) of the range.
#[derive(Debug, Clone)]
pub struct QualityRow {
    pub label: String,
    pub model_version: String,
    pub detections: usize,
    /// Dropped by the edge's own threshold rule (`filtered`): stored, never matched.
    pub filtered: usize,
    /// Mean confidence with two decimals.
    pub average_confidence: String,
}

/// One (label, model version) as a goal sees it.
#[derive(Debug, Clone)]
pub struct GoalQualityRow {
    pub label: String,
    pub model_version: String,
    pub detections: usize,
    /// Detections whose confidence is under the goal's `min_confidence`.
    pub below_threshold: usize,
    /// `below_threshold / detections`, e.g. "12.5 %".
    pub below_share: String,
    /// Detections the goal could credit (matching rules 1–5), before dedup.
    pub passing: usize,
    /// What is left of `passing` after the goal's dedup rule (rule 6).
    pub after_dedup: usize,
    /// `(passing - after_dedup) / passing`, or "–" when nothing passes.
    pub duplicate_share: String,
}

/// A goal's view of the detections of its labels.
#[derive(Debug, Clone)]
pub struct GoalQuality {
    pub name: String,
    /// The goal's settings in words: threshold, dedup gap, key.
    pub min_confidence: String,
    pub dedup: String,
    pub key: String,
    pub requires_consent: bool,
    /// Empty: none of the goal's labels was detected in the range.
    pub rows: Vec<GoalQualityRow>,
}

#[derive(Debug, Template, WebTemplate)]
#[template(path = "pages/quality.html")]
pub struct QualityPage {
    pub chrome: Chrome,
    /// The form's values as given (`YYYY-MM-DD`, UTC days, both inclusive).
    pub from: String,
    pub to: String,
    pub goals: Vec<FilterOption>,
    /// Problems with the filters; when there are any, no figures are shown.
    pub errors: Vec<String>,
    /// The range the figures cover, in words.
    pub covers: String,
    pub default_days: i64,
    pub max_days: i64,
    /// Set when the range holds more detections than the page reads at once.
    pub too_many: Option<String>,
    pub rows: Vec<QualityRow>,
    pub goal_figures: Vec<GoalQuality>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(rows: Vec<QualityRow>, goal_figures: Vec<GoalQuality>) -> QualityPage {
        QualityPage {
            chrome: Chrome {
                organization: "Acme".into(),
                email: "v@acme.test".into(),
                role: "viewer",
                can_manage: false,
                csrf: "t".repeat(64),
                section: "quality",
                version: "0.1.0",
            },
            from: "2026-11-27".into(),
            to: "2026-12-03".into(),
            goals: vec![],
            errors: vec![],
            covers: "2026-11-27 to 2026-12-03".into(),
            default_days: 7,
            max_days: 31,
            too_many: None,
            rows,
            goal_figures,
        }
    }

    fn row() -> QualityRow {
        QualityRow {
            label: "<b>barcode</b>".into(),
            model_version: "v3".into(),
            detections: 40,
            filtered: 2,
            average_confidence: "0.87".into(),
        }
    }

    fn goal() -> GoalQuality {
        GoalQuality {
            name: "Scan <to> purchase".into(),
            min_confidence: "0.60".into(),
            dedup: "30 s".into(),
            key: "session_token".into(),
            requires_consent: false,
            rows: vec![GoalQualityRow {
                label: "barcode".into(),
                model_version: "v3".into(),
                detections: 40,
                below_threshold: 5,
                below_share: "12.5 %".into(),
                passing: 33,
                after_dedup: 20,
                duplicate_share: "39.4 %".into(),
            }],
        }
    }

    #[test]
    fn figures_are_escaped_right_aligned_and_the_range_is_said() {
        let html = page(vec![row()], vec![goal()]).render().expect("renders");
        assert!(!html.contains("<b>barcode</b>") && !html.contains("Scan <to>"));
        assert!(html.contains(r#"<td class="num">40</td>"#));
        assert!(html.contains(r#"<td class="num">0.87</td>"#));
        assert!(html.contains(r#"<td class="num">39.4 %</td>"#));
        assert!(html.contains("2026-11-27 to 2026-12-03"));
        assert!(html.contains(r#"aria-current="page">Quality"#));
    }

    #[test]
    fn an_empty_range_says_what_to_do_next() {
        let html = page(vec![], vec![]).render().expect("renders");
        assert!(html.contains("No detections"));
        assert!(html.contains(r#"href="/app/quality""#));
        assert!(!html.contains("<table"));
    }

    #[test]
    fn too_many_detections_are_said_instead_of_partial_figures() {
        let mut page = page(vec![row()], vec![goal()]);
        page.too_many = Some("More than 100000 detections".into());
        let html = page.render().expect("renders");
        assert!(html.contains("More than 100000 detections"));
        assert!(!html.contains("<table"));
    }
}
