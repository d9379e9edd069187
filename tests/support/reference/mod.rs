//! The differential harness of the matching engine, shared by the differential test and the
//! fault tests: a seeded random [`scenario`] of goals and events, the plain [`judge`]
//! (a reference implementation of API.md's matching rules), and the [`server`] side that
//! sends the events and reads the server's attributions back.
//!
//! Every run draws a new seed and prints it in every failure message;
//! `SIGHTLINE_DIFFERENTIAL_SEED=<n>` replays that run (decimal or `0x` hex).

pub mod judge;
pub mod rng;
pub mod scenario;
pub mod server;
