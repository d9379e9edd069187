//! The test harness: [`TestApp`] starts the real server on port 0, against its own PostgreSQL
//! database (cloned from a migrated template) and its own Redis key prefix, and cleans both
//! up when dropped. Helpers send requests and check statuses.
//!
//! `SIGHTLINE_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`) and
//! `SIGHTLINE_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`) point the suite elsewhere.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod browser;
pub mod database;
pub mod fixtures;
pub mod history;
mod http;
pub mod process;
pub mod proxy;
pub mod redis_server;
pub mod reference;

pub use http::{Account, Response};

use actix_web::dev::ServerHandle;
use database::TestDatabase;
use sightline::config::{Secret, Settings};
use sightline::startup::Application;
use std::path::PathBuf;
use std::time::Duration;

/// The JWT secret every test server uses, so tests can forge tokens to prove they are refused.
pub const TEST_JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";

/// The PostgreSQL the suite (and the benchmark) uses.
pub fn test_database_url() -> String {
    std::env::var("SIGHTLINE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// The Redis the suite (and the benchmark) uses.
pub fn test_redis_url() -> String {
    std::env::var("SIGHTLINE_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A running server with its own database, Redis prefix and data directory.
#[allow(missing_debug_implementations)] // a client and a server handle: nothing useful to print
pub struct TestApp {
    /// `http://127.0.0.1:<port>`
    pub base_url: String,
    /// The settings the server was started with.
    pub settings: Settings,
    client: awc::Client,
    /// The in-process server; `None` when the server is a separate process.
    handle: Option<ServerHandle>,
    process: Option<process::ServerProcess>,
    database: Option<TestDatabase>,
    data_dir: PathBuf,
}

impl TestApp {
    /// The production setup: PostgreSQL and Redis.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// PostgreSQL and Redis, with settings adjusted by `adjust` before start.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        let database = TestDatabase::create(&test_database_url()).await;
        let mut settings = base_settings();
        settings.database_url = Some(Secret::new(database.url()));
        settings.redis_url = Some(Secret::new(test_redis_url()));
        settings.redis_prefix = format!("sltest-{}", uuid::Uuid::new_v4().simple());
        adjust(&mut settings);
        Self::start(settings, Some(database)).await
    }

    /// PostgreSQL reached through a [`proxy::TcpProxy`] the test can cut, and Redis.
    pub async fn spawn_behind_proxy(adjust: impl FnOnce(&mut Settings)) -> (Self, proxy::TcpProxy) {
        let database = TestDatabase::create(&test_database_url()).await;
        let url = database.url();
        let target = database::host_and_port(&url);
        let proxy = proxy::TcpProxy::start(target).await;
        let proxied = database::replace_host_and_port(&url, &format!("127.0.0.1:{}", proxy.port()));
        let mut settings = base_settings();
        settings.database_url = Some(Secret::new(proxied));
        settings.redis_url = Some(Secret::new(test_redis_url()));
        settings.redis_prefix = format!("sltest-{}", uuid::Uuid::new_v4().simple());
        adjust(&mut settings);
        (Self::start(settings, Some(database)).await, proxy)
    }

    /// The embedded default: SQLite in a fresh data directory, no Redis.
    pub async fn spawn_embedded() -> Self {
        Self::start(base_settings(), None).await
    }

    async fn start(settings: Settings, database: Option<TestDatabase>) -> Self {
        let data_dir = settings.data_dir.clone();
        let app = Application::build(settings.clone())
            .await
            .expect("the test server should start");
        let base_url = format!("http://{}", app.address());
        let handle = app.handle();
        actix_web::rt::spawn(app.run_until_stopped());
        Self {
            base_url,
            settings,
            client: client(),
            handle: Some(handle),
            process: None,
            database,
            data_dir,
        }
    }

    /// The production setup with the server as a separate process: `binary` is this
    /// package's `sightline-server` (`env!("CARGO_BIN_EXE_sightline-server")`).
    pub async fn spawn_process(binary: &str) -> Self {
        let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into());
        Self::spawn_process_logging(binary, &filter).await
    }

    /// [`TestApp::spawn_process`] with the server's log filter `filter`; its log is then
    /// [`TestApp::server_output`].
    pub async fn spawn_process_logging(binary: &str, filter: &str) -> Self {
        let database = TestDatabase::create(&test_database_url()).await;
        let mut settings = base_settings();
        settings.database_url = Some(Secret::new(database.url()));
        settings.redis_url = Some(Secret::new(test_redis_url()));
        settings.redis_prefix = format!("sltest-{}", uuid::Uuid::new_v4().simple());
        let server = process::ServerProcess::start_logging(binary, &settings, filter);
        Self {
            base_url: server.base_url.clone(),
            data_dir: settings.data_dir.clone(),
            settings,
            client: client(),
            handle: None,
            process: Some(server),
            database: Some(database),
        }
    }

    /// What the server process has logged so far (empty for an in-process server).
    pub fn server_output(&self) -> String {
        self.process
            .as_ref()
            .map(process::ServerProcess::output)
            .unwrap_or_default()
    }

    /// Kills the server process with SIGKILL (see [`TestApp::spawn_process`]).
    pub fn kill_process(&mut self) {
        if let Some(server) = self.process.take() {
            server.kill();
        }
    }

    /// Sends the server process SIGTERM (see [`process::ServerProcess::terminate`]).
    pub fn terminate_process(&self) {
        self.process
            .as_ref()
            .expect("only a server process can be terminated")
            .terminate();
    }

    /// Waits up to `bound` for the server process to exit, and forgets it; `None` if it is
    /// still running then (it is killed when the app is dropped).
    pub async fn process_exit_within(
        &mut self,
        bound: Duration,
    ) -> Option<std::process::ExitStatus> {
        let server = self
            .process
            .as_mut()
            .expect("only a server process can exit");
        let status = server.exit_within(bound).await;
        if status.is_some() {
            self.process = None;
        }
        status
    }

    /// Starts one more server process on this app's database and Redis prefix, on a port of
    /// its own: the processes of a cluster. It is killed when the returned value is dropped.
    pub fn start_sibling(&self, binary: &str) -> process::ServerProcess {
        let mut settings = self.settings.clone();
        settings.listen.set_port(0);
        process::ServerProcess::start(binary, &settings)
    }

    /// Starts the server process again, on the same database and Redis prefix, and on the
    /// same port, so that a client keeps its address across the restart.
    pub fn restart_process(&mut self, binary: &str) {
        self.kill_process();
        if let Some(address) = self.base_url.strip_prefix("http://") {
            self.settings.listen = address.parse().expect("the server address is ip:port");
        }
        let server = process::ServerProcess::start(binary, &self.settings);
        self.base_url = server.base_url.clone();
        self.process = Some(server);
    }

    /// A connection to this test's own database (PostgreSQL tests only), to check what was
    /// stored.
    pub async fn db(&self) -> sea_orm::DatabaseConnection {
        let database = self
            .database
            .as_ref()
            .expect("only PostgreSQL test apps have a database to inspect");
        sea_orm::Database::connect(database.url())
            .await
            .expect("connect to the test database")
    }

    /// Runs a query that returns one number (`SELECT count(*) ...`) on this test's database.
    pub async fn count(&self, sql: &str) -> i64 {
        use sea_orm::ConnectionTrait;
        let db = self.db().await;
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                sql.to_owned(),
            ))
            .await
            .unwrap_or_else(|err| panic!("{sql}: {err}"))
            .expect("one row");
        let value: i64 = row.try_get_by_index(0).expect("a number");
        db.close().await.ok();
        value
    }
}

fn client() -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish()
}

fn base_settings() -> Settings {
    sightline::telemetry::init_for_tests();
    Settings {
        listen: "127.0.0.1:0".parse().expect("a valid address"),
        data_dir: std::env::temp_dir()
            .join(format!("sightline-test-{}", uuid::Uuid::new_v4().simple())),
        jwt_secret: Some(Secret::new(TEST_JWT_SECRET)),
        workers: 1,
        shutdown_timeout: Duration::from_secs(1),
        database_max_connections: 5,
        ..Settings::default()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // `stop` sends its command at once; the returned future only waits for completion.
        if let Some(handle) = &self.handle {
            drop(handle.stop(false));
        }
        // Killed before the database is dropped.
        self.process.take();
        if let Some(prefix) = self
            .settings
            .redis_url
            .as_ref()
            .map(|_| self.settings.redis_prefix.clone())
        {
            database::delete_redis_prefix(&test_redis_url(), &prefix);
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
        // The database is dropped after this, with its own `Drop`.
    }
}

/// (detection, kind) pairs as [`TestApp::credits`] answers them.
pub fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = expected
        .iter()
        .map(|(d, k)| ((*d).to_owned(), (*k).to_owned()))
        .collect();
    pairs.sort();
    pairs
}

/// Polls `probe` every 25 ms until it yields a value, for up to 5 seconds (API.md promises
/// matching within 2 s of a 202; the margin keeps a loaded CI machine from flaking).
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(25)).await;
    }
}
