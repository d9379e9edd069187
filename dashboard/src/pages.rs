//! The signed-in dashboard's pages and the forms around signing in.

use askama::Template;
use askama_web::WebTemplate;

/// What every signed-in page shows around its content: the navigation, the tenant and the
/// person, and the token the log-out form (and every other form) carries.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub organization: String,
    pub email: String,
    pub role: &'static str,
    /// Owners and admins see the administration pages.
    pub can_manage: bool,
    pub csrf: String,
    /// The navigation entry to mark as current.
    pub section: &'static str,
    pub version: &'static str,
}

/// Problems with a submitted form, by field, shown beside the fields.
#[derive(Debug, Clone, Default)]
pub struct FieldErrors(Vec<(String, String)>);

impl FieldErrors {
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push((field.into(), message.into()));
    }

    /// The message for `field`, if it has one.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(name, _)| name == field)
            .map(|(_, message)| message.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Debug, Template, WebTemplate)]
#[template(path = "pages/signup.html")]
pub struct SignupPage {
    pub csrf: String,
    pub organization: String,
    pub email: String,
    pub errors: FieldErrors,
    pub version: &'static str,
}

#[derive(Debug, Template, WebTemplate)]
#[template(path = "pages/login.html")]
pub struct LoginPage {
    pub csrf: String,
    pub email: String,
    /// Why the last attempt failed (the same words for a wrong email and a wrong password).
    pub error: Option<String>,
    pub notice: Option<String>,
    pub version: &'static str,
}

/// One recently received event, as the overview lists it.
#[derive(Debug, Clone)]
pub struct RecentEvent {
    pub kind: &'static str,
    pub event_id: String,
    /// The label of a detection, the name of a conversion.
    pub what: String,
    pub received: String,
    pub is_test: bool,
}

#[derive(Debug, Template, WebTemplate)]
#[template(path = "pages/overview.html")]
pub struct OverviewPage {
    pub chrome: Chrome,
    pub days: u32,
    pub detections: u64,
    pub conversions: u64,
    pub matched_conversions: u64,
    /// `matched_conversions / conversions` as a percentage with one decimal, or "–".
    pub matched_rate: String,
    /// Conversion received until its direct attribution was written, over the last day.
    pub lag_p50: String,
    pub lag_p95: String,
    pub recent: Vec<RecentEvent>,
    /// The address clients reach this server at, for the ready-to-paste `curl` line.
    pub base_url: String,
}

/// Any page that could not be shown, with what to do next.
#[derive(Debug, Template, WebTemplate)]
#[template(path = "pages/error.html")]
pub struct ErrorPage {
    pub status: u16,
    pub title: String,
    pub message: String,
    pub version: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chrome() -> Chrome {
        Chrome {
            organization: "Acme <Optics>".into(),
            email: "a@acme.test".into(),
            role: "viewer",
            can_manage: false,
            csrf: "t".repeat(64),
            section: "overview",
            version: "0.1.0",
        }
    }

    #[test]
    fn a_field_error_is_shown_beside_its_field() {
        let mut errors = FieldErrors::default();
        errors.add("password", "at least 10 characters");
        let html = SignupPage {
            csrf: "x".repeat(64),
            organization: "Acme".into(),
            email: "a@acme.test".into(),
            errors,
            version: "0.1.0",
        }
        .render()
        .expect("renders");
        assert!(html.contains("at least 10 characters"));
        assert!(html.contains(r#"name="csrf" value="xxxx"#));
        assert!(html.contains(r#"value="a@acme.test""#));
    }

    #[test]
    fn the_overview_escapes_tenant_text_and_hides_admin_links_from_viewers() {
        let html = OverviewPage {
            chrome: chrome(),
            days: 30,
            detections: 0,
            conversions: 0,
            matched_conversions: 0,
            matched_rate: "–".into(),
            lag_p50: "–".into(),
            lag_p95: "–".into(),
            recent: vec![RecentEvent {
                kind: "detection",
                event_id: "<b>d-1</b>".into(),
                what: "barcode".into(),
                received: "2026-12-03 10:00:00".into(),
                is_test: false,
            }],
            base_url: "http://sightline.test".into(),
        }
        .render()
        .expect("renders");
        assert!(html.contains("Acme &#60;Optics&#62;") || html.contains("Acme &lt;Optics&gt;"));
        assert!(!html.contains("<b>d-1</b>"));
        assert!(!html.contains("href=\"/app/admin"));
    }
}
