//! A tenant's policies: consent (applied at ingest) and retention (how long data is kept, and
//! how old an event may be when it arrives).

use super::FieldProblem;
use super::events::Consent;
use serde::Serialize;

/// How consent is applied to incoming events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsentPolicy {
    /// The consent of an event that does not say.
    pub default: Consent,
    /// Store events whose effective consent is `denied` without their keys.
    pub strip_keys_without_consent: bool,
}

impl Default for ConsentPolicy {
    fn default() -> Self {
        Self {
            default: Consent::Granted,
            strip_keys_without_consent: false,
        }
    }
}

impl ConsentPolicy {
    /// The consent an event is stored with.
    pub fn effective(&self, sent: Option<Consent>) -> Consent {
        sent.unwrap_or(self.default)
    }

    /// Whether an event with this effective consent keeps its tracking keys.
    pub fn keeps_keys(&self, effective: Consent) -> bool {
        !(self.strip_keys_without_consent && effective == Consent::Denied)
    }
}

impl Serialize for ConsentPolicy {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = serializer.serialize_struct("ConsentPolicy", 2)?;
        out.serialize_field("default", self.default.as_str())?;
        out.serialize_field(
            "strip_keys_without_consent",
            &self.strip_keys_without_consent,
        )?;
        out.end()
    }
}

/// How long each kind of data is kept, in days, and the oldest event accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RetentionPolicy {
    pub detections_days: u16,
    pub conversions_days: u16,
    pub attributions_days: u16,
    pub invalid_events_days: u16,
    pub max_event_age_days: u16,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            detections_days: 395,
            conversions_days: 395,
            attributions_days: 395,
            invalid_events_days: 30,
            max_event_age_days: 7,
        }
    }
}

/// Everything ingestion needs to know about a tenant's policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TenantPolicy {
    pub consent: ConsentPolicy,
    pub retention: RetentionPolicy,
}

impl ConsentPolicy {
    /// Parses the body of `PUT /v1/consent-policy`; both fields are required.
    pub fn parse(
        default: Option<&serde_json::Value>,
        strip: Option<&serde_json::Value>,
    ) -> Result<Self, Vec<FieldProblem>> {
        let mut problems = Vec::new();
        let default = match default {
            None | Some(serde_json::Value::Null) => {
                problems.push(FieldProblem::new(
                    "default",
                    "missing_field",
                    "`default` is required",
                ));
                None
            }
            Some(value) => match value.as_str().map(Consent::parse) {
                Some(Some(consent)) => Some(consent),
                Some(None) => {
                    problems.push(FieldProblem::new(
                        "default",
                        "invalid_format",
                        "must be \"granted\" or \"denied\"",
                    ));
                    None
                }
                None => {
                    problems.push(FieldProblem::new(
                        "default",
                        "invalid_type",
                        "must be a string",
                    ));
                    None
                }
            },
        };
        let strip = match strip {
            None | Some(serde_json::Value::Null) => {
                problems.push(FieldProblem::new(
                    "strip_keys_without_consent",
                    "missing_field",
                    "`strip_keys_without_consent` is required",
                ));
                None
            }
            Some(serde_json::Value::Bool(flag)) => Some(*flag),
            Some(_) => {
                problems.push(FieldProblem::new(
                    "strip_keys_without_consent",
                    "invalid_type",
                    "must be true or false",
                ));
                None
            }
        };
        match (default, strip) {
            (Some(default), Some(strip_keys_without_consent)) => Ok(Self {
                default,
                strip_keys_without_consent,
            }),
            _ => Err(problems),
        }
    }
}

/// The periods a retention policy may set, in days, inclusive. Events may arrive up to 30 days
/// late: the matching horizon is the longest goal window plus that age, and every session
/// keeps its events that long. Invalid events are kept for debugging, not for reports.
pub const KEPT_DAYS: std::ops::RangeInclusive<u16> = 1..=3650;
pub const INVALID_EVENTS_DAYS: std::ops::RangeInclusive<u16> = 1..=365;
pub const MAX_EVENT_AGE_DAYS: std::ops::RangeInclusive<u16> = 1..=30;

impl RetentionPolicy {
    /// Parses the body of `PUT /v1/retention-policy`: every field is required (a `PUT`
    /// replaces the policy), a whole number of days within its range. An event may not be
    /// accepted older than the data it would join is kept, so `max_event_age_days` is at most
    /// each of the event and attribution periods.
    pub fn parse(
        body: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, Vec<FieldProblem>> {
        let mut problems = Vec::new();
        for name in body.keys() {
            if !PERIODS.iter().any(|(field, _)| field == name) {
                problems.push(FieldProblem::new(
                    name.as_str(),
                    "unknown_field",
                    format!("`{name}` is not a retention setting"),
                ));
            }
        }
        let mut period = |field: &'static str, range: std::ops::RangeInclusive<u16>| {
            let problem = match body.get(field) {
                None | Some(serde_json::Value::Null) => {
                    FieldProblem::new(field, "missing_field", format!("`{field}` is required"))
                }
                Some(serde_json::Value::Number(number)) => {
                    match number.as_u64().and_then(|n| u16::try_from(n).ok()) {
                        Some(n) if range.contains(&n) => return Some(n),
                        _ => FieldProblem::new(
                            field,
                            "out_of_range",
                            format!(
                                "must be a whole number of days from {} to {}",
                                range.start(),
                                range.end()
                            ),
                        ),
                    }
                }
                Some(_) => FieldProblem::new(field, "invalid_type", "must be a number of days"),
            };
            problems.push(problem);
            None
        };
        let [
            detections,
            conversions,
            attributions,
            invalid_events,
            max_event_age,
        ] = PERIODS.map(|(field, range)| period(field, range));
        let (
            Some(detections_days),
            Some(conversions_days),
            Some(attributions_days),
            Some(invalid_events_days),
            Some(max_event_age_days),
        ) = (
            detections,
            conversions,
            attributions,
            invalid_events,
            max_event_age,
        )
        else {
            return Err(problems);
        };
        let shortest_kept = detections_days.min(conversions_days).min(attributions_days);
        if max_event_age_days > shortest_kept {
            problems.push(FieldProblem::new(
                "max_event_age_days",
                "out_of_range",
                format!(
                    "must not exceed the detection, conversion and attribution periods ({shortest_kept} days): a late event would arrive after what it matches was deleted"
                ),
            ));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Self {
            detections_days,
            conversions_days,
            attributions_days,
            invalid_events_days,
            max_event_age_days,
        })
    }

    /// The periods in the order of [`PERIODS`].
    pub fn days(&self) -> [u16; 5] {
        [
            self.detections_days,
            self.conversions_days,
            self.attributions_days,
            self.invalid_events_days,
            self.max_event_age_days,
        ]
    }
}

/// The fields of a retention policy with their ranges, in the order API.md lists them.
pub const PERIODS: [(&str, std::ops::RangeInclusive<u16>); 5] = [
    ("detections_days", KEPT_DAYS),
    ("conversions_days", KEPT_DAYS),
    ("attributions_days", KEPT_DAYS),
    ("invalid_events_days", INVALID_EVENTS_DAYS),
    ("max_event_age_days", MAX_EVENT_AGE_DAYS),
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_event_without_consent_takes_the_default_and_stripping_applies_to_denied_only() {
        let policy = ConsentPolicy {
            default: Consent::Denied,
            strip_keys_without_consent: true,
        };
        assert_eq!(policy.effective(None), Consent::Denied);
        assert_eq!(policy.effective(Some(Consent::Granted)), Consent::Granted);
        assert!(!policy.keeps_keys(Consent::Denied));
        assert!(policy.keeps_keys(Consent::Granted));
        assert!(ConsentPolicy::default().keeps_keys(Consent::Denied));
    }

    #[test]
    fn a_policy_body_needs_both_fields() {
        assert!(ConsentPolicy::parse(Some(&json!("denied")), Some(&json!(true))).is_ok());
        assert_eq!(ConsentPolicy::parse(None, None).unwrap_err().len(), 2);
        let problems =
            ConsentPolicy::parse(Some(&json!("maybe")), Some(&json!("yes"))).unwrap_err();
        assert_eq!(problems[0].code, "invalid_format");
        assert_eq!(problems[1].code, "invalid_type");
    }

    fn retention(body: serde_json::Value) -> Result<RetentionPolicy, Vec<FieldProblem>> {
        RetentionPolicy::parse(body.as_object().expect("an object"))
    }

    #[test]
    fn a_retention_policy_takes_every_period_within_its_range() {
        let policy = retention(json!({"detections_days": 90, "conversions_days": 365,
            "attributions_days": 365, "invalid_events_days": 14, "max_event_age_days": 30}))
        .expect("valid");
        assert_eq!(policy.detections_days, 90);
        assert_eq!(policy.max_event_age_days, 30);
        let defaults = serde_json::to_value(RetentionPolicy::default()).expect("serializes");
        assert_eq!(
            retention(defaults).expect("valid"),
            RetentionPolicy::default()
        );
    }

    #[test]
    fn a_retention_policy_reports_every_problem_at_once() {
        let problems = retention(json!({"detections_days": 0, "conversions_days": 3651,
            "attributions_days": "30", "invalid_events_days": 1.5, "colour": "red"}))
        .unwrap_err();
        let found: Vec<(&str, &str)> = problems
            .iter()
            .map(|p| (p.field.as_str(), p.code))
            .collect();
        assert_eq!(
            found,
            [
                ("colour", "unknown_field"),
                ("detections_days", "out_of_range"),
                ("conversions_days", "out_of_range"),
                ("attributions_days", "invalid_type"),
                ("invalid_events_days", "out_of_range"),
                ("max_event_age_days", "missing_field"),
            ]
        );
    }

    #[test]
    fn events_may_not_be_accepted_older_than_what_they_match_is_kept() {
        let problems = retention(json!({"detections_days": 10, "conversions_days": 365,
            "attributions_days": 365, "invalid_events_days": 30, "max_event_age_days": 11}))
        .unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "max_event_age_days");
        assert!(problems[0].message.contains("10 days"));
    }
}
