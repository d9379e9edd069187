//! Talking to the server: a tenant with the scenario's goals, sending its events in a random
//! order and batching, and reading the attributions back to compare with the reference.

use super::judge::{Credit, judge, related};
use super::rng::Rng;
use super::scenario::{Conversion, Detection, Goal, Scenario, utc_text};
use crate::TestApp;
use crate::fixtures::batch;
use futures_util::future::join_all;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// A tenant with the scenario's goals, in the scenario's order.
#[derive(Debug)]
pub struct Tenant {
    /// Which tenant, in failure messages.
    pub name: &'static str,
    pub tenant_id: String,
    /// An `ingest` + `read` API key.
    pub key: String,
    /// The owner's session token, for the management API.
    pub owner_token: String,
    pub goal_ids: Vec<String>,
}

pub async fn tenant(app: &TestApp, name: &'static str, goals: &[Goal]) -> Tenant {
    let owner = app.signup().await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest", "read"]).await;
    let mut goal_ids = Vec::new();
    for goal in goals {
        let created = app
            .post("/v1/goals", Some(&owner.token), &goal.json())
            .await
            .expect(201)
            .body;
        goal_ids.push(created["id"].as_str().unwrap().to_owned());
    }
    Tenant {
        name,
        tenant_id: owner.tenant_id,
        key,
        owner_token: owner.token,
        goal_ids,
    }
}

/// Sends one batch and checks that every event got `status`.
pub async fn send_batch(app: &TestApp, key: &str, events: Vec<Value>, status: &str, seed: u64) {
    let ids: Vec<Value> = events.iter().map(|e| e["event_id"].clone()).collect();
    let answer = app.post("/v1/events", Some(key), &batch(events)).await;
    assert_eq!(answer.status, 202, "seed {seed}: {}", answer.text);
    let results = answer.body["results"].as_array().unwrap();
    assert_eq!(results.len(), ids.len(), "seed {seed}: {}", answer.text);
    for (id, result) in ids.iter().zip(results) {
        assert_eq!(result["event_id"], *id, "seed {seed}: results out of order");
        assert_eq!(
            result["status"], status,
            "seed {seed}: event {id} answered {result}"
        );
    }
}

/// Sends `events` in a random order, in batches of random sizes, a few requests at a time.
pub async fn ingest(app: &TestApp, key: &str, events: &[Value], rng: &mut Rng, seed: u64) {
    let mut order: Vec<&Value> = events.iter().collect();
    rng.shuffle(&mut order);
    let mut batches: Vec<Vec<Value>> = Vec::new();
    let mut rest = &order[..];
    while !rest.is_empty() {
        // Some tiny batches, so events of one session arrive in many requests.
        let size = if rng.chance(0.3) {
            rng.range(1, 5)
        } else {
            rng.range(1, 200)
        };
        let (head, tail) = rest.split_at(usize::try_from(size).unwrap().min(rest.len()));
        batches.push(head.iter().map(|&e| e.clone()).collect());
        rest = tail;
    }
    let mut batches = batches.into_iter().peekable();
    while batches.peek().is_some() {
        let in_flight = usize::try_from(rng.range(1, 4)).unwrap();
        let group: Vec<Vec<Value>> = batches.by_ref().take(in_flight).collect();
        join_all(
            group
                .into_iter()
                .map(|events| send_batch(app, key, events, "accepted", seed)),
        )
        .await;
    }
}

/// The server's attributions of every goal, as credits, with the rows for further checks.
pub async fn server_credits(app: &TestApp, tenant: &Tenant) -> (BTreeSet<Credit>, Vec<Value>) {
    let mut credits = BTreeSet::new();
    let mut rows = Vec::new();
    for (goal_index, goal_id) in tenant.goal_ids.iter().enumerate() {
        let body = app
            .get(
                &format!("/v1/attributions?goal={goal_id}&limit=10000"),
                Some(&tenant.key),
            )
            .await
            .expect(200)
            .body;
        let page = body["attributions"].as_array().unwrap();
        // A full page might be cut short; the scenario is sized to stay far below.
        assert!(
            page.len() < 10_000,
            "goal {goal_index}: one page is not enough"
        );
        for row in page {
            assert_eq!(row["goal_id"], goal_id.as_str());
            credits.insert((
                goal_index,
                row["conversion_event_id"].as_str().unwrap().to_owned(),
                row["detection_event_id"].as_str().unwrap().to_owned(),
                row["kind"].as_str().unwrap().to_owned(),
            ));
        }
        rows.extend(page.iter().cloned());
    }
    (credits, rows)
}

/// Waits (longer than `support::eventually`: this is a bulk load) until the server's
/// attributions equal `expected`; on timeout, fails with a diff and the cases behind it.
pub async fn await_reference(
    app: &TestApp,
    tenant: &Tenant,
    scenario: &Scenario,
    expected: &BTreeSet<Credit>,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (actual, rows) = server_credits(app, tenant).await;
        if actual == *expected {
            return rows;
        }
        if Instant::now() >= deadline {
            panic!(
                "{}",
                mismatch_report(app, tenant, scenario, expected, &actual).await
            );
        }
        actix_web::rt::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The seed, the first differences, and for the first conversions concerned: the goal, the
/// conversion, and every detection sharing the goal's key value with the reference's
/// verdict beside the server's explain verdict.
async fn mismatch_report(
    app: &TestApp,
    tenant: &Tenant,
    scenario: &Scenario,
    expected: &BTreeSet<Credit>,
    actual: &BTreeSet<Credit>,
) -> String {
    let missing: Vec<&Credit> = expected.difference(actual).collect();
    let unexpected: Vec<&Credit> = actual.difference(expected).collect();
    let mut report = String::new();
    let _ = writeln!(
        report,
        "seed {} (replay with SIGHTLINE_DIFFERENTIAL_SEED={}): after 30 s the server's \
         attributions for {} differ from the reference: {} expected, {} found, {} missing, \
         {} unexpected",
        scenario.seed,
        scenario.seed,
        tenant.name,
        expected.len(),
        actual.len(),
        missing.len(),
        unexpected.len()
    );
    for credit in missing.iter().take(10) {
        let _ = writeln!(report, "  missing:    {credit:?}");
    }
    for credit in unexpected.iter().take(10) {
        let _ = writeln!(report, "  unexpected: {credit:?}");
    }
    let mut concerned: Vec<(usize, &str)> = Vec::new();
    for (goal_index, conversion_id, _, _) in missing.iter().chain(unexpected.iter()) {
        if !concerned.contains(&(*goal_index, conversion_id.as_str())) {
            concerned.push((*goal_index, conversion_id.as_str()));
        }
    }
    for (goal_index, conversion_id) in concerned.into_iter().take(3) {
        let goal = &scenario.goals[goal_index];
        let goal_id = &tenant.goal_ids[goal_index];
        let Some(conversion) = scenario
            .conversions
            .iter()
            .find(|c| c.head.event_id == conversion_id)
        else {
            let _ = writeln!(report, "\nconversion {conversion_id} was never sent");
            continue;
        };
        let _ = writeln!(
            report,
            "\ngoal {goal_index} ({goal_id}): {}\nconversion {}",
            goal.json(),
            conversion.json()
        );
        let explained = app
            .get(
                &format!("/v1/conversions/{conversion_id}/explain"),
                Some(&tenant.key),
            )
            .await
            .body;
        let mut server_verdicts: BTreeMap<String, String> = BTreeMap::new();
        for explained_goal in explained["goals"].as_array().into_iter().flatten() {
            if explained_goal["goal_id"] == goal_id.as_str() {
                for candidate in explained_goal["candidates"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    server_verdicts.insert(
                        candidate["detection_event_id"]
                            .as_str()
                            .unwrap_or("?")
                            .to_owned(),
                        candidate["verdict"].as_str().unwrap_or("?").to_owned(),
                    );
                }
            }
        }
        let verdicts = judge(goal, conversion, &scenario.detections).unwrap_or_default();
        let _ = writeln!(
            report,
            "  related detections credited by either side or judged differently: id | time | \
             label | entity | confidence | consent | test | filtered | reference | server explain"
        );
        let mut agreed = 0;
        for (detection, verdict) in scenario.detections.iter().zip(verdicts) {
            let server = server_verdicts
                .get(&detection.head.event_id)
                .map_or("-", String::as_str);
            let credited = |name: &str| matches!(name, "direct" | "assisted" | "duplicate");
            if !related(&detection.head, &conversion.head) {
                continue;
            }
            if server == verdict.api_name() && !credited(server) {
                agreed += 1;
                continue;
            }
            let _ = writeln!(
                report,
                "  {} | {} | {} | {} | {} | {:?} | {} | {} | {} | {server}",
                detection.head.event_id,
                utc_text(detection.head.time),
                detection.label,
                detection.entity_id,
                detection.confidence,
                detection.head.consent,
                detection.head.test,
                detection.filtered,
                verdict.api_name(),
            );
        }
        let _ = writeln!(report, "  ({agreed} more related detections judged alike)");
    }
    report
}

/// Every row's copied fields match the events they name.
pub fn check_rows(scenario: &Scenario, rows: &[Value]) {
    let seed = scenario.seed;
    let detections: BTreeMap<&str, &Detection> = scenario
        .detections
        .iter()
        .map(|d| (d.head.event_id.as_str(), d))
        .collect();
    let conversions: BTreeMap<&str, &Conversion> = scenario
        .conversions
        .iter()
        .map(|c| (c.head.event_id.as_str(), c))
        .collect();
    for row in rows {
        let detection = detections[row["detection_event_id"].as_str().unwrap()];
        let conversion = conversions[row["conversion_event_id"].as_str().unwrap()];
        let context = format!("seed {seed}: row {row}");
        assert_eq!(
            row["detection_time"],
            utc_text(detection.head.time),
            "{context}"
        );
        assert_eq!(
            row["conversion_time"],
            utc_text(conversion.head.time),
            "{context}"
        );
        assert_eq!(row["label"], detection.label, "{context}");
        assert_eq!(row["entity_id"], detection.entity_id, "{context}");
        assert_eq!(row["model_version"], detection.model_version, "{context}");
        assert_eq!(row["value"].as_f64(), conversion.value, "{context}");
    }
}

pub const DUPLICATE_DIRECTS: &str = "SELECT count(*) FROM (SELECT 1 FROM attributions \
     WHERE kind = 'direct' GROUP BY tenant_id, goal_id, conversion_event_id \
     HAVING count(*) > 1) x";
