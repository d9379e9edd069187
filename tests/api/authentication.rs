//! Credentials: every missing, malformed, forged, expired or revoked one answers the same 401.

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use support::{TEST_JWT_SECRET, TestApp};

fn forge(claims: &Value, secret: &str, algorithm: Algorithm) -> String {
    encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn claims_for(account: &support::Account, adjust: impl FnOnce(&mut Value)) -> Value {
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({
        "sub": account.user_id, "tid": account.tenant_id, "sv": 0,
        "iat": now, "exp": now + 3600, "iss": "sightline", "aud": "sightline-api",
    });
    adjust(&mut claims);
    claims
}

#[actix_web::test]
async fn a_correctly_forged_token_works_which_proves_the_table_below_tests_the_checks() {
    let app = TestApp::spawn().await;
    let account = app.signup().await;
    let token = forge(
        &claims_for(&account, |_| {}),
        TEST_JWT_SECRET,
        Algorithm::HS256,
    );
    app.get("/v1/members", Some(&token)).await.expect(200);
}

#[actix_web::test]
async fn bad_session_tokens_are_refused_with_one_answer() {
    let app = TestApp::spawn().await;
    let account = app.signup().await;
    let now = chrono::Utc::now().timestamp();
    let valid = forge(
        &claims_for(&account, |_| {}),
        TEST_JWT_SECRET,
        Algorithm::HS256,
    );
    let (head, rest) = valid.split_once('.').unwrap();
    let (payload, signature) = rest.split_once('.').unwrap();
    let tampered_payload = {
        let other = forge(
            &claims_for(&account, |c| c["sv"] = json!(7)),
            TEST_JWT_SECRET,
            Algorithm::HS256,
        );
        format!("{head}.{}.{signature}", other.split('.').nth(1).unwrap())
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "expired",
            forge(
                &claims_for(&account, |c| {
                    c["iat"] = json!(now - 7200);
                    c["exp"] = json!(now - 3600)
                }),
                TEST_JWT_SECRET,
                Algorithm::HS256,
            ),
        ),
        (
            "string exp",
            forge(
                &claims_for(&account, |c| c["exp"] = json!("never")),
                TEST_JWT_SECRET,
                Algorithm::HS256,
            ),
        ),
        (
            "no exp",
            forge(
                &claims_for(&account, |c| {
                    c.as_object_mut().unwrap().remove("exp");
                }),
                TEST_JWT_SECRET,
                Algorithm::HS256,
            ),
        ),
        (
            "no iat",
            forge(
                &claims_for(&account, |c| {
                    c.as_object_mut().unwrap().remove("iat");
                }),
                TEST_JWT_SECRET,
                Algorithm::HS256,
            ),
        ),
        (
            "wrong audience",
            forge(
                &claims_for(&account, |c| c["aud"] = json!("someone-else")),
                TEST_JWT_SECRET,
                Algorithm::HS256,
            ),
        ),
        (
            "wrong issuer",
            forge(
                &claims_for(&account, |c| c["iss"] = json!("evil")),
                TEST_JWT_SECRET,
                Algorithm::HS256,
            ),
        ),
        (
            "wrong key",
            forge(
                &claims_for(&account, |_| {}),
                "another-secret-another-secret-another",
                Algorithm::HS256,
            ),
        ),
        (
            "wrong algorithm",
            forge(
                &claims_for(&account, |_| {}),
                TEST_JWT_SECRET,
                Algorithm::HS512,
            ),
        ),
        (
            "alg none",
            format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}."),
        ),
        ("tampered payload", tampered_payload),
        (
            "stale session version",
            forge(
                &claims_for(&account, |c| c["sv"] = json!(1)),
                TEST_JWT_SECRET,
                Algorithm::HS256,
            ),
        ),
        ("garbage", "not-a-token".to_owned()),
    ];
    let missing = app.get("/v1/members", None).await.expect(401);
    for (name, token) in cases {
        let response = app.get("/v1/members", Some(&token)).await;
        assert_eq!(response.status, 401, "{name}: {}", response.text);
        assert_eq!(response.text, missing.text, "{name}");
    }
}

#[actix_web::test]
async fn a_non_bearer_authorization_header_is_refused() {
    let app = TestApp::spawn().await;
    let account = app.signup().await;
    let mut request = awc::Client::default()
        .get(format!("{}/v1/members", app.base_url))
        .insert_header(("Authorization", format!("Basic {}", account.token)))
        .send()
        .await
        .unwrap();
    assert_eq!(request.status().as_u16(), 401);
    let _ = request.body().await;
}

#[actix_web::test]
async fn api_keys_with_a_changed_character_or_unknown_are_refused_identically() {
    let app = TestApp::spawn().await;
    let account = app.signup().await;
    let (_, key) = app.create_api_key(&account.token, &["read"]).await;
    // The real key authenticates (and is refused administration: 403, not 401).
    app.get("/v1/api-keys", Some(&key)).await.expect(403);

    let mut changed = key.clone().into_bytes();
    let last = changed.len() - 10;
    changed[last] = if changed[last] == b'a' { b'b' } else { b'a' };
    let changed = String::from_utf8(changed).unwrap();
    // Well-formed (valid checksum) but never issued.
    let unknown = sightline::auth::api_key::generate().unwrap().secret;
    // Issued, then revoked.
    let (revoked_id, revoked) = app.create_api_key(&account.token, &["read"]).await;
    app.delete(&format!("/v1/api-keys/{revoked_id}"), Some(&account.token))
        .await
        .expect(204);

    let changed_answer = app.get("/v1/api-keys", Some(&changed)).await.expect(401);
    let unknown_answer = app.get("/v1/api-keys", Some(&unknown)).await.expect(401);
    let truncated_answer = app
        .get("/v1/api-keys", Some(&key[..key.len() - 1]))
        .await
        .expect(401);
    assert_eq!(changed_answer.text, unknown_answer.text);
    let revoked_answer = app.get("/v1/api-keys", Some(&revoked)).await.expect(401);
    assert_eq!(changed_answer.text, truncated_answer.text);
    assert_eq!(changed_answer.text, revoked_answer.text);
}

/// The checksum is checked before any lookup: with the database unreachable, a key with one
/// character changed is still refused (401), while a well-formed key that must be looked up
/// gets the outage's 503.
#[actix_web::test]
async fn a_changed_key_is_refused_by_its_checksum_without_a_database_query() {
    let (app, proxy) = TestApp::spawn_behind_proxy(|_| {}).await;
    let account = app.signup().await;
    let (_, key) = app.create_api_key(&account.token, &["read"]).await;
    let mut changed = key.clone().into_bytes();
    let last = changed.len() - 10;
    changed[last] = if changed[last] == b'a' { b'b' } else { b'a' };
    let changed = String::from_utf8(changed).unwrap();
    let unknown = sightline::auth::api_key::generate().unwrap().secret;

    proxy.cut();
    app.get("/v1/reports/labels", Some(&changed))
        .await
        .expect(401);
    let looked_up = app
        .get("/v1/reports/labels", Some(&unknown))
        .await
        .expect(503);
    assert!(looked_up.header("retry-after").is_some());
    proxy.restore().await;
}

#[actix_web::test]
async fn logout_ends_every_session_of_the_member_on_the_next_request() {
    let app = TestApp::spawn().await;
    let account = app.signup().await;
    let second = app.login(&account.email, &account.password).await;
    let (_, key) = app.create_api_key(&account.token, &["read"]).await;

    app.post("/v1/auth/logout", Some(&second), &json!({}))
        .await
        .expect(204);
    app.get("/v1/goals", Some(&second)).await.expect(401);
    app.get("/v1/goals", Some(&account.token)).await.expect(401);
    app.post("/v1/auth/logout", Some(&second), &json!({}))
        .await
        .expect(401);
    // An API key has no session: it keeps working, and cannot "log out".
    app.get("/v1/reports/labels", Some(&key)).await.expect(200);
    app.post("/v1/auth/logout", Some(&key), &json!({}))
        .await
        .expect(403);
    let fresh = app.login(&account.email, &account.password).await;
    app.get("/v1/goals", Some(&fresh)).await.expect(200);
}

/// The dashboard's session cookie is for the dashboard: the JSON API and ingestion read
/// credentials from `Authorization` only, so a cross-site request that carries the cookie
/// can do nothing there.
#[actix_web::test]
async fn api_and_ingest_routes_ignore_the_session_cookie() {
    let app = TestApp::spawn().await;
    let account = app.signup().await;
    let cookie = awc::cookie::Cookie::new("__Host-sightline_session", account.token.clone());
    let client = awc::Client::default();

    let mut ingest = client
        .post(format!("{}/v1/events", app.base_url))
        .cookie(cookie.clone())
        .send_json(&json!({"events": [support::fixtures::detection("d-1", "s-1")]}))
        .await
        .unwrap();
    assert_eq!(ingest.status().as_u16(), 401);
    let _ = ingest.body().await;
    let mut read = client
        .get(format!("{}/v1/goals", app.base_url))
        .cookie(cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status().as_u16(), 401);
    let _ = read.body().await;
    assert_eq!(app.count("SELECT count(*) FROM detections").await, 0);
}
