//! Building and running the application: connect, migrate, bind, serve.
//!
//! Tests build an [`Application`] on port 0 and drive it over HTTP, exactly as production does.

use crate::actors::matcher::{Matcher, MatcherConfig};
use crate::actors::purge::{self, PurgeConfig};
use crate::auth::jwt::{self, JwtKeys};
use crate::auth::login_throttle::LoginThrottle;
use crate::cache::{CacheError, HotStore};
use crate::cluster::{self, Change, Heard};
use crate::config::Settings;
use crate::ingest::Ingestor;
use crate::ingest::policy_cache::PolicyCache;
use crate::ingest::rate_limit::RateLimiter;
use crate::ingest::writer::{Writer, WriterConfig};
use crate::state::AppState;
use crate::{routes, storage, telemetry};
use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::DefaultHeaders;
use actix_web::{App, HttpServer, web};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use tracing_actix_web::TracingLogger;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot open the database: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("invalid Redis URL: {0}")]
    Redis(#[from] CacheError),
    #[error("cannot bind {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot prepare the JWT secret in the data directory: {0}")]
    Secret(std::io::Error),
}

/// This process's name among those sharing the database: the configured one, else
/// `<hostname>:<port>` (unique among live processes, and kept by a restart on the same host).
fn node_id(settings: &Settings, address: SocketAddr) -> String {
    settings.node_id.clone().unwrap_or_else(|| {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            // The checkpoint's id column holds 64 characters, the port up to 6 of them.
            .map(|name| name.trim().chars().take(58).collect::<String>())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "localhost".to_owned());
        format!("{hostname}:{}", address.port())
    })
}

/// Drops this process's cached goals and policies when another process changes them.
fn hear_changes(database_url: String, ingest: &Ingestor) -> cluster::Subscription {
    let (policies, matcher) = (Arc::clone(&ingest.policies), ingest.matcher.clone());
    cluster::listen(database_url, move |heard| match heard {
        Heard::Change(Change::Goals(tenant)) => matcher.goals_changed_elsewhere(tenant),
        Heard::Change(Change::Policy(tenant)) => {
            policies.invalidate(tenant);
            matcher.goals_changed_elsewhere(tenant);
        }
        Heard::MissedSome => {
            policies.invalidate_all();
            matcher.all_goals_outdated();
        }
    })
}

/// A bound, ready-to-run server.
pub struct Application {
    address: SocketAddr,
    server: Server,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Connects to the database and the hot store, applies migrations and binds the listener.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let db = storage::connect(&settings).await?;
        if let storage::Schema::Newer(later) = storage::migrate(&db).await? {
            tracing::warn!(
                migrations = %later.join(", "),
                "the database has migrations of a later release: starting without migrating"
            );
        }
        let hot = HotStore::connect(&settings).await?;
        let secret = jwt::load_or_create_secret(&settings).map_err(StartupError::Secret)?;
        let jwt = JwtKeys::new(&secret, settings.jwt_ttl);

        let requested = settings.listen;
        let bind_error = |source| StartupError::Bind {
            address: requested,
            source,
        };
        let listener = TcpListener::bind(settings.listen).map_err(bind_error)?;
        let address = listener.local_addr().map_err(bind_error)?;
        let workers = settings.workers;
        let shutdown_timeout = settings.shutdown_timeout.as_secs();
        let policies = Arc::new(PolicyCache::default());
        let matcher = Matcher::start(
            db.clone(),
            &hot,
            Arc::clone(&policies),
            MatcherConfig {
                shards: match settings.matching_shards {
                    0 => std::thread::available_parallelism().map_or(2, usize::from),
                    n => n,
                },
                memory_bytes: settings.matching_memory_bytes,
                idle: settings.matching_idle,
            },
            &node_id(&settings, address),
        )
        .await?;
        let ingest = Ingestor {
            writer: Writer::start(
                db.clone(),
                matcher.clone(),
                WriterConfig {
                    writers: settings.ingest_writers,
                    queue_capacity: settings.ingest_queue_capacity,
                    max_batch_events: settings.ingest_max_batch_events,
                    reply_timeout: settings.ingest_reply_timeout,
                },
            ),
            policies,
            matcher,
            rate_limiter: RateLimiter::new(hot.clone(), settings.ingest_rate_limit_per_second),
        };
        let purge_config = PurgeConfig {
            interval: settings.retention_purge_interval,
            batch_rows: settings.retention_purge_batch_rows,
        };
        let changes = settings
            .database_url
            .as_ref()
            .map(|url| hear_changes(url.expose().to_owned(), &ingest));
        let state = web::Data::new(AppState {
            db,
            login_throttle: LoginThrottle::new(hot.clone(), &settings),
            hot,
            jwt,
            ingest,
            settings,
            changes,
        });
        // The purge lives as long as the server's state: it stops once the server has.
        let shared = state.clone().into_inner();
        purge::start(state.db.clone(), purge_config, Arc::downgrade(&shared));
        drop(shared);

        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(security_headers())
                .wrap(TracingLogger::<telemetry::RequestSpan>::new())
                .app_data(state.clone())
                .configure(routes::configure)
        })
        .shutdown_timeout(shutdown_timeout);
        if workers > 0 {
            server = server.workers(workers);
        }
        let server = server.listen(listener).map_err(bind_error)?.run();
        Ok(Self { address, server })
    }

    /// The address actually bound (the real port when the settings asked for port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// A handle to stop the server (gracefully or not) from elsewhere.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped. SIGTERM and SIGINT stop accepting connections and let the
    /// requests in flight finish (up to the shutdown timeout) before returning.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// Headers every response carries. The dashboard uses no inline script, so the CSP can
/// forbid it outright.
fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "same-origin"))
        .add((
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ))
}
