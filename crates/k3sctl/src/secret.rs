//! [`Secret`]: a value that must never reach output, logs, JSON or the local disk.
//!
//! `Debug` and `Display` print a fixed marker, and `Serialize` writes the same marker, so a
//! secret that slips into a struct that is printed or serialized stays hidden. The only way to
//! the value is [`Secret::expose`], which callers use at the one place that needs it (rendering
//! a file for a host, sending it over a channel).

use std::fmt;

use sha2::{Digest, Sha256};

/// What a secret looks like wherever it is shown.
pub const REDACTED: &str = "<redacted>";

/// A secret string (join token, registry password, a rendered file that holds either).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself. Use only where the value must leave the process (a file written to a
    /// host with mode 0600, stdin of a remote command).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Lower-case hex sha256 of the value, to compare with a hash observed on a host without
    /// moving the value. Never print this for short secrets: a hash of a weak password can be
    /// guessed.
    pub fn sha256_hex(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({REDACTED})")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_display_and_json_never_show_the_value() {
        let secret = Secret::new("hunter2-very-secret");
        let shown = format!("{secret} {secret:?} {secret:#?}");
        let json = serde_json::to_string(&vec![secret.clone()]).expect("serializes");
        for text in [shown.as_str(), json.as_str()] {
            assert!(!text.contains("hunter2"), "leaked in {text}");
            assert!(text.contains(REDACTED));
        }
        assert_eq!(secret.expose(), "hunter2-very-secret");
    }

    #[test]
    fn nested_in_a_derived_debug_struct_stays_hidden() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Holder {
            token: Secret,
        }
        let text = format!(
            "{:?}",
            Holder {
                token: Secret::new("K10abc::server:pw")
            }
        );
        assert!(!text.contains("K10abc"));
    }

    #[test]
    fn sha256_matches_known_digest() {
        assert_eq!(
            Secret::new("abc").sha256_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
