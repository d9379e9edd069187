//! The dashboard in a real headless Chromium: signing up, in and out, the overview, and the
//! protections around its forms (CSRF token, cookie attributes, security headers).

mod audit;
mod escaping;
mod explain;
mod goals;
mod health;
mod isolation;
mod journey;
mod keys;
mod logout;
mod members;
mod models;
mod quality;
mod reports;
mod settings;

use serde_json::json;
use support::TestApp;
use support::browser::Browser;
use support::fixtures::{conversion, detection};

pub(crate) const PASSWORD: &str = "correct horse battery staple";

pub(crate) fn unique_email() -> String {
    format!("owner-{}@acme.test", uuid::Uuid::new_v4().simple())
}

/// An owner signed up through the browser, with an API token and an `ingest` + `read` key.
pub(crate) struct Owner {
    pub token: String,
    pub key: String,
}

pub(crate) async fn owner_in_browser(app: &TestApp, browser: &Browser) -> Owner {
    let email = unique_email();
    sign_up_in_browser(app, browser, &email).await;
    let token = app.login(&email, PASSWORD).await;
    let (_, key) = app.create_api_key(&token, &["ingest", "read"]).await;
    Owner { token, key }
}

/// The goal most tests use: barcodes to purchases on the session token, one hour.
pub(crate) fn scan_to_purchase() -> serde_json::Value {
    json!({"name": "Scan to purchase", "detection_labels": ["barcode"],
           "conversion_name": "purchase", "key": "session_token", "window_seconds": 3600})
}

/// The rows matched by `rows_css`, each as its cells' texts (`th` and `td`, in order).
pub(crate) async fn table_cells(browser: &Browser, rows_css: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for row in browser
        .client
        .find_all(fantoccini::Locator::Css(rows_css))
        .await
        .expect("rows")
    {
        let mut cells = Vec::new();
        for cell in row
            .find_all(fantoccini::Locator::Css("th, td"))
            .await
            .expect("cells")
        {
            cells.push(cell.text().await.expect("a cell's text"));
        }
        rows.push(cells);
    }
    rows
}

/// Signs up through the form, which lands on the overview.
pub(crate) async fn sign_up_in_browser(app: &TestApp, browser: &Browser, email: &str) {
    browser.goto(&format!("{}/signup", app.base_url)).await;
    browser.fill("#organization", "Acme Optics").await;
    browser.fill("#email", email).await;
    browser.fill("#password", PASSWORD).await;
    browser.follow("button[type=submit]").await;
    browser.find("#detections").await;
    assert_eq!(browser.path().await, "/app");
}

#[actix_web::test]
async fn a_new_tenant_signs_up_logs_out_and_logs_in_again() {
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;

    // A short password is refused beside its field, and what was typed stays.
    browser.goto(&format!("{}/signup", app.base_url)).await;
    browser.screenshot("signup").await;
    browser.fill("#organization", "Acme Optics").await;
    browser.fill("#email", "not-an-email").await;
    browser.fill("#password", "short").await;
    browser.follow("button[type=submit]").await;
    let email_error = browser.text("#email-error").await;
    assert!(!email_error.is_empty(), "the email has its own message");
    assert!(!browser.text("#password-error").await.is_empty());
    let kept = browser
        .find("#organization")
        .await
        .prop("value")
        .await
        .expect("a value");
    assert_eq!(kept.as_deref(), Some("Acme Optics"));

    let email = unique_email();
    sign_up_in_browser(&app, &browser, &email).await;
    let header = browser.text(".who").await;
    assert!(header.contains("Acme Optics"), "header: {header}");
    assert!(header.contains(&email));
    assert!(header.contains("owner"));
    // No events yet: the overview says what to do next, for this very server.
    let source = browser.source().await;
    assert!(source.contains("No events yet"));
    assert!(source.contains(&format!("{}/v1/events", app.base_url)));
    browser.screenshot("overview-empty").await;

    browser.follow(".who button[type=submit]").await;
    browser.find(".notice").await;
    assert_eq!(browser.path().await, "/login");
    browser.goto(&format!("{}/app", app.base_url)).await;
    browser.find("#password").await;
    assert_eq!(
        browser.path().await,
        "/login",
        "logged out, the overview sends you to the login"
    );

    browser.fill("#email", &email).await;
    browser.fill("#password", "wrong password!").await;
    browser.follow("button[type=submit]").await;
    assert_eq!(
        browser.text(".form-error").await,
        "Wrong email or password."
    );
    browser.screenshot("login-failed").await;
    browser.fill("#password", PASSWORD).await;
    browser.follow("button[type=submit]").await;
    browser.find("#detections").await;
    assert_eq!(browser.path().await, "/app");
    browser.close().await;
}

#[actix_web::test]
async fn the_overview_counts_what_the_api_received() {
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;
    let Owner { token, key, .. } = owner_in_browser(&app, &browser).await;
    app.create_goal(&token, &scan_to_purchase()).await;
    let events = json!({"events": [
        detection("d-1", "s-1"), detection("d-2", "s-2"), conversion("c-1", "s-1"),
        conversion("c-2", "s-9"),
    ]});
    app.post("/v1/events", Some(&key), &events)
        .await
        .expect(202);
    support::eventually("c-1 attributed", || async {
        let found = app
            .get("/v1/attributions?conversion_event_id=c-1", Some(&key))
            .await
            .body;
        (found["attributions"].as_array().map_or(0, Vec::len) > 0).then_some(())
    })
    .await;

    browser.goto(&format!("{}/app", app.base_url)).await;
    assert_eq!(browser.text("#detections").await, "2");
    assert_eq!(browser.text("#conversions").await, "2");
    assert_eq!(browser.text("#matched-rate").await, "50.0 %");
    assert!(browser.text("#lag").await.ends_with('s'), "a lag is shown");
    let source = browser.source().await;
    for id in ["d-1", "d-2", "c-1", "c-2"] {
        assert!(source.contains(id), "{id} is among the last events");
    }
    browser.screenshot("overview").await;

    // At phone width the same page still shows its figures.
    browser
        .client
        .set_window_size(390, 844)
        .await
        .expect("resize");
    browser.goto(&format!("{}/app", app.base_url)).await;
    assert_eq!(browser.text("#detections").await, "2");
    browser.screenshot("overview-phone").await;
    browser.close().await;
}

/// A client that shows redirects instead of following them, for looking at cookies.
fn raw_client() -> awc::Client {
    awc::Client::builder().disable_redirects().finish()
}

#[actix_web::test]
async fn a_form_posted_without_its_csrf_token_is_refused() {
    let app = TestApp::spawn().await;
    let client = raw_client();

    // The form page sets the token cookie and carries the same token.
    let mut page = client
        .get(format!("{}/login", app.base_url))
        .send()
        .await
        .expect("the login page");
    assert_eq!(page.status().as_u16(), 200);
    let cookie = page.cookie("__Host-sightline_csrf").expect("a CSRF cookie");
    assert_eq!(cookie.secure(), Some(true));
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.path(), Some("/"));
    let html = String::from_utf8(page.body().await.expect("a body").to_vec()).expect("UTF-8");
    assert!(html.contains(&format!(r#"name="csrf" value="{}""#, cookie.value())));
    let headers = page.headers();
    let csp = headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(
        headers.get("x-frame-options").and_then(|v| v.to_str().ok()),
        Some("DENY")
    );
    assert_eq!(
        headers
            .get("x-content-type-options")
            .and_then(|v| v.to_str().ok()),
        Some("nosniff")
    );

    let email = unique_email();
    let signup = |csrf_cookie: Option<String>, field: Option<String>| {
        let (client, url, email) = (&client, format!("{}/signup", app.base_url), email.clone());
        async move {
            let mut request = client.post(url);
            if let Some(value) = csrf_cookie {
                request = request.cookie(awc::cookie::Cookie::new("__Host-sightline_csrf", value));
            }
            let mut form = vec![
                ("organization", "Acme".to_owned()),
                ("email", email),
                ("password", PASSWORD.to_owned()),
            ];
            if let Some(field) = field {
                form.push(("csrf", field));
            }
            request.send_form(&form).await.expect("a response")
        }
    };
    let token = cookie.value().to_owned();
    for (cookie, field, case) in [
        (None, None, "no token at all"),
        (Some(token.clone()), None, "no field"),
        (None, Some(token.clone()), "no cookie"),
        (Some(token.clone()), Some("0".repeat(64)), "another token"),
    ] {
        let mut refused = signup(cookie, field).await;
        assert_eq!(refused.status().as_u16(), 403, "{case}");
        let body = refused.body().await.expect("a body");
        assert!(
            String::from_utf8_lossy(&body).contains("This form has expired"),
            "{case}"
        );
    }
    assert_eq!(
        app.count("SELECT count(*) FROM users").await,
        0,
        "nothing was created"
    );

    // With the token the signup goes through and sets the session cookie.
    let accepted = signup(Some(token.clone()), Some(token)).await;
    assert_eq!(accepted.status().as_u16(), 303);
    let session = accepted
        .cookie("__Host-sightline_session")
        .expect("a session cookie");
    assert_eq!(session.secure(), Some(true));
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(session.same_site(), Some(awc::cookie::SameSite::Lax));
    assert_eq!(session.path(), Some("/"));
    // The cookie is the same session the API takes as a bearer token.
    app.get("/v1/goals", Some(session.value()))
        .await
        .expect(200);
}
