//! End-to-end tests of the JSON API against the real server, PostgreSQL and Redis.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod accounts;
mod api_keys;
mod audit_log;
mod authentication;
mod consent;
mod differential;
mod embedded;
mod events;
mod goals;
mod health;
mod hostile_input;
mod identities;
mod infra_files;
mod log_hygiene;
mod matching;
mod members;
mod purge;
mod recovery;
mod reports;
mod retention;
mod row_level_security;
mod tenant_isolation;
mod upgrades;
