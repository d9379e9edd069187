//! Log hygiene: the server's whole log of a sign-up, logins (failed and good), key and goal
//! creation, ingestion (accepted, duplicate, rejected), matching, reports, explain and a key
//! sent in a query string holds none of the secrets or identifiers sent.

use serde_json::json;
use support::TestApp;
use support::fixtures::{batch, conversion, detection};

const SERVER: &str = env!("CARGO_BIN_EXE_sightline-server");

/// Everything at debug level, our crates and the web stack alike, except the database
/// drivers: sea-orm and sqlx echo each SQL statement with its parameters at debug, so they
/// stay at `warn` as in the default filter (README "Configuration").
const VERBOSE: &str = "debug,sqlx=warn,sea_orm=warn,sea_orm_migration=warn";

#[actix_web::test]
async fn the_log_of_a_full_run_holds_no_secret_and_no_identifier_sent() {
    let app = TestApp::spawn_process_logging(SERVER, VERBOSE).await;
    let owner = app.signup().await;
    let failed = app
        .post(
            "/v1/auth/login",
            None,
            &json!({"email": owner.email, "password": "wrong password 1234"}),
        )
        .await;
    assert_eq!(failed.status, 401);
    let session = app.login(&owner.email, &owner.password).await;
    let (_, key) = app.create_api_key(&session, &["ingest", "read"]).await;
    app.create_goal(
        &session,
        &json!({"name": "Scan to purchase", "detection_labels": ["barcode"],
                "conversion_name": "purchase", "key": "session_token", "window_seconds": 3600}),
    )
    .await;

    let session_value = "sess-7Hq2-private";
    let user_value = "user-4kZp-private";
    let mut scan = detection("d-1", session_value);
    scan["keys"]["user_id"] = json!(user_value);
    let mut purchase = conversion("c-1", session_value);
    purchase["keys"]["user_id"] = json!(user_value);
    let mut broken = detection("d-bad", session_value);
    broken["confidence"] = json!(7);
    let answer = app
        .post(
            "/v1/events",
            Some(&key),
            &batch(vec![scan.clone(), scan, purchase, broken]),
        )
        .await
        .expect(202);
    assert_eq!(answer.body["accepted"], 2);
    app.await_attributions(&key, 1).await;
    app.get("/v1/reports/labels", Some(&key)).await.expect(200);
    app.get("/v1/conversions/c-1/explain", Some(&key))
        .await
        .expect(200);
    app.get("/v1/invalid-events", Some(&key)).await.expect(200);
    // A key in a query string is refused, and must not be logged either.
    let in_query = app
        .get(&format!("/v1/reports/labels?api_key={key}"), None)
        .await;
    assert_eq!(in_query.status, 401);

    // The log is really there: each request with its route pattern, and matching's rounds.
    let log = support::eventually("the last request in the log", || async {
        let log = app.server_output();
        log.contains("route=/v1/invalid-events").then_some(log)
    })
    .await;
    for expected in ["route=/v1/auth/login", "route=/v1/events", "matching round"] {
        assert!(log.contains(expected), "no {expected} in the log: {log}");
    }
    for (what, secret) in [
        ("the password", owner.password.as_str()),
        ("the wrong password", "wrong password 1234"),
        ("the signup token", owner.token.as_str()),
        ("the login token", session.as_str()),
        ("the API key", key.as_str()),
        ("a session key value", session_value),
        ("a user key value", user_value),
        ("the email", owner.email.as_str()),
    ] {
        if let Some(line) = log.lines().find(|line| line.contains(secret)) {
            panic!("{what} is in the log: {line}");
        }
    }
    // Nor the part of the key after its public prefix, in case a log cut it.
    assert!(
        !log.contains(&key[12..]),
        "the API key's secret part is logged"
    );
}
