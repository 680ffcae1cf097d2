//! JSON values from YAML scalars: whole numbers checked against an integer schema's range, and
//! free-form nodes converted the way YAML resolved them.

use serde_json::{Number, Value};

use crate::spec::spans::{Node, ScalarKind};

/// The range of whole numbers an integer schema accepts, from its `format` (`uint16`, ...).
pub(super) fn integer_in_range(schema: &Value, text: &str) -> Result<Number, String> {
    let max: Option<u64> = match schema.get("format").and_then(Value::as_str) {
        Some("uint8") => Some(u8::MAX.into()),
        Some("uint16") => Some(u16::MAX.into()),
        Some("uint32") => Some(u32::MAX.into()),
        Some("uint64" | "uint") => Some(u64::MAX),
        _ => None,
    };
    let unsigned = schema.get("minimum").and_then(Value::as_u64).is_some() || max.is_some();
    match (max, text.parse::<u64>(), text.parse::<i64>()) {
        (Some(max), Ok(value), _) if value <= max => Ok(value.into()),
        (Some(u64::MAX), _, _) => Err("expected a non-negative whole number".to_owned()),
        (Some(max), _, _) => Err(format!("expected a whole number from 0 to {max}")),
        (None, Ok(value), _) => Ok(value.into()),
        (None, _, Ok(value)) if !unsigned => Ok(value.into()),
        (None, _, _) => Err("expected a whole number".to_owned()),
    }
}

/// A free-form node (`serverConfig` values) as JSON, scalars typed the way YAML resolved them.
pub(super) fn natural(node: &Node) -> Value {
    match node {
        Node::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|entry| (entry.key.value.0.clone(), natural(&entry.value.value)))
                .collect(),
        ),
        Node::Seq(items) => Value::Array(items.iter().map(|item| natural(&item.value)).collect()),
        Node::Scalar(None, _) => Value::Null,
        Node::Scalar(Some(text), kind) => {
            let number = match kind {
                ScalarKind::Integer => text
                    .parse::<i64>()
                    .map(Number::from)
                    .or_else(|_| text.parse::<u64>().map(Number::from))
                    .ok(),
                ScalarKind::Float => text.parse::<f64>().ok().and_then(Number::from_f64),
                _ => None,
            };
            match (kind, number) {
                (_, Some(number)) => Value::Number(number),
                (ScalarKind::Bool, _) => Value::Bool(text == "true"),
                _ => Value::String(text.clone()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integer_ranges_follow_the_schema_format() {
        let port = json!({"type": "integer", "format": "uint16", "minimum": 0});
        assert_eq!(integer_in_range(&port, "22"), Ok(22.into()));
        assert_eq!(
            integer_in_range(&port, "70000"),
            Err("expected a whole number from 0 to 65535".to_owned())
        );
        assert!(integer_in_range(&port, "-1").is_err());
        assert_eq!(
            integer_in_range(&json!({"type": "integer"}), "-3"),
            Ok((-3).into())
        );
    }

    #[test]
    fn free_form_scalars_keep_their_yaml_type() {
        let scalar = |text: &str, kind| natural(&Node::Scalar(Some(text.to_owned()), kind));
        assert_eq!(scalar("3", ScalarKind::Integer), json!(3));
        assert_eq!(scalar("true", ScalarKind::Bool), json!(true));
        assert_eq!(scalar("0.5", ScalarKind::Float), json!(0.5));
        assert_eq!(scalar("yes", ScalarKind::Text), json!("yes"));
        assert_eq!(natural(&Node::Scalar(None, ScalarKind::Null)), Value::Null);
    }
}
