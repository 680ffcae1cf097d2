//! The version this binary claims to be. It lives in a marker slot inside the executable so one
//! build can be stamped with any K3s version (`k3s-sim stamp`), and is read back from
//! /proc/self/exe at run time.

use std::path::Path;
use std::sync::OnceLock;

/// Version reported when the binary was never stamped.
pub const DEFAULT_VERSION: &str = "v1.33.5+k3s1";
/// The Go version line k3s 1.33 prints.
pub const GO_VERSION: &str = "go1.24.6";

const MAGIC_LEN: usize = 24;
const SLOT_LEN: usize = 200;
/// Longest version string the slot holds.
const MAX_VERSION_LEN: usize = 64;
/// Longest start-failure message the slot holds.
const MAX_FAIL_LEN: usize = SLOT_LEN - MAX_VERSION_LEN - 3;
const MASK: u8 = 0xA5;

const fn build_slot(magic: &[u8; MAGIC_LEN], version: &str) -> [u8; MAGIC_LEN + SLOT_LEN] {
    let mut out = [0u8; MAGIC_LEN + SLOT_LEN];
    let mut i = 0;
    while i < MAGIC_LEN {
        out[i] = magic[i];
        i += 1;
    }
    let v = version.as_bytes();
    out[MAGIC_LEN] = v.len() as u8;
    let mut j = 0;
    while j < v.len() {
        out[MAGIC_LEN + 1 + j] = v[j];
        j += 1;
    }
    out
}

const fn mask(magic: &[u8; MAGIC_LEN]) -> [u8; MAGIC_LEN] {
    let mut out = [0u8; MAGIC_LEN];
    let mut i = 0;
    while i < MAGIC_LEN {
        out[i] = magic[i] ^ MASK;
        i += 1;
    }
    out
}

/// The marker slot: magic bytes, a length byte, then the version (NUL padded).
static VERSION_SLOT: [u8; MAGIC_LEN + SLOT_LEN] =
    build_slot(b"k3s-sim/version-slot/v1:", DEFAULT_VERSION);
/// The magic, stored masked so the search needle itself never matches in the binary.
static MASKED_MAGIC: [u8; MAGIC_LEN] = mask(b"k3s-sim/version-slot/v1:");

/// Errors from reading or stamping a version.
#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    /// The version string is not `vX.Y.Z[-rcN]+k3sN`.
    #[error("invalid k3s version {0:?}: expected vMAJOR.MINOR.PATCH+k3sN, e.g. v1.33.5+k3s1")]
    Invalid(String),
    /// The start-failure message does not fit the slot.
    #[error("--fail-start message must be 1-{0} printable characters on one line")]
    BadFailMessage(usize),
    /// The binary has no marker slot.
    #[error("{path}: no version marker found; stamp a k3s-sim binary built from this crate")]
    NoMarker {
        /// The file searched.
        path: String,
    },
    /// I/O on a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

fn needle() -> Vec<u8> {
    let key = std::hint::black_box(MASK);
    MASKED_MAGIC.iter().map(|b| b ^ key).collect()
}

/// Checks a K3s version string: `vMAJOR.MINOR.PATCH[-rcN]+k3sN`.
pub fn validate(version: &str) -> Result<(), VersionError> {
    let bad = || VersionError::Invalid(version.to_string());
    let rest = version.strip_prefix('v').ok_or_else(bad)?;
    let (core, build) = rest.split_once('+').ok_or_else(bad)?;
    let n = build.strip_prefix("k3s").ok_or_else(bad)?;
    if n.is_empty() || !n.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let (nums, pre) = match core.split_once('-') {
        Some((a, b)) => (a, Some(b)),
        None => (core, None),
    };
    let parts: Vec<&str> = nums.split('.').collect();
    if parts.len() != 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(bad());
    }
    if let Some(pre) = pre {
        let ok = pre
            .strip_prefix("rc")
            .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()));
        if !ok {
            return Err(bad());
        }
    }
    if version.len() > MAX_VERSION_LEN {
        return Err(bad());
    }
    Ok(())
}

/// What a binary is stamped with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    /// The K3s version it reports.
    pub version: String,
    /// When set, `server` and `agent` log this at fatal level and exit 1 (a broken release, for
    /// testing how an upgrade handles a release that does not start).
    pub fail_start: Option<String>,
}

impl Stamp {
    /// A working release of `version`.
    pub fn release(version: &str) -> Self {
        Self {
            version: version.to_string(),
            fail_start: None,
        }
    }
}

fn parse_slot(slot: &[u8]) -> Option<Stamp> {
    let len = usize::from(*slot.first()?);
    let bytes = slot.get(1..1 + len)?;
    let v = std::str::from_utf8(bytes).ok()?;
    validate(v).ok()?;
    let flen = usize::from(*slot.get(1 + len)?);
    let fail_start = match flen {
        0 => None,
        n => Some(String::from_utf8_lossy(slot.get(2 + len..2 + len + n)?).to_string()),
    };
    Some(Stamp {
        version: v.to_string(),
        fail_start,
    })
}

fn validate_fail_message(msg: &str) -> Result<(), VersionError> {
    if msg.is_empty() || msg.len() > MAX_FAIL_LEN || msg.chars().any(|c| c.is_control()) {
        return Err(VersionError::BadFailMessage(MAX_FAIL_LEN));
    }
    Ok(())
}

/// Finds the offsets of every marker slot in a binary image.
fn find_markers(image: &[u8]) -> Vec<usize> {
    let needle = needle();
    // memmem is SIMD-accelerated: `k3s --version` scans the whole executable on every call.
    memchr::memmem::find_iter(image, &needle)
        .filter(|i| image.len() >= i + MAGIC_LEN + SLOT_LEN)
        .collect()
}

/// Reads the stamped version from a binary image.
pub fn read_from_image(image: &[u8]) -> Option<Stamp> {
    find_markers(image)
        .into_iter()
        .find_map(|i| parse_slot(&image[i + MAGIC_LEN..i + MAGIC_LEN + SLOT_LEN]))
}

/// The version of this process: read from /proc/self/exe, else the compiled-in default.
pub fn current() -> &'static str {
    &current_stamp().version
}

/// The full stamp of this process (version and optional start failure).
pub fn current_stamp() -> &'static Stamp {
    static CURRENT: OnceLock<Stamp> = OnceLock::new();
    CURRENT.get_or_init(|| {
        fs_err::read("/proc/self/exe")
            .ok()
            .and_then(|img| read_from_image(&img))
            .or_else(|| parse_slot(&std::hint::black_box(&VERSION_SLOT)[MAGIC_LEN..]))
            .unwrap_or_else(|| Stamp::release(DEFAULT_VERSION))
    })
}

/// The short commit id printed next to the version (derived from the version so it is stable).
pub fn commit_for(version: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("k3s-sim {version}").as_bytes());
    hex::encode(&digest[..4])
}

/// The two lines `k3s --version` prints.
pub fn version_text(version: &str) -> String {
    format!(
        "k3s version {version} ({})\ngo version {GO_VERSION}\n",
        commit_for(version)
    )
}

/// Returns a copy of `image` with every marker slot set to `version`.
pub fn stamp_image(
    image: &[u8],
    stamp: &Stamp,
    path_for_errors: &str,
) -> Result<Vec<u8>, VersionError> {
    let version = stamp.version.as_str();
    validate(version)?;
    if let Some(msg) = &stamp.fail_start {
        validate_fail_message(msg)?;
    }
    let markers = find_markers(image);
    if markers.is_empty() {
        return Err(VersionError::NoMarker {
            path: path_for_errors.to_string(),
        });
    }
    let mut out = image.to_vec();
    for i in markers {
        let slot = &mut out[i + MAGIC_LEN..i + MAGIC_LEN + SLOT_LEN];
        slot.fill(0);
        slot[0] = version.len() as u8;
        slot[1..1 + version.len()].copy_from_slice(version.as_bytes());
        if let Some(msg) = &stamp.fail_start {
            let at = 1 + version.len();
            slot[at] = msg.len() as u8;
            slot[at + 1..at + 1 + msg.len()].copy_from_slice(msg.as_bytes());
        }
    }
    Ok(out)
}

/// Writes a copy of the binary at `from` stamped with `version` to `to` (mode 0755, atomic).
pub fn stamp_file(from: &Path, to: &Path, stamp: &Stamp) -> Result<(), VersionError> {
    let io = |p: &Path| {
        let path = p.display().to_string();
        move |source| VersionError::Io { path, source }
    };
    let image = fs_err::read(from).map_err(io(from))?;
    let stamped = stamp_image(&image, stamp, &from.display().to_string())?;
    crate::paths::write_atomic(to, &stamped, 0o755).map_err(io(to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_k3s_versions() {
        for ok in ["v1.33.5+k3s1", "v1.34.0-rc1+k3s2", "v1.2.3+k3s10"] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
        for bad in [
            "1.33.5+k3s1",
            "v1.33+k3s1",
            "v1.33.5",
            "v1.33.5+k3s",
            "v1.33.5-beta+k3s1",
            "v1.x.5+k3s1",
        ] {
            assert!(validate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stamping_rewrites_the_slot() {
        let mut image = b"junk".to_vec();
        image.extend_from_slice(&VERSION_SLOT);
        image.extend_from_slice(b"tail");
        assert_eq!(
            read_from_image(&image),
            Some(Stamp::release(DEFAULT_VERSION))
        );
        let stamped = stamp_image(&image, &Stamp::release("v1.34.1+k3s2"), "img").expect("stamp");
        assert_eq!(stamped.len(), image.len());
        assert_eq!(
            read_from_image(&stamped),
            Some(Stamp::release("v1.34.1+k3s2"))
        );
        assert!(stamp_image(b"nothing here", &Stamp::release("v1.34.1+k3s2"), "img").is_err());
        let broken = Stamp {
            version: "v1.34.2+k3s1".into(),
            fail_start: Some("exec format error".into()),
        };
        let restamped = stamp_image(&stamped, &broken, "img").expect("stamp broken");
        assert_eq!(read_from_image(&restamped), Some(broken));
        let fixed =
            stamp_image(&restamped, &Stamp::release("v1.34.2+k3s1"), "img").expect("restamp");
        assert_eq!(
            read_from_image(&fixed),
            Some(Stamp::release("v1.34.2+k3s1")),
            "restamping clears the failure"
        );
        let too_long = Stamp {
            version: "v1.34.2+k3s1".into(),
            fail_start: Some("x".repeat(200)),
        };
        assert!(stamp_image(&stamped, &too_long, "img").is_err());
    }

    #[test]
    fn version_text_has_two_lines() {
        let text = version_text("v1.33.5+k3s1");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("k3s version v1.33.5+k3s1 ("));
        assert_eq!(lines[1], "go version go1.24.6");
    }
}
