//! The privacy settings page: the tenant's consent and retention policies (owners and admins
//! change them, analysts read them).

use crate::pages::{Chrome, FieldErrors};
use askama::Template;
use askama_web::WebTemplate;

#[derive(Debug, Template, WebTemplate)]
#[template(path = "pages/settings.html")]
pub struct SettingsPage {
    pub chrome: Chrome,
    /// `granted` or `denied`: the consent of an event that does not say.
    pub consent_default: &'static str,
    pub strip_keys_without_consent: bool,
    /// The retention periods, as stored or as just submitted with their problems.
    pub retention: Vec<RetentionField>,
    /// What was just saved, if anything: `consent` or `retention`.
    pub saved: Option<&'static str>,
    /// What the retention purge has done, per class of data.
    pub purges: Vec<PurgeRow>,
}

impl SettingsPage {
    /// Whether the retention form came back with problems.
    pub fn retention_refused(&self) -> bool {
        self.retention.iter().any(|field| field.error.is_some())
    }
}

/// One period of the retention policy: its form field and what it means.
#[derive(Debug, Clone)]
pub struct RetentionField {
    /// The API's field name, also the form field's.
    pub name: &'static str,
    pub label: &'static str,
    pub min: u16,
    pub max: u16,
    pub value: String,
    pub error: Option<String>,
}

impl RetentionField {
    /// The field `name` with its allowed range, its value and its problem, if any.
    pub fn new(name: &'static str, range: (u16, u16), value: String, errors: &FieldErrors) -> Self {
        let label = match name {
            "detections_days" => "Keep detections for",
            "conversions_days" => "Keep conversions for",
            "attributions_days" => "Keep attributions for",
            "invalid_events_days" => "Keep invalid events, with their payloads, for",
            "max_event_age_days" => "Refuse events older than",
            _ => name,
        };
        Self {
            name,
            label,
            min: range.0,
            max: range.1,
            value,
            error: errors.get(name).map(str::to_owned),
        }
    }
}

/// One class of data on the retention card: its period, the purge's last run over it, and
/// the oldest row it still holds.
#[derive(Debug, Clone)]
pub struct PurgeRow {
    /// `detections`, `conversions`, `attributions` or `invalid_events` (element ids).
    pub class: &'static str,
    pub label: &'static str,
    /// The time the class expires by, in words.
    pub expires_by: &'static str,
    pub period_days: u16,
    /// When the purge last ran over this class (`None`: not yet).
    pub last_run: Option<String>,
    /// Rows that run deleted.
    pub last_deleted: u64,
    /// Rows deleted by every run together.
    pub total_deleted: u64,
    /// The time of the oldest row kept (`None`: no rows).
    pub oldest_kept: Option<String>,
}

impl PurgeRow {
    /// The label and what the class expires by, for a class name.
    pub fn describe(class: &str) -> (&'static str, &'static str) {
        match class {
            "detections" => ("Detections", "event time"),
            "conversions" => ("Conversions", "event time"),
            "attributions" => ("Attributions", "their conversion's event time"),
            _ => ("Invalid events", "time received"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chrome(role: &'static str) -> Chrome {
        Chrome {
            organization: "Acme".into(),
            email: "a@acme.test".into(),
            role,
            can_manage: role == "owner",
            csrf: "c".repeat(64),
            section: "settings",
            version: "0.1.0",
        }
    }

    fn page(role: &'static str, errors: &FieldErrors, value: &str) -> SettingsPage {
        SettingsPage {
            chrome: chrome(role),
            consent_default: "granted",
            strip_keys_without_consent: false,
            retention: vec![
                RetentionField::new("detections_days", (1, 3650), value.into(), errors),
                RetentionField::new("max_event_age_days", (1, 30), "7".into(), errors),
            ],
            saved: None,
            purges: vec![PurgeRow {
                class: "detections",
                label: "Detections",
                expires_by: "event time",
                period_days: 90,
                last_run: Some("2026-12-04 10:00 UTC".into()),
                last_deleted: 1200,
                total_deleted: 5000,
                oldest_kept: None,
            }],
        }
    }

    #[test]
    fn a_refused_period_keeps_what_was_typed_and_says_why_beside_it() {
        let mut errors = FieldErrors::default();
        errors.add(
            "detections_days",
            "must be a whole number of days from 1 to 3650",
        );
        let page = page("owner", &errors, "<b>0</b>");
        assert!(page.retention_refused());
        let html = page.render().expect("renders");
        assert!(html.contains(r#"id="detections_days-error""#));
        assert!(html.contains("from 1 to 3650"));
        assert!(html.contains("&#60;b&#62;0&#60;/b&#62;") || html.contains("&lt;b&gt;0&lt;/b&gt;"));
        assert!(html.contains(r#"action="/app/settings/retention""#));
    }

    #[test]
    fn an_analyst_reads_the_periods_without_a_form() {
        let html = page("analyst", &FieldErrors::default(), "90")
            .render()
            .expect("renders");
        assert!(!html.contains(r#"action="/app/settings/retention""#));
        assert!(html.contains(r#"id="retention-detections_days">90 days"#));
    }

    #[test]
    fn the_purge_card_shows_the_last_run_and_the_oldest_row_kept_per_class() {
        let html = page("analyst", &FieldErrors::default(), "90")
            .render()
            .expect("renders");
        assert!(
            html.contains(r#"id="purge-detections-last">2026-12-04 10:00 UTC: 1200 rows deleted"#)
        );
        assert!(html.contains(r#"id="purge-detections-oldest">none kept"#));
        assert!(!html.contains("not built yet"));
    }
}
