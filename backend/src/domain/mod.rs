//! Parsed domain types: once a value has one of these types it is valid. No framework imports.

pub mod account;
pub mod events;
pub mod goals;
#[cfg(test)]
mod hostile_input;
pub mod ids;
pub mod policy;
pub mod problem;
pub mod retention;
pub mod time;

pub use account::{ApiKeyName, Email, OrganizationName, Password, Role, Scope, Scopes};
pub use ids::{ApiKeyId, TenantId, UserId};
pub use problem::FieldProblem;
pub use time::Timestamp;
