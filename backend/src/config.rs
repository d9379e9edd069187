//! Typed, layered configuration: built-in defaults < optional TOML file < environment.
//!
//! Every value is validated at start; each bad value gets its own message naming where it came
//! from, and all of them are reported together so an operator fixes them in one pass.
//! Secrets (database and Redis URLs, the JWT secret) are wrapped in [`Secret`], whose `Debug`
//! never shows them.

use ipnet::IpNet;
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A value that must never reach a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call it only where the value is used, never to print it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(\"[redacted]\")")
    }
}

/// The server's settings, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address the HTTP server binds (`SIGHTLINE_LISTEN`); port 0 picks a free port.
    pub listen: SocketAddr,
    /// Where the embedded SQLite database and the generated JWT secret live.
    pub data_dir: PathBuf,
    /// `postgres://...` selects PostgreSQL; `None` selects SQLite in `data_dir`.
    pub database_url: Option<Secret>,
    /// Largest number of pooled database connections.
    pub database_max_connections: u32,
    /// `redis://...`; `None` keeps rate limits and caches in process.
    pub redis_url: Option<Secret>,
    /// Prefix of every Redis key this server writes, so that several deployments (or test
    /// runs) can share one Redis.
    pub redis_prefix: String,
    /// HMAC secret for session tokens; `None` means generated once and kept in `data_dir`.
    pub jwt_secret: Option<Secret>,
    /// How long a login token stays valid.
    pub jwt_ttl: Duration,
    /// Failed logins for one account, within `login_lockout`, before it answers 429.
    pub login_max_failures_per_account: u64,
    /// Failed logins from one client address, within `login_lockout`, before it answers 429.
    pub login_max_failures_per_address: u64,
    /// The window over which failed logins are counted, and how long a lock-out lasts.
    pub login_lockout: Duration,
    /// Proxies (addresses and networks) whose `X-Forwarded-For` is believed when they are the
    /// TCP peer; empty trusts nobody, and the peer is the client (see
    /// `routes/client_address.rs`).
    pub trusted_proxies: Vec<IpNet>,
    /// How long a request waits for a pooled database connection before giving up (503).
    pub database_acquire_timeout: Duration,
    /// Events per second one tenant may send (fixed one-second windows).
    pub ingest_rate_limit_per_second: u64,
    /// Concurrent group-commit writer tasks.
    pub ingest_writers: usize,
    /// Ingest requests that may wait for a writer before new ones are answered 503.
    pub ingest_queue_capacity: usize,
    /// Most events written in one group commit.
    pub ingest_max_batch_events: usize,
    /// How long an ingest request waits for its commit before it is answered 503.
    pub ingest_reply_timeout: Duration,
    /// Session actors (each on its own thread); 0 means one per core.
    pub matching_shards: usize,
    /// Memory the in-memory sessions may take, all shards together; least recently used
    /// sessions leave first beyond it.
    pub matching_memory_bytes: usize,
    /// How long a session stays in memory without events.
    pub matching_idle: Duration,
    /// Time between two runs of the retention purge. Data is deleted at most this long
    /// (plus the run's own duration) after it expires; API.md promises within an hour.
    pub retention_purge_interval: Duration,
    /// Most rows one purge statement deletes (each batch is its own short transaction).
    pub retention_purge_batch_rows: u64,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// How long a graceful shutdown waits for requests in flight.
    pub shutdown_timeout: Duration,
    /// This process's name among the processes sharing the database (its matching
    /// checkpoint); `None` means `<hostname>:<port>`. Two live processes must never share
    /// one: a restarted process that keeps its name takes its own checkpoint over at once,
    /// any other is taken over by a live process once its heartbeat stops.
    pub node_id: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            database_max_connections: 20,
            redis_url: None,
            redis_prefix: "sightline".to_owned(),
            jwt_secret: None,
            jwt_ttl: Duration::from_secs(12 * 3600),
            login_max_failures_per_account: 5,
            login_max_failures_per_address: 50,
            login_lockout: Duration::from_secs(15 * 60),
            trusted_proxies: Vec::new(),
            database_acquire_timeout: Duration::from_secs(5),
            ingest_rate_limit_per_second: 50_000,
            ingest_writers: 3,
            ingest_queue_capacity: 1024,
            ingest_max_batch_events: 10_000,
            ingest_reply_timeout: Duration::from_secs(10),
            matching_shards: 0,
            matching_memory_bytes: 512 * 1024 * 1024,
            matching_idle: Duration::from_secs(600),
            retention_purge_interval: Duration::from_secs(300),
            retention_purge_batch_rows: 5000,
            workers: 0,
            shutdown_timeout: Duration::from_secs(30),
            node_id: None,
        }
    }
}

/// Every problem found in the configuration, one line each.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  {}", .problems.join("\n  "))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

/// Where a raw value came from, for error messages.
#[derive(Debug, Clone)]
enum Origin {
    File(PathBuf),
    Env(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => write!(f, "in {}", path.display()),
            Origin::Env(name) => write!(f, "from environment variable {name}"),
        }
    }
}

/// One setting: its name in the config file and the environment variable that overrides it.
struct Key {
    file_name: &'static str,
    env_name: &'static str,
}

const KEYS: &[Key] = &[
    key("listen", "SIGHTLINE_LISTEN"),
    key("data_dir", "SIGHTLINE_DATA_DIR"),
    key("database_url", "DATABASE_URL"),
    key(
        "database_max_connections",
        "SIGHTLINE_DATABASE_MAX_CONNECTIONS",
    ),
    key("redis_url", "REDIS_URL"),
    key("redis_prefix", "SIGHTLINE_REDIS_PREFIX"),
    key("jwt_secret", "SIGHTLINE_JWT_SECRET"),
    key("jwt_ttl_seconds", "SIGHTLINE_JWT_TTL_SECONDS"),
    key(
        "login_max_failures_per_account",
        "SIGHTLINE_LOGIN_MAX_FAILURES_PER_ACCOUNT",
    ),
    key(
        "login_max_failures_per_address",
        "SIGHTLINE_LOGIN_MAX_FAILURES_PER_ADDRESS",
    ),
    key("login_lockout_seconds", "SIGHTLINE_LOGIN_LOCKOUT_SECONDS"),
    key("trusted_proxies", "SIGHTLINE_TRUSTED_PROXIES"),
    key(
        "database_acquire_timeout_seconds",
        "SIGHTLINE_DATABASE_ACQUIRE_TIMEOUT_SECONDS",
    ),
    key(
        "ingest_rate_limit_per_second",
        "SIGHTLINE_INGEST_RATE_LIMIT_PER_SECOND",
    ),
    key("ingest_writers", "SIGHTLINE_INGEST_WRITERS"),
    key("ingest_queue_capacity", "SIGHTLINE_INGEST_QUEUE_CAPACITY"),
    key(
        "ingest_max_batch_events",
        "SIGHTLINE_INGEST_MAX_BATCH_EVENTS",
    ),
    key(
        "ingest_reply_timeout_seconds",
        "SIGHTLINE_INGEST_REPLY_TIMEOUT_SECONDS",
    ),
    key("matching_shards", "SIGHTLINE_MATCHING_SHARDS"),
    key("matching_memory_mb", "SIGHTLINE_MATCHING_MEMORY_MB"),
    key("matching_idle_seconds", "SIGHTLINE_MATCHING_IDLE_SECONDS"),
    key(
        "retention_purge_interval_seconds",
        "SIGHTLINE_RETENTION_PURGE_INTERVAL_SECONDS",
    ),
    key(
        "retention_purge_batch_rows",
        "SIGHTLINE_RETENTION_PURGE_BATCH_ROWS",
    ),
    key("workers", "SIGHTLINE_WORKERS"),
    key(
        "shutdown_timeout_seconds",
        "SIGHTLINE_SHUTDOWN_TIMEOUT_SECONDS",
    ),
    key("node_id", "SIGHTLINE_NODE_ID"),
];

const fn key(file_name: &'static str, env_name: &'static str) -> Key {
    Key {
        file_name,
        env_name,
    }
}

/// The environment variable naming the optional config file.
pub const CONFIG_FILE_ENV: &str = "SIGHTLINE_CONFIG";

/// Every environment variable the configuration reads: one per setting, and the one naming
/// the config file. Deployment files are checked against it, so that a misspelt variable,
/// which the server would silently ignore, fails a test instead.
pub fn environment_variables() -> impl Iterator<Item = &'static str> {
    KEYS.iter()
        .map(|k| k.env_name)
        .chain(std::iter::once(CONFIG_FILE_ENV))
}

impl Settings {
    /// Loads the settings from the process environment and the config file it names
    /// (`SIGHTLINE_CONFIG`, else `./sightline.toml` when that file exists).
    pub fn load() -> Result<Self, ConfigError> {
        let env = |name: &str| std::env::var(name).ok();
        let file = match env(CONFIG_FILE_ENV) {
            Some(path) => Some(PathBuf::from(path)),
            None => Some(PathBuf::from("sightline.toml")).filter(|p| p.is_file()),
        };
        Self::from_sources(file.as_deref(), env)
    }

    /// Layers `file` (if any) and the variables `env` answers over the defaults.
    pub fn from_sources(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let mut raw: BTreeMap<&'static str, (String, Origin)> = BTreeMap::new();

        if let Some(path) = file {
            match read_file(path) {
                Ok(values) => {
                    for (name, value) in values {
                        match KEYS.iter().find(|k| k.file_name == name) {
                            Some(k) => {
                                raw.insert(k.file_name, (value, Origin::File(path.to_owned())));
                            }
                            None => problems.push(format!(
                                "{}: unknown setting `{name}` (known: {})",
                                path.display(),
                                KEYS.iter()
                                    .map(|k| k.file_name)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )),
                        }
                    }
                }
                Err(problem) => problems.push(problem),
            }
        }
        for k in KEYS {
            if let Some(value) = env(k.env_name) {
                raw.insert(k.file_name, (value, Origin::Env(k.env_name)));
            }
        }

        let mut settings = Settings::default();
        let mut parser = Parser {
            raw: &raw,
            problems: &mut problems,
        };
        parser.parse("listen", &mut settings.listen, |v| {
            v.parse::<SocketAddr>()
                .map_err(|_| "must be an address and port such as 127.0.0.1:8080".to_owned())
        });
        parser.parse("data_dir", &mut settings.data_dir, |v| {
            non_empty(v).map(PathBuf::from)
        });
        parser.parse_optional("database_url", &mut settings.database_url, |v| {
            if v.starts_with("postgres://") || v.starts_with("postgresql://") {
                Ok(Secret::new(v))
            } else {
                Err(
                    "must start with postgres:// (leave it unset for the embedded SQLite database)"
                        .to_owned(),
                )
            }
        });
        parser.parse(
            "database_max_connections",
            &mut settings.database_max_connections,
            |v| number_in(v, 1, 1000),
        );
        parser.parse_optional("redis_url", &mut settings.redis_url, |v| {
            if v.starts_with("redis://") || v.starts_with("rediss://") {
                Ok(Secret::new(v))
            } else {
                Err("must start with redis:// or rediss://".to_owned())
            }
        });
        parser.parse("redis_prefix", &mut settings.redis_prefix, |v| {
            if !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
            {
                Ok(v.to_owned())
            } else {
                Err("must be 1 to 64 letters, digits, `_`, `-` or `.`".to_owned())
            }
        });
        parser.parse_optional("jwt_secret", &mut settings.jwt_secret, |v| {
            if v.len() >= 32 {
                Ok(Secret::new(v))
            } else {
                Err("must be at least 32 characters (leave it unset to generate one)".to_owned())
            }
        });
        parser.parse("jwt_ttl_seconds", &mut settings.jwt_ttl, |v| {
            number_in(v, 60, 30 * 86400).map(Duration::from_secs)
        });
        parser.parse(
            "login_max_failures_per_account",
            &mut settings.login_max_failures_per_account,
            |v| number_in(v, 1, 1000),
        );
        parser.parse(
            "login_max_failures_per_address",
            &mut settings.login_max_failures_per_address,
            |v| number_in(v, 1, 100_000),
        );
        parser.parse("login_lockout_seconds", &mut settings.login_lockout, |v| {
            number_in(v, 1, 86400).map(Duration::from_secs)
        });
        parser.parse(
            "trusted_proxies",
            &mut settings.trusted_proxies,
            trusted_proxies,
        );
        parser.parse(
            "database_acquire_timeout_seconds",
            &mut settings.database_acquire_timeout,
            |v| number_in(v, 1, 300).map(Duration::from_secs),
        );
        parser.parse(
            "ingest_rate_limit_per_second",
            &mut settings.ingest_rate_limit_per_second,
            |v| number_in(v, 1, 100_000_000),
        );
        parser.parse("ingest_writers", &mut settings.ingest_writers, |v| {
            number_in(v, 1, 64)
        });
        parser.parse(
            "ingest_queue_capacity",
            &mut settings.ingest_queue_capacity,
            |v| number_in(v, 1, 1_000_000),
        );
        parser.parse(
            "ingest_max_batch_events",
            &mut settings.ingest_max_batch_events,
            |v| number_in(v, 1, 1_000_000),
        );
        parser.parse(
            "ingest_reply_timeout_seconds",
            &mut settings.ingest_reply_timeout,
            |v| number_in(v, 1, 600).map(Duration::from_secs),
        );
        parser.parse("matching_shards", &mut settings.matching_shards, |v| {
            number_in(v, 0, 256)
        });
        parser.parse(
            "matching_memory_mb",
            &mut settings.matching_memory_bytes,
            |v| number_in(v, 1, 1_048_576).map(|mb: usize| mb * 1024 * 1024),
        );
        parser.parse("matching_idle_seconds", &mut settings.matching_idle, |v| {
            number_in(v, 1, 86_400).map(Duration::from_secs)
        });
        // At most 30 minutes between runs, so that a run that itself takes a while still
        // deletes within the hour API.md promises.
        parser.parse(
            "retention_purge_interval_seconds",
            &mut settings.retention_purge_interval,
            |v| number_in(v, 1, 1800).map(Duration::from_secs),
        );
        parser.parse(
            "retention_purge_batch_rows",
            &mut settings.retention_purge_batch_rows,
            |v| number_in(v, 1, 1_000_000),
        );
        parser.parse("workers", &mut settings.workers, |v| number_in(v, 0, 256));
        parser.parse(
            "shutdown_timeout_seconds",
            &mut settings.shutdown_timeout,
            |v| number_in(v, 0, 3600).map(Duration::from_secs),
        );

        parser.parse_optional("node_id", &mut settings.node_id, |v| {
            if !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()) {
                Ok(v.to_owned())
            } else {
                Err("must be 1 to 64 visible ASCII characters".to_owned())
            }
        });

        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(ConfigError { problems })
        }
    }

    /// Whether the server runs on the embedded SQLite database.
    pub fn is_embedded_database(&self) -> bool {
        self.database_url.is_none()
    }
}

/// Applies one raw value, if present, recording a problem when it does not parse.
struct Parser<'a> {
    raw: &'a BTreeMap<&'static str, (String, Origin)>,
    problems: &'a mut Vec<String>,
}

impl Parser<'_> {
    fn parse<T>(
        &mut self,
        name: &'static str,
        target: &mut T,
        parse: impl Fn(&str) -> Result<T, String>,
    ) {
        if let Some((value, origin)) = self.raw.get(name) {
            match parse(value.trim()) {
                Ok(parsed) => *target = parsed,
                Err(why) => self.problems.push(format!("{name} ({origin}): {why}")),
            }
        }
    }

    /// Like `parse`, but an empty value means "unset".
    fn parse_optional<T>(
        &mut self,
        name: &'static str,
        target: &mut Option<T>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) {
        if let Some((value, origin)) = self.raw.get(name) {
            if value.trim().is_empty() {
                *target = None;
                return;
            }
            match parse(value.trim()) {
                Ok(parsed) => *target = Some(parsed),
                Err(why) => self.problems.push(format!("{name} ({origin}): {why}")),
            }
        }
    }
}

fn non_empty(value: &str) -> Result<&str, String> {
    if value.is_empty() {
        Err("must not be empty".to_owned())
    } else {
        Ok(value)
    }
}

fn number_in<T>(value: &str, min: u64, max: u64) -> Result<T, String>
where
    T: TryFrom<u64>,
{
    value
        .parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| format!("must be a whole number from {min} to {max}"))
}

/// A comma-separated list of IP addresses and CIDR networks, IPv4 or IPv6; empty entries are
/// ignored. Every entry that is not one is named, and so is a network that would trust every
/// address (`/0`): then any client could choose the address it is throttled under.
fn trusted_proxies(value: &str) -> Result<Vec<IpNet>, String> {
    let mut networks = Vec::new();
    let mut invalid = Vec::new();
    let mut everything = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let parsed = entry
            .parse::<IpNet>()
            .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from));
        match parsed {
            Ok(network) if network.prefix_len() == 0 => everything.push(format!("`{entry}`")),
            // Host bits after the prefix (`10.0.0.1/8`) mean nothing; the network is kept.
            Ok(network) => networks.push(network.trunc()),
            Err(_) => invalid.push(format!("`{entry}`")),
        }
    }
    let mut why = Vec::new();
    if !invalid.is_empty() {
        why.push(format!(
            "{} {} not an IP address or network (such as 10.0.0.5, 10.0.0.0/8 or fd00::/8)",
            invalid.join(", "),
            if invalid.len() == 1 { "is" } else { "are" }
        ));
    }
    if !everything.is_empty() {
        why.push(format!(
            "{} would trust every address, letting any client choose its own; name the load \
             balancers' addresses or networks",
            everything.join(", ")
        ));
    }
    if why.is_empty() {
        Ok(networks)
    } else {
        Err(why.join("; "))
    }
}

/// Reads a TOML file of flat `name = value` settings as strings.
fn read_file(path: &Path) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read config file: {e}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| format!("{}: not valid TOML: {e}", path.display()))?;
    let mut values = Vec::new();
    for (name, value) in table {
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                return Err(format!(
                    "{}: `{name}` must be a string or a number, not {}",
                    path.display(),
                    other.type_str()
                ));
            }
        };
        values.push((name, text));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let settings = Settings::from_sources(None, env_of(&[])).unwrap();
        assert_eq!(settings.listen.to_string(), "127.0.0.1:8080");
        assert!(settings.is_embedded_database());
        assert!(settings.redis_url.is_none());
    }

    #[test]
    fn environment_overrides_file_which_overrides_defaults() {
        let dir = std::env::temp_dir().join(format!("sightline-cfg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("sightline.toml");
        std::fs::write(&file, "listen = \"0.0.0.0:9000\"\nworkers = 3\n").unwrap();
        let settings =
            Settings::from_sources(Some(&file), env_of(&[("SIGHTLINE_WORKERS", "5")])).unwrap();
        assert_eq!(settings.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(settings.workers, 5);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn every_bad_value_is_reported_with_its_origin() {
        let err = Settings::from_sources(
            None,
            env_of(&[
                ("SIGHTLINE_LISTEN", "nowhere"),
                ("DATABASE_URL", "mysql://x"),
                ("SIGHTLINE_JWT_SECRET", "short"),
            ]),
        )
        .unwrap_err();
        assert_eq!(err.problems.len(), 3, "{err}");
        assert!(err.problems[0].contains("SIGHTLINE_LISTEN"));
        assert!(err.problems[1].contains("DATABASE_URL"));
        assert!(err.problems[2].contains("SIGHTLINE_JWT_SECRET"));
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let settings = Settings::from_sources(
            None,
            env_of(&[
                ("DATABASE_URL", "postgres://user:hunter2-password@db/x"),
                (
                    "SIGHTLINE_JWT_SECRET",
                    "a-very-long-secret-value-of-forty-chars!",
                ),
            ]),
        )
        .unwrap();
        let printed = format!("{settings:?}");
        assert!(!printed.contains("hunter2"));
        assert!(!printed.contains("a-very-long-secret"));
        assert!(printed.contains("[redacted]"));
    }

    #[test]
    fn trusted_proxies_take_addresses_and_networks_of_both_families() {
        let settings = Settings::from_sources(
            None,
            env_of(&[(
                "SIGHTLINE_TRUSTED_PROXIES",
                " 127.0.0.1, 10.0.0.0/8,fd00::/8 , ::1,192.168.1.7/16,",
            )]),
        )
        .unwrap();
        let shown: Vec<String> = settings
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            shown,
            [
                "127.0.0.1/32",
                "10.0.0.0/8",
                "fd00::/8",
                "::1/128",
                "192.168.0.0/16"
            ]
        );
        let nobody = Settings::from_sources(None, env_of(&[("SIGHTLINE_TRUSTED_PROXIES", "")]));
        assert!(nobody.unwrap().trusted_proxies.is_empty());
        assert!(Settings::default().trusted_proxies.is_empty());
    }

    #[test]
    fn every_bad_trusted_proxy_is_named() {
        let err = Settings::from_sources(
            None,
            env_of(&[
                (
                    "SIGHTLINE_TRUSTED_PROXIES",
                    "10.0.0.0/8, 10.0.0.0/33, nginx, 1.2.3.4:80, ::/0",
                ),
                ("SIGHTLINE_LISTEN", "nowhere"),
            ]),
        )
        .unwrap_err();
        assert_eq!(err.problems.len(), 2, "{err}");
        let problem = &err.problems[1];
        assert!(problem.contains("SIGHTLINE_TRUSTED_PROXIES"), "{problem}");
        for named in ["`10.0.0.0/33`", "`nginx`", "`1.2.3.4:80`", "`::/0`"] {
            assert!(problem.contains(named), "{problem} does not name {named}");
        }
        assert!(!problem.contains("`10.0.0.0/8`"), "{problem}");
    }

    #[test]
    fn unknown_file_settings_are_rejected() {
        let dir = std::env::temp_dir().join(format!("sightline-cfg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("sightline.toml");
        std::fs::write(&file, "lisen = \"0.0.0.0:9000\"\n").unwrap();
        let err = Settings::from_sources(Some(&file), env_of(&[])).unwrap_err();
        assert!(err.problems[0].contains("unknown setting `lisen`"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
