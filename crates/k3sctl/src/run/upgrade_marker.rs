//! The upgrade marker: `from=<version> to=<version>` in [`MARKER_PATH`] on the server the API is
//! reached through, present from before its binary is replaced until its turn is over. If K3s
//! does not come back there, the API is gone too, and the next run finds here that this server
//! was mid-upgrade (`ops::upgrade::recover`). Written by the swap's own script (one round trip:
//! [`write_snippet`] runs before anything is swapped), read back with [`UpgradeMarker::parse`].

use crate::host::shell::quote;
use crate::k3s::version::K3sVersion;

/// Where the marker lives on the server.
pub const MARKER_PATH: &str = concat!(crate::k3s::ports::data_dir!(), "/k3sctl-upgrade");

/// Exit code of the swap script when the marker could not be written (nothing was swapped).
pub const MARKER_EXIT: i32 = 66;

/// What the marker records: the release the server ran and the one it is being upgraded to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpgradeMarker {
    /// The release the server ran before its turn.
    pub from: K3sVersion,
    /// The release its turn puts in place.
    pub to: K3sVersion,
}

impl UpgradeMarker {
    /// The marker file's text.
    pub fn render(&self) -> String {
        format!("from={} to={}\n", self.from, self.to)
    }

    /// Pure: the marker in `text`, `None` when it is not one k3sctl wrote.
    pub fn parse(text: &str) -> Option<Self> {
        let mut from = None;
        let mut to = None;
        for word in text.split_whitespace() {
            match word.split_once('=') {
                Some(("from", v)) => from = v.parse().ok(),
                Some(("to", v)) => to = v.parse().ok(),
                _ => {}
            }
        }
        Some(Self {
            from: from?,
            to: to?,
        })
    }
}

/// Shell that writes `marker` to `path` atomically (temporary file, then rename; mode 0644) and
/// exits [`MARKER_EXIT`] when it cannot, so that the lines after it (the binary swap) never run
/// without the marker in place.
pub fn write_snippet(path: &str, marker: &UpgradeMarker) -> String {
    let (path_q, tmp) = (quote(path), quote(&format!("{path}.k3sctl-tmp")));
    format!(
        "{{ mkdir -p \"$(dirname {path_q})\" && printf '%s' {text} > {tmp} && chmod 644 {tmp} \
         && mv -f {tmp} {path_q}; }} || {{ rm -f {tmp}; \
         echo 'k3sctl: cannot write the upgrade marker {path}' >&2; exit {MARKER_EXIT}; }}\n",
        text = quote(&marker.render()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker() -> UpgradeMarker {
        UpgradeMarker {
            from: "v1.34.3+k3s1".parse().expect("version"),
            to: "v1.34.4+k3s1".parse().expect("version"),
        }
    }

    #[test]
    fn the_marker_reads_back_what_it_wrote() {
        assert_eq!(marker().render(), "from=v1.34.3+k3s1 to=v1.34.4+k3s1\n");
        assert_eq!(UpgradeMarker::parse(&marker().render()), Some(marker()));
        assert_eq!(UpgradeMarker::parse("garbage"), None);
        assert_eq!(UpgradeMarker::parse("from=v1.34.3+k3s1\n"), None);
    }

    #[test]
    fn the_snippet_writes_the_marker_or_stops_the_script() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k3s/k3sctl-upgrade");
        let script = format!(
            "{}echo after\n",
            write_snippet(&path.display().to_string(), &marker())
        );
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .expect("sh");
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "after\n");
        let text = fs_err::read_to_string(&path).expect("marker");
        assert_eq!(UpgradeMarker::parse(&text), Some(marker()));
        // A directory where the marker's parent should be: the script stops before "after".
        let blocked = dir.path().join("file");
        fs_err::write(&blocked, b"x").expect("write");
        let script = format!(
            "{}echo after\n",
            write_snippet(
                &blocked.join("k3sctl-upgrade").display().to_string(),
                &marker()
            )
        );
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .expect("sh");
        assert_eq!(out.status.code(), Some(MARKER_EXIT));
        assert!(out.stdout.is_empty(), "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("cannot write the upgrade marker"),
            "{out:?}"
        );
    }
}
