//! The classes of data a retention policy keeps for a period, and when each one expires.

use super::policy::RetentionPolicy;
use chrono::{DateTime, Duration, Utc};

/// A kind of stored data with its own retention period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataClass {
    /// Expire by their `event_time`.
    Detections,
    /// Expire by their `event_time`.
    Conversions,
    /// Expire by their `conversion_time`: the credit is earned when the conversion happens,
    /// and `max_event_age_days <= attributions_days` then guarantees that an attribution
    /// the matcher writes for an accepted conversion is never expired at birth.
    Attributions,
    /// Expire by their `received_time`: they may have no valid event time at all.
    InvalidEvents,
}

impl DataClass {
    /// Every class, in the order the dashboard lists them.
    pub const ALL: [DataClass; 4] = [
        DataClass::Detections,
        DataClass::Conversions,
        DataClass::Attributions,
        DataClass::InvalidEvents,
    ];

    /// The name stored in the purge record and used in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            DataClass::Detections => "detections",
            DataClass::Conversions => "conversions",
            DataClass::Attributions => "attributions",
            DataClass::InvalidEvents => "invalid_events",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|class| class.as_str() == name)
    }

    /// How many days the policy keeps this class.
    pub fn period_days(self, policy: &RetentionPolicy) -> u16 {
        match self {
            DataClass::Detections => policy.detections_days,
            DataClass::Conversions => policy.conversions_days,
            DataClass::Attributions => policy.attributions_days,
            DataClass::InvalidEvents => policy.invalid_events_days,
        }
    }

    /// Rows of this class whose time is before the answer have expired at `now`.
    pub fn expired_before(self, policy: &RetentionPolicy, now: DateTime<Utc>) -> DateTime<Utc> {
        now - Duration::days(i64::from(self.period_days(policy)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_class_expires_after_its_own_period() {
        let policy = RetentionPolicy {
            detections_days: 10,
            conversions_days: 20,
            attributions_days: 30,
            invalid_events_days: 5,
            max_event_age_days: 5,
        };
        let now = DateTime::from_timestamp(1_800_000_000, 0).expect("a valid instant");
        let days = |class: DataClass| (now - class.expired_before(&policy, now)).num_days();
        assert_eq!(
            DataClass::ALL.map(days),
            [10, 20, 30, 5],
            "detections, conversions, attributions, invalid events"
        );
    }

    #[test]
    fn a_class_reads_back_from_its_stored_name() {
        for class in DataClass::ALL {
            assert_eq!(DataClass::parse(class.as_str()), Some(class));
        }
        assert_eq!(DataClass::parse("everything"), None);
    }
}
