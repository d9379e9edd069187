//! The differential test of the matching engine: thousands of random events, sent in a random
//! order and batching, must end with exactly the attributions that a deliberately plain
//! reference implementation of API.md's matching rules computes (`support::reference`).
//!
//! Every run draws a new seed and prints it in every failure message;
//! `SIGHTLINE_DIFFERENTIAL_SEED=<n>` replays that run (decimal or `0x` hex).

use futures_util::future::join;
use serde_json::json;
use std::time::{Duration, Instant};
use support::TestApp;
use support::reference::judge::{reference, useful_scenario, verdict_counts};
use support::reference::rng::{Rng, seed};
use support::reference::scenario::{pool_value, scenario, utc_text};
use support::reference::server::{
    DUPLICATE_DIRECTS, await_reference, check_rows, ingest, send_batch, server_credits, tenant,
};

// ------------------------------------------------------------------------------------------
// The tests
// ------------------------------------------------------------------------------------------

#[actix_web::test]
async fn random_events_in_random_order_match_like_the_reference() {
    matches_the_reference(TestApp::spawn().await, 3000).await;
}

/// With a memory budget of one byte every session leaves memory after every round, so each
/// event finds its session through the hot copy in Redis.
#[actix_web::test]
async fn random_events_match_like_the_reference_when_sessions_live_in_hot_copies() {
    let app = TestApp::spawn_with(|settings| settings.matching_memory_bytes = 1).await;
    matches_the_reference(app, 1500).await;
}

async fn matches_the_reference(app: TestApp, events: usize) {
    let seed = seed();
    let mut rng = Rng::new(seed);
    let scenario = useful_scenario(&mut rng, seed, events);
    let expected = reference(&scenario);
    eprintln!(
        "seed {seed}: {} goals, {} detections, {} conversions, {} expected attributions; \
         verdicts {:?}",
        scenario.goals.len(),
        scenario.detections.len(),
        scenario.conversions.len(),
        expected.len(),
        verdict_counts(&scenario)
    );

    let tenant = tenant(&app, "the tenant", &scenario.goals).await;
    let started = Instant::now();
    ingest(&app, &tenant.key, &scenario.events(), &mut rng, seed).await;
    let sent = started.elapsed();
    let rows = await_reference(&app, &tenant, &scenario, &expected).await;
    eprintln!(
        "seed {seed}: sent in {sent:?}, matched the reference after {:?}",
        started.elapsed()
    );
    check_rows(&scenario, &rows);

    // Settled, not passing through the right answer: a moment later it is unchanged.
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let (again, _) = server_credits(&app, &tenant).await;
    assert!(
        again == expected,
        "seed {seed}: the attributions changed after matching the reference"
    );
    assert_eq!(app.count(DUPLICATE_DIRECTS).await, 0, "seed {seed}");
    assert_eq!(
        app.count("SELECT count(*) FROM attributions").await,
        i64::try_from(expected.len()).unwrap(),
        "seed {seed}: attributions outside the goals' read-out"
    );
}

#[actix_web::test]
async fn the_same_events_sent_to_two_tenants_in_different_orders_match_alike() {
    let seed = seed();
    // Another scenario than the first test's for the same seed.
    let mut rng = Rng::new(seed ^ 0x5EED_0F7E_4A4A_4715);
    let scenario = scenario(&mut rng, seed, 800);
    let expected = reference(&scenario);
    let app = TestApp::spawn().await;
    let first = tenant(&app, "the first tenant", &scenario.goals).await;
    let second = tenant(&app, "the second tenant", &scenario.goals).await;

    // Both at once, each in its own order and batching, with the same event ids.
    let events = scenario.events();
    let (mut first_rng, mut second_rng) = (Rng::new(rng.next_u64()), Rng::new(rng.next_u64()));
    join(
        ingest(&app, &first.key, &events, &mut first_rng, seed),
        ingest(&app, &second.key, &events, &mut second_rng, seed),
    )
    .await;
    // The second tenant also retries a share of its events, some changed, some no longer
    // even valid: each is a duplicate and changes nothing.
    let mut retries = Vec::new();
    for event in &events {
        if !rng.chance(0.2) {
            continue;
        }
        let mut retry = event.clone();
        match rng.range(0, 3) {
            0 => {
                retry["event_time"] = json!(utc_text(chrono::Utc::now().timestamp_millis() - 1000))
            }
            1 => retry["keys"] = json!({"session_token": pool_value(&mut rng, "session_token")}),
            2 => retry["bogus_field"] = json!(1),
            _ => {}
        }
        retries.push(retry);
    }
    for chunk in retries.chunks(100) {
        send_batch(&app, &second.key, chunk.to_vec(), "duplicate", seed).await;
    }

    let first_rows = await_reference(&app, &first, &scenario, &expected).await;
    let second_rows = await_reference(&app, &second, &scenario, &expected).await;
    check_rows(&scenario, &first_rows);
    check_rows(&scenario, &second_rows);
    // Identical modulo goal ids (credits name a goal by its index in the scenario), read
    // again now that both have settled.
    let (first_credits, _) = server_credits(&app, &first).await;
    let (second_credits, _) = server_credits(&app, &second).await;
    assert!(
        first_credits == second_credits,
        "seed {seed}: the tenants' attributions differ"
    );
    assert_eq!(app.count(DUPLICATE_DIRECTS).await, 0, "seed {seed}");
    assert_eq!(
        app.count("SELECT count(*) FROM attributions").await,
        2 * i64::try_from(expected.len()).unwrap(),
        "seed {seed}"
    );
}
