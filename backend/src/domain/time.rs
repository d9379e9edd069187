//! Instants as the API shows them: UTC, RFC 3339, millisecond precision.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::{Serialize, Serializer};

/// A UTC instant with millisecond precision, serialised like `2026-12-03T18:00:00.250Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    pub fn now() -> Self {
        Self::from(Utc::now())
    }

    pub fn as_datetime(&self) -> DateTime<Utc> {
        self.0
    }

    /// Milliseconds since the Unix epoch, as matching counts time.
    pub fn as_millis(&self) -> i64 {
        self.0.timestamp_millis()
    }

    /// The instant `millis` after the Unix epoch; `None` outside chrono's range.
    pub fn from_millis(millis: i64) -> Option<Self> {
        DateTime::from_timestamp_millis(millis).map(Self)
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(instant: DateTime<Utc>) -> Self {
        Self(instant.trunc_subsecs(3))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_in_utc_with_milliseconds() {
        let instant =
            DateTime::parse_from_rfc3339("2026-12-03T19:00:00.250999+01:00").expect("valid");
        let json = serde_json::to_string(&Timestamp::from(instant.with_timezone(&Utc)))
            .expect("serialisable");
        assert_eq!(json, "\"2026-12-03T18:00:00.250Z\"");
    }
}
