//! Authentication and authorisation: passwords, session tokens (JWT), API keys, and the
//! [`Caller`] extractor that yields the caller's tenant scope.

pub mod api_key;
mod caller;
pub mod cookies;
pub mod csrf;
pub mod jwt;
pub mod key_cache;
pub mod login_throttle;
pub mod password;

pub use caller::{Caller, CallerKind};

use crate::domain::TenantId;

/// The tenant whose data a request may touch. Only authentication creates one, so a query
/// that takes a `TenantScope` is scoped to a tenant the caller really belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantScope(TenantId);

impl TenantScope {
    pub(crate) fn authenticated(tenant: TenantId) -> Self {
        Self(tenant)
    }

    pub fn id(&self) -> TenantId {
        self.0
    }
}
