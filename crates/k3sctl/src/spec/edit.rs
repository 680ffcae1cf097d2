//! Rewriting one scalar of a spec file in place: the loader's span tree says where the value
//! starts; only that scalar's characters change, so comments, quoting, layout and every other
//! line stay exactly as the user wrote them.

use super::path::SpecPath;
use super::spans::{Position, SpanTree};

/// Where `spec.k3s` names the release, as found in the file's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionLine {
    /// `spec.k3s.version: <text>` at `position`.
    Version {
        /// The value as written (without quotes).
        text: String,
        /// Where the value starts.
        position: Position,
    },
    /// `spec.k3s.channel: <text>` at `position` (no exact version to rewrite).
    Channel {
        /// The channel name.
        text: String,
        /// Where the value starts.
        position: Position,
    },
}

/// Why a scalar could not be rewritten in place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// The text is not one well-formed YAML document.
    #[error("it is not a well-formed YAML document (any more)")]
    NotYaml,
    /// The path holds no scalar.
    #[error("it has no scalar at {0}")]
    Missing(String),
    /// The value is written in a form this edit does not touch (an alias, a block scalar, a
    /// multi-line or escaped string).
    #[error(
        "{path} at line {line} is not written as a plain or quoted one-line value; change it by \
         hand"
    )]
    Form {
        /// The document path.
        path: String,
        /// Its line.
        line: u64,
    },
}

/// Finds how `spec.k3s` selects the release in `text`.
pub fn version_line(text: &str) -> Result<VersionLine, EditError> {
    let tree = SpanTree::parse(text).ok_or(EditError::NotYaml)?;
    if let Some((_, text, position)) = tree.scalars("spec.k3s.version").into_iter().next() {
        return Ok(VersionLine::Version { text, position });
    }
    if let Some((_, text, position)) = tree.scalars("spec.k3s.channel").into_iter().next() {
        return Ok(VersionLine::Channel { text, position });
    }
    Err(EditError::Missing("spec.k3s.version".into()))
}

/// `text` with the scalar at `path` replaced by `value` (same quoting as before). `value` must
/// be a plain scalar that needs no quoting (a version, a name).
pub fn replace_scalar(text: &str, path: &str, value: &str) -> Result<String, EditError> {
    let tree = SpanTree::parse(text).ok_or(EditError::NotYaml)?;
    let wanted = SpecPath::parse(path);
    let (_, current, position) = tree
        .scalars(path)
        .into_iter()
        .find(|(p, _, _)| *p == wanted)
        .ok_or_else(|| EditError::Missing(path.to_string()))?;
    let form = || EditError::Form {
        path: path.to_string(),
        line: position.line,
    };
    let (start, end) = scalar_range(text, position).ok_or_else(form)?;
    // The characters found must be the value the loader read, quotes aside; anything else
    // (an alias, a block scalar, an escape) is not edited.
    let found = &text[start..end];
    let unquoted = match found.as_bytes().first() {
        Some(b'"') | Some(b'\'') => &found[1..found.len() - 1],
        _ => found,
    };
    if unquoted != current {
        return Err(form());
    }
    let replacement = match found.as_bytes().first() {
        Some(&q @ (b'"' | b'\'')) => format!("{0}{value}{0}", q as char),
        _ => value.to_string(),
    };
    let edited = format!("{}{replacement}{}", &text[..start], &text[end..]);
    // The result must read back with the new value at the same place.
    let check = SpanTree::parse(&edited).ok_or_else(form)?;
    match check
        .scalars(path)
        .into_iter()
        .find(|(p, _, _)| *p == wanted)
    {
        Some((_, now, at)) if now == value && at == position => Ok(edited),
        _ => Err(form()),
    }
}

/// The byte range of the one-line scalar that starts at `position`: a quoted string up to its
/// closing quote, or a plain scalar up to a comment, a flow indicator or the end of the line.
fn scalar_range(text: &str, position: Position) -> Option<(usize, usize)> {
    let line_start: usize = text
        .split_inclusive('\n')
        .take(usize::try_from(position.line).ok()?.checked_sub(1)?)
        .map(str::len)
        .sum();
    let line = text[line_start..].split('\n').next()?;
    let column = usize::try_from(position.column).ok()?.checked_sub(1)?;
    let offset = line.char_indices().nth(column).map(|(i, _)| i)?;
    let rest = &line[offset..];
    let len = match rest.as_bytes().first()? {
        q @ (b'"' | b'\'') => 2 + rest[1..].find(*q as char)?,
        _ => rest
            .find(|c: char| c.is_whitespace() || matches!(c, ',' | ']' | '}' | '#'))
            .unwrap_or(rest.len()),
    };
    (len > 0).then_some((line_start + offset, line_start + offset + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = "# my cluster\napiVersion: k3sctl.io/v1alpha1\nkind: Cluster\nspec:\n  \
                        k3s:\n    # pinned after the last upgrade\n    version: v1.33.1+k3s1   # keep\n  \
                        hosts: []\n";

    #[test]
    fn only_the_version_scalar_changes() {
        let edited = replace_scalar(SPEC, "spec.k3s.version", "v1.34.2+k3s1").expect("edits");
        assert_eq!(edited, SPEC.replace("v1.33.1+k3s1", "v1.34.2+k3s1"));
        assert_eq!(
            version_line(SPEC),
            Ok(VersionLine::Version {
                text: "v1.33.1+k3s1".into(),
                position: Position {
                    line: 7,
                    column: 14
                }
            })
        );
    }

    #[test]
    fn quotes_flow_mappings_and_crlf_are_kept() {
        for (before, after) in [
            (
                "spec:\n  k3s: {version: \"v1.33.1+k3s1\", channelUrl: x}\n",
                "spec:\n  k3s: {version: \"v1.34.2+k3s1\", channelUrl: x}\n",
            ),
            (
                "spec:\n  k3s:\n    version: 'v1.33.1+k3s1'\n",
                "spec:\n  k3s:\n    version: 'v1.34.2+k3s1'\n",
            ),
            (
                "spec:\r\n  k3s:\r\n    version: v1.33.1+k3s1\r\n",
                "spec:\r\n  k3s:\r\n    version: v1.34.2+k3s1\r\n",
            ),
            (
                "spec:\n  k3s:\n    version: v1.33.1+k3s1",
                "spec:\n  k3s:\n    version: v1.34.2+k3s1",
            ),
        ] {
            assert_eq!(
                replace_scalar(before, "spec.k3s.version", "v1.34.2+k3s1").as_deref(),
                Ok(after),
                "{before:?}"
            );
        }
    }

    #[test]
    fn forms_it_does_not_understand_are_refused() {
        let alias = "x: &v v1.33.1+k3s1\nspec:\n  k3s:\n    version: *v\n";
        assert!(matches!(
            replace_scalar(alias, "spec.k3s.version", "v1.34.2+k3s1"),
            Err(EditError::Form { line: 4, .. })
        ));
        // An escape in a double-quoted string: the characters differ from the value.
        let escaped = "spec:\n  k3s:\n    version: \"v1.33.1\\x2bk3s1\"\n";
        assert!(matches!(
            replace_scalar(escaped, "spec.k3s.version", "v1.34.2+k3s1"),
            Err(EditError::Form { line: 3, .. })
        ));
        assert_eq!(
            replace_scalar("spec: [", "spec.k3s.version", "v"),
            Err(EditError::NotYaml)
        );
        assert!(matches!(
            replace_scalar(
                "spec:\n  k3s:\n    channel: stable\n",
                "spec.k3s.version",
                "v"
            ),
            Err(EditError::Missing(_))
        ));
    }

    #[test]
    fn a_block_scalar_has_its_one_content_line_replaced() {
        let block = "spec:\n  k3s:\n    version: >-\n      v1.33.1+k3s1\n";
        assert_eq!(
            replace_scalar(block, "spec.k3s.version", "v1.34.2+k3s1").as_deref(),
            Ok("spec:\n  k3s:\n    version: >-\n      v1.34.2+k3s1\n")
        );
    }

    #[test]
    fn a_channel_is_found_as_such() {
        let text = "spec:\n  k3s:\n    channel: stable\n";
        assert_eq!(
            version_line(text),
            Ok(VersionLine::Channel {
                text: "stable".into(),
                position: Position {
                    line: 3,
                    column: 14
                }
            })
        );
    }
}
