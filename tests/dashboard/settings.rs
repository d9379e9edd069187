//! The privacy page: an owner changes the consent and retention policies; an analyst only
//! reads them.

use super::{PASSWORD, sign_up_in_browser, unique_email};
use serde_json::json;
use support::TestApp;
use support::browser::Browser;

#[actix_web::test]
async fn an_owner_changes_the_consent_policy_and_an_analyst_reads_it() {
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;
    let email = unique_email();
    sign_up_in_browser(&app, &browser, &email).await;
    browser.follow("nav a[href='/app/settings']").await;
    browser.click("input[name=default][value=denied]").await;
    browser
        .click("input[name=strip_keys_without_consent]")
        .await;
    browser
        .follow("form[action='/app/settings/consent'] button[type=submit]")
        .await;
    browser.find("#saved").await;
    browser.screenshot("privacy").await;
    let token = app.login(&email, PASSWORD).await;
    let policy = app
        .get("/v1/consent-policy", Some(&token))
        .await
        .expect(200)
        .body;
    assert_eq!(
        policy,
        json!({"default": "denied", "strip_keys_without_consent": true})
    );

    let analyst = unique_email();
    app.post(
        "/v1/members",
        Some(&token),
        &json!({"email": analyst, "password": PASSWORD, "role": "analyst"}),
    )
    .await
    .expect(201);
    browser.follow(".who button[type=submit]").await;
    browser.fill("#email", &analyst).await;
    browser.fill("#password", PASSWORD).await;
    browser.follow("button[type=submit]").await;
    browser.find("#detections").await;
    browser
        .goto(&format!("{}/app/settings", app.base_url))
        .await;
    assert_eq!(browser.text("#consent-default").await, "consent denied");
    assert_eq!(
        browser.text("#retention-max_event_age_days").await,
        "7 days"
    );
    let source = browser.source().await;
    assert!(!source.contains("Save consent policy"));
    assert!(!source.contains("Save retention policy"));
    browser.close().await;
}

#[actix_web::test]
async fn an_owner_sets_the_retention_periods_with_inline_errors() {
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;
    let email = unique_email();
    sign_up_in_browser(&app, &browser, &email).await;
    browser
        .goto(&format!("{}/app/settings", app.base_url))
        .await;

    // Refused: nothing is saved, what was typed stays, and each problem is beside its field.
    browser.fill("#detections_days", "0").await;
    browser.fill("#conversions_days", "a year").await;
    browser
        .follow("form[action='/app/settings/retention'] button[type=submit]")
        .await;
    browser.find("#retention-refused").await;
    assert!(
        browser
            .text("#detections_days-error")
            .await
            .contains("from 1 to 3650")
    );
    assert!(
        browser
            .text("#conversions_days-error")
            .await
            .contains("number of days")
    );
    let typed = browser.find("#conversions_days").await.prop("value").await;
    assert_eq!(typed.ok().flatten().as_deref(), Some("a year"));
    let token = app.login(&email, PASSWORD).await;
    let stored = app.get("/v1/retention-policy", Some(&token)).await;
    assert_eq!(stored.expect(200).body["detections_days"], 395);

    browser.fill("#detections_days", "90").await;
    browser.fill("#conversions_days", "365").await;
    browser.fill("#max_event_age_days", "14").await;
    browser
        .follow("form[action='/app/settings/retention'] button[type=submit]")
        .await;
    browser.find("#saved").await;
    browser.screenshot("privacy-retention").await;
    let stored = app.get("/v1/retention-policy", Some(&token)).await;
    assert_eq!(
        stored.expect(200).body,
        json!({"detections_days": 90, "conversions_days": 365, "attributions_days": 395,
               "invalid_events_days": 30, "max_event_age_days": 14})
    );
    browser.close().await;
}

#[actix_web::test]
async fn the_privacy_page_shows_each_class_last_purge_and_oldest_row_kept() {
    use sea_orm::ConnectionTrait;
    let app = TestApp::spawn_with(|settings| {
        settings.retention_purge_interval = std::time::Duration::from_secs(1800);
    })
    .await;
    let browser = Browser::start().await;
    sign_up_in_browser(&app, &browser, &unique_email()).await;
    browser
        .goto(&format!("{}/app/settings", app.base_url))
        .await;
    assert_eq!(browser.text("#purge-detections-last").await, "not yet run");
    assert_eq!(browser.text("#purge-detections-oldest").await, "none kept");
    assert!(!browser.source().await.contains("not built yet"));

    // Three detections and one invalid event past their periods (395 and 30 days), one
    // detection inside; the page's minutes are UTC.
    let kept = chrono::Utc::now() - chrono::Duration::days(2);
    let db = app.db().await;
    let detection = |id: &str, time: &str| {
        format!(
            "INSERT INTO detections (tenant_id, event_id, event_time, received_time, consent, \
                 \"keys\", is_test, label, confidence, model_version, entity_id, filtered) \
             SELECT id, '{id}', {time}, now(), 'granted', NULL, false, 'barcode', 0.9, 'v3', \
                 'sku-42', false FROM tenants"
        )
    };
    for sql in [
        detection("old-1", "now() - interval '400 days'"),
        detection("old-2", "now() - interval '401 days'"),
        detection("old-3", "now() - interval '402 days'"),
        detection("kept", &format!("'{}'::timestamptz", kept.to_rfc3339())),
        "INSERT INTO invalid_events (tenant_id, id, received_time, payload, errors) \
         SELECT id, gen_random_uuid(), now() - interval '31 days', '{}', '[]' FROM tenants"
            .to_owned(),
    ] {
        db.execute_unprepared(&sql).await.expect("seed old rows");
    }
    sightline::actors::purge::run_once(&db, 2)
        .await
        .expect("a purge run");
    db.close().await.ok();

    browser
        .goto(&format!("{}/app/settings", app.base_url))
        .await;
    let last = browser.text("#purge-detections-last").await;
    assert!(last.ends_with(" UTC: 3 rows deleted"), "{last}");
    assert_eq!(
        browser.text("#purge-detections-oldest").await,
        kept.format("%Y-%m-%d %H:%M UTC").to_string()
    );
    assert!(
        browser
            .text("#purge-invalid_events-last")
            .await
            .ends_with(": 1 rows deleted")
    );
    assert_eq!(
        browser.text("#purge-invalid_events-oldest").await,
        "none kept"
    );
    assert!(
        browser
            .text("#purge-conversions-last")
            .await
            .ends_with(": 0 rows deleted")
    );
    assert_eq!(browser.text("#purge-attributions-total").await, "0");
    browser.screenshot("privacy-purge").await;
    browser.close().await;
}
