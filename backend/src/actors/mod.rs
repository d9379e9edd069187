//! Actors: long-lived state owners that work through messages.

pub mod matcher;
pub mod purge;
