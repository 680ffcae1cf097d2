//! Node taints (`key[=value]:Effect`) and node labels, as given at registration.

use std::fmt;
use std::str::FromStr;

use super::scalar::string_scalar;

/// What a taint does to pods that do not tolerate it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaintEffect {
    /// `NoSchedule`.
    NoSchedule,
    /// `PreferNoSchedule`.
    PreferNoSchedule,
    /// `NoExecute`.
    NoExecute,
}

/// A node taint written `key[=value]:Effect`, for example `dedicated=infra:NoSchedule`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Taint {
    /// The taint key (a label key).
    pub key: String,
    /// The optional value (a label value).
    pub value: Option<String>,
    /// The effect.
    pub effect: TaintEffect,
}

/// Why a string is not a taint, a label key or a label value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LabelError(String);

impl FromStr for TaintEffect {
    type Err = LabelError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        match input {
            "NoSchedule" => Ok(Self::NoSchedule),
            "PreferNoSchedule" => Ok(Self::PreferNoSchedule),
            "NoExecute" => Ok(Self::NoExecute),
            _ => Err(LabelError(format!(
                "taint effect `{input}` is not one of NoSchedule, PreferNoSchedule, NoExecute"
            ))),
        }
    }
}

impl fmt::Display for TaintEffect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoSchedule => "NoSchedule",
            Self::PreferNoSchedule => "PreferNoSchedule",
            Self::NoExecute => "NoExecute",
        })
    }
}

impl FromStr for Taint {
    type Err = LabelError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let (spec, effect) = input.rsplit_once(':').ok_or_else(|| {
            LabelError(format!(
                "taint `{input}` has no effect: expected key[=value]:Effect"
            ))
        })?;
        let effect = effect.parse()?;
        let (key, value) = match spec.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (spec, None),
        };
        check_label_key(key).map_err(|e| LabelError(format!("taint `{input}`: {e}")))?;
        if let Some(value) = value {
            check_label_value(value).map_err(|e| LabelError(format!("taint `{input}`: {e}")))?;
        }
        Ok(Self {
            key: key.to_owned(),
            value: value.map(str::to_owned),
            effect,
        })
    }
}

impl fmt::Display for Taint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)?;
        if let Some(value) = &self.value {
            write!(f, "={value}")?;
        }
        write!(f, ":{}", self.effect)
    }
}

string_scalar!(
    Taint,
    "Taint",
    "A node taint, key[=value]:Effect with Effect one of NoSchedule, PreferNoSchedule, NoExecute.",
    pattern = r"^[^=:]+(=[^:]*)?:(NoSchedule|PreferNoSchedule|NoExecute)$"
);

/// A DNS-1123 label: lowercase alphanumerics and `-`, starting and ending alphanumeric, ≤ 63.
pub fn is_dns_label(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 63
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}

/// A DNS-1123 subdomain: dot-separated DNS labels, ≤ 253 characters.
pub fn is_dns_subdomain(text: &str) -> bool {
    text.len() <= 253 && text.split('.').all(is_dns_label)
}

/// A Kubernetes "qualified name": alphanumerics, `-`, `_`, `.`, alphanumeric at both ends, ≤ 63.
fn is_qualified_name(text: &str) -> bool {
    let first_last_ok = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
    !text.is_empty()
        && text.len() <= 63
        && first_last_ok(text.as_bytes().first())
        && first_last_ok(text.as_bytes().last())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Checks a label (or taint) key: `[prefix/]name`, prefix a DNS subdomain.
pub fn check_label_key(key: &str) -> Result<(), LabelError> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && !is_dns_subdomain(prefix)
    {
        return Err(LabelError(format!(
            "label key `{key}`: prefix `{prefix}` is not a DNS subdomain (lowercase letters, digits, `-`, `.`)"
        )));
    }
    if !is_qualified_name(name) {
        return Err(LabelError(format!(
            "label key `{key}`: name must be 1-63 characters of letters, digits, `-`, `_`, `.`, starting and ending with a letter or digit"
        )));
    }
    Ok(())
}

/// Checks a label value: empty, or a qualified name.
pub fn check_label_value(value: &str) -> Result<(), LabelError> {
    if value.is_empty() || is_qualified_name(value) {
        Ok(())
    } else {
        Err(LabelError(format!(
            "label value `{value}` must be at most 63 characters of letters, digits, `-`, `_`, `.`, starting and ending with a letter or digit"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_taints() {
        let taint: Taint = "dedicated=infra:NoSchedule".parse().expect("taint");
        assert_eq!(taint.key, "dedicated");
        assert_eq!(taint.value.as_deref(), Some("infra"));
        assert_eq!(taint.effect, TaintEffect::NoSchedule);
        let taint: Taint = "node-role.kubernetes.io/control-plane:NoExecute"
            .parse()
            .expect("taint");
        assert_eq!(taint.value, None);
        assert_eq!(
            taint.to_string(),
            "node-role.kubernetes.io/control-plane:NoExecute"
        );
    }

    #[test]
    fn rejects_bad_taints() {
        for bad in [
            "dedicated=infra",
            "dedicated:Never",
            ":NoSchedule",
            "a b:NoSchedule",
            "k=v v:NoSchedule",
        ] {
            assert!(bad.parse::<Taint>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn checks_labels() {
        assert!(check_label_key("topology.kubernetes.io/zone").is_ok());
        assert!(check_label_key("Zone_1").is_ok());
        assert!(check_label_key("Bad.Prefix/zone").is_err());
        assert!(check_label_key("-zone").is_err());
        assert!(check_label_value("").is_ok());
        assert!(check_label_value("a b").is_err());
        assert!(is_dns_label("k3s-master"));
        assert!(!is_dns_label("K3s"));
    }
}
