//! Per-test PostgreSQL databases, cloned from a template that is migrated once per schema
//! version, and cleanup of per-test Redis prefixes.

use migrations::{Migrator, MigratorTrait, schema_fingerprint};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use std::time::Duration;
use tokio::sync::OnceCell;

/// Serialises template creation across test processes (nextest runs many at once).
const TEMPLATE_LOCK_ID: i64 = 0x5147_4854_4c49_4e45; // "SIGHTLINE"-ish

static TEMPLATE: OnceCell<String> = OnceCell::const_new();

/// A database that exists for one test and is dropped with it.
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    name: String,
}

impl TestDatabase {
    pub async fn create(admin_url: &str) -> Self {
        let template = TEMPLATE
            .get_or_init(|| ensure_template(admin_url))
            .await
            .clone();
        let name = format!("sl_test_{}", uuid::Uuid::new_v4().simple());
        let admin = connect_single(admin_url).await;
        // Cloning fails while another session is connected to the template; that only
        // happens for a moment while another process finishes building it.
        let mut attempt = 0;
        loop {
            match admin
                .execute_unprepared(&format!(
                    "CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""
                ))
                .await
            {
                Ok(_) => break,
                Err(err)
                    if attempt < 50
                        && err.to_string().contains("being accessed by other users") =>
                {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(err) => panic!("cannot clone the template database: {err}"),
            }
        }
        admin.close().await.ok();
        Self {
            admin_url: admin_url.to_owned(),
            name,
        }
    }

    pub fn url(&self) -> String {
        replace_database(&self.admin_url, &self.name)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs outside any async context we could borrow; a short-lived runtime on its
        // own thread does the cleanup.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let admin = connect_single(&admin_url).await;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
                    .ok()?;
                admin.close().await.ok()
            })
        })
        .join();
    }
}

/// How many templates of other schemas survive the creation of a new one.
const OTHER_TEMPLATES_KEPT: usize = 2;

/// Makes sure the migrated template for the current schema exists; returns its name.
async fn ensure_template(admin_url: &str) -> String {
    let name = format!("sl_template_{}", schema_fingerprint());
    let admin = connect_single(admin_url).await;
    admin
        .execute_unprepared(&format!("SELECT pg_advisory_lock({TEMPLATE_LOCK_ID})"))
        .await
        .expect("take the template lock");
    let exists = admin
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"),
        ))
        .await
        .expect("look up the template")
        .is_some();
    if !exists {
        drop_stale_templates(&admin).await;
        // Build under another name and rename when complete, so that a half-built template
        // left by a killed run is never used.
        let building = format!("{name}_building");
        admin
            .execute_unprepared(&format!(
                "DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"
            ))
            .await
            .expect("drop a stale template");
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{building}\""))
            .await
            .expect("create the template");
        let template = connect_single(&replace_database(admin_url, &building)).await;
        Migrator::up(&template, None)
            .await
            .expect("migrate the template");
        template.close().await.expect("close the template");
        admin
            .execute_unprepared(&format!(
                "ALTER DATABASE \"{building}\" RENAME TO \"{name}\""
            ))
            .await
            .expect("publish the template");
    }
    admin
        .execute_unprepared(&format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK_ID})"))
        .await
        .expect("release the template lock");
    admin.close().await.ok();
    name
}

/// Drops the templates of older schemas but the newest few (by creation order), so that two
/// checkouts of different schemas on one machine (a branch and `main`) can run their tests at
/// the same time without dropping each other's template. Half-built ones are always dropped:
/// the lock is held, so nobody is building.
async fn drop_stale_templates(admin: &DatabaseConnection) {
    let Ok(rows) = admin
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!(
                "SELECT datname FROM pg_database WHERE datname LIKE 'sl\\_template\\_%' \
                 ORDER BY datname LIKE '%\\_building', oid DESC OFFSET {OTHER_TEMPLATES_KEPT}"
            ),
        ))
        .await
    else {
        return;
    };
    for row in rows {
        let Ok(stale) = row.try_get::<String>("", "datname") else {
            continue;
        };
        let _ = admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{stale}\" WITH (FORCE)"))
            .await;
    }
}

async fn connect_single(url: &str) -> DatabaseConnection {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(1)
        .min_connections(1)
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10));
    Database::connect(options)
        .await
        .unwrap_or_else(|err| panic!("cannot reach the test PostgreSQL ({err}); is it running?"))
}

/// `postgres://host/db?x` with the database name replaced.
fn replace_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let base = match base.rfind('/') {
        Some(slash) if slash > "postgres://".len() => &base[..slash],
        _ => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

/// The `host:port` of a `postgres://user@host:port/db` URL, resolved.
pub fn host_and_port(url: &str) -> std::net::SocketAddr {
    use std::net::ToSocketAddrs;
    let authority = authority(url);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let host_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    };
    host_port
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .unwrap_or_else(|| panic!("cannot resolve the database host {host_port}"))
}

/// The URL with its `host:port` replaced (user and database kept).
pub fn replace_host_and_port(url: &str, host_port: &str) -> String {
    let authority = authority(url);
    let replaced = match authority.rsplit_once('@') {
        Some((user, _)) => format!("{user}@{host_port}"),
        None => host_port.to_owned(),
    };
    url.replacen(authority, &replaced, 1)
}

/// `user@host:port` of a URL.
fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', '?']).next().unwrap_or(rest)
}

/// Deletes every Redis key under `prefix:`.
pub fn delete_redis_prefix(redis_url: &str, prefix: &str) {
    let redis_url = redis_url.to_owned();
    let pattern = format!("{prefix}:*");
    let _ = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        runtime.block_on(async {
            let client = redis::Client::open(redis_url).ok()?;
            let mut conn = client.get_multiplexed_async_connection().await.ok()?;
            let mut cursor: u64 = 0;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    // Few round trips even when other runs left many keys behind.
                    .arg("COUNT")
                    .arg(10_000)
                    .query_async(&mut conn)
                    .await
                    .ok()?;
                if !keys.is_empty() {
                    let _: () = redis::cmd("DEL")
                        .arg(&keys)
                        .query_async(&mut conn)
                        .await
                        .ok()?;
                }
                if next == 0 {
                    return Some(());
                }
                cursor = next;
            }
        })
    })
    .join();
}

#[cfg(test)]
mod tests {
    use super::{replace_database, replace_host_and_port};

    #[test]
    fn the_database_name_is_replaced() {
        assert_eq!(
            replace_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            replace_database("postgres://u@h/test?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
    }

    #[test]
    fn the_host_and_port_are_replaced() {
        assert_eq!(
            replace_host_and_port("postgres://postgres@127.0.0.1:5432/t", "127.0.0.1:9"),
            "postgres://postgres@127.0.0.1:9/t"
        );
    }
}
