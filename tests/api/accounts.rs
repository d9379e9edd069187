//! Signup and login.

use serde_json::json;
use sightline::config::Secret;
use support::TestApp;
use support::redis_server::RedisServer;

#[actix_web::test]
async fn signup_creates_a_tenant_whose_owner_can_use_the_token() {
    let app = TestApp::spawn().await;
    let account = app.signup().await;
    assert!(uuid::Uuid::parse_str(&account.tenant_id).is_ok());
    assert!(uuid::Uuid::parse_str(&account.user_id).is_ok());
    let members = app
        .get("/v1/members", Some(&account.token))
        .await
        .expect(200);
    assert_eq!(
        members.body["members"][0]["user_id"],
        account.user_id.as_str()
    );
    assert_eq!(members.body["members"][0]["role"], "owner");
    assert_eq!(members.body["members"][0]["email"], account.email.as_str());
}

#[actix_web::test]
async fn signup_with_a_taken_email_is_a_conflict_whatever_its_case() {
    let app = TestApp::spawn().await;
    let account = app.signup().await;
    let response = app
        .post(
            "/v1/auth/signup",
            None,
            &json!({"organization": "Other", "email": account.email.to_uppercase(), "password": "0123456789"}),
        )
        .await
        .expect(409);
    assert_eq!(response.error_code(), "conflict");
}

#[actix_web::test]
async fn signup_reports_every_invalid_field() {
    let app = TestApp::spawn().await;
    let response = app
        .post(
            "/v1/auth/signup",
            None,
            &json!({"email": "not-an-email", "password": "short"}),
        )
        .await
        .expect(400);
    assert_eq!(response.error_code(), "invalid_fields");
    let problems: Vec<(String, String)> = response.body["error"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["field"].as_str().unwrap().to_owned(),
                p["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        problems,
        vec![
            ("organization".to_owned(), "missing_field".to_owned()),
            ("email".to_owned(), "invalid_format".to_owned()),
            ("password".to_owned(), "too_short".to_owned()),
        ]
    );
}

#[actix_web::test]
async fn a_password_of_exactly_ten_characters_is_enough() {
    let app = TestApp::spawn().await;
    app.post(
        "/v1/auth/signup",
        None,
        &json!({"organization": "Acme", "email": "ten@acme.test", "password": "0123456789"}),
    )
    .await
    .expect(201);
    app.post(
        "/v1/auth/signup",
        None,
        &json!({"organization": "Acme", "email": "nine@acme.test", "password": "012345678"}),
    )
    .await
    .expect(400);
}

#[actix_web::test]
async fn bodies_that_are_not_json_are_refused_clearly() {
    let app = TestApp::spawn().await;
    let wrong_type = app
        .send_raw(
            actix_web::http::Method::POST,
            "/v1/auth/signup",
            None,
            Some(("text/plain", "{}".to_owned())),
        )
        .await
        .expect(415);
    assert_eq!(wrong_type.error_code(), "unsupported_media_type");
    let not_json = app
        .send_raw(
            actix_web::http::Method::POST,
            "/v1/auth/signup",
            None,
            Some(("application/json", "{not json".to_owned())),
        )
        .await
        .expect(400);
    assert_eq!(not_json.error_code(), "bad_request");
    let too_big = app
        .send_raw(
            actix_web::http::Method::POST,
            "/v1/auth/signup",
            None,
            Some((
                "application/json",
                format!("{{\"organization\": \"{}\"}}", "x".repeat(100_000)),
            )),
        )
        .await
        .expect(413);
    assert_eq!(too_big.error_code(), "payload_too_large");
}

#[actix_web::test]
async fn login_returns_a_working_token_and_its_expiry() {
    let app = TestApp::spawn().await;
    let account = app.signup().await;
    let response = app
        .post(
            "/v1/auth/login",
            None,
            &json!({"email": account.email.to_uppercase(), "password": account.password}),
        )
        .await
        .expect(200);
    let expires_at = response.body["expires_at"].as_str().unwrap();
    assert!(
        expires_at.ends_with('Z') && expires_at.len() == 24,
        "{expires_at}"
    );
    let token = response.body["token"].as_str().unwrap();
    app.get("/v1/members", Some(token)).await.expect(200);
}

#[actix_web::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_answer() {
    let app = TestApp::spawn().await;
    let account = app.signup().await;
    let wrong_password = app
        .post(
            "/v1/auth/login",
            None,
            &json!({"email": account.email, "password": "wrong password"}),
        )
        .await
        .expect(401);
    let unknown_email = app
        .post(
            "/v1/auth/login",
            None,
            &json!({"email": "nobody@acme.test", "password": "wrong password"}),
        )
        .await
        .expect(401);
    assert_eq!(wrong_password.text, unknown_email.text);
}

#[actix_web::test]
async fn repeated_failures_lock_the_account_with_retry_after() {
    let app = TestApp::spawn().await;
    let account = app.signup().await;
    let limit = app.settings.login_max_failures_per_account;
    for _ in 0..limit {
        app.post(
            "/v1/auth/login",
            None,
            &json!({"email": account.email, "password": "wrong password"}),
        )
        .await
        .expect(401);
    }
    // Locked: even the right password is refused until the window ends.
    let locked = app
        .post(
            "/v1/auth/login",
            None,
            &json!({"email": account.email, "password": account.password}),
        )
        .await
        .expect(429);
    let retry_after: u64 = locked.header("retry-after").unwrap().parse().unwrap();
    assert!(retry_after > 0 && retry_after <= app.settings.login_lockout.as_secs());
}

#[actix_web::test]
async fn failed_logins_are_still_throttled_while_redis_is_down() {
    let mut redis = RedisServer::start().await;
    let url = redis.url();
    let app = TestApp::spawn_with(|settings| settings.redis_url = Some(Secret::new(url))).await;
    let account = app.signup().await;
    redis.kill();
    let login = |password: &str| json!({"email": account.email, "password": password});

    // The outage locks nobody out...
    app.post("/v1/auth/login", None, &login(&account.password))
        .await
        .expect(200);
    // ...and does not lift the limit: this process counts the failures itself.
    for _ in 0..app.settings.login_max_failures_per_account {
        app.post("/v1/auth/login", None, &login("wrong password"))
            .await
            .expect(401);
    }
    let locked = app
        .post("/v1/auth/login", None, &login(&account.password))
        .await
        .expect(429);
    let retry_after: u64 = locked.header("retry-after").unwrap().parse().unwrap();
    assert!(retry_after > 0 && retry_after <= app.settings.login_lockout.as_secs());
}

#[actix_web::test]
async fn repeated_failures_from_one_address_are_throttled_across_accounts() {
    let app = TestApp::spawn_with(|s| s.login_max_failures_per_address = 3).await;
    for n in 0..3 {
        app.post(
            "/v1/auth/login",
            None,
            &json!({"email": format!("guess{n}@acme.test"), "password": "0123456789"}),
        )
        .await
        .expect(401);
    }
    app.post(
        "/v1/auth/login",
        None,
        &json!({"email": "guess9@acme.test", "password": "0123456789"}),
    )
    .await
    .expect(429);
}

#[actix_web::test]
async fn behind_a_trusted_proxy_each_forwarded_client_is_throttled_on_its_own() {
    let app = TestApp::spawn_with(|s| {
        s.login_max_failures_per_address = 3;
        // The test client connects from 127.0.0.1: it plays the load balancer.
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let account = app.signup().await;
    let from = |client: &'static str| ("X-Forwarded-For", client);
    for n in 0..3 {
        app.post_with_header(
            "/v1/auth/login",
            &json!({"email": format!("guess{n}@acme.test"), "password": "0123456789"}),
            from("203.0.113.1"),
        )
        .await
        .expect(401);
    }
    // Client A is locked out, even when it puts another address in front of the one the
    // balancer appended.
    for forwarded in ["203.0.113.1", "192.0.2.99, 203.0.113.1"] {
        app.post_with_header(
            "/v1/auth/login",
            &json!({"email": "guess9@acme.test", "password": "0123456789"}),
            from(forwarded),
        )
        .await
        .expect(429);
    }
    // Client B, through the same balancer, still logs in.
    app.post_with_header(
        "/v1/auth/login",
        &json!({"email": account.email, "password": account.password}),
        from("203.0.113.2"),
    )
    .await
    .expect(200);
}

#[actix_web::test]
async fn without_trusted_proxies_a_forwarded_address_does_not_escape_the_throttle() {
    let app = TestApp::spawn_with(|s| s.login_max_failures_per_address = 3).await;
    assert!(app.settings.trusted_proxies.is_empty(), "the default");
    for n in 0..3 {
        app.post_with_header(
            "/v1/auth/login",
            &json!({"email": format!("guess{n}@acme.test"), "password": "0123456789"}),
            ("X-Forwarded-For", &format!("203.0.113.{n}")),
        )
        .await
        .expect(401);
    }
    app.post_with_header(
        "/v1/auth/login",
        &json!({"email": "guess9@acme.test", "password": "0123456789"}),
        ("X-Forwarded-For", "198.51.100.77"),
    )
    .await
    .expect(429);
}

#[actix_web::test]
async fn a_successful_login_clears_the_account_failures() {
    let app = TestApp::spawn().await;
    let account = app.signup().await;
    let limit = app.settings.login_max_failures_per_account;
    for _ in 0..limit - 1 {
        app.post(
            "/v1/auth/login",
            None,
            &json!({"email": account.email, "password": "wrong password"}),
        )
        .await
        .expect(401);
    }
    app.login(&account.email, &account.password).await;
    app.post(
        "/v1/auth/login",
        None,
        &json!({"email": account.email, "password": "wrong password"}),
    )
    .await
    .expect(401);
    app.login(&account.email, &account.password).await;
}

#[actix_web::test]
async fn login_without_a_field_is_a_bad_request() {
    let app = TestApp::spawn().await;
    let response = app
        .post("/v1/auth/login", None, &json!({"email": "a@acme.test"}))
        .await
        .expect(400);
    assert_eq!(response.body["error"]["errors"][0]["field"], "password");
}
