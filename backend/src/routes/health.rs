//! `GET /healthz` (the process is up), `GET /readyz` (its database answers; and whether
//! Redis does) and `GET /metrics` (the process's counters, Prometheus text; see
//! [`crate::metrics`]).
//!
//! Readiness fails only on the database. Without Redis a node still serves everything
//! (slower, with per-node rate limits), and every node shares the one Redis: failing
//! readiness on it would take all nodes out of the load balancer at once. So a Redis outage
//! answers 200 with `"status": "degraded"`.

use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde_json::json;
use std::time::Duration;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(crate::metrics::render())
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
    let ready = database.is_ok();
    if let Err(err) = &database {
        tracing::warn!(error = %err, "readiness: database check failed");
    }
    // Not logged: the hot store logs a Redis outage once, and readiness is polled often.
    let redis_ok = redis.as_ref().is_none_or(Result::is_ok);
    let status = |check: &Result<(), String>| if check.is_ok() { "ok" } else { "unavailable" };
    let overall = match (ready, redis_ok) {
        (false, _) => "unavailable",
        (true, false) => "degraded",
        (true, true) => "ready",
    };
    let body = json!({
        "status": overall,
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
