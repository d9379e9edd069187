//! The goals pages: every goal with its re-evaluation, and the form that creates or edits
//! one (owners and admins; analysts read).

use crate::pages::{Chrome, FieldErrors};
use askama::Template;
use askama_web::WebTemplate;

/// A goal as the list shows it.
#[derive(Debug, Clone)]
pub struct GoalRow {
    pub id: String,
    pub name: String,
    pub labels: String,
    pub conversion_name: String,
    pub key: String,
    pub window: String,
    pub min_confidence: String,
    pub dedup: String,
    pub requires_consent: bool,
    pub active: bool,
    /// "re-evaluating 3 of 10 sessions", "re-evaluated 10 sessions", or empty.
    pub reevaluation: String,
}

/// The goal form's fields, as text (kept as typed when they had problems).
#[derive(Debug, Clone)]
pub struct GoalForm {
    pub name: String,
    pub labels: String,
    pub conversion_name: String,
    pub key: String,
    pub window: String,
    /// `seconds`, `minutes`, `hours` or `days`.
    pub window_unit: String,
    pub min_confidence: String,
    pub dedup_seconds: String,
    pub requires_consent: bool,
    pub active: bool,
}

impl GoalForm {
    pub fn unit_is(&self, unit: &str) -> bool {
        self.window_unit == unit
    }
}

impl Default for GoalForm {
    fn default() -> Self {
        Self {
            name: String::new(),
            labels: String::new(),
            conversion_name: String::new(),
            key: "session_token".into(),
            window: "24".into(),
            window_unit: "hours".into(),
            min_confidence: "0.5".into(),
            dedup_seconds: "30".into(),
            requires_consent: false,
            active: true,
        }
    }
}

#[derive(Debug, Template, WebTemplate)]
#[template(path = "pages/goals.html")]
pub struct GoalsPage {
    pub chrome: Chrome,
    pub goals: Vec<GoalRow>,
    /// The new-goal form (owners and admins only).
    pub form: GoalForm,
    pub errors: FieldErrors,
}

#[derive(Debug, Template, WebTemplate)]
#[template(path = "pages/goal_edit.html")]
pub struct GoalEditPage {
    pub chrome: Chrome,
    pub id: String,
    pub form: GoalForm,
    pub errors: FieldErrors,
    pub reevaluation: String,
    /// Shown after a change was saved.
    pub saved: bool,
}
