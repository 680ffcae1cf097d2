//! A map from document paths to source locations, built by reading the YAML a second time into a
//! tree of located nodes. Semantic checks report a [`SpecPath`]; this tree turns it into a line
//! and column.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};

use super::path::{Segment, SpecPath};

/// A line and column (both 1-based) in the spec file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Line, from 1.
    pub line: u64,
    /// Column (in characters), from 1.
    pub column: u64,
}

impl Position {
    /// The start of the file, used when nothing better is known.
    pub const START: Position = Position { line: 1, column: 1 };

    pub(crate) fn from_location(location: &Location) -> Option<Self> {
        (location.line() > 0).then(|| Self {
            line: location.line(),
            column: location.column().max(1),
        })
    }
}

/// Located YAML nodes of one document.
#[derive(Debug, Default)]
pub struct SpanTree {
    root: Option<Spanned<Node>>,
}

/// One YAML node of the tree.
#[derive(Debug)]
pub(super) enum Node {
    /// A mapping, entries in file order.
    Map(Vec<Entry>),
    /// A sequence.
    Seq(Vec<Spanned<Node>>),
    /// A scalar, with its text (absent for null) and what YAML resolved it to.
    Scalar(Option<String>, ScalarKind),
}

/// What a plain or quoted YAML scalar resolved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ScalarKind {
    /// `~`, `null` or nothing.
    Null,
    /// `true` or `false`.
    Bool,
    /// A whole number.
    Integer,
    /// A number with a fraction or exponent.
    Float,
    /// Any other text.
    Text,
}

/// One `key: value` entry of a mapping.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) key: Spanned<KeyText>,
    pub(super) value: Spanned<Node>,
}

/// A mapping key as text.
#[derive(Debug)]
pub(super) struct KeyText(pub(super) String);

/// Whether to point at a mapping entry's key or at its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The value node (the default for most checks).
    Value,
    /// The key of the last path segment (for "this key must not be here").
    Key,
}

impl SpanTree {
    /// Reads `text` into a tree; `None` if it is not a single well-formed YAML document.
    pub fn parse(text: &str) -> Option<Self> {
        let options = serde_saphyr::options! { with_snippet: false, strict_booleans: true };
        serde_saphyr::from_str_with_options::<Spanned<Node>>(text, options)
            .ok()
            .map(|root| Self { root: Some(root) })
    }

    /// Like [`SpanTree::parse`], but a repeated mapping key keeps its first entry instead of
    /// failing, so the rest of a document with a duplicate key can still be checked.
    pub(super) fn parse_first_wins(text: &str) -> Option<Self> {
        let options = serde_saphyr::options! {
            with_snippet: false,
            strict_booleans: true,
            duplicate_keys: serde_saphyr::DuplicateKeyPolicy::FirstWins,
        };
        serde_saphyr::from_str_with_options::<Spanned<Node>>(text, options)
            .ok()
            .map(|root| Self { root: Some(root) })
    }

    /// The root node, if the document has one.
    pub(super) fn root(&self) -> Option<&Spanned<Node>> {
        self.root.as_ref()
    }

    /// The location of `path`, or of its deepest existing ancestor when the path does not exist
    /// (a missing key is reported at the mapping that should hold it).
    pub fn locate(&self, path: &SpecPath, target: Target) -> Position {
        let Some(mut node) = self.root.as_ref() else {
            return Position::START;
        };
        let mut best = Position::from_location(&node.referenced).unwrap_or(Position::START);
        let segments = path.segments();
        for (i, segment) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            let next = match (&node.value, segment) {
                (Node::Map(entries), Segment::Key(key)) => entries
                    .iter()
                    .find(|entry| entry.key.value.0 == *key)
                    .map(|entry| {
                        if last && target == Target::Key {
                            best = Position::from_location(&entry.key.referenced).unwrap_or(best);
                        }
                        &entry.value
                    }),
                (Node::Seq(items), Segment::Index(index)) => items.get(*index),
                _ => None,
            };
            let Some(next) = next else { break };
            node = next;
            if !(last && target == Target::Key) {
                best = Position::from_location(&node.referenced).unwrap_or(best);
            }
        }
        best
    }
}

impl SpanTree {
    /// Every scalar whose path matches `pattern`, a dotted path where `[*]` matches any
    /// sequence index (`spec.hosts[*].taints[*]`), with its text and position.
    pub fn scalars(&self, pattern: &str) -> Vec<(SpecPath, String, Position)> {
        let mut found = Vec::new();
        if let Some(root) = &self.root {
            let steps: Vec<&str> = pattern
                .split('.')
                .flat_map(|part| {
                    let (key, rest) = part.split_once('[').unwrap_or((part, ""));
                    std::iter::once(key).chain((!rest.is_empty()).then_some("[*]"))
                })
                .filter(|step| !step.is_empty())
                .collect();
            collect_scalars(root, &steps, SpecPath::root(), &mut found);
        }
        found
    }
}

fn collect_scalars(
    node: &Spanned<Node>,
    steps: &[&str],
    path: SpecPath,
    found: &mut Vec<(SpecPath, String, Position)>,
) {
    let Some((step, rest)) = steps.split_first() else {
        if let Node::Scalar(Some(text), _) = &node.value {
            let position = Position::from_location(&node.referenced).unwrap_or(Position::START);
            found.push((path, text.clone(), position));
        }
        return;
    };
    match (&node.value, *step) {
        (Node::Seq(items), "[*]") => {
            for (i, item) in items.iter().enumerate() {
                collect_scalars(item, rest, path.index(i), found);
            }
        }
        (Node::Map(entries), key) => {
            if let Some(entry) = entries.iter().find(|entry| entry.key.value.0 == key) {
                collect_scalars(&entry.value, rest, path.key(key), found);
            }
        }
        _ => {}
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

macro_rules! scalar_visits {
    ($($method:ident: $ty:ty => $kind:ident),*) => {
        $(fn $method<E: de::Error>(self, value: $ty) -> Result<Self::Value, E> {
            Ok(Node::Scalar(Some(value.to_string()), ScalarKind::$kind))
        })*
    };
}

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }

    scalar_visits!(visit_bool: bool => Bool, visit_i64: i64 => Integer, visit_u64: u64 => Integer,
        visit_i128: i128 => Integer, visit_u128: u128 => Integer, visit_f64: f64 => Float,
        visit_str: &str => Text);

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Node, E> {
        Ok(Node::Scalar(None, ScalarKind::Text))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Scalar(None, ScalarKind::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Scalar(None, ScalarKind::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<KeyText>>()? {
            let value = map.next_value::<Spanned<Node>>()?;
            entries.push(Entry { key, value });
        }
        Ok(Node::Map(entries))
    }
}

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = KeyText;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyText, E> {
        Ok(KeyText(v.to_owned()))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<KeyText, E> {
        Ok(KeyText(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<KeyText, E> {
        Ok(KeyText(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<KeyText, E> {
        Ok(KeyText(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<KeyText, E> {
        Ok(KeyText(v.to_string()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<KeyText, E> {
        Ok(KeyText(String::new()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeyText, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(KeyText(String::new()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyText, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(KeyText(String::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec_path;

    const DOC: &str = "spec:\n  hosts:\n    - name: a\n      address: 10.0.0.1\n    - name: b\n";

    #[test]
    fn locates_values_keys_and_missing_paths() {
        let tree = SpanTree::parse(DOC).expect("parses");
        let at = |line, column| Position { line, column };
        assert_eq!(
            tree.locate(&spec_path!["spec", "hosts", 1usize, "name"], Target::Value),
            at(5, 13)
        );
        assert_eq!(
            tree.locate(&spec_path!["spec", "hosts", 0usize, "address"], Target::Key),
            at(4, 7)
        );
        // A missing key is reported at its would-be parent.
        assert_eq!(
            tree.locate(&spec_path!["spec", "hosts", 1usize, "role"], Target::Value),
            at(5, 7)
        );
    }

    #[test]
    fn finds_scalars_by_pattern() {
        let tree = SpanTree::parse(DOC).expect("parses");
        let names: Vec<(String, String, Position)> = tree
            .scalars("spec.hosts[*].name")
            .into_iter()
            .map(|(path, text, position)| (path.to_string(), text, position))
            .collect();
        assert_eq!(
            names,
            [
                (
                    "spec.hosts[0].name".into(),
                    "a".into(),
                    Position {
                        line: 3,
                        column: 13
                    }
                ),
                (
                    "spec.hosts[1].name".into(),
                    "b".into(),
                    Position {
                        line: 5,
                        column: 13
                    }
                ),
            ]
        );
        assert!(tree.scalars("spec.nothing[*]").is_empty());
    }
}
