//! Redis SIGKILLed during a sustained stream, then started again empty (as after a crash):
//! ingestion goes on without it and without stalling, `/readyz` says the node is degraded
//! rather than taking it out of the load balancer, the server uses Redis again once it is
//! back, and every accepted event is stored once and matched as the reference matches it —
//! also when the sessions' hot copies died with Redis and had to be rebuilt from PostgreSQL.

use crate::run::FaultRun;
use serde_json::{Value, json};
use sightline::config::Secret;
use std::time::{Duration, Instant};
use support::TestApp;
use support::redis_server::RedisServer;

/// How long Redis stays down.
const OUTAGE: Duration = Duration::from_millis(2500);

/// The slowest a request may be answered while Redis is down. A request that waited on
/// Redis's reconnect-and-retry would take 0.3 s to several seconds; a loaded 2-core CI
/// machine answers a batch in well under this otherwise.
const OUTAGE_LATENCY_BOUND: Duration = Duration::from_millis(1000);

#[actix_web::test]
async fn ingestion_goes_on_quickly_while_redis_is_down_and_uses_redis_again_once_back() {
    redis_killed_mid_stream(None).await;
}

#[actix_web::test]
async fn sessions_whose_hot_copies_died_with_redis_are_rebuilt_from_the_database() {
    // One byte of matching memory: every session leaves memory after each round, so its
    // state lives in a hot copy in Redis until the crash destroys it.
    redis_killed_mid_stream(Some(1)).await;
}

async fn redis_killed_mid_stream(matching_memory_bytes: Option<usize>) {
    let mut redis = RedisServer::start().await;
    let url = redis.url();
    let app = TestApp::spawn_with(|settings| {
        settings.redis_url = Some(Secret::new(url));
        if let Some(bytes) = matching_memory_bytes {
            settings.matching_memory_bytes = bytes;
        }
    })
    .await;
    let prefix = app.settings.redis_prefix.clone();
    // Enough events that delivery usually goes on after the restart too.
    let mut run = FaultRun::new(&app, 4000).await;
    let seed = run.seed;
    let total = run.scenario.detections.len() + run.scenario.conversions.len();
    let started = Instant::now();
    let delivery = run.deliver_in_background();

    run.await_accepted(total / 4).await;
    // Warm-up included, so a conservative figure of what this machine does right now.
    let rate_before =
        run.sender.history().accepted_count() as f64 / started.elapsed().as_secs_f64();
    if matching_memory_bytes.is_some() {
        let copies = redis.keys(&format!("{prefix}:t:*:session:*")).await;
        assert!(
            !copies.is_empty(),
            "seed {seed}: no hot copies in Redis before the crash, so the run proves nothing"
        );
    }

    redis.kill();
    let killed_at = Instant::now();
    let accepted_at_kill = run.sender.history().accepted_count();
    actix_web::rt::time::sleep(OUTAGE / 2).await;
    let readiness = app.get("/readyz", None).await.expect(200);
    assert_eq!(readiness.body["status"], "degraded", "seed {seed}");
    assert_eq!(readiness.body["checks"]["database"], "ok", "seed {seed}");
    assert_eq!(
        readiness.body["checks"]["redis"], "unavailable",
        "seed {seed}"
    );
    actix_web::rt::time::sleep(OUTAGE - killed_at.elapsed().min(OUTAGE)).await;
    let restarted_at = Instant::now();
    let accepted_during_outage = run.sender.history().accepted_count() - accepted_at_kill;
    redis.restart().await;
    eprintln!(
        "seed {seed}: while Redis was down ({:?}): {accepted_during_outage} events accepted \
         ({rate_before:.0} a second before), {} left for after the restart",
        restarted_at - killed_at,
        total - accepted_at_kill - accepted_during_outage
    );

    // Waiting on Redis, the server accepted a few dozen events in the outage; without
    // waiting, it goes on at about its earlier rate. A quarter of that (or all that were
    // left) leaves room for a loaded machine.
    let left_at_kill = total - accepted_at_kill;
    let expected = (rate_before * (restarted_at - killed_at).as_secs_f64() / 4.0) as usize;
    assert!(
        accepted_during_outage >= left_at_kill.min(expected),
        "seed {seed}: only {accepted_during_outage} events accepted while Redis was down, \
         against {rate_before:.0} a second before"
    );

    // Back: the node is ready again and writes to the restarted (empty) Redis.
    support::eventually("/readyz to report Redis ok again", || async {
        let readiness = app.get("/readyz", None).await;
        (readiness.status == 200 && readiness.body["checks"]["redis"] == "ok").then_some(())
    })
    .await;
    let probe = json!({"events": [first_event(&run)]});
    let keys = support::eventually(
        "keys under the test's prefix in the restarted Redis",
        || {
            let (app, redis, probe, key, prefix) = (&app, &redis, &probe, &run.tenant.key, &prefix);
            async move {
                // A validation request authenticates and counts against the rate limit, both
                // through Redis, even when the delivery has already finished.
                app.post("/v1/events/validate", Some(key), probe).await;
                let keys = redis.keys(&format!("{prefix}:*")).await;
                (!keys.is_empty()).then_some(keys)
            }
        },
    )
    .await;
    eprintln!(
        "seed {seed}: after the restart Redis holds {} keys",
        keys.len()
    );

    delivery.await.expect("the delivery finishes");
    // Every request that was in flight at any moment of the outage, also those sent before
    // the kill: a request stuck on Redis is as slow a request as one sent during the outage.
    let (outage_requests, slowest) = {
        let history = run.sender.history();
        let during: Vec<Duration> = history
            .requests
            .iter()
            .filter(|r| r.sent_at < restarted_at && r.sent_at + r.latency > killed_at)
            .map(|r| r.latency)
            .collect();
        (during.len(), during.into_iter().max().unwrap_or_default())
    };
    eprintln!(
        "seed {seed}: {outage_requests} requests in flight during the outage, the slowest \
         answered in {slowest:?}"
    );
    assert!(
        slowest < OUTAGE_LATENCY_BOUND,
        "seed {seed}: a request took {slowest:?} while Redis was down"
    );
    run.check(&app).await;
}

fn first_event(run: &FaultRun) -> Value {
    run.scenario
        .events()
        .into_iter()
        .next()
        .expect("a scenario has events")
}
