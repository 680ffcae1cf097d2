//! Reading a spec file: YAML → [`Cluster`] with located errors, then semantic validation.

use std::path::{Path, PathBuf};

use serde_saphyr::Error as YamlError;

use super::error::{SpecError, SpecErrors};
use super::model::Cluster;
use super::path::SpecPath;
use super::schema::json_schema;
use super::spans::{Position, SpanTree};
use super::structure;
use super::suggest::suggest;
use super::validate::{Issue, ValidationContext, validate, validate_reliable};

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

/// Parses and validates spec text; `file` names it in errors. Every problem is reported: when
/// the spec has structural errors, the semantic rules still run on its well-formed parts.
pub fn load_str(
    text: &str,
    file: &str,
    context: &ValidationContext,
) -> Result<Cluster, SpecErrors> {
    let tree = SpanTree::parse(text);
    match read(text, file, tree.as_ref()) {
        Ok(cluster) => {
            let issues = validate(&cluster, context);
            let tree = tree.unwrap_or_default();
            let errors = issues.iter().map(|issue| locate(issue, &tree, text, file));
            match SpecErrors::from_vec(errors.collect()) {
                Some(errors) => Err(errors),
                None => Ok(cluster),
            }
        }
        Err(failure) => {
            let mut errors = failure.errors;
            if let (Some(partial), Some(tree)) = (failure.partial, &tree) {
                let (cluster, unreliable) = *partial;
                let issues = validate_reliable(&cluster, context, &unreliable);
                errors.extend(issues.iter().map(|issue| locate(issue, tree, text, file)));
            }
            Err(SpecErrors::from_vec(errors).unwrap_or_else(|| {
                SpecErrors::single(SpecError::whole_file(file, "the spec could not be read"))
            }))
        }
    }
}

/// Parses spec text into the model without semantic validation (syntax, types, unknown and
/// duplicate keys only), reporting every such problem.
pub fn parse_str(text: &str, file: &str) -> Result<Cluster, SpecErrors> {
    read(text, file, SpanTree::parse(text).as_ref()).map_err(|failure| {
        SpecErrors::from_vec(failure.errors).unwrap_or_else(|| {
            SpecErrors::single(SpecError::whole_file(file, "the spec could not be read"))
        })
    })
}

/// Why the typed read failed: every structural error, and, when the rest is sound enough, the
/// cluster rebuilt from its well-formed parts with the paths that are not as written.
struct Failure {
    errors: Vec<SpecError>,
    partial: Option<Box<(Cluster, Vec<SpecPath>)>>,
}

/// The typed read; on failure, the structural pass over `tree` finds all the other problems.
fn read(text: &str, file: &str, tree: Option<&SpanTree>) -> Result<Cluster, Failure> {
    let options = serde_saphyr::options! {
        with_snippet: false,
        strict_booleans: true,
    };
    let error = match serde_saphyr::from_str_with_options::<Cluster>(text, options) {
        Ok(cluster) => return Ok(cluster),
        Err(error) => yaml_error(&error, text, file),
    };
    let lenient;
    let tree = match tree {
        Some(tree) => tree,
        None => match SpanTree::parse_first_wins(text) {
            // A duplicate key: check the rest, but which of the two values the user meant is
            // unknown, so no semantic rule runs.
            Some(first_wins) => {
                lenient = first_wins;
                let outcome = structure::check(&lenient, &json_schema(), text);
                let mut errors = findings(&outcome, text, file);
                errors.push(error);
                return Err(Failure {
                    errors,
                    partial: None,
                });
            }
            // Not well-formed YAML: the parser's error is all there is.
            None => {
                return Err(Failure {
                    errors: vec![error],
                    partial: None,
                });
            }
        },
    };
    let outcome = structure::check(tree, &json_schema(), text);
    let mut errors = findings(&outcome, text, file);
    // The structural pass explains the typed read's error when it reports the same spot; if it
    // does not, keep that error and do not trust the rebuilt document for semantic rules.
    let explained = errors
        .iter()
        .any(|found| (found.line, found.column) == (error.line, error.column));
    let partial = if explained {
        outcome
            .repaired
            .and_then(|value| serde_json::from_value::<Cluster>(value).ok())
            .map(|cluster| Box::new((cluster, outcome.tainted)))
    } else {
        errors.push(error);
        None
    };
    Err(Failure { errors, partial })
}

fn findings(outcome: &structure::Outcome, text: &str, file: &str) -> Vec<SpecError> {
    outcome
        .findings
        .iter()
        .map(|finding| {
            SpecError::at(file, text, finding.position, finding.message.clone())
                .with_hint(finding.hint.clone())
                .with_path(Some(finding.path.to_string()))
        })
        .collect()
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
