//! `/healthz`, `/readyz`, the landing page and unknown routes.

use sightline::config::Secret;
use support::TestApp;
use support::fixtures::{batch, detection};
use support::process::run_command;
use support::redis_server::RedisServer;

#[actix_web::test]
async fn healthz_answers_ok() {
    let app = TestApp::spawn().await;
    let response = app.get("/healthz", None).await.expect(200);
    assert_eq!(response.body["status"], "ok");
}

#[actix_web::test]
async fn readyz_checks_the_database_and_redis() {
    let app = TestApp::spawn().await;
    let response = app.get("/readyz", None).await.expect(200);
    assert_eq!(response.body["status"], "ready");
    assert_eq!(response.body["checks"]["database"], "ok");
    assert_eq!(response.body["checks"]["redis"], "ok");
}

#[actix_web::test]
async fn unknown_routes_answer_a_json_404() {
    let app = TestApp::spawn().await;
    let response = app.get("/v1/no-such-thing", None).await.expect(404);
    assert_eq!(response.error_code(), "not_found");
}

#[actix_web::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    for path in ["/", "/healthz", "/v1/api-keys"] {
        let response = app.get(path, None).await;
        assert_eq!(
            response.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(response.header("x-frame-options"), Some("DENY"), "{path}");
        let csp = response
            .header("content-security-policy")
            .unwrap_or_default();
        assert!(
            csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
    }
}

#[actix_web::test]
async fn the_landing_page_shows_how_to_sign_up_on_this_host() {
    let app = TestApp::spawn().await;
    let response = app.get("/", None).await.expect(200);
    assert!(
        response
            .header("content-type")
            .unwrap_or_default()
            .starts_with("text/html")
    );
    let host = app.base_url.trim_start_matches("http://");
    assert!(
        response.text.contains(&format!("{host}/v1/auth/signup")),
        "{}",
        response.text
    );
    app.get("/static/sightline.css", None).await.expect(200);
}

#[actix_web::test]
async fn readyz_reports_degraded_but_ready_while_redis_is_down() {
    let mut redis = RedisServer::start().await;
    let url = redis.url();
    let app = TestApp::spawn_with(|settings| settings.redis_url = Some(Secret::new(url))).await;
    app.get("/readyz", None).await.expect(200);

    redis.kill();
    // The first check may be the one that finds Redis gone; from then on it is known down.
    let response = support::eventually("/readyz to report Redis unavailable", || async {
        let response = app.get("/readyz", None).await.expect(200);
        (response.body["checks"]["redis"] == "unavailable").then_some(response)
    })
    .await;
    assert_eq!(response.body["status"], "degraded");
    assert_eq!(response.body["checks"]["database"], "ok");
}

#[actix_web::test]
async fn a_node_starts_and_serves_while_redis_is_down_and_uses_it_once_it_answers() {
    let mut redis = RedisServer::start().await;
    let url = redis.url();
    redis.kill();
    let app = TestApp::spawn_with(|settings| settings.redis_url = Some(Secret::new(url))).await;
    let response = app.get("/readyz", None).await.expect(200);
    assert_eq!(response.body["status"], "degraded");
    let owner = app.signup().await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest"]).await;
    app.post("/v1/events", Some(&key), &batch(vec![detection("d", "s")]))
        .await
        .expect(202);

    redis.restart().await;
    support::eventually("/readyz to report Redis ok", || async {
        let response = app.get("/readyz", None).await.expect(200);
        (response.body["status"] == "ready").then_some(())
    })
    .await;
}

/// The server's own binary, whose `probe` command is the container health check.
const SERVER: &str = env!("CARGO_BIN_EXE_sightline-server");

/// Runs `sightline probe` configured to reach `listen`, as a container's environment would.
async fn probe(listen: &str) -> std::process::Output {
    run_command(
        SERVER,
        &["probe"],
        vec![("SIGHTLINE_LISTEN", listen.to_owned())],
    )
    .await
}

fn listen_address(app: &TestApp) -> String {
    app.base_url.trim_start_matches("http://").to_owned()
}

#[actix_web::test]
async fn probe_succeeds_against_a_ready_server_and_prints_its_readiness() {
    let app = TestApp::spawn().await;
    let output = probe(&listen_address(&app)).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    let readiness: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON");
    assert_eq!(readiness["status"], "ready");
}

#[actix_web::test]
async fn probe_fails_when_the_database_is_unreachable() {
    let (app, proxy) = TestApp::spawn_behind_proxy(|_| {}).await;
    proxy.cut();
    let output = probe(&listen_address(&app)).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(stderr.contains("answered 503"), "{stderr}");
    proxy.restore().await;
}

#[actix_web::test]
async fn probe_fails_when_nothing_listens() {
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = unused.local_addr().unwrap().to_string();
    drop(unused);
    let output = probe(&address).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(stderr.contains("cannot reach"), "{stderr}");
}
