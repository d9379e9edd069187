//! The server as a separate process (the `sightline-server` binary of this package, the same
//! command line as `sightline`), for tests that kill it with SIGKILL or stop it with SIGTERM
//! and start it again.

use sightline::config::Settings;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// A running server process; killed when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    /// `http://127.0.0.1:<port>`
    pub base_url: String,
    /// Everything the process wrote to its standard output (its log), line by line.
    output: Arc<Mutex<String>>,
}

impl ServerProcess {
    /// Starts `binary serve` configured like `settings` (through the environment, as an
    /// operator would) and waits until it prints its URL.
    pub fn start(binary: &str, settings: &Settings) -> Self {
        let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into());
        Self::start_logging(binary, settings, &filter)
    }

    /// [`ServerProcess::start`] with the log filter `filter` (`RUST_LOG`'s syntax).
    pub fn start_logging(binary: &str, settings: &Settings, filter: &str) -> Self {
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", filter)
            .env("SIGHTLINE_LISTEN", settings.listen.to_string())
            .env("SIGHTLINE_DATA_DIR", &settings.data_dir)
            .env("SIGHTLINE_REDIS_PREFIX", &settings.redis_prefix)
            .env("SIGHTLINE_WORKERS", settings.workers.to_string())
            .env(
                "SIGHTLINE_DATABASE_MAX_CONNECTIONS",
                settings.database_max_connections.to_string(),
            )
            .env(
                "SIGHTLINE_SHUTDOWN_TIMEOUT_SECONDS",
                settings.shutdown_timeout.as_secs().to_string(),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(url) = &settings.database_url {
            command.env("DATABASE_URL", url.expose());
        }
        if let Some(url) = &settings.redis_url {
            command.env("REDIS_URL", url.expose());
        }
        if let Some(secret) = &settings.jwt_secret {
            command.env("SIGHTLINE_JWT_SECRET", secret.expose());
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {binary}: {err}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (found, url) = mpsc::channel();
        let output = Arc::new(Mutex::new(String::new()));
        let kept = Arc::clone(&output);
        // Keeps reading after the URL, so that the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("Sightline is running: open ") {
                    let _ = found.send(rest.trim_end_matches('/').to_owned());
                }
                if let Ok(mut all) = kept.lock() {
                    all.push_str(&line);
                    all.push('\n');
                }
            }
        });
        let base_url = url
            .recv_timeout(Duration::from_secs(60))
            .expect("the server process should print its URL");
        Self {
            child,
            base_url,
            output,
        }
    }

    /// What the process has written to its standard output so far.
    pub fn output(&self) -> String {
        self.output
            .lock()
            .map(|all| all.clone())
            .unwrap_or_default()
    }

    /// SIGKILL: no shutdown code runs, whatever was in flight is cut off.
    pub fn kill(mut self) {
        self.kill_now();
    }

    /// SIGTERM: the server stops accepting connections and finishes what is in flight.
    /// Returns at once; see [`ServerProcess::exit_within`].
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill -TERM");
        assert!(status.success(), "kill -TERM {} failed", self.child.id());
    }

    /// Waits up to `bound` for the process to exit; `None` if it is still running. Polls
    /// without blocking the thread for long, so an async test can call it between awaits.
    pub async fn exit_within(&mut self, bound: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the server process") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn kill_now(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill_now();
    }
}

/// Runs `binary` (the `sightline` command line) once with `args` and only `env` besides
/// `PATH`, as an operator or a container health check would, and returns what it printed.
/// Runs off the caller's thread, which may also be running the in-process server the command
/// talks to.
pub async fn run_command(
    binary: &'static str,
    args: &[&str],
    env: Vec<(&'static str, String)>,
) -> std::process::Output {
    let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(binary)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env)
            .output()
            .unwrap_or_else(|err| panic!("cannot run {binary}: {err}"))
    })
    .await
    .expect("the command's thread")
}
