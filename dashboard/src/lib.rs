//! The dashboard's presentation: askama templates and the page structs that fill them.
//!
//! This crate knows nothing of the database or HTTP handlers: the server loads data and hands
//! a page struct over. It does not depend on the backend (the backend mounts it).

use askama::Template;
use askama_web::WebTemplate;

/// The stylesheet every page links to, served by the backend at [`STYLESHEET_PATH`].
pub const STYLESHEET: &str = include_str!("../static/sightline.css");
pub const STYLESHEET_PATH: &str = "/static/sightline.css";

/// The one script: progressive enhancement only (the copy buttons); every page works without
/// it. Served at [`SCRIPT_PATH`], so the CSP can forbid inline script.
pub const SCRIPT: &str = include_str!("../static/sightline.js");
pub const SCRIPT_PATH: &str = "/static/sightline.js";

pub mod audit;
pub mod chart;
pub mod explain;
pub mod goals;
pub mod health;
pub mod hourly_chart;
pub mod keys;
pub mod members;
pub mod models;
pub mod pages;
pub mod quality;
pub mod reports;
pub mod settings;

pub use audit::{AuditPage, AuditRow, FieldChange};
pub use chart::{DailyChart, Series};
pub use explain::{ExplainPage, ExplainedCandidate, ExplainedGoal};
pub use goals::{GoalEditPage, GoalForm, GoalRow, GoalsPage};
pub use health::{
    CodeRow, ERROR_CODES, EntryError, HealthPage, HealthTabs, InvalidEntry, InvalidEventsPage,
    KeyCoverageRow, LatenessRow, TestEventRow, TestEventsPage, TestMatchView, code_meaning,
    percent,
};
pub use hourly_chart::HourBar;
pub use keys::{CreatedKey, KeyRow, KeysPage};
pub use members::{MemberRow, MembersPage};
pub use models::{LabelVersions, ModelsPage, VersionCell};
pub use pages::{Chrome, ErrorPage, FieldErrors, LoginPage, OverviewPage, RecentEvent, SignupPage};
pub use quality::{GoalQuality, GoalQualityRow, QualityPage, QualityRow};
pub use reports::{Column, FilterOption, ReportRow, ReportTotals, ReportsPage};
pub use settings::{PurgeRow, RetentionField, SettingsPage};

/// The landing page: what Sightline is and how to start sending events.
#[derive(Debug, Template, WebTemplate)]
#[template(path = "home.html")]
pub struct HomePage {
    /// The address clients reach this server at, for the ready-to-paste `curl` lines.
    pub base_url: String,
    pub version: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_home_page_shows_a_signup_command_for_this_host() {
        let html = HomePage {
            base_url: "http://sightline.test:8080".into(),
            version: "0.1.0",
        }
        .render()
        .unwrap();
        assert!(html.contains("http://sightline.test:8080/v1/auth/signup"));
        assert!(html.contains("<title>Sightline</title>"));
    }

    #[test]
    fn values_are_escaped() {
        let html = HomePage {
            base_url: "<script>alert(1)</script>".into(),
            version: "0.1.0",
        }
        .render()
        .unwrap();
        assert!(!html.contains("<script>alert(1)"));
    }
}
