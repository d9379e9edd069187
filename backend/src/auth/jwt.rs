//! Session tokens: HS256 JWTs with `exp`, `iat`, `iss`, `aud` required and checked.
//!
//! The algorithm is pinned: a token that names any other (including `none`) is refused.

use crate::config::{Secret, Settings};
use crate::domain::{TenantId, UserId};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

const ISSUER: &str = "sightline";
const AUDIENCE: &str = "sightline-api";
const SECRET_FILE: &str = "jwt_secret";

/// The claims of a session token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user.
    pub sub: UserId,
    /// The tenant the session is for.
    pub tid: TenantId,
    /// The user's session version when the token was issued; bumping it ends the session.
    pub sv: i32,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

/// Keys and rules for issuing and checking session tokens.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    pub fn new(secret: &Secret, ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = 30;
        Self {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            validation,
            ttl,
        }
    }

    /// Issues a token for `user` in `tenant`; returns it with its expiry time.
    /// How long an issued token lasts.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn issue(
        &self,
        user: UserId,
        tenant: TenantId,
        session_version: i32,
    ) -> Result<(String, DateTime<Utc>), jsonwebtoken::errors::Error> {
        let now = Utc::now();
        let expires =
            now + chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::hours(12));
        let claims = Claims {
            sub: user,
            tid: tenant,
            sv: session_version,
            iat: now.timestamp(),
            exp: expires.timestamp(),
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok((token, expires))
    }

    /// Checks a token's signature, algorithm and claims.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|data| data.claims)
    }
}

/// The configured secret, or the one kept in the data directory (generated on first start).
pub fn load_or_create_secret(settings: &Settings) -> std::io::Result<Secret> {
    if let Some(secret) = &settings.jwt_secret {
        return Ok(secret.clone());
    }
    let path = settings.data_dir.join(SECRET_FILE);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim();
        if existing.len() >= 32 {
            return Ok(Secret::new(existing));
        }
    }
    std::fs::create_dir_all(&settings.data_dir)?;
    let mut bytes = [0u8; 48];
    getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
    let secret = hex::encode(bytes);
    write_private(&path, &secret)?;
    tracing::info!(path = %path.display(), "generated a new JWT secret");
    Ok(Secret::new(secret))
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> JwtKeys {
        JwtKeys::new(
            &Secret::new("0123456789abcdef0123456789abcdef"),
            Duration::from_secs(3600),
        )
    }

    #[test]
    fn an_issued_token_verifies_and_a_tampered_one_does_not() {
        let keys = keys();
        let (token, _) = keys
            .issue(UserId::generate(), TenantId::generate(), 0)
            .unwrap();
        assert!(keys.verify(&token).is_some());
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert!(keys.verify(&tampered).is_none());
        let other = JwtKeys::new(
            &Secret::new("another-secret-another-secret-xx"),
            Duration::from_secs(60),
        );
        assert!(other.verify(&token).is_none());
    }

    #[test]
    fn the_none_algorithm_is_refused() {
        let keys = keys();
        let (token, _) = keys
            .issue(UserId::generate(), TenantId::generate(), 0)
            .unwrap();
        let payload = token.split('.').nth(1).unwrap();
        // {"alg":"none","typ":"JWT"}
        let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert!(keys.verify(&unsigned).is_none());
    }
}
