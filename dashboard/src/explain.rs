//! The explain page: find a conversion by event id and see, for every goal, each related
//! detection and the first matching rule it fails, or the credit it earned.

use crate::pages::Chrome;
use askama::Template;
use askama_web::WebTemplate;

#[derive(Debug, Clone)]
pub struct ExplainedCandidate {
    pub detection_event_id: String,
    pub event_time: String,
    pub label: String,
    pub entity_id: String,
    pub confidence: String,
    /// The API's verdict code (`direct`, `below_threshold`, ...).
    pub verdict: &'static str,
}

impl ExplainedCandidate {
    /// The verdict in words.
    pub fn meaning(&self) -> &'static str {
        match self.verdict {
            "direct" => "gets the direct attribution",
            "assisted" => "gets an assisted attribution",
            "label_not_in_goal" => "its label is not one of the goal's",
            "different_key" => "it does not share the goal's tracking key value",
            "after_conversion" => "it happened after the conversion",
            "outside_window" => "it happened before the goal's window",
            "below_threshold" => "its confidence is under the goal's minimum",
            "no_consent" => "the goal needs consent, and one of the two events has none",
            "duplicate" => "a repeat of the same thing within the dedup gap",
            "filtered" => "the vision system marked it as filtered",
            _ => "",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ExplainedGoal {
    pub name: String,
    pub candidates: Vec<ExplainedCandidate>,
}

#[derive(Debug, Template, WebTemplate)]
#[template(path = "pages/explain.html")]
pub struct ExplainPage {
    pub chrome: Chrome,
    /// The event id asked for (empty before the first search).
    pub event_id: String,
    /// `None` before a search or when the conversion was not found.
    pub goals: Option<Vec<ExplainedGoal>>,
    pub not_found: bool,
}
