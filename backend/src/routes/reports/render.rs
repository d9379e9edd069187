//! The label report as JSON and as CSV: the same rows, the same column order (API.md).

use crate::domain::Timestamp;
use crate::storage::reports::{GroupBy, LabelRow, Totals};
use chrono::SecondsFormat;
use serde::Serialize;

#[derive(Serialize)]
pub struct JsonReport<'a> {
    rows: Vec<JsonRow<'a>>,
    totals: JsonTotals,
}

#[derive(Serialize)]
struct JsonRow<'a> {
    detection_label: &'a str,
    /// `entity_id` or `category`, second as in API.md.
    #[serde(flatten)]
    group: Group<'a>,
    model_version: &'a str,
    detections: i64,
    matched_conversions: i64,
    assisted_conversions: i64,
    conversion_value: f64,
    first_detect_time: Timestamp,
}

#[derive(Serialize)]
enum Group<'a> {
    #[serde(rename = "entity_id")]
    Entity(&'a str),
    /// `null` for detections sent without a category.
    #[serde(rename = "category")]
    Category(Option<&'a str>),
}

#[derive(Serialize)]
struct JsonTotals {
    detections: i64,
    matched_conversions: i64,
    assisted_conversions: i64,
    conversion_value: f64,
}

pub fn json<'a>(rows: &'a [LabelRow], totals: &Totals, group_by: GroupBy) -> JsonReport<'a> {
    JsonReport {
        rows: rows
            .iter()
            .map(|row| {
                let (label, group, model_version) = &row.key;
                JsonRow {
                    detection_label: label,
                    group: match group_by {
                        GroupBy::Entity => Group::Entity(group.as_deref().unwrap_or_default()),
                        GroupBy::Category => Group::Category(group.as_deref()),
                    },
                    model_version,
                    detections: row.detections,
                    matched_conversions: row.matched_conversions,
                    assisted_conversions: row.assisted_conversions,
                    conversion_value: row.conversion_value,
                    first_detect_time: Timestamp::from(row.first_detect_time),
                }
            })
            .collect(),
        totals: JsonTotals {
            detections: totals.detections,
            matched_conversions: totals.matched_conversions,
            assisted_conversions: totals.assisted_conversions,
            conversion_value: totals.conversion_value,
        },
    }
}

/// RFC 4180: a header line, CRLF line ends, a field quoted when it holds a comma, a quote
/// or a line break. Values are written as sent (no spreadsheet-formula escaping), so that
/// the file reads back to exactly the JSON's values. A missing category is an empty field.
pub fn csv(rows: &[LabelRow], group_by: GroupBy) -> String {
    let group = match group_by {
        GroupBy::Entity => "entity_id",
        GroupBy::Category => "category",
    };
    let mut out = format!(
        "detection_label,{group},model_version,detections,matched_conversions,\
         assisted_conversions,conversion_value,first_detect_time\r\n"
    );
    for row in rows {
        let (label, group, model_version) = &row.key;
        let fields = [
            field(label),
            field(group.as_deref().unwrap_or_default()),
            field(model_version),
            row.detections.to_string(),
            row.matched_conversions.to_string(),
            row.assisted_conversions.to_string(),
            // `Display` of f64: the shortest text that reads back to the same number, never
            // an exponent (240.5, 0, 1000000).
            row.conversion_value.to_string(),
            // As the JSON shows it (`Timestamp`): UTC, milliseconds, `Z`.
            Timestamp::from(row.first_detect_time)
                .as_datetime()
                .to_rfc3339_opts(SecondsFormat::Millis, true),
        ];
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out
}

fn field(value: &str) -> String {
    if value.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn row(label: &str, group: Option<&str>, value: f64) -> LabelRow {
        LabelRow {
            key: (label.to_owned(), group.map(str::to_owned), "v3".to_owned()),
            detections: 3,
            matched_conversions: 2,
            assisted_conversions: 1,
            conversion_value: value,
            first_detect_time: DateTime::parse_from_rfc3339("2026-12-01T09:00:00.250Z")
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default(),
        }
    }

    #[test]
    fn csv_quotes_only_what_needs_it() {
        let rows = [
            row("barcode", Some("sku-42"), 240.5),
            row("say \"cheese\"", Some("a,b"), 0.0),
        ];
        assert_eq!(
            csv(&rows, GroupBy::Entity),
            "detection_label,entity_id,model_version,detections,matched_conversions,\
             assisted_conversions,conversion_value,first_detect_time\r\n\
             barcode,sku-42,v3,3,2,1,240.5,2026-12-01T09:00:00.250Z\r\n\
             \"say \"\"cheese\"\"\",\"a,b\",v3,3,2,1,0,2026-12-01T09:00:00.250Z\r\n"
        );
    }

    #[test]
    fn json_rows_carry_the_category_second_and_null_when_absent() {
        let rows = [row("barcode", None, 1.0)];
        let text = serde_json::to_string(&json(&rows, &Totals::default(), GroupBy::Category))
            .unwrap_or_default();
        assert!(
            text.starts_with(
                "{\"rows\":[{\"detection_label\":\"barcode\",\"category\":null,\"model_version\":\"v3\","
            ),
            "{text}"
        );
    }
}
