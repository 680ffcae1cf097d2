//! K3s release versions (`v1.34.3+k3s1`, `v1.35.0-rc1+k3s1`) and release channels
//! (`stable`, `latest`, `testing`, `v1.34`).

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use super::scalar::string_scalar;

/// A K3s release version: `vMAJOR.MINOR.PATCH[-rcN]+k3sN`.
///
/// Ordered the way K3s releases are: by Kubernetes version, a release candidate before the
/// release it precedes, then by the K3s build number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct K3sVersion {
    /// Kubernetes major version.
    pub major: u32,
    /// Kubernetes minor version.
    pub minor: u32,
    /// Kubernetes patch version.
    pub patch: u32,
    /// Release candidate number (`-rc2` → `Some(2)`), `None` for a final release.
    pub rc: Option<u32>,
    /// K3s build number (`+k3s1` → 1).
    pub k3s: u32,
}

/// Why a string is not a K3s version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{input}` is not a K3s version: expected vMAJOR.MINOR.PATCH+k3sN (for example v1.34.3+k3s1)"
)]
pub struct VersionError {
    input: String,
}

impl K3sVersion {
    /// The `(major, minor)` pair, the unit of K3s upgrade skew rules and of `vX.Y` channels.
    pub fn minor_line(&self) -> (u32, u32) {
        (self.major, self.minor)
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

impl FromStr for K3sVersion {
    type Err = VersionError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let error = || VersionError {
            input: input.to_owned(),
        };
        let rest = input.strip_prefix('v').ok_or_else(error)?;
        let (core, build) = rest.split_once('+').ok_or_else(error)?;
        let k3s = build
            .strip_prefix("k3s")
            .and_then(number)
            .ok_or_else(error)?;
        let (triple, rc) = match core.split_once('-') {
            Some((triple, pre)) => {
                let rc = pre.strip_prefix("rc").and_then(number).ok_or_else(error)?;
                (triple, Some(rc))
            }
            None => (core, None),
        };
        let mut parts = triple.split('.');
        let mut next = || parts.next().and_then(number).ok_or_else(error);
        let (major, minor, patch) = (next()?, next()?, next()?);
        if parts.next().is_some() {
            return Err(error());
        }
        Ok(Self {
            major,
            minor,
            patch,
            rc,
            k3s,
        })
    }
}

impl fmt::Display for K3sVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)?;
        if let Some(rc) = self.rc {
            write!(f, "-rc{rc}")?;
        }
        write!(f, "+k3s{}", self.k3s)
    }
}

impl Ord for K3sVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        // A final release (no rc) sorts after every release candidate of the same version.
        let rc_rank = |v: &Self| v.rc.map_or((1, 0), |n| (0, n));
        (self.major, self.minor, self.patch, rc_rank(self), self.k3s).cmp(&(
            other.major,
            other.minor,
            other.patch,
            rc_rank(other),
            other.k3s,
        ))
    }
}

impl PartialOrd for K3sVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

string_scalar!(
    K3sVersion,
    "K3sVersion",
    "A K3s release, vMAJOR.MINOR.PATCH[-rcN]+k3sN, for example v1.34.3+k3s1.",
    pattern = r"^v[0-9]+\.[0-9]+\.[0-9]+(-rc[0-9]+)?\+k3s[0-9]+$"
);

/// A K3s release channel as served by the channel server (`update.k3s.io`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Channel {
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

impl Channel {
    /// The channel's name as the channel server spells it.
    pub fn name(&self) -> String {
        self.to_string()
    }
}

impl FromStr for Channel {
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

impl fmt::Display for Channel {
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
    Channel,
    "K3sChannel",
    "A K3s release channel: stable, latest, testing or vMAJOR.MINOR (for example v1.34).",
    pattern = r"^(stable|latest|testing|v[0-9]+\.[0-9]+)$"
);

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> K3sVersion {
        text.parse().expect("valid version")
    }

    #[test]
    fn parses_and_prints_versions() {
        for text in [
            "v1.34.3+k3s1",
            "v1.35.0-rc2+k3s1",
            "v0.0.0+k3s0",
            "v1.9.10+k3s12",
        ] {
            assert_eq!(v(text).to_string(), text);
        }
        let parsed = v("v1.35.0-rc2+k3s3");
        assert_eq!((parsed.major, parsed.minor, parsed.patch), (1, 35, 0));
        assert_eq!((parsed.rc, parsed.k3s), (Some(2), 3));
    }

    #[test]
    fn rejects_malformed_versions() {
        for text in [
            "",
            "1.34.3+k3s1",
            "v1.34+k3s1",
            "v1.34.3",
            "v1.34.3+k3s",
            "v1.34.3+rke2r1",
            "v1.34.3.1+k3s1",
            "v01.34.3+k3s1",
            "v1.34.3-beta1+k3s1",
            "v1.34.3+k3s1 ",
            "v-1.2.3+k3s1",
        ] {
            assert!(
                text.parse::<K3sVersion>().is_err(),
                "{text:?} should be rejected"
            );
        }
    }

    #[test]
    fn orders_like_k3s_releases() {
        let ordered = [
            "v1.33.9+k3s2",
            "v1.34.0-rc1+k3s1",
            "v1.34.0-rc2+k3s1",
            "v1.34.0+k3s1",
            "v1.34.0+k3s2",
            "v1.34.10+k3s1",
            "v2.0.0+k3s1",
        ];
        for pair in ordered.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn parses_channels() {
        assert_eq!("stable".parse::<Channel>(), Ok(Channel::Stable));
        assert_eq!("v1.34".parse::<Channel>(), Ok(Channel::Minor(1, 34)));
        assert_eq!(Channel::Minor(1, 34).to_string(), "v1.34");
        for bad in ["Stable", "v1", "v1.34.3", "1.34", "edge", ""] {
            assert!(
                bad.parse::<Channel>().is_err(),
                "{bad:?} should be rejected"
            );
        }
    }
}
