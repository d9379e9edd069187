//! The circuit breaker in front of Redis: once a command fails because Redis is unreachable,
//! callers fail fast for a cool-off instead of each waiting on reconnects and timeouts, and a
//! single background probe decides when Redis is back. Pure: the caller passes the time, so
//! the state machine is tested with a fake clock.

use std::time::{Duration, Instant};

/// Whether Redis is believed to answer.
#[derive(Debug)]
pub struct Breaker {
    state: State,
    cool_off: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Commands go to Redis.
    Closed,
    /// Commands fail fast; the next probe is due at `probe_at`.
    Open { probe_at: Instant },
    /// Commands fail fast while one probe is out.
    Probing,
}

/// What a caller may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Send the command to Redis.
    Call,
    /// Fail at once without touching Redis.
    FailFast,
    /// Fail at once, and start the (one) probe: the cool-off has passed.
    FailFastAndProbe,
}

/// A change worth one log line: the breaker logs transitions, never each refused command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    WentDown,
    CameBack,
}

impl Breaker {
    pub fn new(cool_off: Duration) -> Self {
        Self {
            state: State::Closed,
            cool_off,
        }
    }

    pub fn admit(&mut self, now: Instant) -> Admission {
        match self.state {
            State::Closed => Admission::Call,
            State::Open { probe_at } if now >= probe_at => {
                self.state = State::Probing;
                Admission::FailFastAndProbe
            }
            State::Open { .. } | State::Probing => Admission::FailFast,
        }
    }

    /// Redis answered a command or the probe. Only a probe's answer closes an open breaker:
    /// a command admitted before the failure may still answer late, and proves little.
    pub fn succeeded(&mut self) -> Option<Change> {
        match self.state {
            State::Probing => {
                self.state = State::Closed;
                Some(Change::CameBack)
            }
            State::Closed | State::Open { .. } => None,
        }
    }

    /// Redis could not be reached (or did not answer in time).
    pub fn failed(&mut self, now: Instant) -> Option<Change> {
        match self.state {
            State::Closed => {
                self.state = State::Open {
                    probe_at: now + self.cool_off,
                };
                Some(Change::WentDown)
            }
            State::Probing => {
                self.state = State::Open {
                    probe_at: now + self.cool_off,
                };
                None
            }
            // Not pushed back: a trickle of late failures must not postpone the probe.
            State::Open { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOL_OFF: Duration = Duration::from_secs(1);

    fn opened_at(start: Instant) -> Breaker {
        let mut breaker = Breaker::new(COOL_OFF);
        assert_eq!(breaker.failed(start), Some(Change::WentDown));
        breaker
    }

    #[test]
    fn a_closed_breaker_lets_commands_through() {
        let mut breaker = Breaker::new(COOL_OFF);
        assert_eq!(breaker.admit(Instant::now()), Admission::Call);
        assert_eq!(breaker.succeeded(), None);
        assert_eq!(breaker.admit(Instant::now()), Admission::Call);
    }

    #[test]
    fn after_a_failure_commands_fail_fast_until_the_cool_off_ends() {
        let start = Instant::now();
        let mut breaker = opened_at(start);
        assert_eq!(breaker.admit(start), Admission::FailFast);
        assert_eq!(breaker.admit(start + COOL_OFF / 2), Admission::FailFast);
    }

    #[test]
    fn only_one_caller_starts_the_probe() {
        let start = Instant::now();
        let mut breaker = opened_at(start);
        let later = start + COOL_OFF;
        assert_eq!(breaker.admit(later), Admission::FailFastAndProbe);
        assert_eq!(breaker.admit(later), Admission::FailFast);
    }

    #[test]
    fn a_probe_that_answers_closes_the_breaker_once() {
        let start = Instant::now();
        let mut breaker = opened_at(start);
        breaker.admit(start + COOL_OFF);
        assert_eq!(breaker.succeeded(), Some(Change::CameBack));
        assert_eq!(breaker.admit(start + COOL_OFF), Admission::Call);
        assert_eq!(breaker.succeeded(), None);
    }

    #[test]
    fn a_failed_probe_opens_another_cool_off_without_a_second_warning() {
        let start = Instant::now();
        let mut breaker = opened_at(start);
        let probed = start + COOL_OFF;
        breaker.admit(probed);
        assert_eq!(breaker.failed(probed), None);
        assert_eq!(breaker.admit(probed), Admission::FailFast);
        assert_eq!(
            breaker.admit(probed + COOL_OFF),
            Admission::FailFastAndProbe
        );
    }

    #[test]
    fn late_answers_and_failures_of_earlier_commands_change_nothing_while_open() {
        let start = Instant::now();
        let mut breaker = opened_at(start);
        assert_eq!(breaker.succeeded(), None);
        assert_eq!(breaker.admit(start), Admission::FailFast);
        // Another command that was already waiting fails later: the cool-off is not pushed
        // back, or a steady trickle of stale failures would postpone the probe for ever.
        assert_eq!(breaker.failed(start + COOL_OFF / 2), None);
        assert_eq!(breaker.admit(start + COOL_OFF), Admission::FailFastAndProbe);
    }
}
