//! `GET /healthz` (the process is up) and `GET /readyz` (its database and Redis answer).

use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde_json::json;
use std::time::Duration;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let database = tokio::time::timeout(CHECK_TIMEOUT, state.db.ping())
        .await
        .map_err(|_| "timed out".to_owned())
        .and_then(|r| r.map_err(|e| e.to_string()));
    let redis = if state.hot.is_redis() {
        Some(
            tokio::time::timeout(CHECK_TIMEOUT, state.hot.ping())
                .await
                .map_err(|_| "timed out".to_owned())
                .and_then(|r| r.map_err(|e| e.to_string())),
        )
    } else {
        None
    };
    let ready = database.is_ok() && redis.as_ref().is_none_or(Result::is_ok);
    if let Err(err) = &database {
        tracing::warn!(error = %err, "readiness: database check failed");
    }
    if let Some(Err(err)) = &redis {
        tracing::warn!(error = %err, "readiness: redis check failed");
    }
    let status = |check: &Result<(), String>| if check.is_ok() { "ok" } else { "unavailable" };
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "checks": {
            "database": status(&database),
            "redis": redis.as_ref().map_or("not_configured", status),
        }
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(body)
    }
}
