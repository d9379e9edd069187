//! What every request handler shares: the database, the hot store, token keys, settings.

use crate::auth::jwt::JwtKeys;
use crate::auth::login_throttle::LoginThrottle;
use crate::cache::HotStore;
use crate::cluster::Subscription;
use crate::config::Settings;
use crate::ingest::Ingestor;
use sea_orm::DatabaseConnection;

#[derive(Debug)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub hot: HotStore,
    pub jwt: JwtKeys,
    pub login_throttle: LoginThrottle,
    pub ingest: Ingestor,
    pub settings: Settings,
    /// Hearing of other processes' goal and policy changes (PostgreSQL only); stops with the
    /// server.
    pub changes: Option<Subscription>,
}
