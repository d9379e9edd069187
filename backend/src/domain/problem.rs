//! What is wrong with one field of a request, in the shape API.md gives for errors.

use serde::Serialize;

/// One problem with one field: `{"field", "code", "message"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    pub field: String,
    /// A stable, machine-readable code such as `missing_field` or `too_long`.
    pub code: &'static str,
    /// A sentence for people.
    pub message: String,
}

impl FieldProblem {
    pub fn new(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code,
            message: message.into(),
        }
    }
}
