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
}
