//! Reading a spec file: YAML → [`Cluster`] with located errors, then semantic validation.

use std::path::{Path, PathBuf};

use serde_saphyr::Error as YamlError;

use super::error::{SpecError, SpecErrors};
use super::model::Cluster;
use super::spans::{Position, SpanTree};
use super::sweep::malformed_scalars;
use super::validate::{Issue, ValidationContext, validate};

/// A spec that parsed and passed validation, with what is needed to resolve its relative paths.
#[derive(Debug)]
pub struct LoadedSpec {
    /// The cluster as written.
    pub cluster: Cluster,
    /// The spec file as given.
    pub path: PathBuf,
    /// Directory relative paths in the spec are resolved against.
    pub base_dir: PathBuf,
    /// The user's home directory, for `~` expansion.
    pub home: Option<PathBuf>,
}

/// Reads, parses and validates the spec file at `path`. All problems are returned at once.
pub fn load_file(path: &Path) -> Result<LoadedSpec, SpecErrors> {
    let display = path.display().to_string();
    let bytes = fs_err::read(path).map_err(|error| {
        SpecErrors::single(
            SpecError::whole_file(&display, error.to_string()).with_hint(Some(
                "pass the spec file with -c FILE, or create one with `k3sctl init`".into(),
            )),
        )
    })?;
    let text = String::from_utf8(bytes).map_err(|error| {
        SpecErrors::single(SpecError::whole_file(
            &display,
            format!("the file is not UTF-8 text ({error})"),
        ))
    })?;
    let base_dir = path
        .parent()
        .map(Path::to_path_buf)
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    let context = ValidationContext::from_env(base_dir);
    load_str(&text, &display, &context).map(|cluster| LoadedSpec {
        cluster,
        path: path.to_path_buf(),
        base_dir: context.base_dir,
        home: context.home,
    })
}

/// Parses and validates spec text; `file` names it in errors.
pub fn load_str(
    text: &str,
    file: &str,
    context: &ValidationContext,
) -> Result<Cluster, SpecErrors> {
    let cluster = parse_str(text, file)?;
    let tree = SpanTree::parse(text).unwrap_or_default();
    let issues = validate(&cluster, context);
    match SpecErrors::from_vec(
        issues
            .iter()
            .map(|issue| locate(issue, &tree, text, file))
            .collect(),
    ) {
        Some(errors) => Err(errors),
        None => Ok(cluster),
    }
}

/// Parses spec text into the model without semantic validation (syntax, types, unknown and
/// duplicate keys only).
pub fn parse_str(text: &str, file: &str) -> Result<Cluster, SpecErrors> {
    let options = serde_saphyr::options! {
        with_snippet: false,
        strict_booleans: true,
    };
    serde_saphyr::from_str_with_options::<Cluster>(text, options).map_err(|error| {
        let first = yaml_error(&error, text, file);
        // The typed read stops at the first problem; when the YAML itself is well formed, also
        // report the other malformed values so one run shows them all.
        let mut errors = vec![first.clone()];
        if let Some(tree) = SpanTree::parse(text) {
            for (position, message) in malformed_scalars(&tree) {
                if (position.line, position.column) != (first.line, first.column) {
                    errors.push(SpecError::at(file, text, position, message));
                }
            }
        }
        SpecErrors::from_vec(errors).unwrap_or_else(|| SpecErrors::single(first))
    })
}

fn locate(issue: &Issue, tree: &SpanTree, text: &str, file: &str) -> SpecError {
    let position = tree.locate(&issue.path, issue.target);
    SpecError::at(file, text, position, issue.message.clone())
        .with_hint(issue.hint.clone())
        .with_path(Some(issue.path.to_string()))
}

/// Converts a YAML/serde error into a located [`SpecError`] with a user-facing message.
fn yaml_error(error: &YamlError, text: &str, file: &str) -> SpecError {
    let error = error.without_snippet();
    let position = error
        .location()
        .and_then(|location| Position::from_location(&location))
        .unwrap_or(Position::START);
    let (message, hint) = describe(error);
    SpecError::at(file, text, position, message).with_hint(hint)
}

fn describe(error: &YamlError) -> (String, Option<String>) {
    match error {
        YamlError::SerdeUnknownField {
            field, expected, ..
        } => (
            format!("unknown key `{field}`"),
            Some(suggest(field, expected)),
        ),
        YamlError::SerdeUnknownVariant {
            variant, expected, ..
        } => (
            format!("unknown value `{variant}`"),
            Some(suggest(variant, expected)),
        ),
        YamlError::SerdeMissingField { field, .. } => {
            (format!("missing required key `{field}`"), None)
        }
        YamlError::DuplicateMappingKey { key, .. } => (
            match key {
                Some(key) => format!("duplicate key `{key}`"),
                None => "duplicate key".to_owned(),
            },
            Some("each key may appear only once in a mapping: remove one of them".to_owned()),
        ),
        YamlError::Eof { .. } => (
            "the spec is empty or ends too early".to_owned(),
            Some("run `k3sctl init` for a starter spec".to_owned()),
        ),
        other => (friendlier(plain_message(other)), None),
    }
}

/// The library's user-facing message without its own location suffix.
fn plain_message(error: &YamlError) -> String {
    let message = error.render_with_formatter(&serde_saphyr::UserMessageFormatter);
    let message = match message.rfind(" at line ") {
        Some(index) => &message[..index],
        None => &message,
    };
    message.trim().to_owned()
}

/// Rewrites terse library messages into ones that say what was expected.
fn friendlier(message: String) -> String {
    let rewritten = match message.as_str() {
        "invalid u8" => "expected a whole number from 0 to 255",
        "invalid u16" => "expected a whole number from 0 to 65535",
        "invalid u32" => "expected a whole number from 0 to 4294967295",
        "invalid u64" => "expected a non-negative whole number",
        "expected mapping start" => "expected a mapping (`key: value` lines) here",
        "expected sequence start" => "expected a list (`- item` lines or `[a, b]`) here",
        _ => return message,
    };
    rewritten.to_owned()
}

/// "did you mean `x`?" for the closest candidate, followed by the valid choices.
fn suggest(given: &str, expected: &[&str]) -> String {
    let closest = expected
        .iter()
        .map(|candidate| {
            (
                strsim::jaro_winkler(&given.to_lowercase(), &candidate.to_lowercase()),
                candidate,
            )
        })
        .filter(|(score, _)| *score >= 0.75)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let choices = expected
        .iter()
        .map(|candidate| format!("`{candidate}`"))
        .collect::<Vec<_>>()
        .join(", ");
    match closest {
        Some((_, candidate)) => format!("did you mean `{candidate}`? valid here: {choices}"),
        None => format!("valid here: {choices}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_key() {
        assert!(suggest("tlsSan", &["tlsSans", "disable"]).starts_with("did you mean `tlsSans`?"));
        assert!(suggest("zzz", &["tlsSans", "disable"]).starts_with("valid here:"));
    }
}
