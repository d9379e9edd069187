//! The server under test: the real application, release build, with a fresh database (cloned
//! from the test template) and Redis prefix; on its own thread and actix system in this
//! process, or in a child process of its own (this binary again, `server-child`) when its
//! resident memory must be measured alone; or several child processes on one database
//! ([`BenchCluster`]).

use actix_web::dev::ServerHandle;
use serde_json::json;
use sightline::config::{CONFIG_FILE_ENV, Settings};
use sightline::startup::Application;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use support::database::TestDatabase;
use support::{test_database_url, test_redis_url};

/// The argument that makes this binary the server child.
pub const CHILD_ARGUMENT: &str = "server-child";
/// The child's line on standard output that gives its address.
const LISTENING: &str = "sightline-bench server listening on ";

/// How to start the server.
#[derive(Default)]
pub struct Launch {
    /// Settings for this run, by their environment variable (`SIGHTLINE_*`), over the
    /// environment's own.
    pub settings: Vec<(&'static str, String)>,
    /// In a child process rather than on a thread of this one.
    pub own_process: bool,
}

pub struct BenchServer {
    pub base_url: String,
    /// Scopes `ingest` and `read`: the matching scenario reads attributions with it.
    pub api_key: String,
    /// The tenant owner's JWT, for the management API (goals).
    pub owner_token: String,
    pub database_url: String,
    /// The server's process: this one, or the child.
    pub pid: u32,
    running: Option<Running>,
    database: Option<TestDatabase>,
    _redis_keys: RedisKeys,
}

/// The run's Redis prefix: its keys (hot copies of sessions live a day) are deleted when
/// this is dropped, so that a benchmark leaves nothing for the next test run to scan past.
struct RedisKeys(String);

impl Drop for RedisKeys {
    fn drop(&mut self) {
        support::database::delete_redis_prefix(&test_redis_url(), &self.0);
    }
}

enum Running {
    Thread {
        handle: ServerHandle,
        thread: std::thread::JoinHandle<()>,
    },
    /// Stops when its standard input closes.
    Child(Child),
}

/// A tenant of the bench server and its credentials.
pub struct Tenant {
    pub owner_token: String,
    /// Scopes `ingest` and `read`.
    pub api_key: String,
}

impl BenchServer {
    pub fn start() -> Self {
        Self::launch(&Launch::default())
    }

    pub fn launch(launch: &Launch) -> Self {
        let (database, redis_keys, variables) = prepare(&launch.settings);
        let database_url = database.url();
        let (address, running, pid) = if launch.own_process {
            let (address, child) = spawn_child(&variables);
            let pid = child.id();
            (address, Running::Child(child), pid)
        } else {
            let settings = settings(|name| {
                variables
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, value)| value.clone())
                    .or_else(|| std::env::var(name).ok())
            });
            let (address, handle, thread) = spawn_thread(settings);
            (
                address,
                Running::Thread { handle, thread },
                std::process::id(),
            )
        };
        let base_url = format!("http://{address}");
        let tenant = actix_web::rt::System::new().block_on(sign_up(&base_url, "Bench"));
        Self {
            base_url,
            api_key: tenant.api_key,
            owner_token: tenant.owner_token,
            database_url,
            pid,
            running: Some(running),
            database: Some(database),
            _redis_keys: redis_keys,
        }
    }

    /// Signs up another tenant, `name` (unique per server).
    pub async fn add_tenant(&self, name: &str) -> Tenant {
        sign_up(&self.base_url, name).await
    }

    /// The server process's resident memory (`VmRSS`), in bytes.
    pub fn resident_bytes(&self) -> Option<u64> {
        resident_bytes(&self.pid.to_string())
    }

    pub fn stop(mut self) {
        match self.running.take() {
            Some(Running::Thread { handle, thread }) => {
                actix_web::rt::System::new().block_on(handle.stop(true));
                let _ = thread.join();
            }
            Some(Running::Child(mut child)) => {
                drop(child.stdin.take());
                let _ = child.wait();
            }
            None => {}
        }
        drop(self.database.take());
    }
}

/// Several server processes, each a child of its own, on one fresh database, Redis prefix
/// and JWT secret (as the processes of one deployment share them), with one tenant.
pub struct BenchCluster {
    /// One per process, in start order.
    pub base_urls: Vec<String>,
    pub pids: Vec<u32>,
    /// Scopes `ingest` and `read`; valid on every process.
    pub api_key: String,
    pub owner_token: String,
    pub database_url: String,
    children: Vec<Child>,
    database: Option<TestDatabase>,
    _redis_keys: RedisKeys,
}

impl BenchCluster {
    /// Starts `processes` server children with `settings` (as [`Launch::settings`]), each
    /// with a node id of its own, and signs the tenant up through the first.
    pub fn start(processes: usize, settings: &[(&'static str, String)]) -> Self {
        let (database, redis_keys, variables) = prepare(settings);
        let (mut base_urls, mut pids, mut children) = (Vec::new(), Vec::new(), Vec::new());
        for node in 1..=processes {
            let mut own = variables.clone();
            own.push(("SIGHTLINE_NODE_ID", format!("bench-node-{node}")));
            let (address, child) = spawn_child(&own);
            base_urls.push(format!("http://{address}"));
            pids.push(child.id());
            children.push(child);
        }
        let tenant = actix_web::rt::System::new().block_on(sign_up(&base_urls[0], "Bench"));
        Self {
            base_urls,
            pids,
            api_key: tenant.api_key,
            owner_token: tenant.owner_token,
            database_url: database.url(),
            children,
            database: Some(database),
            _redis_keys: redis_keys,
        }
    }

    /// Stops every process (all at once: each stops gracefully when its input closes), then
    /// drops the database.
    pub fn stop(mut self) {
        for child in &mut self.children {
            drop(child.stdin.take());
        }
        for child in &mut self.children {
            let _ = child.wait();
        }
        drop(self.database.take());
    }
}

/// A fresh database (cloned from the test template) and the server's variables for it: a
/// new Redis prefix, the test JWT secret, Redis unless `SIGHTLINE_BENCH_WITHOUT_REDIS` is
/// set, the rate limit lifted unless set, under `settings` and over the environment.
fn prepare(
    settings: &[(&'static str, String)],
) -> (TestDatabase, RedisKeys, Vec<(&'static str, String)>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let database = runtime.block_on(TestDatabase::create(&test_database_url()));
    drop(runtime);
    let redis_prefix = format!("slbench-{}", uuid::Uuid::new_v4().simple());

    // The server's own settings (SIGHTLINE_* variables) apply, so that tuning can be
    // measured, under the launch's; the database, Redis and address are the benchmark's.
    let mut variables = settings.to_vec();
    variables.push(("DATABASE_URL", database.url()));
    variables.push(("SIGHTLINE_REDIS_PREFIX", redis_prefix.clone()));
    variables.push(("SIGHTLINE_JWT_SECRET", support::TEST_JWT_SECRET.to_owned()));
    // SIGHTLINE_BENCH_WITHOUT_REDIS=1 measures the in-process hot store instead.
    if std::env::var("SIGHTLINE_BENCH_WITHOUT_REDIS").is_err() {
        variables.push(("REDIS_URL", test_redis_url()));
    }
    const LIMIT: &str = "SIGHTLINE_INGEST_RATE_LIMIT_PER_SECOND";
    if std::env::var(LIMIT).is_err() && !variables.iter().any(|(name, _)| *name == LIMIT) {
        // The benchmark measures throughput, not the limit.
        variables.push((LIMIT, "100000000".to_owned()));
    }
    (database, RedisKeys(redis_prefix), variables)
}

/// `VmRSS` of `/proc/<process>/status` in bytes; `process` is a pid or `self`.
pub fn resident_bytes(process: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{process}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// The settings `env` answers over the config file (as `Settings::load` finds it), on a
/// loopback port chosen by the system.
fn settings(env: impl Fn(&str) -> Option<String>) -> Settings {
    let file = match env(CONFIG_FILE_ENV) {
        Some(path) => Some(PathBuf::from(path)),
        None => Some(PathBuf::from("sightline.toml")).filter(|p| p.is_file()),
    };
    let mut settings =
        Settings::from_sources(file.as_deref(), env).unwrap_or_else(|err| panic!("{err}"));
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.data_dir = std::env::temp_dir().join("sightline-bench");
    settings
}

fn spawn_thread(
    settings: Settings,
) -> (
    std::net::SocketAddr,
    ServerHandle,
    std::thread::JoinHandle<()>,
) {
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
    (address, handle, thread)
}

/// Starts this binary as the server child, configured by `variables` over this process's
/// environment; returns its address once it listens. Its log goes to this process's
/// standard error.
fn spawn_child(variables: &[(&'static str, String)]) -> (std::net::SocketAddr, Child) {
    let exe = std::env::current_exe().expect("the bench binary's path");
    let mut child = Command::new(exe)
        .arg(CHILD_ARGUMENT)
        .envs(variables.iter().map(|(name, value)| (*name, value)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the server child");
    let stdout = child.stdout.take().expect("piped stdout");
    let (sender, receiver) = std::sync::mpsc::channel();
    // Keeps reading after the address, so that the child never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            match line.strip_prefix(LISTENING) {
                Some(address) => {
                    let _ = sender.send(address.parse().expect("the child's address"));
                }
                None => eprintln!("server: {line}"),
            }
        }
    });
    let address = receiver
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("the server child reports its address");
    (address, child)
}

/// The server child (`sightline-bench server-child`): serves until its standard input
/// closes, then stops gracefully.
pub fn child() -> ! {
    sightline::telemetry::init();
    let settings = settings(|name| std::env::var(name).ok());
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings)
            .await
            .expect("the server starts");
        println!("{LISTENING}{}", app.address());
        let handle = app.handle();
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            actix_web::rt::System::new().block_on(handle.stop(true));
        });
        app.run_until_stopped().await.unwrap();
    });
    std::process::exit(0)
}

/// Signs up a tenant called `organization`; returns its owner's JWT and a new API key.
async fn sign_up(base_url: &str, organization: &str) -> Tenant {
    let client = awc::Client::default();
    let mut signup = client
        .post(format!("{base_url}/v1/auth/signup"))
        .send_json(&json!({
            "organization": organization,
            "email": format!("{}@sightline.test", organization.to_lowercase()),
            "password": "bench password"
        }))
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
    Tenant {
        owner_token: token,
        api_key: key,
    }
}
