//! The Tracking health pages: the summary of what arrived (per hour, lateness, consent,
//! rejections by error code, goals whose key no detection carries), the invalid-events log
//! with payloads, and the test events with what they matched.

use crate::hourly_chart::HourBar;
use crate::pages::Chrome;
use crate::reports::FilterOption;
use askama::Template;
use askama_web::WebTemplate;

/// The validation error codes of the public API, with what each means for a sender.
pub const ERROR_CODES: [(&str, &str); 9] = [
    ("missing_field", "a required field is absent"),
    ("invalid_type", "a field has the wrong JSON type"),
    ("out_of_range", "a number is outside its range"),
    ("too_long", "a text or object is over its size limit"),
    (
        "unknown_field",
        "a field that this event type does not have",
    ),
    (
        "invalid_format",
        "an empty text, a value outside its list, a malformed time or currency",
    ),
    ("in_future", "the event time is more than 5 minutes ahead"),
    (
        "too_old",
        "the event time is older than the maximum event age",
    ),
    ("no_keys", "the event carries no tracking key"),
];

/// What `code` means, or "" for a code this list does not have.
pub fn code_meaning(code: &str) -> &'static str {
    ERROR_CODES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or("", |(_, meaning)| meaning)
}

/// `part` of `whole` as a percentage with one decimal, or "–" of nothing.
pub fn percent(part: i64, whole: i64) -> String {
    if whole <= 0 {
        "–".to_owned()
    } else {
        format!("{:.1} %", part as f64 * 100.0 / whole as f64)
    }
}

/// The tabs of the health section; the raw-data ones only for roles that read raw events.
#[derive(Debug, Clone)]
pub struct HealthTabs {
    /// `summary`, `invalid` or `test-events`.
    pub current: &'static str,
    pub raw_data: bool,
}

/// Errors of one code in the period.
#[derive(Debug, Clone)]
pub struct CodeRow {
    pub code: String,
    pub meaning: &'static str,
    pub events: i64,
    pub errors: i64,
    /// The log filtered by this code, for roles that may read it.
    pub log_href: Option<String>,
}

/// Accepted events in one lateness bucket.
#[derive(Debug, Clone)]
pub struct LatenessRow {
    pub bucket: &'static str,
    pub events: i64,
    pub share: String,
}

/// One active goal's conversions that no detection can match by the key.
#[derive(Debug, Clone)]
pub struct KeyCoverageRow {
    pub goal: String,
    pub key: String,
    pub conversions: i64,
    pub without_key: i64,
    pub unseen_key: i64,
    pub broken: i64,
    pub share: String,
    /// Only the most recent conversions were examined.
    pub sampled: bool,
}

#[derive(Debug, Template, WebTemplate)]
#[template(path = "pages/health.html")]
pub struct HealthPage {
    pub chrome: Chrome,
    pub tabs: HealthTabs,
    /// The choices of period (`24h`, `7d`).
    pub ranges: Vec<FilterOption>,
    /// "the last 24 hours", "the last 7 days".
    pub range_label: &'static str,
    /// The period's first hour, `YYYY-MM-DD HH:00 UTC`.
    pub from: String,
    pub detections: i64,
    pub conversions: i64,
    pub rejected: i64,
    /// Rejected of all received (accepted and rejected).
    pub rejected_share: String,
    pub consent_denied: i64,
    pub consent_denied_share: String,
    pub test_events: i64,
    pub hours: Vec<HourBar>,
    /// The rendered chart ([`crate::hourly_chart::render`]), already escaped.
    pub chart: Option<String>,
    pub codes: Vec<CodeRow>,
    pub lateness: Vec<LatenessRow>,
    pub coverage: Vec<KeyCoverageRow>,
    /// How many conversions per goal are examined at most.
    pub coverage_sample: i64,
    pub base_url: String,
}

impl HealthPage {
    pub fn accepted(&self) -> i64 {
        self.detections + self.conversions
    }

    /// Whether some goal's figures cover only its most recent conversions.
    pub fn any_sampled(&self) -> bool {
        self.coverage.iter().any(|row| row.sampled)
    }

    /// Nothing at all arrived in the period.
    pub fn is_empty(&self) -> bool {
        self.accepted() == 0 && self.rejected == 0
    }
}

/// One error of a rejected event.
#[derive(Debug, Clone)]
pub struct EntryError {
    pub field: String,
    pub code: String,
    pub message: String,
}

/// One entry of the invalid-events log.
#[derive(Debug, Clone)]
pub struct InvalidEntry {
    pub received: String,
    pub event_type: Option<String>,
    pub event_id: Option<String>,
    /// The payload as sent, pretty-printed (shortened when very long).
    pub payload: String,
    /// Bytes of the pretty payload left out, if it was shortened.
    pub cut_bytes: Option<usize>,
    pub errors: Vec<EntryError>,
}

#[derive(Debug, Template, WebTemplate)]
#[template(path = "pages/health_invalid.html")]
pub struct InvalidEventsPage {
    pub chrome: Chrome,
    pub tabs: HealthTabs,
    /// The error codes to filter by; "" (all) is the form's first choice.
    pub codes: Vec<FilterOption>,
    /// The code filtered by, "" for all.
    pub code: String,
    /// A code asked for that is not an API error code (the log is then shown unfiltered).
    pub unknown_code: Option<String>,
    pub entries: Vec<InvalidEntry>,
    /// Entries per page.
    pub limit: u64,
    /// Whether this is an older page (a link back to the newest is shown).
    pub older_page: bool,
    /// The next (older) page, when there is one.
    pub older_href: Option<String>,
    /// The newest page with the same filter.
    pub newest_href: String,
    /// How long the log keeps an entry (the retention policy).
    pub retention_days: i64,
    pub base_url: String,
}

/// An attribution of a test event, seen from that event.
#[derive(Debug, Clone)]
pub struct TestMatchView {
    pub goal: String,
    /// `direct` or `assisted`.
    pub kind: String,
    /// The event at the other end: the detection of a conversion, the conversion of a
    /// detection.
    pub other_event_id: String,
}

/// One test event.
#[derive(Debug, Clone)]
pub struct TestEventRow {
    pub received: String,
    /// `detection` or `conversion`.
    pub kind: &'static str,
    pub event_id: String,
    /// A detection's label, a conversion's name.
    pub what: String,
    /// `name=value` pairs, or a note that the keys were stripped.
    pub keys: String,
    pub consent: String,
    pub matches: Vec<TestMatchView>,
    /// For a conversion: its explanation.
    pub explain_href: Option<String>,
}

#[derive(Debug, Template, WebTemplate)]
#[template(path = "pages/health_test_events.html")]
pub struct TestEventsPage {
    pub chrome: Chrome,
    pub tabs: HealthTabs,
    pub days: u32,
    pub events: Vec<TestEventRow>,
    /// More test events were received than are shown.
    pub more: bool,
    pub base_url: String,
}

#[cfg(test)]
mod tests;
