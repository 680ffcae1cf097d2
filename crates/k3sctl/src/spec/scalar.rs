//! Helpers shared by the string-backed scalar types of the spec (versions, durations, CIDRs,
//! taints): serde through `String` and a JSON schema of `{"type": "string"}` with a pattern.

/// Implements `Serialize`/`Deserialize` through `Display`/`FromStr` and `JsonSchema` as a string
/// with the given description and optional pattern.
macro_rules! string_scalar {
    ($ty:ty, $name:literal, $description:literal $(, pattern = $pattern:literal)?) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl schemars::JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                $name.into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                #[allow(unused_mut)]
                let mut schema = schemars::json_schema!({
                    "type": "string",
                    "description": $description,
                });
                $(schema.insert("pattern".to_owned(), $pattern.into());)?
                schema
            }
        }
    };
}

pub(crate) use string_scalar;
