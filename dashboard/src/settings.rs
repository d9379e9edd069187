//! The privacy settings page: the tenant's consent policy (owners and admins change it,
//! analysts read it).

use crate::pages::Chrome;
use askama::Template;
use askama_web::WebTemplate;

#[derive(Debug, Template, WebTemplate)]
#[template(path = "pages/settings.html")]
pub struct SettingsPage {
    pub chrome: Chrome,
    /// `granted` or `denied`: the consent of an event that does not say.
    pub consent_default: &'static str,
    pub strip_keys_without_consent: bool,
    /// Shown after a change was saved.
    pub saved: bool,
}
