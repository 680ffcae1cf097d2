//! The error that ends a `k3s server` / `k3s agent` run, logged at fatal level like k3s does.

/// A fatal error with a message that says what failed and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Fatal(pub String);

impl Fatal {
    /// Wraps any displayable error with context.
    pub fn ctx(context: &str, e: impl std::fmt::Display) -> Self {
        Fatal(format!("{context}: {e}"))
    }
}
