//! Three server processes on one PostgreSQL and one Redis (issue 8). The events of one
//! random scenario go to the three in turn, in random order and batching, so every session's
//! events arrive at several processes, often at once: the attributions must be exactly the
//! reference implementation's, as one process would make them. One process is then killed
//! mid-stream and not restarted: a live one takes its checkpoint over, so nothing it
//! accepted stays unmatched.

use crate::run::FaultRun;
use serde_json::{Value, json};
use std::time::Duration;
use support::TestApp;
use support::fixtures::{batch, conversion, detection, time_ago};

const SERVER: &str = env!("CARGO_BIN_EXE_sightline-server");

#[actix_web::test]
async fn three_processes_sharing_sessions_match_as_one_and_a_killed_one_loses_nothing() {
    let app = TestApp::spawn_process(SERVER).await;
    let second = app.start_sibling(SERVER);
    let third = app.start_sibling(SERVER);
    let urls = [
        app.base_url.clone(),
        second.base_url.clone(),
        third.base_url.clone(),
    ];
    let mut run = FaultRun::across(&app, &urls, 3000).await;
    let total = run.scenario.detections.len() + run.scenario.conversions.len();
    let delivery = run.deliver_in_background();

    run.await_accepted(total / 2).await;
    third.kill();
    delivery.await.expect("the delivery finishes");

    assert!(
        run.sender.history().connection_failures > 0,
        "seed {}: no request went to the killed process, so the kill proved nothing",
        run.seed
    );
    run.check(&app).await;

    // The processes really shared sessions: each live one found some of its sessions
    // settled by another since it last had them, and read them again.
    for url in &urls[..2] {
        let reloaded = counter(url, "sightline_sessions_settled_elsewhere_total").await;
        assert!(
            reloaded > 0,
            "seed {}: {url} never found a session settled by another process",
            run.seed
        );
    }
    // The killed process's checkpoint is taken over by a live one once its heartbeat has
    // stopped for the lease (5 s); the attributions may have been complete before that.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let taken_over = counter(&urls[0], "sightline_checkpoints_taken_over_total").await
            + counter(&urls[1], "sightline_checkpoints_taken_over_total").await;
        let rows = app.count("SELECT count(*) FROM matching_checkpoint").await;
        if taken_over >= 1 && rows == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "seed {}: the killed process's checkpoint was not taken over ({taken_over} take-overs, {rows} rows)",
            run.seed
        );
        actix_web::rt::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The case the per-session versions exist for, step by step: process A holds a session in
/// memory, process B settles it with a conversion A never saw, then A gets a later detection
/// of that session. A must notice its copy is outdated and read the session again, or the
/// later detection would never take the conversion's direct credit.
#[actix_web::test]
async fn a_process_holding_an_outdated_session_reads_it_again() {
    let app = TestApp::spawn_process(SERVER).await;
    let other = app.start_sibling(SERVER);
    let owner = app.signup().await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest", "read"]).await;
    let goal = json!({"name": "g", "detection_labels": ["barcode"], "conversion_name": "purchase",
                      "key": "session_token", "window_seconds": 3600});
    app.create_goal(&owner.token, &goal).await;
    let sessions: Vec<String> = (0..5).map(|i| format!("s-{i}")).collect();
    let each = |event: fn(&str, &str) -> Value, id: &str, seconds_ago: i64| -> Vec<Value> {
        sessions
            .iter()
            .map(|session| {
                let mut e = event(&format!("{id}-{session}"), session);
                e["event_time"] = json!(time_ago(seconds_ago));
                e
            })
            .collect()
    };

    // A has the early detections resident (it matched them: nothing to attribute yet).
    send(&app.base_url, &key, each(detection, "d-early", 60)).await;
    wait_for_matching(&app).await;
    // B settles the conversions with the early detections.
    send(&other.base_url, &key, each(conversion, "c", 30)).await;
    for session in &sessions {
        app.await_credits(
            &key,
            &format!("c-{session}"),
            &[(&format!("d-early-{session}"), "direct")],
        )
        .await;
    }
    // A gets later detections, closer to the conversions: they take the direct credit.
    send(&app.base_url, &key, each(detection, "d-late", 45)).await;
    for session in &sessions {
        app.await_credits(
            &key,
            &format!("c-{session}"),
            &[
                (&format!("d-early-{session}"), "assisted"),
                (&format!("d-late-{session}"), "direct"),
            ],
        )
        .await;
    }
    assert!(counter(&app.base_url, "sightline_sessions_settled_elsewhere_total").await >= 5);
}

/// A consent policy changed through one process applies at once on the others: within well
/// under the 5 s their cached copy would last, an event another process accepts is stored
/// without its keys, as the new policy says.
#[actix_web::test]
async fn a_policy_changed_through_one_process_applies_at_once_on_another() {
    let app = TestApp::spawn_process(SERVER).await;
    let other = app.start_sibling(SERVER);
    let owner = app.signup().await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest", "read"]).await;
    // The other process reads (and caches) the policy in force: keys kept.
    send(&other.base_url, &key, vec![detection("before", "s-1")]).await;
    app.put(
        "/v1/consent-policy",
        Some(&owner.token),
        &json!({"default": "denied", "strip_keys_without_consent": true}),
    )
    .await
    .expect(200);
    let changed = std::time::Instant::now();
    let mut attempt = 0;
    loop {
        let id = format!("after-{attempt}");
        send(&other.base_url, &key, vec![detection(&id, "s-1")]).await;
        let stripped = app
            .count(&format!(
                "SELECT count(*) FROM detections WHERE event_id = '{id}' AND consent = 'denied' \
                 AND \"keys\" IS NULL"
            ))
            .await;
        if stripped == 1 {
            break;
        }
        assert!(
            changed.elapsed() < Duration::from_secs(2),
            "the other process still kept keys {:?} after the change",
            changed.elapsed()
        );
        attempt += 1;
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        app.count(
            "SELECT count(*) FROM detections WHERE event_id = 'before' AND \"keys\" IS NOT NULL"
        )
        .await,
        1
    );
}

/// A goal re-evaluation whose process died is claimed by a live one once its lease has run
/// out, and goes on after the cursor it recorded, not from the start.
#[actix_web::test]
async fn an_abandoned_reevaluation_is_resumed_after_its_cursor_by_another_process() {
    let mut app = TestApp::spawn_process(SERVER).await;
    let owner = app.signup().await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest", "read"]).await;
    let goal = json!({"name": "g", "detection_labels": ["barcode"], "conversion_name": "purchase",
                      "key": "session_token", "window_seconds": 3600});
    app.create_goal(&owner.token, &goal).await;
    let sessions: Vec<String> = (0..10).map(|i| format!("s-{i}")).collect();
    let events = sessions
        .iter()
        .flat_map(|s| {
            [
                detection(&format!("d-{s}"), s),
                conversion(&format!("c-{s}"), s),
            ]
        })
        .collect();
    send(&app.base_url, &key, events).await;
    for s in &sessions {
        app.await_credits(&key, &format!("c-{s}"), &[(&format!("d-{s}"), "direct")])
            .await;
    }
    app.kill_process();
    // As a run that died after the first five sessions leaves it: its lease lapsed, its
    // cursor at the fifth; and as if its rows were never written. The dead process had
    // matched everything it received (so restarting re-matches nothing).
    for sql in [
        "UPDATE matching_checkpoint SET received_before = now() + interval '1 hour'",
        "DELETE FROM attributions",
        "UPDATE goal_reevaluations SET status = 'running', owner = 'a-dead-process', \
         lease_until = now() - interval '1 minute', cursor = 's-4', sessions_done = 5, \
         sessions_total = 10",
    ] {
        app.count(&format!(
            "WITH done AS ({sql} RETURNING 1) SELECT count(*) FROM done"
        ))
        .await;
    }
    let other = app.start_sibling(SERVER);
    // Reads go to the live process.
    app.base_url = other.base_url.clone();

    support::eventually("the re-evaluation to be done", || async {
        let done = app
            .count(
                "SELECT count(*) FROM goal_reevaluations WHERE status = 'done' \
                 AND sessions_done = 10 AND sessions_total = 10 AND owner <> 'a-dead-process'",
            )
            .await;
        (done == 1).then_some(())
    })
    .await;
    for (i, s) in sessions.iter().enumerate() {
        let expected = if i > 4 {
            vec![(format!("d-{s}"), "direct".to_owned())]
        } else {
            Vec::new()
        };
        assert_eq!(app.credits(&key, &format!("c-{s}")).await, expected, "{s}");
    }
    drop(other);
}

/// A client that sends a batch again through another process while the first is still being
/// written (a timeout, a cut connection) gets a second writer on the same rows: both must be
/// answered, each event stored once, never a 503 from two writers deadlocked on them.
#[actix_web::test]
async fn two_processes_writing_the_same_events_at_once_both_answer() {
    let app = TestApp::spawn_process(SERVER).await;
    let other = app.start_sibling(SERVER);
    let owner = app.signup().await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest", "read"]).await;
    for round in 0..5 {
        let events: Vec<Value> = (0..400)
            .map(|i| detection(&format!("d-{round}-{i}"), &format!("s-{i}")))
            .collect();
        let reversed: Vec<Value> = events.iter().rev().cloned().collect();
        let (first, second) = futures_util::future::join(
            answer(&app.base_url, &key, events),
            answer(&other.base_url, &key, reversed),
        )
        .await;
        assert_eq!(first, 202, "round {round}");
        assert_eq!(second, 202, "round {round}");
    }
    assert_eq!(app.count("SELECT count(*) FROM detections").await, 2000);
}

/// The status `events` are answered with by the process at `base_url`.
async fn answer(base_url: &str, key: &str, events: Vec<Value>) -> u16 {
    awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish()
        .post(format!("{base_url}/v1/events"))
        .insert_header(("Authorization", format!("Bearer {key}")))
        .send_json(&batch(events))
        .await
        .unwrap_or_else(|err| panic!("POST {base_url}/v1/events: {err}"))
        .status()
        .as_u16()
}

/// Sends `events` to the process at `base_url`, expecting every one accepted.
async fn send(base_url: &str, key: &str, events: Vec<Value>) {
    let count = events.len();
    let mut response = awc::Client::new()
        .post(format!("{base_url}/v1/events"))
        .insert_header(("Authorization", format!("Bearer {key}")))
        .send_json(&batch(events))
        .await
        .unwrap_or_else(|err| panic!("POST {base_url}/v1/events: {err}"));
    assert_eq!(response.status().as_u16(), 202);
    let body: Value = response.json().await.expect("a JSON answer");
    assert_eq!(body["accepted"], count, "{body}");
}

/// Waits until every process's checkpoint has passed the last event received: all matched.
async fn wait_for_matching(app: &TestApp) {
    support::eventually("the events matched", || async {
        let behind = app
            .count(
                "SELECT count(*) FROM matching_checkpoint WHERE received_before <= \
                 (SELECT max(received_time) FROM detections)",
            )
            .await;
        (behind == 0).then_some(())
    })
    .await;
}

/// The value of counter `name` in the process's `GET /metrics`.
async fn counter(base_url: &str, name: &str) -> u64 {
    let mut response = awc::Client::builder()
        .timeout(Duration::from_secs(5))
        .finish()
        .get(format!("{base_url}/metrics"))
        .send()
        .await
        .unwrap_or_else(|err| panic!("GET {base_url}/metrics: {err}"));
    assert_eq!(response.status().as_u16(), 200);
    let body = response.body().await.expect("a metrics body");
    let text = String::from_utf8(body.to_vec()).expect("UTF-8 metrics");
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}
