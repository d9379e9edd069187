//! The Reports page's query string: the filter form's fields and the sort. Unlike the JSON
//! API's (RFC 3339 instants), the form speaks whole UTC days, both inclusive, as a date
//! input gives them. Every problem is collected, to be shown on the page at once. Unknown
//! parameters are ignored: the page's own form and links write every query string.

use super::super::encode;
use crate::routes::reports::query::{MAX_MODEL_VERSION_CHARS, MAX_MODEL_VERSIONS};
use crate::storage::reports::{GroupBy, LabelRow};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use std::cmp::Ordering;
use uuid::Uuid;

/// Days shown when the form gives no dates: the last 30, today included.
const DEFAULT_DAYS: i64 = 30;
/// Longest range, so that the chart keeps a readable number of days.
pub const MAX_DAYS: i64 = 366;

/// A column the table can be sorted by; the names are the CSV's headings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Label,
    Group,
    ModelVersion,
    Detections,
    Matched,
    Assisted,
    Value,
    FirstDetect,
}

impl SortKey {
    pub const ALL: [SortKey; 8] = [
        SortKey::Label,
        SortKey::Group,
        SortKey::ModelVersion,
        SortKey::Detections,
        SortKey::Matched,
        SortKey::Assisted,
        SortKey::Value,
        SortKey::FirstDetect,
    ];

    pub fn key(self) -> &'static str {
        match self {
            SortKey::Label => "detection_label",
            SortKey::Group => "group",
            SortKey::ModelVersion => "model_version",
            SortKey::Detections => "detections",
            SortKey::Matched => "matched_conversions",
            SortKey::Assisted => "assisted_conversions",
            SortKey::Value => "conversion_value",
            SortKey::FirstDetect => "first_detect_time",
        }
    }

    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            SortKey::Detections | SortKey::Matched | SortKey::Assisted | SortKey::Value
        )
    }

    /// The direction a first click sorts in: figures and dates largest first, text A to Z.
    pub fn default_descending(self) -> bool {
        self.is_numeric() || self == SortKey::FirstDetect
    }

    fn compare(self, a: &LabelRow, b: &LabelRow) -> Ordering {
        match self {
            SortKey::Label => a.key.0.cmp(&b.key.0),
            // Rows without a category last, as in the API's order.
            SortKey::Group => (a.key.1.is_none(), &a.key.1).cmp(&(b.key.1.is_none(), &b.key.1)),
            SortKey::ModelVersion => a.key.2.cmp(&b.key.2),
            SortKey::Detections => a.detections.cmp(&b.detections),
            SortKey::Matched => a.matched_conversions.cmp(&b.matched_conversions),
            SortKey::Assisted => a.assisted_conversions.cmp(&b.assisted_conversions),
            SortKey::Value => a.conversion_value.total_cmp(&b.conversion_value),
            SortKey::FirstDetect => a.first_detect_time.cmp(&b.first_detect_time),
        }
    }
}

/// Valid filters and sort.
#[derive(Debug, Clone, PartialEq)]
pub struct Filters {
    pub from: NaiveDate,
    /// Inclusive.
    pub to: NaiveDate,
    pub goal: Option<Uuid>,
    /// Distinct, in the order given; empty means all.
    pub model_versions: Vec<String>,
    pub group_by: GroupBy,
    pub sort: SortKey,
    pub descending: bool,
}

/// What the form shows back when the filters are not valid: the values as they came.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Raw {
    pub from: String,
    pub to: String,
    pub goal: String,
    pub model_versions: Vec<String>,
    pub group_by: String,
}

/// Filters that cannot be used: what to show back, and why (boxed: it is the rare case).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rejected {
    pub raw: Raw,
    pub problems: Vec<String>,
}

impl Filters {
    /// Parses decoded (name, value) pairs on `today` (UTC).
    pub fn parse(pairs: &[(String, String)], today: NaiveDate) -> Result<Self, Box<Rejected>> {
        let first = |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.trim())
                .unwrap_or_default()
        };
        let raw = Raw {
            from: first("from").to_owned(),
            to: first("to").to_owned(),
            goal: first("goal").to_owned(),
            model_versions: pairs
                .iter()
                .filter(|(n, v)| n == "model_version" && !v.is_empty())
                .map(|(_, v)| v.clone())
                .collect(),
            group_by: first("group_by").to_owned(),
        };
        let mut problems = Vec::new();

        let to = date(&mut problems, "To", &raw.to).unwrap_or(today);
        let from = date(&mut problems, "From", &raw.from)
            .unwrap_or_else(|| to - Duration::days(DEFAULT_DAYS - 1));
        if from > to {
            problems.push(format!(
                "“From” ({from}) must not be after “To” ({to}); both days are included."
            ));
        } else if (to - from).num_days() >= MAX_DAYS {
            problems.push(format!(
                "The range spans {} days; choose at most {MAX_DAYS} (the CSV of a longer \
                 period can be put together from several downloads).",
                (to - from).num_days() + 1
            ));
        }
        let goal = match raw.goal.as_str() {
            "" => None,
            text => match Uuid::try_parse(text) {
                Ok(id) => Some(id),
                Err(_) => {
                    problems
                        .push("“Goal” is not one of your goals; pick one from the list.".into());
                    None
                }
            },
        };
        let mut model_versions: Vec<String> = Vec::new();
        for version in &raw.model_versions {
            if version.chars().count() > MAX_MODEL_VERSION_CHARS {
                problems.push(format!(
                    "A model version has at most {MAX_MODEL_VERSION_CHARS} characters."
                ));
            } else if !model_versions.contains(version) {
                model_versions.push(version.clone());
            }
        }
        if model_versions.len() > MAX_MODEL_VERSIONS {
            problems.push(format!("Tick at most {MAX_MODEL_VERSIONS} model versions."));
        }
        let group_by = match raw.group_by.as_str() {
            "" | "entity" => GroupBy::Entity,
            "category" => GroupBy::Category,
            _ => {
                problems.push("“Rows by” must be entity or category.".into());
                GroupBy::Entity
            }
        };
        let sort = match first("sort") {
            "" => SortKey::Detections,
            key => SortKey::ALL
                .into_iter()
                .find(|k| k.key() == key)
                .unwrap_or_else(|| {
                    problems.push(format!("The table cannot be sorted by “{key}”."));
                    SortKey::Detections
                }),
        };
        let descending = match first("dir") {
            "" => sort.default_descending(),
            "desc" => true,
            "asc" => false,
            _ => {
                problems.push("The sort direction must be asc or desc.".into());
                true
            }
        };
        if problems.is_empty() {
            Ok(Self {
                from,
                to,
                goal,
                model_versions,
                group_by,
                sort,
                descending,
            })
        } else {
            Err(Box::new(Rejected { raw, problems }))
        }
    }

    /// These filters as the form shows them.
    pub fn raw(&self) -> Raw {
        Raw {
            from: self.from.to_string(),
            to: self.to.to_string(),
            goal: self.goal.map(|id| id.to_string()).unwrap_or_default(),
            model_versions: self.model_versions.clone(),
            group_by: group_name(self.group_by).to_owned(),
        }
    }

    /// The instants the report covers: [`from` 00:00, the day after `to` 00:00) UTC.
    pub fn range(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        let start = |day: NaiveDate| day.and_time(NaiveTime::MIN).and_utc();
        (start(self.from), start(self.to) + Duration::days(1))
    }

    /// Every day of the range, in order.
    pub fn days(&self) -> Vec<NaiveDate> {
        self.from
            .iter_days()
            .take_while(|d| *d <= self.to)
            .collect()
    }

    /// Orders rows by the chosen column. The sort is stable and starts from the API's order
    /// (`routes::reports::sort`), so ties keep that order and the default sort is the API's.
    pub fn sort_rows(&self, rows: &mut [LabelRow]) {
        crate::routes::reports::sort(rows);
        rows.sort_by(|a, b| {
            let order = self.sort.compare(a, b);
            if self.descending {
                order.reverse()
            } else {
                order
            }
        });
    }

    /// The query string of these filters, sorted by `sort` (`desc` or `asc`).
    pub fn query(&self, sort: SortKey, descending: bool) -> String {
        let mut pairs: Vec<(&str, String)> =
            vec![("from", self.from.to_string()), ("to", self.to.to_string())];
        if let Some(goal) = self.goal {
            pairs.push(("goal", goal.to_string()));
        }
        pairs.push(("group_by", group_name(self.group_by).to_owned()));
        for version in &self.model_versions {
            pairs.push(("model_version", version.clone()));
        }
        pairs.push(("sort", sort.key().to_owned()));
        pairs.push(("dir", if descending { "desc" } else { "asc" }.to_owned()));
        pairs
            .iter()
            .map(|(name, value)| format!("{name}={}", encode(value)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

pub fn group_name(group_by: GroupBy) -> &'static str {
    match group_by {
        GroupBy::Entity => "entity",
        GroupBy::Category => "category",
    }
}

fn date(problems: &mut Vec<String>, field: &str, raw: &str) -> Option<NaiveDate> {
    if raw.is_empty() {
        return None;
    }
    match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        Ok(day) => Some(day),
        Err(_) => {
            problems.push(format!(
                "“{field}” must be a date such as 2026-12-03 (YYYY-MM-DD); “{raw}” is not."
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap_or_default()
    }

    fn problems(list: &[(&str, &str)]) -> Vec<String> {
        match Filters::parse(&pairs(list), day("2026-12-03")) {
            Ok(filters) => panic!("expected problems, got {filters:?}"),
            Err(rejected) => rejected.problems,
        }
    }

    #[test]
    fn defaults_are_the_last_30_days_by_detections() {
        let filters = Filters::parse(&[], day("2026-12-03")).expect("valid");
        assert_eq!(
            (filters.from, filters.to),
            (day("2026-11-04"), day("2026-12-03"))
        );
        assert_eq!(filters.days().len(), 30);
        let (from, to) = filters.range();
        assert_eq!(from.to_rfc3339(), "2026-11-04T00:00:00+00:00");
        assert_eq!(
            to.to_rfc3339(),
            "2026-12-04T00:00:00+00:00",
            "`to` is included"
        );
        assert_eq!(
            (filters.sort, filters.descending),
            (SortKey::Detections, true)
        );
        assert_eq!(filters.group_by, GroupBy::Entity);
    }

    #[test]
    fn the_query_string_round_trips() {
        let given = pairs(&[
            ("from", "2026-12-01"),
            ("to", "2026-12-02"),
            ("goal", "6f1c1d3e-8a47-4b3e-9b8e-0a8f3c1f2a11"),
            ("model_version", "v2 beta&1"),
            ("model_version", ""),
            ("model_version", "v3"),
            ("group_by", "category"),
            ("sort", "model_version"),
        ]);
        let filters = Filters::parse(&given, day("2026-12-03")).expect("valid");
        assert_eq!(filters.model_versions, ["v2 beta&1", "v3"]);
        assert!(!filters.descending, "text sorts A to Z first");
        let query = filters.query(SortKey::Value, true);
        assert!(
            query.contains("model_version=v2%20beta%261&model_version=v3"),
            "{query}"
        );
        let decoded = actix_web::web::Query::<Vec<(String, String)>>::from_query(&query)
            .map(actix_web::web::Query::into_inner)
            .unwrap_or_default();
        let again = Filters::parse(&decoded, day("2026-12-03")).expect("valid");
        assert_eq!(
            again,
            Filters {
                sort: SortKey::Value,
                descending: true,
                ..filters
            }
        );
    }

    #[test]
    fn every_problem_is_reported_and_the_values_kept() {
        let list = [
            ("from", "yesterday"),
            ("to", "2026-13-01"),
            ("goal", "42"),
            ("group_by", "site"),
            ("sort", "colour"),
            ("dir", "up"),
        ];
        assert_eq!(problems(&list).len(), 6, "{:?}", problems(&list));
        let Err(rejected) = Filters::parse(&pairs(&list), day("2026-12-03")) else {
            panic!("invalid");
        };
        let raw = rejected.raw;
        assert_eq!(raw.from, "yesterday");
        assert_eq!(raw.goal, "42");
    }

    #[test]
    fn ranges_are_checked() {
        assert_eq!(
            problems(&[("from", "2026-12-03"), ("to", "2026-12-01")]).len(),
            1
        );
        assert_eq!(
            problems(&[("from", "2025-01-01")]).len(),
            1,
            "over 366 days"
        );
        let one_day = Filters::parse(
            &pairs(&[("from", "2026-12-01"), ("to", "2026-12-01")]),
            day("2026-12-03"),
        )
        .expect("a single day");
        assert_eq!(one_day.days(), [day("2026-12-01")]);
    }

    #[test]
    fn rows_sort_by_the_chosen_column_ties_in_the_api_order() {
        let row = |label: &str, version: &str, detections: i64, value: f64| LabelRow {
            key: (label.to_owned(), Some("e".to_owned()), version.to_owned()),
            detections,
            matched_conversions: 0,
            assisted_conversions: 0,
            conversion_value: value,
            first_detect_time: Utc::now(),
        };
        let mut rows = vec![
            row("a", "v1", 1, 5.0),
            row("b", "v2", 3, 5.0),
            row("c", "v3", 2, 9.0),
        ];
        let mut filters = Filters::parse(&[], day("2026-12-03")).expect("valid");
        filters.sort_rows(&mut rows);
        let order = |rows: &[LabelRow]| rows.iter().map(|r| r.key.0.clone()).collect::<Vec<_>>();
        assert_eq!(order(&rows), ["b", "c", "a"]);
        filters.sort = SortKey::Value;
        filters.sort_rows(&mut rows);
        assert_eq!(
            order(&rows),
            ["c", "b", "a"],
            "equal values keep most detections first"
        );
        filters.sort = SortKey::ModelVersion;
        filters.descending = false;
        filters.sort_rows(&mut rows);
        assert_eq!(order(&rows), ["a", "b", "c"]);
    }
}
