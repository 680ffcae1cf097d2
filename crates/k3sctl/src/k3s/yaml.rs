//! YAML emission shared by the renderers: deterministic, plain scalars, ordered top-level keys.

use serde::ser::SerializeMap;

/// Top-level keys in a fixed order, each with a JSON-shaped value (nested maps are sorted).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct OrderedMap(pub Vec<(String, serde_json::Value)>);

impl OrderedMap {
    /// Appends a key.
    pub fn push(&mut self, key: &str, value: impl Into<serde_json::Value>) {
        self.0.push((key.to_string(), value.into()));
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }
}

impl serde::Serialize for OrderedMap {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// The YAML could not be emitted (only for values serde cannot represent).
#[derive(Debug, thiserror::Error)]
#[error("cannot render YAML: {0}")]
pub struct YamlError(String);

/// Renders a value as YAML with plain (never folded) scalars, so long base64 strings and
/// arguments stay on one line.
pub fn to_yaml<T: serde::Serialize>(value: &T) -> Result<String, YamlError> {
    let options = serde_saphyr::ser_options! { prefer_block_scalars: false };
    serde_saphyr::to_string_with_options(value, options).map_err(|e| YamlError(e.to_string()))
}

/// Renders a value as YAML, using literal blocks for multi-line strings (manifests).
pub fn to_yaml_blocks<T: serde::Serialize>(value: &T) -> Result<String, YamlError> {
    let options = serde_saphyr::ser_options! { folded_wrap_chars: usize::MAX };
    serde_saphyr::to_string_with_options(value, options).map_err(|e| YamlError(e.to_string()))
}
