//! K3s release versions: `vMAJOR.MINOR.PATCH[-rcN]+k3sN`, their order, and the upgrade rules
//! (no downgrade, no skipped minor).

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// A K3s release version such as `v1.34.3+k3s1` or `v1.35.0-rc1+k3s1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct K3sVersion {
    /// Kubernetes major version.
    pub major: u32,
    /// Kubernetes minor version.
    pub minor: u32,
    /// Kubernetes patch version.
    pub patch: u32,
    /// Release candidate number; `None` for a final release.
    pub rc: Option<u32>,
    /// The K3s build of that Kubernetes release (`+k3sN`).
    pub k3s: u32,
}

/// Why a string is not a K3s version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a K3s version ({reason}); expected the form v1.34.3+k3s1")]
pub struct VersionParseError {
    /// The text that was parsed.
    pub input: String,
    /// What was wrong with it.
    pub reason: &'static str,
}

impl K3sVersion {
    /// The `vMAJOR.MINOR` line this version belongs to (the name of its channel).
    pub fn minor_line(&self) -> String {
        format!("v{}.{}", self.major, self.minor)
    }

    /// The container-image tag form, with `-` instead of `+` (`v1.34.3-k3s1`).
    pub fn image_tag(&self) -> String {
        self.to_string().replace('+', "-")
    }

    /// Reads the version from `k3s --version` output (`k3s version v1.33.5+k3s1 (abc) ...`).
    pub fn from_version_output(output: &str) -> Result<Self, VersionParseError> {
        let first = output.lines().next().unwrap_or_default();
        let word = first
            .split_whitespace()
            .find(|w| w.starts_with('v') && w.contains('.'))
            .ok_or_else(|| VersionParseError {
                input: first.to_string(),
                reason: "no version word in `k3s --version` output",
            })?;
        word.parse()
    }
}

fn number(input: &str, part: &str, reason: &'static str) -> Result<u32, VersionParseError> {
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VersionParseError {
            input: input.to_string(),
            reason,
        });
    }
    part.parse().map_err(|_| VersionParseError {
        input: input.to_string(),
        reason,
    })
}

impl FromStr for K3sVersion {
    type Err = VersionParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| VersionParseError {
            input: input.to_string(),
            reason,
        };
        let rest = input.trim();
        let rest = rest.strip_prefix('v').unwrap_or(rest);
        // The k3s build suffix: `+k3sN`, or `-k3sN` in image tags.
        let (core, k3s) = match rest.rsplit_once("k3s") {
            Some((head, build)) if head.ends_with('+') || head.ends_with('-') => (
                &head[..head.len() - 1],
                number(input, build, "k3s build is not a number")?,
            ),
            _ => return Err(err("missing the +k3sN suffix")),
        };
        let (numbers, rc) = match core.split_once('-') {
            Some((numbers, pre)) => {
                let n = pre
                    .strip_prefix("rc")
                    .ok_or_else(|| err("pre-release must be rcN"))?;
                (
                    numbers,
                    Some(number(input, n, "rc number is not a number")?),
                )
            }
            None => (core, None),
        };
        let mut parts = numbers.split('.');
        let mut next = |name| number(input, parts.next().unwrap_or_default(), name);
        let major = next("major is not a number")?;
        let minor = next("minor is not a number")?;
        let patch = next("patch is not a number")?;
        if parts.next().is_some() {
            return Err(err("more than three version numbers"));
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
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            // A release candidate comes before the final release of the same numbers.
            .then_with(|| match (self.rc, other.rc) {
                (None, None) => Ordering::Equal,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(a), Some(b)) => a.cmp(&b),
            })
            .then_with(|| self.k3s.cmp(&other.k3s))
    }
}

impl PartialOrd for K3sVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl serde::Serialize for K3sVersion {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for K3sVersion {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What moving a node from one version to another means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Already at the target: nothing to do.
    Same,
    /// A permitted upgrade.
    Upgrade,
}

/// Why a version change is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The target is older than what runs.
    #[error("{target} is older than the running {current}: k3sctl does not downgrade K3s")]
    Downgrade {
        /// What runs now.
        current: K3sVersion,
        /// What was asked for.
        target: K3sVersion,
    },
    /// The target skips at least one minor release.
    #[error(
        "{current} → {target} skips a minor release; Kubernetes supports one minor at a time: \
         upgrade to the latest {intermediate} release first"
    )]
    SkipsMinor {
        /// What runs now.
        current: K3sVersion,
        /// What was asked for.
        target: K3sVersion,
        /// The next minor line to go through (`v1.34`).
        intermediate: String,
    },
    /// A major version change, which K3s has never had.
    #[error("{current} → {target} changes the major version; refusing")]
    MajorChange {
        /// What runs now.
        current: K3sVersion,
        /// What was asked for.
        target: K3sVersion,
    },
}

/// Checks a version change against the upgrade rules.
pub fn check_transition(
    current: K3sVersion,
    target: K3sVersion,
) -> Result<Transition, TransitionError> {
    match target.cmp(&current) {
        Ordering::Equal => Ok(Transition::Same),
        Ordering::Less => Err(TransitionError::Downgrade { current, target }),
        Ordering::Greater if target.major != current.major => {
            Err(TransitionError::MajorChange { current, target })
        }
        Ordering::Greater if target.minor > current.minor + 1 => Err(TransitionError::SkipsMinor {
            current,
            target,
            intermediate: format!("v{}.{}", current.major, current.minor + 1),
        }),
        Ordering::Greater => Ok(Transition::Upgrade),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(text: &str) -> K3sVersion {
        text.parse().expect("valid version")
    }

    #[test]
    fn parses_release_rc_and_image_tag_forms() {
        assert_eq!(
            v("v1.34.3+k3s1"),
            K3sVersion {
                major: 1,
                minor: 34,
                patch: 3,
                rc: None,
                k3s: 1
            }
        );
        assert_eq!(v("v1.35.0-rc2+k3s1").rc, Some(2));
        assert_eq!(v("v1.34.3-k3s2"), v("v1.34.3+k3s2"));
        assert_eq!(v("1.34.3+k3s1"), v("v1.34.3+k3s1"));
        assert_eq!(v("v1.34.3-k3s2").image_tag(), "v1.34.3-k3s2");
    }

    #[test]
    fn rejects_malformed_versions_with_a_reason() {
        for bad in [
            "",
            "v1.34",
            "v1.34.3",
            "v1.34.x+k3s1",
            "v1.34.3+k3s",
            "v1.34.3-beta1+k3s1",
            "v1.34.3.4+k3s1",
            "latest",
        ] {
            let err = bad.parse::<K3sVersion>().expect_err(bad);
            assert!(err.to_string().contains("expected the form"), "{err}");
        }
    }

    #[test]
    fn reads_k3s_version_output() {
        let out = "k3s version v1.33.5+k3s1 (e5f1a8b2)\ngo version go1.24.6\n";
        assert_eq!(
            K3sVersion::from_version_output(out).expect("parses"),
            v("v1.33.5+k3s1")
        );
        assert!(K3sVersion::from_version_output("bash: k3s: not found").is_err());
    }

    #[test]
    fn orders_rc_before_release_and_k3s_builds() {
        let mut list = [
            v("v1.34.3+k3s2"),
            v("v1.34.3+k3s1"),
            v("v1.34.3-rc1+k3s1"),
            v("v1.33.10+k3s1"),
            v("v1.34.3-rc2+k3s1"),
        ];
        list.sort();
        let shown: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "v1.33.10+k3s1",
                "v1.34.3-rc1+k3s1",
                "v1.34.3-rc2+k3s1",
                "v1.34.3+k3s1",
                "v1.34.3+k3s2"
            ]
        );
    }

    #[test]
    fn transition_rules() {
        assert_eq!(
            check_transition(v("v1.33.5+k3s1"), v("v1.33.5+k3s1")),
            Ok(Transition::Same)
        );
        assert_eq!(
            check_transition(v("v1.33.5+k3s1"), v("v1.34.1+k3s1")),
            Ok(Transition::Upgrade)
        );
        assert!(matches!(
            check_transition(v("v1.34.1+k3s1"), v("v1.33.5+k3s1")),
            Err(TransitionError::Downgrade { .. })
        ));
        let err = check_transition(v("v1.32.1+k3s1"), v("v1.34.1+k3s1")).expect_err("skip");
        assert!(
            err.to_string().contains("latest v1.33 release first"),
            "{err}"
        );
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(major in 0u32..3, minor in 0u32..60, patch in 0u32..30,
            rc in proptest::option::of(1u32..9), k3s in 1u32..5)
        {
            let version = K3sVersion { major, minor, patch, rc, k3s };
            prop_assert_eq!(version.to_string().parse::<K3sVersion>(), Ok(version));
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,30}") {
            let _ = text.parse::<K3sVersion>();
        }
    }
}
