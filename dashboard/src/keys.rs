//! The API keys page (owners and admins): the tenant's keys, a form to create one, and the
//! new key's secret, shown once.

use crate::pages::{Chrome, FieldErrors};
use askama::Template;
use askama_web::WebTemplate;

/// A key as the list shows it.
#[derive(Debug, Clone)]
pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub scopes: String,
    pub created: String,
    pub last_used: String,
    /// When it was revoked; a revoked key has no revoke button.
    pub revoked: Option<String>,
}

/// A key just created: the only time its secret is shown.
#[derive(Debug, Clone)]
pub struct CreatedKey {
    pub name: String,
    pub secret: String,
}

#[derive(Debug, Template, WebTemplate)]
#[template(path = "pages/keys.html")]
pub struct KeysPage {
    pub chrome: Chrome,
    pub keys: Vec<KeyRow>,
    pub created: Option<CreatedKey>,
    /// The form as last sent (kept when it had problems).
    pub name: String,
    pub ingest: bool,
    pub read: bool,
    pub errors: FieldErrors,
    /// The address clients reach this server at, for the example command.
    pub base_url: String,
}
