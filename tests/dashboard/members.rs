//! The members page: an owner adds, re-roles and removes members with the API's rules (only
//! owners grant owner, a tenant keeps an owner); an admin cannot grant owner; a viewer gets
//! no page.

use super::{PASSWORD, sign_up_in_browser, unique_email};
use support::TestApp;
use support::browser::Browser;

const MEMBER_PASSWORD: &str = "member password 123";

async fn submit_add_form(browser: &Browser, email: &str, password: &str, role: &str) {
    browser.fill("#member-email", email).await;
    browser.fill("#member-password", password).await;
    browser
        .click(&format!("form[action='/app/members'] input[value={role}]"))
        .await;
    browser
        .follow("form[action='/app/members'] button[type=submit]")
        .await;
}

fn role_form(user_id: &str) -> String {
    format!("form[action='/app/members/{user_id}/role']")
}

#[actix_web::test]
async fn an_owner_adds_changes_and_removes_a_member() {
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;
    let owner_email = unique_email();
    sign_up_in_browser(&app, &browser, &owner_email).await;
    let token = app.login(&owner_email, PASSWORD).await;
    browser.follow("nav a[href='/app/members']").await;
    browser.find("#members").await;

    // A short password is refused beside its field; the email typed stays.
    let ana = format!("ana-{}", unique_email());
    submit_add_form(&browser, &ana, "short", "analyst").await;
    assert!(!browser.text("#password-error").await.is_empty());
    let kept = browser.find("#member-email").await.prop("value").await;
    assert_eq!(kept.ok().flatten().as_deref(), Some(ana.as_str()));

    submit_add_form(&browser, &ana, MEMBER_PASSWORD, "analyst").await;
    browser.find("#notice").await;
    browser.screenshot("members").await;
    let listed = app.get("/v1/members", Some(&token)).await.expect(200).body;
    let added = listed["members"]
        .as_array()
        .and_then(|all| all.iter().find(|m| m["email"] == ana.as_str()))
        .expect("the new member is listed")
        .clone();
    assert_eq!(added["role"], "analyst");
    let ana_id = added["user_id"].as_str().expect("an id").to_owned();
    let ana_token = app.login(&ana, MEMBER_PASSWORD).await;
    app.get("/v1/goals", Some(&ana_token)).await.expect(200);

    // Down to viewer: applies on the member's next request.
    let form = role_form(&ana_id);
    browser
        .find(&format!("{form} select option[value=viewer]"))
        .await
        .click()
        .await
        .expect("choose viewer");
    browser.follow(&format!("{form} button[type=submit]")).await;
    browser.find("#notice").await;
    app.get("/v1/goals", Some(&ana_token)).await.expect(403);

    // The only owner cannot step down.
    let owner_id = listed["members"][0]["user_id"]
        .as_str()
        .expect("the owner")
        .to_owned();
    let form = role_form(&owner_id);
    browser
        .find(&format!("{form} select option[value=admin]"))
        .await
        .click()
        .await
        .expect("choose admin");
    browser.follow(&format!("{form} button[type=submit]")).await;
    assert!(
        browser
            .text("#refusal")
            .await
            .contains("at least one owner")
    );
    let me = app.get("/v1/members", Some(&token)).await.expect(200).body;
    assert_eq!(me["members"][0]["role"], "owner");

    browser
        .follow(&format!(
            "form[action='/app/members/{ana_id}/remove'] button[type=submit]"
        ))
        .await;
    browser.find("#notice").await;
    app.get("/v1/reports/labels", Some(&ana_token))
        .await
        .expect(401);
    browser.close().await;
}

#[actix_web::test]
async fn an_admin_cannot_grant_owner_and_a_viewer_gets_no_members_page() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let admin_email = unique_email();
    let viewer_email = unique_email();
    for (email, role) in [(&admin_email, "admin"), (&viewer_email, "viewer")] {
        app.post(
            "/v1/members",
            Some(&owner.token),
            &serde_json::json!({"email": email, "password": PASSWORD, "role": role}),
        )
        .await
        .expect(201);
    }
    let browser = Browser::start().await;
    browser.goto(&format!("{}/login", app.base_url)).await;
    browser.fill("#email", &admin_email).await;
    browser.fill("#password", PASSWORD).await;
    browser.follow("button[type=submit]").await;
    browser.find("#detections").await;
    browser.follow("nav a[href='/app/members']").await;
    browser.find("#members").await;
    let add_form = browser.find("form[action='/app/members']").await;
    let add_form_html = add_form.html(false).await.expect("the form's html");
    assert!(!add_form_html.contains("value=\"owner\""));
    browser.follow(".who button[type=submit]").await;

    browser.fill("#email", &viewer_email).await;
    browser.fill("#password", PASSWORD).await;
    browser.follow("button[type=submit]").await;
    browser.find("#detections").await;
    assert!(!browser.source().await.contains("href=\"/app/members\""));
    browser.goto(&format!("{}/app/members", app.base_url)).await;
    assert!(
        browser
            .source()
            .await
            .contains("Members are managed by owners and admins")
    );
    browser.close().await;
}
