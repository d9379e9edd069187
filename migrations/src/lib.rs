//! Sightline's schema, as an ordered list of sea-orm migrations.
//!
//! Each migration is frozen once it has landed on `main`: a change to the schema is a new
//! migration, never an edit of an old one. Every migration applies on PostgreSQL (production,
//! the test suite) and SQLite (the embedded default) alike.

pub use sea_orm_migration::prelude::*;

mod m20261203_000001_accounts;
mod m20261203_000002_events;
mod m20261203_000003_goals;
mod m20261203_000004_attributions;
mod m20261203_000005_report_rollup;
mod m20261204_000006_retention_purges;
mod m20261204_000007_row_level_security;
mod m20261204_000008_cluster;

/// Runs Sightline's migrations in order.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261203_000001_accounts::Migration),
            Box::new(m20261203_000002_events::Migration),
            Box::new(m20261203_000003_goals::Migration),
            Box::new(m20261203_000004_attributions::Migration),
            Box::new(m20261203_000005_report_rollup::Migration),
            Box::new(m20261204_000006_retention_purges::Migration),
            Box::new(m20261204_000007_row_level_security::Migration),
            Box::new(m20261204_000008_cluster::Migration),
        ]
    }
}

/// The source of every migration, so that [`schema_fingerprint`] changes with any edit (a
/// migration is frozen once landed, but not while it is being written).
const SOURCES: &[&str] = &[
    include_str!("m20261203_000001_accounts.rs"),
    include_str!("m20261203_000002_events.rs"),
    include_str!("m20261203_000003_goals.rs"),
    include_str!("m20261203_000004_attributions.rs"),
    include_str!("m20261203_000005_report_rollup.rs"),
    include_str!("m20261204_000006_retention_purges.rs"),
    include_str!("m20261204_000007_row_level_security.rs"),
    include_str!("m20261204_000008_cluster.rs"),
];

/// A short fingerprint of the migrations, so that a cached, already-migrated database (the
/// test suite's template) is rebuilt whenever a migration is added or changed.
pub fn schema_fingerprint() -> String {
    let names: Vec<String> = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    // FNV-1a: stable across Rust versions, unlike `DefaultHasher`.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in names
        .join(",")
        .bytes()
        .chain(SOURCES.iter().flat_map(|s| s.bytes()))
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_has_its_source_in_the_fingerprint() {
        assert_eq!(Migrator::migrations().len(), SOURCES.len());
    }
}
