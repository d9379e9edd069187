//! Logging out ends the member's sessions on the next request: the cookie the browser held,
//! replayed, and a token issued to another login of the same member. API keys are not
//! sessions and keep working.

use super::{PASSWORD, sign_up_in_browser, unique_email};
use support::TestApp;
use support::browser::Browser;

const SESSION: &str = "__Host-sightline_session";

#[actix_web::test]
async fn logging_out_ends_the_cookie_and_every_other_session_of_the_member() {
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;
    let email = unique_email();
    sign_up_in_browser(&app, &browser, &email).await;
    let cookie = browser.cookie(SESSION).await.expect("a session cookie");
    let other_login = app.login(&email, PASSWORD).await;
    let (_, key) = app.create_api_key(&other_login, &["read"]).await;
    app.get("/v1/goals", Some(&other_login)).await.expect(200);

    browser.follow("form[action='/logout'] button").await;
    browser.find("form[action='/login']").await;
    assert_eq!(browser.path().await, "/login");
    assert_eq!(browser.cookie(SESSION).await, None);

    // The old cookie, replayed by whoever copied it, is sent back to the login page.
    let replayed = awc::Client::builder()
        .disable_redirects()
        .finish()
        .get(format!("{}/app", app.base_url))
        .cookie(awc::cookie::Cookie::new(SESSION, cookie.clone()))
        .send()
        .await
        .expect("a response");
    assert_eq!(replayed.status().as_u16(), 303);
    let location = replayed
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(location.starts_with("/login"), "redirected to {location}");
    app.get("/v1/goals", Some(&cookie)).await.expect(401);
    app.get("/v1/goals", Some(&other_login)).await.expect(401);

    app.get("/v1/reports/labels", Some(&key)).await.expect(200);
    let fresh = app.login(&email, PASSWORD).await;
    app.get("/v1/goals", Some(&fresh)).await.expect(200);
    browser.close().await;
}
