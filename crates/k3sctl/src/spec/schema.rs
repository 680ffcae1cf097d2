//! The JSON schema of the spec (draft-07, what yaml-language-server reads).

use super::model::Cluster;

/// The spec's JSON schema as a JSON value.
pub fn json_schema() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    generator.into_root_schema_for::<Cluster>().to_value()
}

/// The schema as pretty-printed JSON text with a trailing newline (the checked-in form).
pub fn json_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&json_schema()).unwrap_or_default();
    text.push('\n');
    text
}
