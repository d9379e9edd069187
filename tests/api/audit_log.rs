//! The audit log: every administrative change with who, when, and before/after, newest first,
//! paged, for owners only, never another tenant's.

use serde_json::{Value, json};
use support::TestApp;

fn actions(page: &Value) -> Vec<String> {
    page["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|entry| entry["action"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[actix_web::test]
async fn every_administrative_change_is_logged_with_who_and_before_and_after() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let goal = json!({"name": "Scan", "detection_labels": ["barcode"],
                      "conversion_name": "purchase", "key": "session_token", "window_seconds": 60});
    let goal_id = app.create_goal(&owner.token, &goal).await;
    let mut renamed = goal.clone();
    renamed["name"] = json!("Scan to purchase");
    app.put(
        &format!("/v1/goals/{goal_id}"),
        Some(&owner.token),
        &renamed,
    )
    .await
    .expect(200);
    let (key_id, secret) = app.create_api_key(&owner.token, &["ingest"]).await;
    app.delete(&format!("/v1/api-keys/{key_id}"), Some(&owner.token))
        .await
        .expect(204);
    let (member_id, _) = app.add_member(&owner.token, "analyst").await;
    app.patch(
        &format!("/v1/members/{member_id}"),
        Some(&owner.token),
        &json!({"role": "viewer"}),
    )
    .await
    .expect(200);
    app.put(
        "/v1/consent-policy",
        Some(&owner.token),
        &json!({"default": "denied", "strip_keys_without_consent": false}),
    )
    .await
    .expect(200);

    let log = app
        .get("/v1/audit-log", Some(&owner.token))
        .await
        .expect(200);
    assert_eq!(
        actions(&log.body),
        [
            "consent_policy.update",
            "member.role_change",
            "member.add",
            "api_key.revoke",
            "api_key.create",
            "goal.update",
            "goal.create",
        ]
    );
    assert_eq!(log.body["next"], Value::Null);
    let entries = log.body["entries"].as_array().expect("entries");
    let goal_update = &entries[5];
    assert_eq!(goal_update["actor"]["kind"], "user");
    assert_eq!(goal_update["actor"]["name"], owner.email.as_str());
    assert_eq!(goal_update["before"]["name"], "Scan");
    assert_eq!(goal_update["after"]["name"], "Scan to purchase");
    assert!(
        goal_update["time"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert_eq!(entries[1]["before"]["role"], "analyst");
    assert_eq!(entries[1]["after"]["role"], "viewer");
    // Nothing secret is ever logged: the key's prefix (as listed) but not the key, no
    // password hash.
    let text = log.body.to_string();
    assert!(text.contains(&secret[..12]));
    assert!(!text.contains(&secret) && !text.contains("$argon2"));
}

#[actix_web::test]
async fn the_log_is_paged_newest_first() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    for _ in 0..3 {
        app.create_api_key(&owner.token, &["ingest"]).await;
    }
    let first = app
        .get("/v1/audit-log?limit=2", Some(&owner.token))
        .await
        .expect(200)
        .body;
    assert_eq!(actions(&first).len(), 2);
    let next = first["next"].as_str().expect("a next page");
    let rest = app
        .get(
            &format!("/v1/audit-log?limit=2&before={next}"),
            Some(&owner.token),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(actions(&rest), ["api_key.create"]);
    assert_eq!(rest["next"], Value::Null);
    let all_ids: Vec<&Value> = first["entries"]
        .as_array()
        .into_iter()
        .chain(rest["entries"].as_array())
        .flatten()
        .map(|e| &e["id"])
        .collect();
    assert_eq!(all_ids.len(), 3);
    assert!(all_ids[0] != all_ids[2]);

    for bad in ["limit=0", "limit=1001", "before=yesterday", "colour=red"] {
        app.get(&format!("/v1/audit-log?{bad}"), Some(&owner.token))
            .await
            .expect(400);
    }
}

#[actix_web::test]
async fn only_owners_read_the_log() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let (_, admin) = app.add_member(&owner.token, "admin").await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest", "read"]).await;
    app.get("/v1/audit-log", Some(&admin)).await.expect(403);
    app.get("/v1/audit-log", Some(&key)).await.expect(403);
    app.get("/v1/audit-log", None).await.expect(401);
    // The role is checked before the query.
    app.get("/v1/audit-log?limit=0", Some(&admin))
        .await
        .expect(403);
}

#[actix_web::test]
async fn tenant_b_never_sees_tenant_a_audit_entries() {
    let app = TestApp::spawn().await;
    let a = app.signup().await;
    let b = app.signup().await;
    app.create_api_key(&a.token, &["ingest"]).await;
    let a_log = app.get("/v1/audit-log", Some(&a.token)).await.expect(200);
    let a_entry = a_log.body["entries"][0]["id"]
        .as_str()
        .expect("an entry")
        .to_owned();
    let b_log = app.get("/v1/audit-log", Some(&b.token)).await.expect(200);
    assert_eq!(actions(&b_log.body), Vec::<String>::new());
    let b_paged = app
        .get(&format!("/v1/audit-log?before={a_entry}"), Some(&b.token))
        .await
        .expect(200);
    assert_eq!(actions(&b_paged.body), Vec::<String>::new());
}
