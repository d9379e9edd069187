//! Fault tests: the server under sustained ingestion while a process it depends on (or the
//! server itself) fails. Each run records every answer its client got (`support::history`)
//! and ends with the history check: nothing accepted is lost or stored twice, and the
//! attributions equal the reference implementation's.
//!
//! Every test is bounded: the client gives up on an event after a minute, and each fault
//! lasts a few seconds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod checker;
mod cluster;
mod database;
mod kill;
mod redis;
mod run;
mod shutdown;
