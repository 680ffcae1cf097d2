//! The generic walker: one pass over the located YAML tree, guided by the model's JSON schema.
//! It reports every unknown key, missing required key, unknown enum value, wrongly typed or
//! malformed scalar, and rebuilds the well-formed rest of the document as JSON (bad optional
//! parts dropped, bad required parts replaced by placeholders) with the paths it touched.

use serde_json::{Map, Number, Value};
use serde_saphyr::Spanned;

use super::formats;
use super::schema_view::{Resolved, SchemaView, Shape, properties, required};
use super::values::{integer_in_range, natural};
use super::{Finding, Outcome};
use crate::spec::path::SpecPath;
use crate::spec::spans::{Entry, Node, Position, ScalarKind};
use crate::spec::suggest::{closest, suggest};

pub(super) struct Walker<'a> {
    schema: SchemaView<'a>,
    /// The spec text, for numbers read as text exactly as written (`1.20`, not `1.2`).
    source: &'a str,
    outcome: Outcome,
}

impl<'a> Walker<'a> {
    pub(super) fn new(schema: SchemaView<'a>, source: &'a str) -> Self {
        Self {
            schema,
            source,
            outcome: Outcome::default(),
        }
    }

    pub(super) fn run(mut self, root: &Spanned<Node>) -> Outcome {
        if let Node::Scalar(_, ScalarKind::Null) = root.value {
            // An empty document: the typed read's "ends too early" says it all.
            return self.outcome;
        }
        self.outcome.repaired = self.walk(root, self.schema.root(), &SpecPath::root());
        self.outcome
    }

    fn report(&mut self, at: Position, path: SpecPath, message: String, hint: Option<String>) {
        self.outcome.tainted.push(path.clone());
        self.outcome.findings.push(Finding {
            position: at,
            path,
            message,
            hint,
        });
    }

    /// Checks `node` against `schema`; the node as JSON when it is well formed.
    fn walk(&mut self, node: &Spanned<Node>, schema: &'a Value, path: &SpecPath) -> Option<Value> {
        let resolved = self.schema.resolve(schema);
        match self.schema.shape(resolved.schema) {
            Shape::Any => Some(natural(&node.value)),
            Shape::Nullable(inner) => match &node.value {
                Node::Scalar(_, ScalarKind::Null) => Some(Value::Null),
                _ => self.walk(node, inner, path),
            },
            Shape::Variants(branches) => self.variant(node, &branches, path),
            Shape::Typed { kind, nullable } => match &node.value {
                Node::Scalar(_, ScalarKind::Null) if nullable => Some(Value::Null),
                _ => self.typed(node, kind, resolved, path),
            },
        }
    }

    fn typed(
        &mut self,
        node: &Spanned<Node>,
        kind: &str,
        resolved: Resolved<'a>,
        path: &SpecPath,
    ) -> Option<Value> {
        let at = position(node);
        let wrong = |expected: &str| format!("expected {expected} here");
        match (kind, &node.value) {
            ("object", Node::Map(entries)) => self.object(at, entries, resolved.schema, path),
            // Like the typed read, a null mapping or list is an empty one.
            ("object", Node::Scalar(_, ScalarKind::Null)) => {
                self.object(at, &[], resolved.schema, path)
            }
            ("array", Node::Scalar(_, ScalarKind::Null)) => Some(Value::Array(Vec::new())),
            ("object", _) => {
                self.report(
                    at,
                    path.clone(),
                    wrong("a mapping (`key: value` lines)"),
                    None,
                );
                None
            }
            ("array", Node::Seq(items)) => {
                let item_schema = resolved.schema.get("items").unwrap_or(&Value::Bool(true));
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match self.walk(item, item_schema, &path.index(i)) {
                        Some(value) => out.push(value),
                        None => out.push(self.schema.placeholder(item_schema)?),
                    }
                }
                Some(Value::Array(out))
            }
            ("array", _) => {
                self.report(
                    at,
                    path.clone(),
                    wrong("a list (`- item` lines or `[a, b]`)"),
                    None,
                );
                None
            }
            (_, Node::Scalar(text, scalar)) => {
                self.scalar(at, kind, text.as_deref(), *scalar, resolved, path)
            }
            (_, collection) => {
                let what = match kind {
                    "integer" => "a whole number",
                    "boolean" => "true or false",
                    _ => "a single text value",
                };
                let given = match collection {
                    Node::Map(_) => "a mapping",
                    _ => "a list",
                };
                self.report(
                    at,
                    path.clone(),
                    format!("expected {what} here, not {given}"),
                    None,
                );
                None
            }
        }
    }

    fn scalar(
        &mut self,
        at: Position,
        kind: &str,
        text: Option<&str>,
        scalar: ScalarKind,
        resolved: Resolved<'a>,
        path: &SpecPath,
    ) -> Option<Value> {
        let schema = resolved.schema;
        let text = text.unwrap_or_default();
        let problem = match (kind, scalar) {
            (_, ScalarKind::Null) => Some(format!("a value is required here ({kind} expected)")),
            ("boolean", ScalarKind::Bool) => return Some(Value::Bool(text == "true")),
            ("boolean", _) => Some("invalid boolean (true or false expected)".to_owned()),
            // A quoted number is read as a number too.
            ("integer", ScalarKind::Integer | ScalarKind::Text) => {
                match integer_in_range(schema, text) {
                    Ok(number) => return Some(Value::Number(number)),
                    Err(message) => Some(message),
                }
            }
            ("integer", _) => Some(integer_in_range(schema, "x").err().unwrap_or_default()),
            ("number", ScalarKind::Integer | ScalarKind::Float) => {
                return text
                    .parse::<f64>()
                    .ok()
                    .and_then(Number::from_f64)
                    .map(Value::Number);
            }
            ("number", _) => Some("expected a number".to_owned()),
            _ => {
                let format = schema.get("format").and_then(Value::as_str);
                let text = match scalar {
                    ScalarKind::Integer | ScalarKind::Float => written_number(self.source, at),
                    _ => None,
                }
                .unwrap_or(text);
                match formats::check(resolved.type_name, format, text) {
                    Ok(()) => return Some(Value::String(text.to_owned())),
                    Err(message) => Some(message),
                }
            }
        };
        self.report(at, path.clone(), problem.unwrap_or_default(), None);
        None
    }

    fn object(
        &mut self,
        at: Position,
        entries: &[Entry],
        schema: &'a Value,
        path: &SpecPath,
    ) -> Option<Value> {
        let props = properties(schema);
        let extra = schema.get("additionalProperties");
        let mut out = Map::new();
        let mut complete = true;
        // Required keys a misspelled key most likely meant: the unknown-key error covers them.
        let mut meant = Vec::new();
        for entry in entries {
            let key = entry.key.value.0.as_str();
            let child = path.key(key);
            match (props.and_then(|props| props.get(key)), extra) {
                (Some(property), _) => match self.walk(&entry.value, property, &child) {
                    Some(value) => {
                        out.insert(key.to_owned(), value);
                    }
                    None if required(schema).any(|name| name == key) => {
                        match self.schema.placeholder(property) {
                            Some(value) => {
                                out.insert(key.to_owned(), value);
                            }
                            None => complete = false,
                        }
                    }
                    None => {}
                },
                (None, Some(Value::Bool(false))) | (None, None) if props.is_some() => {
                    meant.extend(self.unknown_key(entry, key, props, path));
                }
                (None, Some(values)) if !values.is_boolean() => {
                    if let Some(value) = self.walk(&entry.value, values, &child) {
                        out.insert(key.to_owned(), value);
                    }
                }
                (None, _) => {
                    out.insert(key.to_owned(), natural(&entry.value.value));
                }
            }
        }
        // Like the typed read, point at the mapping's last key (where the mapping was read to its
        // end), or at the mapping itself when it is empty.
        let end = entries
            .last()
            .map_or(at, |entry| position_of(&entry.key.referenced));
        for name in required(schema) {
            if entries.iter().any(|entry| entry.key.value.0 == name) {
                continue;
            }
            if meant.contains(&name) {
                self.outcome.tainted.push(path.key(name));
            } else {
                let message = format!("missing required key `{name}`");
                self.report(end, path.key(name), message, None);
            }
            match props
                .and_then(|props| props.get(name))
                .and_then(|p| self.schema.placeholder(p))
            {
                Some(value) => {
                    out.insert(name.to_owned(), value);
                }
                None => complete = false,
            }
        }
        complete.then_some(Value::Object(out))
    }

    fn unknown_key(
        &mut self,
        entry: &Entry,
        key: &str,
        props: Option<&'a Map<String, Value>>,
        path: &SpecPath,
    ) -> Option<&'a str> {
        let names: Vec<&'a str> = props
            .into_iter()
            .flat_map(|p| p.keys())
            .map(String::as_str)
            .collect();
        let at = position_of(&entry.key.referenced);
        // A near-miss (`tlsSan`) most likely meant the valid key: treat that one as unreliable.
        let meant = closest(key, &names);
        self.outcome.tainted.push(path.key(meant.unwrap_or(key)));
        self.outcome.findings.push(Finding {
            position: at,
            path: path.key(key),
            message: format!("unknown key `{key}`"),
            hint: Some(suggest(key, &names)),
        });
        meant
    }

    /// `oneOf`: unit variants are strings (`const`), data variants single-key mappings.
    fn variant(
        &mut self,
        node: &Spanned<Node>,
        branches: &[&'a Value],
        path: &SpecPath,
    ) -> Option<Value> {
        let branches: Vec<&'a Value> = branches
            .iter()
            .map(|b| self.schema.resolve(b).schema)
            .collect();
        let consts: Vec<&str> = branches
            .iter()
            .filter_map(|b| b.get("const")?.as_str())
            .collect();
        let tags: Vec<&str> = branches
            .iter()
            .filter_map(|b| properties(b)?.keys().next().map(String::as_str))
            .collect();
        let all: Vec<&str> = consts.iter().chain(&tags).copied().collect();
        match &node.value {
            Node::Scalar(Some(text), kind) if *kind != ScalarKind::Null => {
                if consts.contains(&text.as_str()) {
                    return Some(Value::String(text.clone()));
                }
                let message = format!("unknown value `{text}`");
                self.report(
                    position(node),
                    path.clone(),
                    message,
                    Some(suggest(text, &all)),
                );
                None
            }
            Node::Map(entries) if entries.len() == 1 => {
                let tag = entries[0].key.value.0.as_str();
                let branch = branches
                    .iter()
                    .find(|b| properties(b).is_some_and(|p| p.contains_key(tag)));
                match branch {
                    Some(branch) => self.walk(node, branch, path),
                    None => {
                        let at = position_of(&entries[0].key.referenced);
                        let message = format!("unknown value `{tag}`");
                        self.report(at, path.clone(), message, Some(suggest(tag, &all)));
                        None
                    }
                }
            }
            _ => {
                let choices = all
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                self.report(
                    position(node),
                    path.clone(),
                    format!("expected one of {choices} here"),
                    None,
                );
                None
            }
        }
    }
}

/// The number at `at` as written in `source` (YAML hands numbers over already parsed).
fn written_number(source: &str, at: Position) -> Option<&str> {
    let line = source
        .lines()
        .nth(usize::try_from(at.line).ok()?.checked_sub(1)?)?;
    let start = line
        .char_indices()
        .nth(usize::try_from(at.column).ok()?.checked_sub(1)?)?
        .0;
    let rest = &line[start..];
    let end = rest
        .find(|c: char| c.is_whitespace() || matches!(c, ',' | ']' | '}' | '#'))
        .unwrap_or(rest.len());
    Some(&rest[..end]).filter(|written| !written.is_empty())
}

fn position(node: &Spanned<Node>) -> Position {
    position_of(&node.referenced)
}

fn position_of(location: &serde_saphyr::Location) -> Position {
    Position::from_location(location).unwrap_or(Position::START)
}
