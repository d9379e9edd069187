//! The [`Caller`] extractor: who is calling, for which tenant, with which rights.
//!
//! `Authorization: Bearer sl_live_...` is an API key; any other bearer token is a session
//! JWT. Every failure answers the same 401, so a caller cannot tell an unknown key from a
//! revoked one or a bad signature from an expired token.

use super::{TenantScope, api_key, key_cache};
use crate::domain::{ApiKeyId, Role, Scope, Scopes, UserId};
use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::{accounts, audit::Actor};
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use std::future::Future;
use std::pin::Pin;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    tenant: TenantScope,
    kind: CallerKind,
}

/// A person with a role, or a system with an API key.
#[derive(Debug, Clone)]
pub enum CallerKind {
    Member { user_id: UserId, role: Role },
    ApiKey { key_id: ApiKeyId, scopes: Scopes },
}

impl Caller {
    pub fn tenant(&self) -> &TenantScope {
        &self.tenant
    }

    pub fn kind(&self) -> &CallerKind {
        &self.kind
    }

    /// Who to name in the audit log.
    pub fn actor(&self) -> Actor {
        match &self.kind {
            CallerKind::Member { user_id, .. } => Actor::User(*user_id),
            CallerKind::ApiKey { key_id, .. } => Actor::ApiKey(*key_id),
        }
    }

    /// For administration (keys, members, goals, policies): an owner or admin. API keys are
    /// for ingestion and reading, never administration.
    pub fn require_manager(&self) -> Result<Role, ApiError> {
        match &self.kind {
            CallerKind::Member { role, .. } if role.can_manage() => Ok(*role),
            CallerKind::Member { .. } => {
                Err(ApiError::Forbidden("this needs the owner or admin role"))
            }
            CallerKind::ApiKey { .. } => Err(ApiError::Forbidden(
                "API keys cannot manage the account; log in as an owner or admin",
            )),
        }
    }

    /// For a person whose role `allowed` accepts; API keys are refused.
    pub fn require_member(&self, allowed: fn(Role) -> bool) -> Result<Role, ApiError> {
        match &self.kind {
            CallerKind::Member { role, .. } if allowed(*role) => Ok(*role),
            CallerKind::Member { .. } => Err(ApiError::Forbidden("your role does not allow this")),
            CallerKind::ApiKey { .. } => Err(ApiError::Forbidden(
                "API keys cannot do this; log in instead",
            )),
        }
    }

    /// For data access: a key with `scope`, or a member whose role `member_may` allows.
    pub fn require_access(
        &self,
        scope: Scope,
        member_may: fn(Role) -> bool,
    ) -> Result<(), ApiError> {
        match &self.kind {
            CallerKind::ApiKey { scopes, .. } if scopes.contains(scope) => Ok(()),
            CallerKind::ApiKey { .. } => Err(ApiError::Forbidden(match scope {
                Scope::Ingest => "this API key lacks the `ingest` scope",
                Scope::Read => "this API key lacks the `read` scope",
            })),
            CallerKind::Member { role, .. } if member_may(*role) => Ok(()),
            CallerKind::Member { .. } => Err(ApiError::Forbidden("your role does not allow this")),
        }
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| ApiError::internal("application state is missing"))?
                .clone();
            let token = bearer_token(&req).ok_or(ApiError::Unauthorized)?;
            let caller = if token.starts_with(api_key::PREFIX) {
                authenticate_key(&state, token).await?
            } else {
                authenticate_session(&state, token).await?
            };
            if let Some(span) = req.extensions().get::<tracing_actix_web::RootSpan>() {
                span.record("tenant_id", tracing::field::display(caller.tenant.id()));
            }
            Ok(caller)
        })
    }
}

impl Caller {
    /// The member a session token (the dashboard's cookie) belongs to, checked as a bearer
    /// token is.
    pub async fn from_session_token(state: &AppState, token: &str) -> Result<Caller, ApiError> {
        authenticate_session(state, token).await
    }
}

fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

async fn authenticate_key(state: &AppState, secret: &str) -> Result<Caller, ApiError> {
    // The checksum refuses typos and forgeries before any lookup.
    if !api_key::is_well_formed(secret) {
        return Err(ApiError::Unauthorized);
    }
    let owner = key_cache::lookup(&state.hot, &state.db, &api_key::hash(secret))
        .await?
        .ok_or(ApiError::Unauthorized)?;
    key_cache::touch_in_background(&state.hot, &state.db, &owner);
    Ok(Caller {
        tenant: TenantScope::authenticated(owner.tenant_id),
        kind: CallerKind::ApiKey {
            key_id: owner.key_id,
            scopes: owner.scopes,
        },
    })
}

async fn authenticate_session(state: &AppState, token: &str) -> Result<Caller, ApiError> {
    let claims = state.jwt.verify(token).ok_or(ApiError::Unauthorized)?;
    // The membership is read on every request: a removed member, a changed role or a
    // bumped session version takes effect on the next request.
    let (role, session_version) = accounts::session_member(&state.db, claims.tid, claims.sub)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    if session_version != claims.sv {
        return Err(ApiError::Unauthorized);
    }
    Ok(Caller {
        tenant: TenantScope::authenticated(claims.tid),
        kind: CallerKind::Member {
            user_id: claims.sub,
            role,
        },
    })
}
