//! `/app/audit`: the tenant's audit log for owners, as the API's `GET /v1/audit-log` reads it,
//! with each change shown field by field.

use super::{SignedIn, html, issue_csrf};
use crate::domain::Role;
use crate::error::PageError;
use crate::state::AppState;
use crate::storage::audit::{self, AuditEntry};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use dashboard::{AuditPage, AuditRow, FieldChange};
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/app/audit", web::get().to(show));
}

/// Entries per page.
const PAGE: u64 = 50;

#[derive(Debug, Deserialize)]
struct ShowQuery {
    before: Option<String>,
}

async fn show(
    state: web::Data<AppState>,
    request: HttpRequest,
    member: SignedIn,
    query: web::Query<ShowQuery>,
) -> Result<HttpResponse, PageError> {
    if member.role != Role::Owner {
        return Err(PageError::Forbidden("The audit log is for owners"));
    }
    // A cursor that does not parse names no entry: the newest page, as for none.
    let before = query
        .before
        .as_deref()
        .and_then(|b| Uuid::parse_str(b).ok());
    let entries = audit::list(&state.db, member.caller.tenant(), PAGE, before).await?;
    let older = (entries.len() as u64 == PAGE)
        .then(|| {
            entries
                .last()
                .map(|e| format!("/app/audit?before={}", e.id))
        })
        .flatten();
    let csrf = issue_csrf(&request)?;
    let page = AuditPage {
        chrome: member.chrome(&csrf, "audit"),
        entries: entries.into_iter().map(audit_row).collect(),
        older,
        paged: before.is_some(),
    };
    html(StatusCode::OK, &page, &csrf)
}

fn audit_row(entry: AuditEntry) -> AuditRow {
    let who = match (&entry.actor.name, entry.actor.kind) {
        (Some(name), "api_key") => format!("API key “{name}”"),
        (Some(name), _) => name.clone(),
        (None, "api_key") => "a deleted API key".to_owned(),
        (None, _) => "a former member".to_owned(),
    };
    AuditRow {
        time: entry
            .time
            .as_datetime()
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
        who,
        action: entry.action,
        target: entry.target,
        changes: changes(entry.before.as_ref(), entry.after.as_ref()),
    }
}

/// The fields that differ between `before` and `after`, in the order they first appear.
/// A value that is not an object (or is missing) is shown as a whole under `value`.
fn changes(before: Option<&Value>, after: Option<&Value>) -> Vec<FieldChange> {
    let empty = Map::new();
    let (Some(old), Some(new)) = (as_object(before, &empty), as_object(after, &empty)) else {
        return vec![FieldChange {
            field: "value".to_owned(),
            before: shown(before),
            after: shown(after),
        }];
    };
    let mut fields: Vec<&String> = old.keys().collect();
    fields.extend(new.keys().filter(|k| !old.contains_key(*k)));
    fields
        .into_iter()
        .filter(|field| old.get(*field) != new.get(*field))
        .map(|field| FieldChange {
            field: field.clone(),
            before: shown(old.get(field)),
            after: shown(new.get(field)),
        })
        .collect()
}

/// `value`'s fields, `empty` when there is none, nothing when it is not an object.
fn as_object<'a>(
    value: Option<&'a Value>,
    empty: &'a Map<String, Value>,
) -> Option<&'a Map<String, Value>> {
    match value {
        None | Some(Value::Null) => Some(empty),
        Some(Value::Object(fields)) => Some(fields),
        Some(_) => None,
    }
}

/// A stored value in words: strings bare, lists joined, nothing as a dash.
fn shown(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "–".to_owned(),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| shown(Some(item)))
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_changed_fields_are_listed_and_a_creation_shows_every_field() {
        let before = json!({"name": "Scan", "window_seconds": 60, "active": true});
        let after = json!({"name": "Scan to purchase", "window_seconds": 60, "active": true,
                           "labels": ["barcode", "product"]});
        let found = changes(Some(&before), Some(&after));
        let listed: Vec<(&str, &str, &str)> = found
            .iter()
            .map(|c| (c.field.as_str(), c.before.as_str(), c.after.as_str()))
            .collect();
        assert_eq!(
            listed,
            [
                ("name", "Scan", "Scan to purchase"),
                ("labels", "–", "barcode, product")
            ]
        );
        assert_eq!(changes(None, Some(&json!({"role": "viewer"}))).len(), 1);
        assert_eq!(changes(Some(&json!("x")), None)[0].before, "x");
    }
}
