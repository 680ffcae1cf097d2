//! Located spec errors and their rendering (`file:line:col`, the offending line, a caret).

use std::fmt;

use serde::Serialize;

use super::spans::Position;

/// One problem in a spec file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpecError {
    /// The spec file as given by the user.
    pub file: String,
    /// Line, from 1.
    pub line: u64,
    /// Column, from 1.
    pub column: u64,
    /// What is wrong.
    pub message: String,
    /// What to do about it, when there is something specific to say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The document path of the offending node (`spec.hosts[1].name`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The text of the offending line, for rendering.
    #[serde(skip)]
    pub source_line: Option<String>,
}

/// All problems found in a spec file, in file order. Never empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct SpecErrors {
    errors: Vec<SpecError>,
}

impl SpecError {
    /// An error at `position` of `source`.
    pub fn at(file: &str, source: &str, position: Position, message: impl Into<String>) -> Self {
        let source_line = usize::try_from(position.line)
            .ok()
            .and_then(|line| source.lines().nth(line.saturating_sub(1)))
            .map(str::to_owned);
        Self {
            file: file.to_owned(),
            line: position.line,
            column: position.column,
            message: message.into(),
            hint: None,
            path: None,
            source_line,
        }
    }

    /// An error about the file as a whole (unreadable, not UTF-8).
    pub fn whole_file(file: &str, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            line: 1,
            column: 1,
            message: message.into(),
            hint: None,
            path: None,
            source_line: None,
        }
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }

    /// Records the document path.
    pub fn with_path(mut self, path: Option<String>) -> Self {
        self.path = path;
        self
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        let gutter = self.line.to_string().len();
        let pad = " ".repeat(gutter);
        writeln!(f, "{pad}--> {}:{}:{}", self.file, self.line, self.column)?;
        if let Some(line) = &self.source_line {
            let shown: String = line
                .chars()
                .filter(|c| !c.is_control() || *c == '\t')
                .collect();
            // Keep tabs so the caret lines up with what the terminal shows.
            let lead: String = shown
                .chars()
                .take(usize::try_from(self.column.saturating_sub(1)).unwrap_or(0))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            writeln!(f, "{pad} |")?;
            writeln!(f, "{} | {shown}", self.line)?;
            writeln!(f, "{pad} | {lead}^")?;
        }
        if let Some(hint) = &self.hint {
            writeln!(f, "{pad} = hint: {hint}")?;
        }
        Ok(())
    }
}

impl SpecErrors {
    /// Wraps a non-empty list; `None` when there is nothing to report.
    pub fn from_vec(mut errors: Vec<SpecError>) -> Option<Self> {
        errors.sort_by_key(|error| (error.line, error.column));
        errors.dedup();
        (!errors.is_empty()).then_some(Self { errors })
    }

    /// A single error.
    pub fn single(error: SpecError) -> Self {
        Self {
            errors: vec![error],
        }
    }

    /// The errors, in file order.
    pub fn errors(&self) -> &[SpecError] {
        &self.errors
    }
}

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        let count = self.errors.len();
        write!(
            f,
            "\n{count} error{} found",
            if count == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for SpecErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_location_line_and_caret() {
        let source = "a: 1\nbad: [\n";
        let error = SpecError::at("c.yaml", source, Position { line: 2, column: 6 }, "oops")
            .with_hint(Some("fix it".into()));
        let text = error.to_string();
        assert_eq!(
            text,
            "error: oops\n --> c.yaml:2:6\n  |\n2 | bad: [\n  |      ^\n  = hint: fix it\n"
        );
    }
}
