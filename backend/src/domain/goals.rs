//! Goals as tenants define them: parsed from a request body, every field checked, every
//! problem reported.

use super::FieldProblem;
use super::events::{ConversionName, KeyName, Label};
use serde::Serialize;
use serde_json::{Map, Value};

/// Longest conversion window: 90 days.
pub const MAX_WINDOW_SECONDS: i64 = 90 * 86_400;
/// Longest dedup gap: one day.
pub const MAX_DEDUP_SECONDS: i64 = 86_400;
/// Most labels one goal may list.
pub const MAX_LABELS: usize = 100;
const MAX_NAME_CHARS: usize = 200;

/// Fields a client may send back from a read that are not part of the definition; `PUT`
/// ignores them.
const READ_ONLY_FIELDS: &[&str] = &["id", "created_at", "updated_at"];
const FIELDS: &[&str] = &[
    "name",
    "detection_labels",
    "conversion_name",
    "key",
    "window_seconds",
    "min_confidence",
    "dedup_seconds",
    "requires_consent",
    "active",
];

/// A valid goal definition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GoalSpec {
    pub name: String,
    /// Distinct labels, in the order first given.
    pub detection_labels: Vec<String>,
    pub conversion_name: String,
    pub key: String,
    pub window_seconds: i64,
    pub min_confidence: f64,
    pub dedup_seconds: i64,
    pub requires_consent: bool,
    pub active: bool,
}

impl GoalSpec {
    /// Parses a goal body; defaults: `min_confidence` 0, `dedup_seconds` 0,
    /// `requires_consent` false, `active` true.
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Vec<FieldProblem>> {
        let mut problems = Vec::new();

        let name = take(
            &mut problems,
            required_text(body, "name").and_then(|v| {
                let name = v.trim();
                if name.is_empty() {
                    Err(FieldProblem::new(
                        "name",
                        "invalid_format",
                        "must not be empty",
                    ))
                } else if name.chars().count() > MAX_NAME_CHARS {
                    Err(FieldProblem::new(
                        "name",
                        "too_long",
                        format!("must be at most {MAX_NAME_CHARS} characters"),
                    ))
                } else {
                    Ok(name.to_owned())
                }
            }),
        );
        let labels = take(&mut problems, labels(body));
        let conversion_name = take(
            &mut problems,
            required_text(body, "conversion_name").and_then(|v| {
                ConversionName::parse("conversion_name", v).map(|n| n.as_str().to_owned())
            }),
        );
        let key = take(
            &mut problems,
            required_text(body, "key").and_then(|v| {
                KeyName::parse(v).map(|k| k.as_str().to_owned()).ok_or_else(|| {
                FieldProblem::new(
                    "key",
                    "invalid_format",
                    "key names are 1 to 32 lower-case letters, digits or _, starting with a letter",
                )
            })
            }),
        );
        let window_seconds = take(
            &mut problems,
            integer(body, "window_seconds", None, 1, MAX_WINDOW_SECONDS),
        );
        let min_confidence = take(&mut problems, number(body, "min_confidence", 0.0, 0.0, 1.0));
        let dedup_seconds = take(
            &mut problems,
            integer(body, "dedup_seconds", Some(0), 0, MAX_DEDUP_SECONDS),
        );
        let requires_consent = take(&mut problems, boolean(body, "requires_consent", false));
        let active = take(&mut problems, boolean(body, "active", true));
        for field in body.keys() {
            if !FIELDS.contains(&field.as_str()) && !READ_ONLY_FIELDS.contains(&field.as_str()) {
                problems.push(FieldProblem::new(
                    field.clone(),
                    "unknown_field",
                    "is not a field of a goal",
                ));
            }
        }

        match (
            name,
            labels,
            conversion_name,
            key,
            window_seconds,
            min_confidence,
            dedup_seconds,
            requires_consent,
            active,
        ) {
            (
                Some(name),
                Some(detection_labels),
                Some(conversion_name),
                Some(key),
                Some(window_seconds),
                Some(min_confidence),
                Some(dedup_seconds),
                Some(requires_consent),
                Some(active),
            ) if problems.is_empty() => Ok(Self {
                name,
                detection_labels,
                conversion_name,
                key,
                window_seconds,
                min_confidence,
                dedup_seconds,
                requires_consent,
                active,
            }),
            _ => Err(problems),
        }
    }
}

/// Keeps the value, or records its problem.
fn take<T>(problems: &mut Vec<FieldProblem>, result: Result<T, FieldProblem>) -> Option<T> {
    result.map_err(|problem| problems.push(problem)).ok()
}

fn present<'a>(body: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    body.get(field).filter(|v| !v.is_null())
}

fn missing(field: &str) -> FieldProblem {
    FieldProblem::new(field, "missing_field", format!("`{field}` is required"))
}

fn required_text<'a>(body: &'a Map<String, Value>, field: &str) -> Result<&'a str, FieldProblem> {
    present(body, field)
        .ok_or_else(|| missing(field))?
        .as_str()
        .ok_or_else(|| FieldProblem::new(field, "invalid_type", "must be a string"))
}

fn labels(body: &Map<String, Value>) -> Result<Vec<String>, FieldProblem> {
    let field = "detection_labels";
    let items = present(body, field)
        .ok_or_else(|| missing(field))?
        .as_array()
        .ok_or_else(|| FieldProblem::new(field, "invalid_type", "must be an array of labels"))?;
    if items.is_empty() {
        return Err(FieldProblem::new(
            field,
            "missing_field",
            "must list at least one label",
        ));
    }
    if items.len() > MAX_LABELS {
        return Err(FieldProblem::new(
            field,
            "too_long",
            format!("must list at most {MAX_LABELS} labels"),
        ));
    }
    let mut labels: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let text = item
            .as_str()
            .ok_or_else(|| FieldProblem::new(field, "invalid_type", "labels must be strings"))?;
        let label = Label::parse(field, text)?;
        if !labels.iter().any(|l| l == label.as_str()) {
            labels.push(label.as_str().to_owned());
        }
    }
    Ok(labels)
}

/// A whole number in `min..=max`; `default` when absent (`None`: required).
fn integer(
    body: &Map<String, Value>,
    field: &str,
    default: Option<i64>,
    min: i64,
    max: i64,
) -> Result<i64, FieldProblem> {
    let Some(value) = present(body, field) else {
        return default.ok_or_else(|| missing(field));
    };
    let number = value
        .as_i64()
        .ok_or_else(|| FieldProblem::new(field, "invalid_type", "must be a whole number"))?;
    if (min..=max).contains(&number) {
        Ok(number)
    } else {
        Err(FieldProblem::new(
            field,
            "out_of_range",
            format!("must be from {min} to {max}"),
        ))
    }
}

fn number(
    body: &Map<String, Value>,
    field: &str,
    default: f64,
    min: f64,
    max: f64,
) -> Result<f64, FieldProblem> {
    let Some(value) = present(body, field) else {
        return Ok(default);
    };
    let number = value
        .as_f64()
        .ok_or_else(|| FieldProblem::new(field, "invalid_type", "must be a number"))?;
    if (min..=max).contains(&number) {
        Ok(number)
    } else {
        Err(FieldProblem::new(
            field,
            "out_of_range",
            format!("must be from {min} to {max}"),
        ))
    }
}

fn boolean(body: &Map<String, Value>, field: &str, default: bool) -> Result<bool, FieldProblem> {
    match present(body, field) {
        None => Ok(default),
        Some(Value::Bool(flag)) => Ok(*flag),
        Some(_) => Err(FieldProblem::new(
            field,
            "invalid_type",
            "must be true or false",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn a_minimal_goal_takes_the_defaults() {
        let spec = GoalSpec::parse(&body(
            json!({"name": "Scan to purchase", "detection_labels": ["barcode", "barcode"],
            "conversion_name": "purchase", "key": "session_token", "window_seconds": 86400}),
        ))
        .expect("valid");
        assert_eq!(spec.detection_labels, ["barcode"]);
        assert_eq!((spec.min_confidence, spec.dedup_seconds), (0.0, 0));
        assert!(!spec.requires_consent && spec.active);
    }

    #[test]
    fn every_problem_is_reported() {
        let problems = GoalSpec::parse(&body(json!({"detection_labels": [], "key": "Session", "window_seconds": 0,
            "min_confidence": 2, "dedup_seconds": 1.5, "active": "yes", "windw": 1, "id": "ignored"})))
        .expect_err("invalid");
        let found: Vec<(&str, &str)> = problems
            .iter()
            .map(|p| (p.field.as_str(), p.code))
            .collect();
        assert_eq!(
            found,
            [
                ("name", "missing_field"),
                ("detection_labels", "missing_field"),
                ("conversion_name", "missing_field"),
                ("key", "invalid_format"),
                ("window_seconds", "out_of_range"),
                ("min_confidence", "out_of_range"),
                ("dedup_seconds", "invalid_type"),
                ("active", "invalid_type"),
                ("windw", "unknown_field"),
            ]
        );
    }

    #[test]
    fn the_window_may_be_ninety_days_but_no_more() {
        let mut goal = json!({"name": "g", "detection_labels": ["a"], "conversion_name": "c", "key": "k",
                              "window_seconds": MAX_WINDOW_SECONDS});
        assert!(GoalSpec::parse(&body(goal.clone())).is_ok());
        goal["window_seconds"] = json!(MAX_WINDOW_SECONDS + 1);
        assert!(GoalSpec::parse(&body(goal)).is_err());
    }
}
