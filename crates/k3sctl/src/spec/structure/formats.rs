//! Checks of string-backed scalar types, keyed by their JSON schema type name (or `format`), so
//! the structural pass can check every CIDR, version, duration, taint and IP wherever the model
//! uses one, and report all malformed values in one run.

use std::net::IpAddr;
use std::str::FromStr;

use crate::k3s::version::K3sVersion;
use crate::spec::duration::Duration;
use crate::spec::net::Cidr;
use crate::spec::taint::Taint;
use crate::spec::version::ChannelName;

type Check = fn(&str) -> Result<(), String>;

fn parses<T: FromStr>(text: &str) -> Result<(), String>
where
    T::Err: std::fmt::Display,
{
    text.parse::<T>()
        .map(|_| ())
        .map_err(|error| error.to_string())
}

fn ip(text: &str) -> Result<(), String> {
    text.parse::<IpAddr>()
        .map(|_| ())
        .map_err(|_| format!("`{text}` is not an IP address"))
}

/// Schema type names of the spec's string scalars (see `string_scalar!`) and their parsers.
const BY_TYPE_NAME: &[(&str, Check)] = &[
    ("K3sVersion", parses::<K3sVersion>),
    ("K3sChannel", parses::<ChannelName>),
    ("Cidr", parses::<Cidr>),
    ("Duration", parses::<Duration>),
    ("Taint", parses::<Taint>),
];

/// Schema `format` values with a parser.
const BY_FORMAT: &[(&str, Check)] = &[("ip", ip)];

/// Checks `text` against the string type named `type_name` or described by `format`; types
/// without a parser accept any text.
pub(super) fn check(
    type_name: Option<&str>,
    format: Option<&str>,
    text: &str,
) -> Result<(), String> {
    let by_name = type_name.and_then(|name| BY_TYPE_NAME.iter().find(|(n, _)| *n == name));
    let by_format = format.and_then(|format| BY_FORMAT.iter().find(|(f, _)| *f == format));
    match by_name.or(by_format) {
        Some((_, check)) => check(text),
        None => Ok(()),
    }
}

/// Whether a string type has a parser (a placeholder `""` would not be a valid value of it).
pub(super) fn is_checked(type_name: Option<&str>, format: Option<&str>) -> bool {
    type_name.is_some_and(|name| BY_TYPE_NAME.iter().any(|(n, _)| *n == name))
        || format.is_some_and(|format| BY_FORMAT.iter().any(|(f, _)| *f == format))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_by_type_name_and_format() {
        assert!(check(Some("Cidr"), None, "10.42.0.0/16").is_ok());
        assert!(check(Some("Cidr"), None, "10.42.0.0/99").is_err());
        assert!(check(Some("K3sVersion"), None, "v1.34+k3s1").is_err());
        assert!(check(Some("Duration"), None, "soon").is_err());
        assert!(check(Some("Taint"), None, "a:Never").is_err());
        assert!(check(None, Some("ip"), "ten").is_err());
        assert!(check(None, Some("ip"), "10.0.0.1").is_ok());
        assert!(check(Some("Host"), None, "anything").is_ok());
        assert!(is_checked(Some("K3sChannel"), None));
        assert!(!is_checked(None, None));
    }
}
