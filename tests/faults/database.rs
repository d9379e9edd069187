//! PostgreSQL unreachable during a sustained stream: while it is cut off every refusal is a
//! 503 with `Retry-After` (never a 500), readiness says so, and once it is back everything
//! completes: each accepted event is stored once and matched as the reference matches it.

use crate::run::FaultRun;
use std::time::{Duration, Instant};
use support::TestApp;
use support::proxy::TcpProxy;

/// How long each outage lasts.
const OUTAGE: Duration = Duration::from_secs(3);
/// How long the delivery may take to finish once PostgreSQL is back.
const RECOVERY: Duration = Duration::from_secs(30);

#[actix_web::test]
async fn a_database_outage_is_answered_503_with_retry_after_and_loses_nothing() {
    outages_at(&[4], OUTAGE).await;
}

#[actix_web::test]
async fn two_short_database_outages_lose_nothing() {
    outages_at(&[4, 2], OUTAGE / 2).await;
}

/// Cuts PostgreSQL off for `outage` once `total / share` events are accepted, for each share,
/// then checks the whole history.
async fn outages_at(shares: &[usize], outage: Duration) {
    // A short wait for a pooled connection, as an operator who wants refusals fast would
    // set it: with the default 5 s a probe would outlast the outage.
    let (app, proxy) = TestApp::spawn_behind_proxy(|settings| {
        settings.database_acquire_timeout = Duration::from_secs(1);
    })
    .await;
    let mut run = FaultRun::new(&app, 3000).await;
    let total = run.scenario.detections.len() + run.scenario.conversions.len();
    let delivery = run.deliver_in_background();

    for share in shares {
        run.await_accepted(total / share).await;
        let accepted_before = run.sender.history().accepted_count();
        cut_for(&app, &proxy, &run, outage).await;
        assert_ready_again(&app, run.seed).await;
        eprintln!(
            "seed {}: outage at {accepted_before} accepted events, {} after it",
            run.seed,
            run.sender.history().accepted_count()
        );
    }
    actix_web::rt::time::timeout(RECOVERY, delivery)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "seed {}: the delivery did not finish within {RECOVERY:?} of the outage: {:?}",
                run.seed,
                run.sender.history().statuses
            )
        })
        .expect("the delivery finishes");

    {
        let history = run.sender.history();
        assert!(
            history.answered(503) > 0,
            "seed {}: no request was refused during the outage, so the run proved nothing",
            run.seed
        );
        assert_eq!(
            history.unavailable_without_retry_after, 0,
            "seed {}: 503 without Retry-After",
            run.seed
        );
        assert!(
            history.statuses.keys().all(|s| [202, 503].contains(s)),
            "seed {}: answers other than 202 and 503: {:?}",
            run.seed,
            history.statuses
        );
    }
    run.check(&app).await;
}

/// Cuts PostgreSQL off for `outage` (or as long as the probes take, if longer) while the
/// delivery goes on; meanwhile the management API and readiness answer 503 with
/// `Retry-After`.
async fn cut_for(app: &TestApp, proxy: &TcpProxy, run: &FaultRun, outage: Duration) {
    proxy.cut();
    let restore_at = Instant::now() + outage;
    let goals = app.get("/v1/goals", Some(&run.tenant.owner_token)).await;
    assert_unavailable("GET /v1/goals", &goals, run.seed);
    let ready = app.get("/readyz", None).await;
    assert_unavailable("GET /readyz", &ready, run.seed);
    actix_web::rt::time::sleep(restore_at.saturating_duration_since(Instant::now())).await;
    proxy.restore().await;
}

fn assert_unavailable(what: &str, answer: &support::Response, seed: u64) {
    assert_eq!(
        answer.status, 503,
        "seed {seed}: {what} during the outage: {}",
        answer.text
    );
    assert!(
        answer.header("retry-after").is_some(),
        "seed {seed}: {what} answered 503 without Retry-After"
    );
}

/// Readiness comes back soon after PostgreSQL does: the pool reconnects on its own.
async fn assert_ready_again(app: &TestApp, seed: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = app.get("/readyz", None).await;
        if ready.status == 200 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "seed {seed}: /readyz still {} 10 s after PostgreSQL came back: {}",
            ready.status,
            ready.text
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}
