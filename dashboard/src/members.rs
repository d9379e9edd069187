//! The members page (owners and admins): who belongs to the tenant with which role, a form to
//! add someone, and per member a role change and removal.

use crate::pages::{Chrome, FieldErrors};
use askama::Template;
use askama_web::WebTemplate;

/// The roles, most powerful first, with what each may do (API.md "Authentication").
pub const ROLES: [(&str, &str); 4] = [
    (
        "owner",
        "everything, including owners and the tenant itself",
    ),
    (
        "admin",
        "everything but the owner role: goals, policies, keys, members",
    ),
    ("analyst", "reads reports, goals and raw event logs"),
    ("viewer", "reads reports only"),
];

/// A member as the list shows them.
#[derive(Debug, Clone)]
pub struct MemberRow {
    pub user_id: String,
    pub email: String,
    pub role: String,
    pub joined: String,
    /// The member looking at the page.
    pub is_you: bool,
}

#[derive(Debug, Template, WebTemplate)]
#[template(path = "pages/members.html")]
pub struct MembersPage {
    pub chrome: Chrome,
    pub members: Vec<MemberRow>,
    /// Only owners may grant the owner role.
    pub can_grant_owner: bool,
    /// What the last change did, after its redirect.
    pub notice: Option<&'static str>,
    /// Why the last change was refused (a tenant keeps an owner; only owners grant owner).
    pub refusal: Option<String>,
    /// The add form as last sent (kept when it had problems; never the password).
    pub email: String,
    pub role: String,
    pub errors: FieldErrors,
}

impl MembersPage {
    /// The roles this member may hand out in the add form: (role, what it may do, chosen).
    pub fn add_choices(&self) -> Vec<(&'static str, &'static str, bool)> {
        ROLES
            .iter()
            .filter(|(role, _)| self.can_grant_owner || *role != "owner")
            .map(|(role, rights)| (*role, *rights, *role == self.role))
            .collect()
    }

    /// The roles `member`'s role can be changed to: (role, is theirs now). An admin sees the
    /// owner role only on an owner, whose role they cannot change.
    pub fn role_choices(&self, member: &MemberRow) -> Vec<(&'static str, bool)> {
        ROLES
            .iter()
            .filter(|(role, _)| self.can_grant_owner || *role != "owner" || member.role == "owner")
            .map(|(role, _)| (*role, *role == member.role))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(role: &'static str) -> MembersPage {
        MembersPage {
            chrome: Chrome {
                organization: "Acme".into(),
                email: "a@acme.test".into(),
                role,
                can_manage: true,
                csrf: "c".repeat(64),
                section: "members",
                version: "0.1.0",
            },
            members: vec![MemberRow {
                user_id: "u-1".into(),
                email: "<script>x</script>@acme.test".into(),
                role: "analyst".into(),
                joined: "2026-12-03".into(),
                is_you: false,
            }],
            can_grant_owner: role == "owner",
            notice: None,
            refusal: None,
            email: String::new(),
            role: "viewer".into(),
            errors: FieldErrors::default(),
        }
    }

    #[test]
    fn an_admin_cannot_pick_the_owner_role() {
        let html = page("admin").render().expect("renders");
        assert!(!html.contains(r#"<option value="owner""#));
        assert!(html.contains(r#"value="viewer" checked"#));
        let html = page("owner").render().expect("renders");
        assert!(html.contains(r#"<option value="owner""#));
    }

    #[test]
    fn member_emails_are_escaped() {
        let html = page("owner").render().expect("renders");
        assert!(!html.contains("<script>x</script>"));
        assert!(html.contains(r#"action="/app/members/u-1/role""#));
    }
}
