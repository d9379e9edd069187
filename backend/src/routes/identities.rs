//! `DELETE /v1/identities/{key}/{value}`: the right to erasure, for owners and admins.
//!
//! The value is the rest of the path, percent-decoded, so any key value can be named (one
//! with a `/` as `%2F` or as is). The answer is sent once the erasure is complete: rows
//! deleted, and matching holding none of the erased events (see `actors::matcher::erasure`).
//! Neither the value nor anything derived from it is logged.

use crate::auth::Caller;
use crate::domain::events::{KeyName, KeyValue};
use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::erasure;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;
use std::time::Duration;

/// How long the answer waits for matching to let go of the erased events. It takes
/// milliseconds; only a failing database makes it longer.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/identities/{key}/{value:.*}",
        web::delete().to(erase_identity),
    );
}

async fn erase_identity(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require_manager()?;
    let (key, value) = identity(&request)?;
    let tenant = caller.tenant();
    let (deleted, erased) =
        erasure::erase_identity(&state.db, tenant, caller.actor(), &key, &value).await?;
    let settled = state.ingest.matcher.identity_erased(tenant.id(), erased);
    match tokio::time::timeout(SETTLE_TIMEOUT, settled).await {
        Ok(_) => Ok(HttpResponse::Ok().json(json!({ "deleted": deleted }))),
        Err(_) => {
            tracing::warn!("an erasure is stored but matching has not let go of it yet");
            Err(ApiError::Unavailable {
                retry_after_secs: 5,
            })
        }
    }
}

/// The key name and value of the path, percent-decoded and checked as an event's keys are.
/// Decoded here from the raw path, strictly: the router's lossy decoding would turn invalid
/// UTF-8 into U+FFFD and erase some other value.
fn identity(request: &HttpRequest) -> Result<(KeyName, KeyValue), ApiError> {
    let rest = request
        .uri()
        .path()
        .strip_prefix("/v1/identities/")
        .ok_or(ApiError::NotFound)?;
    let (key, value) = rest.split_once('/').ok_or(ApiError::NotFound)?;
    let key = percent_decode(key)
        .as_deref()
        .and_then(KeyName::parse)
        .ok_or_else(|| {
            ApiError::BadRequest(
                "the key name must match ^[a-z][a-z0-9_]{0,31}$, as in events".to_owned(),
            )
        })?;
    let value = percent_decode(value).ok_or_else(|| {
        ApiError::BadRequest("the key value is not valid percent-encoded UTF-8".to_owned())
    })?;
    let value = KeyValue::parse("value", &value).map_err(|_| {
        ApiError::BadRequest(format!(
            "the key value must be 1 to {} characters once percent-decoded",
            KeyValue::MAX_CHARS
        ))
    })?;
    Ok((key, value))
}

/// `%XX` sequences decoded (`+` is a plus in a path); `None` for a malformed sequence or
/// bytes that are not UTF-8.
fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        if byte == b'%' {
            let hex = bytes.get(at + 1..at + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            decoded.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            at += 3;
        } else {
            decoded.push(byte);
            at += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn percent_decoding_is_strict() {
        assert_eq!(
            percent_decode("J%C3%B6rg%20100%25+%2F").as_deref(),
            Some("Jörg 100%+/")
        );
        assert_eq!(percent_decode("a/b").as_deref(), Some("a/b"));
        for bad in ["%", "%4", "%zz", "%FF", "%+1"] {
            assert_eq!(percent_decode(bad), None, "{bad}");
        }
    }
}
