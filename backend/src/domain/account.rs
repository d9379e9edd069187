//! Accounts: emails, passwords, organisation names, roles and API-key scopes.

use super::FieldProblem;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A normalised (trimmed, lower-case) email address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldProblem> {
        let email = raw.trim().to_lowercase();
        let malformed = || {
            FieldProblem::new(
                field,
                "invalid_format",
                "must be an email address such as ana@example.com",
            )
        };
        if email.len() > 254 {
            return Err(FieldProblem::new(
                field,
                "too_long",
                "must be at most 254 characters",
            ));
        }
        let (local, domain) = email.split_once('@').ok_or_else(malformed)?;
        let well_formed = !local.is_empty()
            && local.len() <= 64
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && !domain.contains('@');
        if well_formed {
            Ok(Self(email))
        } else {
            Err(malformed())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For rows read back from our own database, which only ever stores parsed emails.
    pub fn from_trusted(value: String) -> Self {
        Self(value)
    }
}

/// A password that meets the length rules. Its `Debug` never shows it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 10;
    /// Long enough for any passphrase, short enough that hashing stays cheap to refuse.
    pub const MAX_CHARS: usize = 1024;

    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldProblem> {
        let chars = raw.chars().count();
        if chars < Self::MIN_CHARS {
            Err(FieldProblem::new(
                field,
                "too_short",
                format!("must be at least {} characters", Self::MIN_CHARS),
            ))
        } else if chars > Self::MAX_CHARS {
            Err(FieldProblem::new(
                field,
                "too_long",
                format!("must be at most {} characters", Self::MAX_CHARS),
            ))
        } else {
            Ok(Self(raw.to_owned()))
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// A display name: trimmed, non-empty, bounded in length, no control characters.
fn display_name(field: &str, raw: &str, max_chars: usize) -> Result<String, FieldProblem> {
    let name = raw.trim();
    if name.is_empty() {
        Err(FieldProblem::new(
            field,
            "invalid_format",
            "must not be empty",
        ))
    } else if name.chars().count() > max_chars {
        Err(FieldProblem::new(
            field,
            "too_long",
            format!("must be at most {max_chars} characters"),
        ))
    } else if name.chars().any(char::is_control) {
        Err(FieldProblem::new(
            field,
            "invalid_format",
            "must not contain control characters",
        ))
    } else {
        Ok(name.to_owned())
    }
}

/// The name of a tenant's organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationName(String);

impl OrganizationName {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldProblem> {
        display_name(field, raw, 200).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The label a tenant gives an API key ("edge cameras").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyName(String);

impl ApiKeyName {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldProblem> {
        display_name(field, raw, 100).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A person's role in a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Analyst,
    Viewer,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Analyst, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldProblem> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == raw)
            .ok_or_else(|| {
                FieldProblem::new(
                    field,
                    "invalid_format",
                    "must be one of owner, admin, analyst, viewer",
                )
            })
    }

    /// Owners and admins manage the tenant: keys, members, goals, policies.
    pub fn can_manage(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }

    /// Owners, admins and analysts see raw event data (invalid events, explain, goals,
    /// policies); viewers see reports only.
    pub fn can_read_events(self) -> bool {
        !matches!(self, Role::Viewer)
    }

    /// Every role reads reports; for viewers, they are all there is to read.
    pub fn can_read_reports(self) -> bool {
        matches!(
            self,
            Role::Owner | Role::Admin | Role::Analyst | Role::Viewer
        )
    }
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Send events.
    Ingest,
    /// Read reports, attributions, explain and invalid events.
    Read,
}

impl Scope {
    pub const ALL: [Scope; 2] = [Scope::Ingest, Scope::Read];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
        }
    }
}

/// A non-empty set of scopes, kept sorted and without repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    pub fn parse(field: &str, raw: &[String]) -> Result<Self, FieldProblem> {
        if raw.is_empty() {
            return Err(FieldProblem::new(
                field,
                "missing_field",
                "must name at least one scope: ingest, read",
            ));
        }
        let mut scopes = Vec::with_capacity(raw.len());
        for name in raw {
            let scope = Scope::ALL
                .into_iter()
                .find(|s| s.as_str() == name)
                .ok_or_else(|| {
                    FieldProblem::new(
                        field,
                        "invalid_format",
                        format!("unknown scope `{name}`; scopes are ingest, read"),
                    )
                })?;
            scopes.push(scope);
        }
        scopes.sort();
        scopes.dedup();
        Ok(Self(scopes))
    }

    /// The stored form: names joined by commas.
    pub fn to_stored(&self) -> String {
        self.0
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Reads the stored form back; unknown names (none are ever written) are skipped.
    pub fn from_stored(stored: &str) -> Self {
        let mut scopes: Vec<Scope> = stored
            .split(',')
            .filter_map(|name| Scope::ALL.into_iter().find(|s| s.as_str() == name))
            .collect();
        scopes.sort();
        scopes.dedup();
        Self(scopes)
    }

    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|s| s.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_malformed_ones_refused() {
        assert_eq!(
            Email::parse("email", "  Ana@Acme.Test ")
                .expect("a valid email")
                .as_str(),
            "ana@acme.test"
        );
        for bad in [
            "",
            "ana",
            "ana@",
            "@acme.test",
            "ana@acme",
            "a na@acme.test",
            "ana@acme..test",
            "a@b@c.test",
        ] {
            assert!(
                Email::parse("email", bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn passwords_under_ten_characters_are_too_short() {
        assert_eq!(
            Password::parse("password", "123456789").unwrap_err().code,
            "too_short"
        );
        assert!(Password::parse("password", "1234567890").is_ok());
        assert_eq!(
            format!(
                "{:?}",
                Password::parse("p", "1234567890").expect("long enough")
            ),
            "Password([redacted])"
        );
    }

    #[test]
    fn scopes_are_a_sorted_set_of_known_names() {
        let scopes = Scopes::parse("scopes", &["read".into(), "ingest".into(), "read".into()])
            .expect("known scopes");
        assert_eq!(scopes.to_stored(), "ingest,read");
        assert_eq!(Scopes::from_stored("ingest,read"), scopes);
        assert!(Scopes::parse("scopes", &[]).is_err());
        assert!(Scopes::parse("scopes", &["write".into()]).is_err());
    }

    #[test]
    fn only_owners_and_admins_manage() {
        assert!(Role::Owner.can_manage() && Role::Admin.can_manage());
        assert!(!Role::Analyst.can_manage() && !Role::Viewer.can_manage());
        assert_eq!(
            Role::parse("role", "analyst").expect("a role"),
            Role::Analyst
        );
        assert!(Role::parse("role", "root").is_err());
    }
}
