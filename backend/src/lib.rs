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
pub mod probe;
pub mod routes;
pub mod startup;
pub mod state;
pub mod storage;
pub mod telemetry;

/// jemalloc instead of glibc's malloc, for every binary built on this library (the server,
/// the test suite's server process, the benchmark). Under the session store's churn
/// (sessions made on HTTP worker threads, dropped on shard threads) glibc's per-thread arenas
/// kept growing; jemalloc keeps resident memory flat and the server faster (figures in
/// `tests/bench/RESULTS.md`, "Soak").
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
