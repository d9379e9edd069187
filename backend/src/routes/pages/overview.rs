//! `/app`: the overview a member lands on.

use super::{SignedIn, base_url, html, issue_csrf};
use crate::error::PageError;
use crate::state::AppState;
use crate::storage::overview;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{Duration, Utc};
use dashboard::{OverviewPage, RecentEvent};

const DAYS: u32 = 30;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/app", web::get().to(show));
}

async fn show(
    state: web::Data<AppState>,
    request: HttpRequest,
    member: SignedIn,
) -> Result<HttpResponse, PageError> {
    let now = Utc::now();
    let figures = overview::overview(
        &state.db,
        member.caller.tenant(),
        now - Duration::days(i64::from(DAYS)),
        now - Duration::days(1),
        now - Duration::days(7),
    )
    .await?;
    let csrf = issue_csrf(&request)?;
    let matched_rate = if figures.conversions == 0 {
        "–".to_owned()
    } else {
        format!(
            "{:.1} %",
            figures.matched_conversions as f64 * 100.0 / figures.conversions as f64
        )
    };
    let page = OverviewPage {
        chrome: member.chrome(&csrf, "overview"),
        days: DAYS,
        detections: figures.detections,
        conversions: figures.conversions,
        matched_conversions: figures.matched_conversions,
        matched_rate,
        lag_p50: percentile(&figures.lags_ms, 50),
        lag_p95: percentile(&figures.lags_ms, 95),
        recent: figures
            .recent
            .into_iter()
            .map(|row| RecentEvent {
                kind: if row.is_detection {
                    "detection"
                } else {
                    "conversion"
                },
                event_id: row.event_id,
                what: row.what,
                received: row
                    .received_time
                    .format("%Y-%m-%d %H:%M:%S UTC")
                    .to_string(),
                is_test: row.is_test,
            })
            .collect(),
        base_url: base_url(&request),
    };
    html(StatusCode::OK, &page, &csrf)
}

/// The `p`th percentile of sorted milliseconds, readable ("12 ms", "1.4 s"), or "–".
fn percentile(sorted_ms: &[i64], p: usize) -> String {
    if sorted_ms.is_empty() {
        return "–".to_owned();
    }
    let index = (sorted_ms.len() - 1) * p / 100;
    let ms = sorted_ms[index];
    if ms < 1_000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_read_as_people_say_them() {
        assert_eq!(percentile(&[], 50), "–");
        assert_eq!(percentile(&[5, 7, 9], 50), "7 ms");
        assert_eq!(percentile(&[5, 7, 1_400], 95), "7 ms");
        assert_eq!(percentile(&[1_400], 95), "1.4 s");
    }
}
