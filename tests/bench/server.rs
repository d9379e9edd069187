//! The server under test: the real application, release build, on its own thread and actix
//! system, with a fresh database (cloned from the test template) and Redis prefix.

use actix_web::dev::ServerHandle;
use serde_json::json;
use sightline::config::{Secret, Settings};
use sightline::startup::Application;
use support::database::TestDatabase;
use support::{test_database_url, test_redis_url};

pub struct BenchServer {
    pub base_url: String,
    /// Scopes `ingest` and `read`: the matching scenario reads attributions with it.
    pub api_key: String,
    /// The tenant owner's JWT, for the management API (goals).
    pub owner_token: String,
    pub database_url: String,
    handle: ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
    database: Option<TestDatabase>,
}

impl BenchServer {
    pub fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let database = runtime.block_on(TestDatabase::create(&test_database_url()));
        drop(runtime);
        let database_url = database.url();

        // The server's own settings (SIGHTLINE_* variables) apply, so that tuning can be
        // measured; the database, Redis and address are the benchmark's.
        let mut settings = Settings::load().unwrap_or_else(|err| panic!("{err}"));
        settings.listen = "127.0.0.1:0".parse().unwrap();
        settings.data_dir = std::env::temp_dir().join("sightline-bench");
        settings.database_url = Some(Secret::new(database_url.clone()));
        // SIGHTLINE_BENCH_WITHOUT_REDIS=1 measures the in-process hot store instead.
        settings.redis_url = std::env::var("SIGHTLINE_BENCH_WITHOUT_REDIS")
            .is_err()
            .then(|| Secret::new(test_redis_url()));
        settings.redis_prefix = format!("slbench-{}", uuid::Uuid::new_v4().simple());
        settings.jwt_secret = Some(Secret::new(support::TEST_JWT_SECRET));
        if std::env::var("SIGHTLINE_INGEST_RATE_LIMIT_PER_SECOND").is_err() {
            // The benchmark measures throughput, not the limit.
            settings.ingest_rate_limit_per_second = 100_000_000;
        }
        let (sender, receiver) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let system = actix_web::rt::System::new();
            system.block_on(async move {
                let app = Application::build(settings)
                    .await
                    .expect("the server starts");
                sender.send((app.address(), app.handle())).unwrap();
                app.run_until_stopped().await.unwrap();
            });
        });
        let (address, handle) = receiver.recv().expect("the server reports its address");
        let base_url = format!("http://{address}");
        let (owner_token, api_key) =
            actix_web::rt::System::new().block_on(create_api_key(&base_url));
        Self {
            base_url,
            api_key,
            owner_token,
            database_url,
            handle,
            thread: Some(thread),
            database: Some(database),
        }
    }

    pub fn stop(mut self) {
        actix_web::rt::System::new().block_on(self.handle.stop(true));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        drop(self.database.take());
    }
}

/// Signs up the bench tenant; returns its owner's JWT and a new API key.
async fn create_api_key(base_url: &str) -> (String, String) {
    let client = awc::Client::default();
    let mut signup = client
        .post(format!("{base_url}/v1/auth/signup"))
        .send_json(&json!({"organization": "Bench", "email": "bench@sightline.test", "password": "bench password"}))
        .await
        .unwrap();
    let token = signup.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut key = client
        .post(format!("{base_url}/v1/api-keys"))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .send_json(&json!({"name": "bench", "scopes": ["ingest", "read"]}))
        .await
        .unwrap();
    let key = key.json::<serde_json::Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    (token, key)
}
