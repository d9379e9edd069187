//! Rolling upgrades: a node of the release before can restart after the new release migrated
//! (each migration works with the release before it), and a database that is neither behind
//! nor ahead of this release is refused before anything is applied.

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use support::TestApp;
use support::process::run_command;

const SERVER: &str = env!("CARGO_BIN_EXE_sightline-server");
/// A migration of a release later than this one.
const LATER: &str = "m20991231_000001_from_a_later_release";

async fn execute(app: &TestApp, sql: &str) {
    let db = app.db().await;
    db.execute_raw(Statement::from_string(DbBackend::Postgres, sql.to_owned()))
        .await
        .unwrap_or_else(|err| panic!("{sql}: {err}"));
    db.close().await.ok();
}

async fn record_a_later_migration(app: &TestApp) {
    execute(
        app,
        &format!("INSERT INTO seaql_migrations (version, applied_at) VALUES ('{LATER}', 0)"),
    )
    .await;
}

fn database_url(app: &TestApp) -> String {
    app.settings
        .database_url
        .as_ref()
        .expect("a PostgreSQL test app")
        .expose()
        .to_owned()
}

#[actix_web::test]
async fn a_node_starts_and_serves_on_a_database_a_later_release_migrated() {
    // A process, not in-process: starting the sibling blocks this thread until it prints its
    // URL, and an in-process server on this thread could then hold a lock the sibling waits
    // for.
    let app = TestApp::spawn_process(SERVER).await;
    let migrations_before = app.count("SELECT count(*) FROM seaql_migrations").await;
    record_a_later_migration(&app).await;

    // The restarting node of the older release: it starts (prints its URL), says why it did
    // not migrate, and is ready.
    let node = app.start_sibling(SERVER);
    let address = node.base_url.trim_start_matches("http://").to_owned();
    let probe = run_command(SERVER, &["probe"], vec![("SIGHTLINE_LISTEN", address)]).await;
    assert!(probe.status.success(), "{probe:?}");
    assert!(
        node.output().contains("migrations of a later release"),
        "{}",
        node.output()
    );
    assert_eq!(
        app.count("SELECT count(*) FROM seaql_migrations").await,
        migrations_before + 1,
        "nothing applied, nothing removed"
    );
}

#[actix_web::test]
async fn the_migrate_command_on_a_database_ahead_of_it_applies_nothing_and_says_so() {
    let app = TestApp::spawn().await;
    record_a_later_migration(&app).await;
    let output = run_command(
        SERVER,
        &["migrate"],
        vec![("DATABASE_URL", database_url(&app))],
    )
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(stdout.contains("ahead of this release"), "{stdout}");
    assert!(stdout.contains(LATER), "{stdout}");
}

#[actix_web::test]
async fn a_database_with_unknown_migrations_that_lacks_its_own_is_refused() {
    let app = TestApp::spawn().await;
    record_a_later_migration(&app).await;
    let own = "m20261204_000008_cluster";
    execute(
        &app,
        &format!("DELETE FROM seaql_migrations WHERE version = '{own}'"),
    )
    .await;
    let migrations_before = app.count("SELECT count(*) FROM seaql_migrations").await;

    let db = app.db().await;
    let refused = sightline::storage::migrate(&db)
        .await
        .expect_err("neither behind nor ahead of this release");
    let message = refused.to_string();
    assert!(
        message.contains(LATER) && message.contains(own),
        "{message}"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM seaql_migrations").await,
        migrations_before,
        "nothing applied"
    );
    db.close().await.ok();
}
