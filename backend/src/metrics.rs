//! Process-wide counters, served as Prometheus text by `GET /metrics`. Only totals of the
//! whole process, never per tenant: the endpoint is for the operator's scraper (the load
//! balancer keeps it off the public side, see `infra/nginx.conf`).
//!
//! The matching counters show what routing buys: with every session's events sent to one
//! node, sessions are found resident and current; each one settled meanwhile by another
//! process (a misrouted event) must be read again, from a hot copy or the database.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonic counter.
#[derive(Debug)]
pub struct Counter {
    name: &'static str,
    help: &'static str,
    value: AtomicU64,
}

impl Counter {
    const fn new(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            help,
            value: AtomicU64::new(0),
        }
    }

    pub fn add(&self, n: usize) {
        self.value.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }
}

pub static SESSIONS_SETTLED_ELSEWHERE: Counter = Counter::new(
    "sightline_sessions_settled_elsewhere_total",
    "Resident sessions found settled by another process since this one last did (a misrouted event), so read again.",
);
pub static SESSIONS_FROM_COPIES: Counter = Counter::new(
    "sightline_sessions_from_hot_copies_total",
    "Sessions made resident from their hot copy in Redis.",
);
pub static SESSIONS_FROM_DATABASE: Counter = Counter::new(
    "sightline_sessions_from_database_total",
    "Sessions made resident by reading their events from PostgreSQL.",
);
pub static MATCHING_ROUNDS: Counter = Counter::new(
    "sightline_matching_rounds_total",
    "Matching rounds committed.",
);
pub static CHECKPOINTS_TAKEN_OVER: Counter = Counter::new(
    "sightline_checkpoints_taken_over_total",
    "Matching checkpoints of stopped or dead processes this process took over and re-matched.",
);

const ALL: [&Counter; 5] = [
    &SESSIONS_SETTLED_ELSEWHERE,
    &SESSIONS_FROM_COPIES,
    &SESSIONS_FROM_DATABASE,
    &MATCHING_ROUNDS,
    &CHECKPOINTS_TAKEN_OVER,
];

/// Every counter in Prometheus' text exposition format.
pub fn render() -> String {
    let mut text = String::new();
    for counter in ALL {
        // Writing to a String cannot fail.
        let _ = writeln!(text, "# HELP {} {}", counter.name, counter.help);
        let _ = writeln!(text, "# TYPE {} counter", counter.name);
        let _ = writeln!(text, "{} {}", counter.name, counter.get());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_is_rendered_with_its_help_and_type() {
        MATCHING_ROUNDS.add(2);
        let text = render();
        for counter in ALL {
            assert!(text.contains(&format!("# TYPE {} counter\n", counter.name)));
            assert!(text.contains(&format!("\n{} ", counter.name)));
        }
        assert!(MATCHING_ROUNDS.get() >= 2);
    }
}
