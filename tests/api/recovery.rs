//! Nothing accepted escapes matching: events that got their 202 from a server killed with
//! SIGKILL before it matched them are matched by the next server to start.

use serde_json::{Value, json};
use support::fixtures::{batch, time_ago};
use support::{TestApp, eventually};

const SERVER: &str = env!("CARGO_BIN_EXE_sightline-server");
/// Detection and conversion pairs per batch: enough that matching them takes longer than
/// the kill that follows the 202.
const PAIRS: usize = 500;

fn pairs(round: usize) -> Vec<Value> {
    (0..PAIRS)
        .flat_map(|i| {
            let session = format!("s-{round}-{i}");
            [
                json!({"type": "detection", "event_id": format!("d-{round}-{i}"), "event_time": time_ago(40),
                       "keys": {"session_token": session}, "label": "barcode", "confidence": 0.9,
                       "model_version": "v3", "entity_id": "sku-42"}),
                json!({"type": "conversion", "event_id": format!("c-{round}-{i}"), "event_time": time_ago(20),
                       "keys": {"session_token": session}, "name": "purchase"}),
            ]
        })
        .collect()
}

/// A new tenant with a scan-to-purchase goal; returns its ingest and read key.
async fn tenant_with_goal(app: &TestApp) -> String {
    let owner = app.signup().await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest", "read"]).await;
    let goal = json!({"name": "g", "detection_labels": ["barcode"], "conversion_name": "purchase",
                      "key": "session_token", "window_seconds": 3600});
    app.create_goal(&owner.token, &goal).await;
    key
}

#[actix_web::test]
async fn events_accepted_just_before_a_kill_are_matched_after_the_restart() {
    let mut app = TestApp::spawn_process(SERVER).await;
    let key = tenant_with_goal(&app).await;

    // Kill right after a 202, until a kill has beaten matching at least once (almost always
    // the first time), so that the restart really has something to recover.
    let mut rounds = 0;
    loop {
        let answer = app
            .post("/v1/events", Some(&key), &batch(pairs(rounds)))
            .await
            .expect(202);
        app.kill_process();
        rounds += 1;
        assert_eq!(answer.body["accepted"], 2 * PAIRS);
        let matched = app.count("SELECT count(*) FROM attributions").await;
        if matched < (rounds * PAIRS) as i64 || rounds == 3 {
            assert!(
                matched < (rounds * PAIRS) as i64,
                "matching beat the kill {rounds} times; nothing left to recover"
            );
            break;
        }
        app.restart_process(SERVER);
    }

    app.restart_process(SERVER);
    let expected = (rounds * PAIRS) as i64;
    eventually("every accepted conversion to be attributed", || async {
        (app.count("SELECT count(*) FROM attributions WHERE kind = 'direct'")
            .await
            == expected)
            .then_some(())
    })
    .await;
    assert_eq!(
        app.count("SELECT count(*) FROM attributions").await,
        expected
    );
    let sample = app
        .get("/v1/attributions?conversion_event_id=c-0-7", Some(&key))
        .await
        .expect(200)
        .body;
    assert_eq!(sample["attributions"][0]["detection_event_id"], "d-0-7");
}

#[actix_web::test]
async fn a_database_without_a_checkpoint_has_every_event_matched_at_start() {
    let mut app = TestApp::spawn_process(SERVER).await;
    let key = tenant_with_goal(&app).await;
    app.post("/v1/events", Some(&key), &batch(pairs(0)))
        .await
        .expect(202);
    app.kill_process();
    // As if the events predated matching: no checkpoint, no attributions.
    app.count(
        "WITH gone AS (DELETE FROM matching_checkpoint RETURNING 1) SELECT count(*) FROM gone",
    )
    .await;
    app.count("WITH gone AS (DELETE FROM attributions RETURNING 1) SELECT count(*) FROM gone")
        .await;

    app.restart_process(SERVER);
    eventually("every stored conversion to be attributed", || async {
        (app.count("SELECT count(*) FROM attributions WHERE kind = 'direct'")
            .await
            == PAIRS as i64)
            .then_some(())
    })
    .await;
    eventually("a checkpoint to be written", || async {
        (app.count("SELECT count(*) FROM matching_checkpoint").await == 1).then_some(())
    })
    .await;
}
