//! The audit log page (owners): every administrative change, newest first, with who made it
//! and what each changed field was before and after.

use crate::pages::Chrome;
use askama::Template;
use askama_web::WebTemplate;

/// One field of a change: its value before and after (`–` where there was none).
#[derive(Debug, Clone)]
pub struct FieldChange {
    pub field: String,
    pub before: String,
    pub after: String,
}

/// One entry of the log as the page shows it.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub time: String,
    /// The person's email, the key's name, or what is left of them.
    pub who: String,
    pub action: String,
    pub target: Option<String>,
    /// Only the fields that differ.
    pub changes: Vec<FieldChange>,
}

#[derive(Debug, Template, WebTemplate)]
#[template(path = "pages/audit.html")]
pub struct AuditPage {
    pub chrome: Chrome,
    pub entries: Vec<AuditRow>,
    /// The link to the next (older) page, when there is one.
    pub older: Option<String>,
    /// Whether this is a later page (so "newest" is offered).
    pub paged: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chrome() -> Chrome {
        Chrome {
            organization: "Acme".into(),
            email: "o@acme.test".into(),
            role: "owner",
            can_manage: true,
            csrf: "c".repeat(64),
            section: "audit",
            version: "0.1.0",
        }
    }

    #[test]
    fn changes_are_listed_field_by_field_and_escaped() {
        let html = AuditPage {
            chrome: chrome(),
            entries: vec![AuditRow {
                time: "2026-12-04 10:00:00".into(),
                who: "o@acme.test".into(),
                action: "goal.update".into(),
                target: Some("g-1".into()),
                changes: vec![FieldChange {
                    field: "name".into(),
                    before: "Scan".into(),
                    after: "<script>alert(1)</script>".into(),
                }],
            }],
            older: Some("/app/audit?before=x".into()),
            paged: false,
        }
        .render()
        .expect("renders");
        assert!(html.contains("goal.update"));
        assert!(!html.contains("<script>alert(1)"));
        assert!(html.contains(r#"href="/app/audit?before=x""#));
    }

    #[test]
    fn an_empty_log_says_what_will_appear() {
        let html = AuditPage {
            chrome: chrome(),
            entries: vec![],
            older: None,
            paged: false,
        }
        .render()
        .expect("renders");
        assert!(html.contains(r#"id="empty""#));
    }
}
