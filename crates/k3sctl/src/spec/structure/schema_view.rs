//! Reading the spec's JSON schema (as schemars generates it for the model): following `$ref`s,
//! telling what kind of node a schema wants, and building placeholder values.

use serde_json::{Map, Value};

use super::formats;

/// What a (resolved) schema asks for.
#[derive(Debug)]
pub(super) enum Shape<'a> {
    /// Anything goes (`true`, `{}`, free-form config values).
    Any,
    /// One of several alternatives (`oneOf`): unit variants as `const`, data variants as
    /// single-key objects.
    Variants(Vec<&'a Value>),
    /// `X` or null (`anyOf: [X, {type: null}]`, the shape of `Option<X>`).
    Nullable(&'a Value),
    /// A typed node; `nullable` when `type` also lists `null`.
    Typed {
        /// The main JSON type (`object`, `array`, `string`, `integer`, `boolean`, `number`).
        kind: &'a str,
        /// Whether null is accepted too.
        nullable: bool,
    },
}

/// A schema after `$ref`/single-`allOf` indirections, with the name of the last definition
/// passed through (the Rust type's schema name, such as `Cidr`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Resolved<'a> {
    pub(super) schema: &'a Value,
    pub(super) type_name: Option<&'a str>,
}

/// The root schema, for resolving `#/definitions/...` references.
#[derive(Debug, Clone, Copy)]
pub(super) struct SchemaView<'a> {
    root: &'a Value,
}

impl<'a> SchemaView<'a> {
    pub(super) fn new(root: &'a Value) -> Self {
        Self { root }
    }

    pub(super) fn root(&self) -> &'a Value {
        self.root
    }

    /// Follows `$ref` and single-element `allOf` until a schema with content.
    pub(super) fn resolve(&self, mut schema: &'a Value) -> Resolved<'a> {
        let mut type_name = None;
        // The model has no recursive types; the bound only guards against a broken schema.
        for _ in 0..32 {
            if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
                let name = reference.rsplit('/').next().unwrap_or(reference);
                match self.root.get("definitions").and_then(|defs| defs.get(name)) {
                    Some(target) => {
                        type_name = Some(name);
                        schema = target;
                        continue;
                    }
                    None => break,
                }
            }
            match schema
                .get("allOf")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
            {
                Some([single]) => schema = single,
                _ => break,
            }
        }
        Resolved { schema, type_name }
    }

    /// What `schema` asks for.
    pub(super) fn shape(&self, schema: &'a Value) -> Shape<'a> {
        if let Some(branches) = schema.get("oneOf").and_then(Value::as_array) {
            return Shape::Variants(branches.iter().collect());
        }
        if schema.get("const").is_some() {
            return Shape::Variants(vec![schema]);
        }
        if let Some(branches) = schema.get("anyOf").and_then(Value::as_array) {
            let inner = branches.iter().find(|branch| !is_null_type(branch));
            return match inner {
                Some(inner) => Shape::Nullable(inner),
                None => Shape::Any,
            };
        }
        match schema.get("type") {
            Some(Value::String(kind)) => Shape::Typed {
                kind,
                nullable: false,
            },
            Some(Value::Array(kinds)) => {
                let nullable = kinds.iter().any(|kind| kind == "null");
                match kinds
                    .iter()
                    .filter_map(Value::as_str)
                    .find(|kind| *kind != "null")
                {
                    Some(kind) => Shape::Typed { kind, nullable },
                    None => Shape::Any,
                }
            }
            _ => Shape::Any,
        }
    }

    /// A value of `schema` to stand in for a missing or malformed required one, so the rest of
    /// the document can still be checked; `None` when no neutral value exists (a pattern-checked
    /// string, for example).
    pub(super) fn placeholder(&self, schema: &'a Value) -> Option<Value> {
        let resolved = self.resolve(schema);
        let schema = resolved.schema;
        match self.shape(schema) {
            Shape::Any | Shape::Nullable(_) => Some(Value::Null),
            Shape::Variants(branches) => branches.iter().find_map(|branch| {
                let branch = self.resolve(branch).schema;
                branch
                    .get("const")
                    .cloned()
                    .or_else(|| self.placeholder(branch))
            }),
            Shape::Typed { nullable: true, .. } => Some(Value::Null),
            Shape::Typed { kind, .. } => match kind {
                "string" => {
                    let format = schema.get("format").and_then(Value::as_str);
                    let free = schema.get("pattern").is_none()
                        && !formats::is_checked(resolved.type_name, format);
                    free.then(|| Value::String(String::new()))
                }
                "integer" | "number" => Some(Value::from(0)),
                "boolean" => Some(Value::Bool(false)),
                "array" => Some(Value::Array(Vec::new())),
                "object" => {
                    let mut object = Map::new();
                    for key in required(schema) {
                        let property = properties(schema).and_then(|props| props.get(key))?;
                        object.insert(key.to_owned(), self.placeholder(property)?);
                    }
                    Some(Value::Object(object))
                }
                _ => None,
            },
        }
    }
}

fn is_null_type(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
}

/// The declared properties of an object schema.
pub(super) fn properties(schema: &Value) -> Option<&Map<String, Value>> {
    schema.get("properties").and_then(Value::as_object)
}

/// The required keys of an object schema.
pub(super) fn required(schema: &Value) -> impl Iterator<Item = &str> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}
