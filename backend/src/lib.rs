//! Sightline: machine-vision conversion tracking. The server as a library, so that the
//! binary and the test suite build the very same [`startup::Application`].

pub mod actors;
pub mod auth;
pub mod cache;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod domain;
pub mod error;
pub mod ingest;
pub mod matching;
pub mod metrics;
pub mod routes;
pub mod startup;
pub mod state;
pub mod storage;
pub mod telemetry;
