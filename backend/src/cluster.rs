//! How server processes sharing one PostgreSQL tell each other that a tenant's goals or
//! policies changed, so that every process drops its cached copy at once rather than when
//! the copy expires: PostgreSQL's `LISTEN`/`NOTIFY` on one channel.
//!
//! The caches stay correct without it (entries expire after a few seconds, and a matching
//! round checks the goal revisions it used before it commits), so a lost notification costs
//! freshness, never a wrong attribution. A listener that loses its connection may have missed
//! some, so it then drops every cached entry. API keys need nothing here: their cache lives
//! in Redis, shared by all processes, and a revocation overwrites it before it commits.
//! On SQLite there is one process and nothing to tell.

use crate::domain::TenantId;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use sqlx::postgres::PgListener;
use std::time::Duration;
use uuid::Uuid;

/// The notification channel.
const CHANNEL: &str = "sightline_changes";

/// A change every process must hear of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A goal of the tenant was created, changed or deleted.
    Goals(TenantId),
    /// The tenant's consent or retention policy changed.
    Policy(TenantId),
}

impl Change {
    fn payload(self) -> String {
        match self {
            Change::Goals(tenant) => format!("goals:{}", tenant.as_uuid()),
            Change::Policy(tenant) => format!("policy:{}", tenant.as_uuid()),
        }
    }

    fn parse(payload: &str) -> Option<Self> {
        let (kind, tenant) = payload.split_once(':')?;
        let tenant = TenantId::from_uuid(Uuid::parse_str(tenant).ok()?);
        match kind {
            "goals" => Some(Change::Goals(tenant)),
            "policy" => Some(Change::Policy(tenant)),
            _ => None,
        }
    }
}

/// Tells every process (this one too) of `change`, in the background; the change itself is
/// committed already. A failure is logged: the others then see it when their copies expire.
pub fn announce(db: &DatabaseConnection, change: Change) {
    if db.get_database_backend() != DbBackend::Postgres {
        return;
    }
    let db = db.clone();
    tokio::spawn(async move {
        let notify = Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [CHANNEL.into(), change.payload().into()],
        );
        if let Err(err) = db.execute_raw(notify).await {
            tracing::warn!(error = %err, "cannot tell the other processes of a change; they see it within seconds");
        }
    });
}

/// What a listening process hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    Change(Change),
    /// Notifications may have been missed (at the start, or after the connection was lost):
    /// every cached entry must go.
    MissedSome,
}

/// Listening for changes, on a connection of its own; stops when dropped.
#[derive(Debug)]
pub struct Subscription(tokio::task::JoinHandle<()>);

impl Drop for Subscription {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Listens for changes on a connection of its own to `database_url`, reconnecting after a
/// failure, and tells `react` of each, until the returned subscription is dropped.
pub fn listen(database_url: String, react: impl Fn(Heard) + Send + 'static) -> Subscription {
    Subscription(tokio::spawn(async move {
        let mut delay = Duration::from_millis(100);
        loop {
            match subscribe(&database_url).await {
                Ok(mut subscription) => {
                    delay = Duration::from_millis(100);
                    // Whatever happened before this subscription was not heard.
                    react(Heard::MissedSome);
                    loop {
                        match subscription.try_recv().await {
                            Ok(Some(notification)) => match Change::parse(notification.payload()) {
                                Some(change) => react(Heard::Change(change)),
                                None => tracing::warn!(
                                    payload = notification.payload(),
                                    "unknown change notification"
                                ),
                            },
                            // Reconnected: what was sent meanwhile is lost.
                            Ok(None) => react(Heard::MissedSome),
                            Err(err) => {
                                tracing::warn!(error = %err, "lost the change notifications; reconnecting");
                                break;
                            }
                        }
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "cannot listen for change notifications yet; retrying");
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(10));
        }
    }))
}

async fn subscribe(database_url: &str) -> Result<PgListener, sqlx::Error> {
    let mut subscription = PgListener::connect(database_url).await?;
    subscription.listen(CHANNEL).await?;
    Ok(subscription)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_reads_back_from_its_payload() {
        let tenant = TenantId::from_uuid(Uuid::new_v4());
        for change in [Change::Goals(tenant), Change::Policy(tenant)] {
            assert_eq!(Change::parse(&change.payload()), Some(change));
        }
        assert_eq!(Change::parse("goals:not-a-uuid"), None);
        assert_eq!(Change::parse(&format!("keys:{}", Uuid::nil())), None);
        assert_eq!(Change::parse("no separator"), None);
    }
}
