//! K3s release assets: names per architecture, the `sha256sum-<arch>.txt` listing, and the
//! download URL templates (`{version}`, `{asset}`, `{arch}`).

use std::fmt;

use super::version::K3sVersion;

/// Default binary URL template (the GitHub releases layout).
pub const DEFAULT_BINARY_URL: &str =
    "https://github.com/k3s-io/k3s/releases/download/{version}/{asset}";
/// Default checksum listing URL template.
pub const DEFAULT_SHA256_URL: &str =
    "https://github.com/k3s-io/k3s/releases/download/{version}/sha256sum-{arch}.txt";

/// A CPU architecture K3s publishes binaries for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    /// x86_64.
    Amd64,
    /// aarch64.
    Arm64,
    /// 32-bit ARM with hardware floating point.
    Arm,
}

/// Errors about releases.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    /// `uname -m` named an architecture K3s has no binary for.
    #[error("architecture `{0}` has no K3s release binary (supported: x86_64, aarch64, armv7l)")]
    UnsupportedArch(String),
    /// The template has a placeholder other than `{version}`, `{asset}`, `{arch}`.
    #[error(
        "URL template `{template}` has an unknown placeholder `{{{name}}}`; use {{version}}, {{asset}} or {{arch}}"
    )]
    UnknownPlaceholder {
        /// The template.
        template: String,
        /// The placeholder name.
        name: String,
    },
    /// The checksum listing has no line for the asset.
    #[error("the checksum listing has no entry for `{0}`")]
    NoChecksum(String),
    /// A checksum line is malformed.
    #[error("checksum listing line {line}: `{text}` is not `<sha256 hex>  <file name>`")]
    BadChecksumLine {
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
}

impl Arch {
    /// Maps `uname -m` (or a Debian/Go arch name) to an architecture.
    pub fn from_uname(machine: &str) -> Result<Self, ReleaseError> {
        match machine.trim() {
            "x86_64" | "amd64" => Ok(Self::Amd64),
            "aarch64" | "arm64" => Ok(Self::Arm64),
            "armhf" | "arm" => Ok(Self::Arm),
            m if m.starts_with("armv7") => Ok(Self::Arm),
            other => Err(ReleaseError::UnsupportedArch(other.to_string())),
        }
    }

    /// The release asset holding the binary.
    pub fn asset(self) -> &'static str {
        match self {
            Self::Amd64 => "k3s",
            Self::Arm64 => "k3s-arm64",
            Self::Arm => "k3s-armhf",
        }
    }

    /// The arch name used in `sha256sum-<arch>.txt` and airgap image tarballs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Amd64 => "amd64",
            Self::Arm64 => "arm64",
            Self::Arm => "arm",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Expands a URL template. `{version}` is URL-encoded (`+` becomes `%2B`).
pub fn expand_url(
    template: &str,
    version: &K3sVersion,
    arch: Arch,
) -> Result<String, ReleaseError> {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        match &after[..end] {
            "version" => out.push_str(&version.to_string().replace('+', "%2B")),
            "asset" => out.push_str(arch.asset()),
            "arch" => out.push_str(arch.name()),
            name => {
                return Err(ReleaseError::UnknownPlaceholder {
                    template: template.to_string(),
                    name: name.to_string(),
                });
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Finds the sha256 of `asset` in a `sha256sum` listing (`<hex>  <name>` or `<hex> *<name>`).
pub fn checksum_for(listing: &str, asset: &str) -> Result<String, ReleaseError> {
    for (index, line) in listing.lines().enumerate() {
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let bad = || ReleaseError::BadChecksumLine {
            line: index + 1,
            text: text.to_string(),
        };
        let (hash, name) = text.split_once(char::is_whitespace).ok_or_else(bad)?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let name = name.trim_start();
        let name = name.strip_prefix('*').unwrap_or(name);
        if name == asset {
            return Ok(hash.to_ascii_lowercase());
        }
    }
    Err(ReleaseError::NoChecksum(asset.to_string()))
}

/// The airgap images tarball file name for an architecture and compression suffix.
pub fn airgap_images_name(arch: Arch, suffix: &str) -> String {
    format!("k3s-airgap-images-{}{suffix}", arch.name())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v() -> K3sVersion {
        "v1.34.3+k3s1".parse().expect("valid")
    }

    #[test]
    fn asset_names_per_arch() {
        let names: Vec<_> = ["x86_64", "aarch64", "armv7l", "armv7hl", "armhf"]
            .iter()
            .map(|m| Arch::from_uname(m).map(|a| (a.asset(), a.name())))
            .collect::<Result<_, _>>()
            .expect("supported");
        assert_eq!(
            names,
            [
                ("k3s", "amd64"),
                ("k3s-arm64", "arm64"),
                ("k3s-armhf", "arm"),
                ("k3s-armhf", "arm"),
                ("k3s-armhf", "arm")
            ]
        );
        assert!(
            Arch::from_uname("riscv64")
                .expect_err("unsupported")
                .to_string()
                .contains("riscv64")
        );
    }

    #[test]
    fn default_templates_expand_to_the_github_layout() {
        assert_eq!(
            expand_url(DEFAULT_BINARY_URL, &v(), Arch::Arm64).expect("expands"),
            "https://github.com/k3s-io/k3s/releases/download/v1.34.3%2Bk3s1/k3s-arm64"
        );
        assert_eq!(
            expand_url(DEFAULT_SHA256_URL, &v(), Arch::Amd64).expect("expands"),
            "https://github.com/k3s-io/k3s/releases/download/v1.34.3%2Bk3s1/sha256sum-amd64.txt"
        );
    }

    #[test]
    fn unknown_placeholder_is_named() {
        let err = expand_url("http://x/{verison}/{asset}", &v(), Arch::Amd64).expect_err("typo");
        assert!(err.to_string().contains("{verison}"), "{err}");
    }

    #[test]
    fn checksum_listing() {
        let listing = format!(
            "{a}  k3s\n{b}  k3s-airgap-images-amd64.tar.zst\n{c} *k3s-arm64\n",
            a = "A".repeat(64),
            b = "b".repeat(64),
            c = "c".repeat(64)
        );
        assert_eq!(
            checksum_for(&listing, "k3s").expect("found"),
            "a".repeat(64)
        );
        assert_eq!(
            checksum_for(&listing, "k3s-arm64").expect("found"),
            "c".repeat(64)
        );
        assert_eq!(
            checksum_for(&listing, "k3s-armhf"),
            Err(ReleaseError::NoChecksum("k3s-armhf".into()))
        );
        assert!(matches!(
            checksum_for("nothex  k3s\n", "k3s"),
            Err(ReleaseError::BadChecksumLine { line: 1, .. })
        ));
    }

    proptest! {
        #[test]
        fn checksum_parse_never_panics(text in "\\PC{0,200}") {
            let _ = checksum_for(&text, "k3s");
        }

        #[test]
        fn expand_never_panics(text in "[a-z{}/:]{0,40}") {
            let _ = expand_url(&text, &v(), Arch::Amd64);
        }
    }
}
