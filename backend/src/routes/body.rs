//! Reading JSON bodies inside handlers, after authentication and role checks, so that a
//! caller without the right gets 401/403 before any complaint about its body (API.md).

use crate::error::ApiError;
use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, web};
use serde::de::DeserializeOwned;

/// Reads and parses a JSON body of at most `limit` bytes: 415 for another content type,
/// 413 over the limit, 400 for a body that is not JSON of the expected shape.
pub async fn read_json<T: DeserializeOwned>(
    request: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<T, ApiError> {
    let bytes = read_bytes(request, payload, limit).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid: {e}")))
}

/// Checks the content type and reads at most `limit` bytes of body.
pub async fn read_bytes(
    request: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, ApiError> {
    if request.content_type() != "application/json" {
        return Err(ApiError::UnsupportedMediaType);
    }
    let too_large = || ApiError::PayloadTooLarge(format!("the body must be at most {limit} bytes"));
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(too_large());
    }
    payload
        .to_bytes_limited(limit)
        .await
        .map_err(|_| too_large())?
        .map_err(|e| ApiError::BadRequest(format!("the body could not be read: {e}")))
}
