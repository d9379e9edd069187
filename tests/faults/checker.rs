//! The history check itself: it must see a loss and a stored event nobody sent, or the fault
//! tests' clean results would prove nothing.

use support::TestApp;
use support::fixtures::{conversion, detection};
use support::history::Sender;

#[actix_web::test]
async fn the_history_check_finds_a_lost_event_and_one_never_sent() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest"]).await;
    let sender = Sender::new(&app.base_url, &key);
    sender
        .deliver(vec![
            detection("d-1", "s-1"),
            detection("d-2", "s-1"),
            conversion("c-1", "s-1"),
        ])
        .await;
    assert!(sender.check_stored(&app, &owner.tenant_id).await.is_clean());

    // d-1 lost; d-9, a copy of d-2, stored though never sent.
    app.count("WITH gone AS (DELETE FROM detections WHERE event_id = 'd-1' RETURNING 1) SELECT count(*) FROM gone")
        .await;
    app.count(
        "WITH copied AS (INSERT INTO detections SELECT (jsonb_populate_record(NULL::detections, \
         to_jsonb(d) || '{\"event_id\": \"d-9\"}')).* FROM detections d WHERE event_id = 'd-2' \
         RETURNING 1) SELECT count(*) FROM copied",
    )
    .await;
    let check = sender.check_stored(&app, &owner.tenant_id).await;
    let identity = |id: &str| ("detection".to_owned(), id.to_owned());
    assert_eq!(check.lost, [identity("d-1")]);
    assert_eq!(check.unknown, [identity("d-9")]);
    assert!(check.duplicated.is_empty() && check.accepted_twice.is_empty());
    assert!(check.unanswered.is_empty());
    assert!(!check.is_clean());
}
