//! The query string of `GET /v1/reports/labels`, parsed: every problem is reported at once,
//! as for a request body, and a parameter the report does not know is refused rather than
//! ignored (a typo such as `modelversion=` would otherwise return unfiltered figures).

use crate::domain::FieldProblem;
use crate::storage::reports::GroupBy;
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

/// Rows one answer carries by default, and at most (`limit`).
pub const DEFAULT_LIMIT: usize = 10_000;
pub const MAX_LIMIT: usize = 100_000;
/// Most distinct `model_version` values one request filters on.
pub const MAX_MODEL_VERSIONS: usize = 100;
/// Longest model version an event may carry (API.md): a longer one cannot match anything.
pub const MAX_MODEL_VERSION_CHARS: usize = 64;
/// The default range: the last 30 days, up to the 5 minutes ahead an event may be dated.
const DEFAULT_DAYS: i64 = 30;
const DEFAULT_AHEAD_MINUTES: i64 = 5;

/// The answer's media type when asked for with `format=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

/// A valid report request.
#[derive(Debug, Clone)]
pub struct ReportParams {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Distinct, in the order given; empty means all.
    pub model_versions: Vec<String>,
    pub goal: Option<Uuid>,
    pub group_by: GroupBy,
    /// `None`: decided by the `Accept` header.
    pub format: Option<Format>,
    pub limit: usize,
}

const PARAMETERS: &[&str] = &[
    "from",
    "to",
    "model_version",
    "goal",
    "group_by",
    "format",
    "limit",
];

impl ReportParams {
    /// Parses decoded (name, value) pairs, as they came, at `now`.
    pub fn parse(
        pairs: &[(String, String)],
        now: DateTime<Utc>,
    ) -> Result<Self, Vec<FieldProblem>> {
        let mut problems = Vec::new();
        for (name, _) in pairs {
            if !PARAMETERS.contains(&name.as_str()) {
                problems.push(FieldProblem::new(
                    name.as_str(),
                    "unknown_field",
                    format!(
                        "`{name}` is not a parameter of this report; known: {}",
                        PARAMETERS.join(", ")
                    ),
                ));
            }
        }
        let mut once = |name| single(pairs, &mut problems, name);
        let from_raw = once("from");
        let to_raw = once("to");
        let goal_raw = once("goal");
        let group_raw = once("group_by");
        let format_raw = once("format");
        let limit_raw = once("limit");

        let from = timestamp(&mut problems, "from", from_raw)
            .unwrap_or_else(|| now - Duration::days(DEFAULT_DAYS));
        let to = timestamp(&mut problems, "to", to_raw)
            .unwrap_or_else(|| now + Duration::minutes(DEFAULT_AHEAD_MINUTES));
        if from >= to {
            problems.push(FieldProblem::new(
                "from",
                "out_of_range",
                format!(
                    "`from` must be before `to` (`to` is exclusive); the range is {} to {}",
                    from.to_rfc3339(),
                    to.to_rfc3339()
                ),
            ));
        }
        let goal = goal_raw.and_then(|raw| {
            Uuid::try_parse(raw)
                .map_err(|_| {
                    problems.push(FieldProblem::new(
                        "goal",
                        "invalid_format",
                        "`goal` must be a goal id (a UUID)",
                    ));
                })
                .ok()
        });
        let group_by = match group_raw {
            None | Some("entity") => GroupBy::Entity,
            Some("category") => GroupBy::Category,
            Some(_) => {
                problems.push(FieldProblem::new(
                    "group_by",
                    "invalid_format",
                    "`group_by` must be `entity` or `category`",
                ));
                GroupBy::Entity
            }
        };
        let format = match format_raw {
            None => None,
            Some("json") => Some(Format::Json),
            Some("csv") => Some(Format::Csv),
            Some(_) => {
                problems.push(FieldProblem::new(
                    "format",
                    "invalid_format",
                    "`format` must be `json` or `csv`",
                ));
                None
            }
        };
        let limit = match limit_raw.map(str::parse::<usize>) {
            None => DEFAULT_LIMIT,
            Some(Ok(limit)) if (1..=MAX_LIMIT).contains(&limit) => limit,
            Some(_) => {
                problems.push(FieldProblem::new(
                    "limit",
                    "out_of_range",
                    format!("`limit` must be a whole number from 1 to {MAX_LIMIT}"),
                ));
                DEFAULT_LIMIT
            }
        };
        let model_versions = model_versions(&mut problems, pairs);

        if problems.is_empty() {
            Ok(Self {
                from,
                to,
                model_versions,
                goal,
                group_by,
                format,
                limit,
            })
        } else {
            Err(problems)
        }
    }
}

/// The value of a parameter that may be given once.
fn single<'a>(
    pairs: &'a [(String, String)],
    problems: &mut Vec<FieldProblem>,
    name: &str,
) -> Option<&'a str> {
    let mut values = pairs.iter().filter(|(n, _)| n == name).map(|(_, v)| v);
    let first = values.next()?;
    if values.next().is_some() {
        problems.push(FieldProblem::new(
            name,
            "invalid_format",
            format!("`{name}` may be given only once"),
        ));
    }
    Some(first.as_str())
}

fn timestamp(
    problems: &mut Vec<FieldProblem>,
    field: &str,
    raw: Option<&str>,
) -> Option<DateTime<Utc>> {
    let raw = raw?;
    match DateTime::parse_from_rfc3339(raw) {
        Ok(instant) => Some(instant.with_timezone(&Utc)),
        Err(_) => {
            problems.push(FieldProblem::new(
                field,
                "invalid_format",
                format!(
                    "`{field}` must be an RFC 3339 timestamp with an offset, such as \
                     2026-12-03T18:00:00.000Z (in a query string, write `+` as %2B)"
                ),
            ));
            None
        }
    }
}

fn model_versions(problems: &mut Vec<FieldProblem>, pairs: &[(String, String)]) -> Vec<String> {
    let mut versions: Vec<String> = Vec::new();
    for (_, value) in pairs.iter().filter(|(name, _)| name == "model_version") {
        if value.is_empty() {
            problems.push(FieldProblem::new(
                "model_version",
                "invalid_format",
                "`model_version` must not be empty",
            ));
        } else if value.chars().count() > MAX_MODEL_VERSION_CHARS {
            problems.push(FieldProblem::new(
                "model_version",
                "too_long",
                format!("`model_version` must be at most {MAX_MODEL_VERSION_CHARS} characters"),
            ));
        } else if !versions.contains(value) {
            versions.push(value.clone());
        }
    }
    if versions.len() > MAX_MODEL_VERSIONS {
        problems.push(FieldProblem::new(
            "model_version",
            "out_of_range",
            format!("at most {MAX_MODEL_VERSIONS} distinct `model_version` values"),
        ));
    }
    versions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-03T18:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn problems(list: &[(&str, &str)]) -> Vec<(String, &'static str)> {
        match ReportParams::parse(&pairs(list), now()) {
            Ok(params) => panic!("expected problems, got {params:?}"),
            Err(problems) => problems.into_iter().map(|p| (p.field, p.code)).collect(),
        }
    }

    #[test]
    fn defaults_are_the_last_30_days_up_to_5_minutes_ahead() {
        let params = ReportParams::parse(&[], now()).expect("valid");
        assert_eq!(params.from, now() - Duration::days(30));
        assert_eq!(params.to, now() + Duration::minutes(5));
        assert_eq!(params.group_by, GroupBy::Entity);
        assert_eq!(params.limit, DEFAULT_LIMIT);
        assert!(params.model_versions.is_empty() && params.goal.is_none());
        assert_eq!(params.format, None);
    }

    #[test]
    fn model_versions_repeat_and_are_deduplicated() {
        let params = ReportParams::parse(
            &pairs(&[
                ("model_version", "v2"),
                ("model_version", "v3"),
                ("model_version", "v2"),
                ("group_by", "category"),
                ("format", "csv"),
            ]),
            now(),
        )
        .expect("valid");
        assert_eq!(params.model_versions, ["v2", "v3"]);
        assert_eq!(params.group_by, GroupBy::Category);
        assert_eq!(params.format, Some(Format::Csv));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        assert_eq!(
            problems(&[
                ("from", "yesterday"),
                ("to", "2026-12-03 18:00:00"),
                ("goal", "42"),
                ("group_by", "site"),
                ("format", "xml"),
                ("limit", "0"),
                ("model_version", ""),
                ("modelversion", "v3"),
            ]),
            [
                ("modelversion".to_owned(), "unknown_field"),
                ("from".to_owned(), "invalid_format"),
                ("to".to_owned(), "invalid_format"),
                ("goal".to_owned(), "invalid_format"),
                ("group_by".to_owned(), "invalid_format"),
                ("format".to_owned(), "invalid_format"),
                ("limit".to_owned(), "out_of_range"),
                ("model_version".to_owned(), "invalid_format"),
            ]
        );
    }

    #[test]
    fn from_must_be_before_to() {
        let at = "2026-12-01T00:00:00.000Z";
        assert_eq!(
            problems(&[("from", at), ("to", at)]),
            [("from".to_owned(), "out_of_range")]
        );
        // Only `from`, after the default `to`.
        assert_eq!(
            problems(&[("from", "2027-01-01T00:00:00Z")]),
            [("from".to_owned(), "out_of_range")]
        );
    }

    #[test]
    fn a_parameter_given_twice_is_refused() {
        assert_eq!(
            problems(&[("group_by", "entity"), ("group_by", "category")]),
            [("group_by".to_owned(), "invalid_format")]
        );
    }

    #[test]
    fn offsets_are_converted_to_utc() {
        let params = ReportParams::parse(&pairs(&[("from", "2026-12-01T01:00:00+01:00")]), now())
            .expect("valid");
        assert_eq!(params.from.to_rfc3339(), "2026-12-01T00:00:00+00:00");
    }
}
