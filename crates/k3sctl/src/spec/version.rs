//! Release channel names (`stable`, `latest`, `testing`, `v1.34`) and the JSON schema of
//! [`K3sVersion`].

use std::fmt;
use std::str::FromStr;

use super::scalar::string_scalar;
use crate::k3s::version::K3sVersion;

// K3sVersion itself lives in `crate::k3s::version` (pure K3s knowledge, with its own
// serde impls); the spec only adds its JSON schema.
impl schemars::JsonSchema for K3sVersion {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "K3sVersion".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A K3s release, vMAJOR.MINOR.PATCH[-rcN]+k3sN, for example v1.34.3+k3s1.",
            "pattern": r"^v[0-9]+\.[0-9]+\.[0-9]+(-rc[0-9]+)?\+k3s[0-9]+$",
        })
    }
}

fn number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if text.len() > 1 && text.starts_with('0') {
        return None;
    }
    text.parse().ok()
}

/// A K3s release channel as served by the channel server (`update.k3s.io`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChannelName {
    /// The `stable` channel.
    Stable,
    /// The `latest` channel.
    Latest,
    /// The `testing` channel.
    Testing,
    /// A minor-version channel such as `v1.34`: the newest release of that minor line.
    Minor(u32, u32),
}

/// Why a string is not a K3s channel name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{input}` is not a K3s channel: expected stable, latest, testing or vMAJOR.MINOR (for example v1.34)"
)]
pub struct ChannelError {
    input: String,
}

impl ChannelName {
    /// The channel's name as the channel server spells it.
    pub fn name(&self) -> String {
        self.to_string()
    }
}

impl FromStr for ChannelName {
    type Err = ChannelError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        match input {
            "stable" => Ok(Self::Stable),
            "latest" => Ok(Self::Latest),
            "testing" => Ok(Self::Testing),
            _ => input
                .strip_prefix('v')
                .and_then(|rest| rest.split_once('.'))
                .and_then(|(major, minor)| Some(Self::Minor(number(major)?, number(minor)?)))
                .ok_or_else(|| ChannelError {
                    input: input.to_owned(),
                }),
        }
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stable => f.write_str("stable"),
            Self::Latest => f.write_str("latest"),
            Self::Testing => f.write_str("testing"),
            Self::Minor(major, minor) => write!(f, "v{major}.{minor}"),
        }
    }
}

string_scalar!(
    ChannelName,
    "K3sChannel",
    "A K3s release channel: stable, latest, testing or vMAJOR.MINOR (for example v1.34).",
    pattern = r"^(stable|latest|testing|v[0-9]+\.[0-9]+)$"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_channels() {
        assert_eq!("stable".parse::<ChannelName>(), Ok(ChannelName::Stable));
        assert_eq!(
            "v1.34".parse::<ChannelName>(),
            Ok(ChannelName::Minor(1, 34))
        );
        assert_eq!(ChannelName::Minor(1, 34).to_string(), "v1.34");
        for bad in ["Stable", "v1", "v1.34.3", "1.34", "edge", "", "v01.2"] {
            assert!(
                bad.parse::<ChannelName>().is_err(),
                "{bad:?} should be rejected"
            );
        }
    }
}
