//! The structural pass: checks the located YAML tree against the model's JSON schema (the one
//! `k3sctl schema` prints, so it cannot drift from the types) and reports every unknown key,
//! missing key, unknown enum value and wrongly typed or malformed scalar at once. It also
//! rebuilds the well-formed rest of the document, so semantic rules can still run on it.

mod formats;
mod schema_view;
mod values;
mod walk;

use serde_json::Value;

use super::path::SpecPath;
use super::spans::{Position, SpanTree};
use schema_view::SchemaView;

/// One structural problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Finding {
    /// Where it is in the file.
    pub(super) position: Position,
    /// The document path of the offending node.
    pub(super) path: SpecPath,
    /// What is wrong.
    pub(super) message: String,
    /// What to do about it.
    pub(super) hint: Option<String>,
}

/// The result of the structural pass.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    /// Every problem found, in walk order.
    pub(super) findings: Vec<Finding>,
    /// The document with malformed optional parts removed and malformed required parts replaced
    /// by placeholders; `None` when no placeholder could stand in for a broken required part.
    pub(super) repaired: Option<Value>,
    /// Paths whose value in `repaired` is not what the user wrote (removed, placeholder, or the
    /// valid key a misspelled one most likely meant): rules reading them must not run.
    pub(super) tainted: Vec<SpecPath>,
}

/// Checks `tree`, read from `source`, against `schema` (a draft-07 root schema with
/// `definitions`).
pub(super) fn check(tree: &SpanTree, schema: &Value, source: &str) -> Outcome {
    match tree.root() {
        Some(root) => walk::Walker::new(SchemaView::new(schema), source).run(root),
        None => Outcome::default(),
    }
}

#[cfg(test)]
mod tests;
