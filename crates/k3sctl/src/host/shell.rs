//! Pure builders for the POSIX shell scripts the host edge runs: quoting, privilege wrapping,
//! atomic file writes and reads. Every transport runs the same scripts, so a transport that hops
//! through another host (pct, lxd) only has to carry a script and its stdin.

use std::path::Path;

/// Exit code the read script uses to say "the file does not exist".
pub const ABSENT_EXIT: i32 = 64;
/// Marker the read script prints on stderr next to [`ABSENT_EXIT`].
pub const ABSENT_MARKER: &str = "k3sctl: absent";
/// Exit code the upload script uses for a checksum mismatch.
pub const CHECKSUM_EXIT: i32 = 65;
/// Prefix of the stderr line the upload script prints on a checksum mismatch, followed by the
/// actual sha256.
pub const CHECKSUM_MARKER: &str = "k3sctl: sha256 mismatch: ";

/// Quotes `s` as one word for a POSIX shell.
pub fn quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if safe {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Quotes a path as one word for a POSIX shell (lossy for non-UTF-8 paths).
pub fn quote_path(p: &Path) -> String {
    quote(&p.to_string_lossy())
}

/// The command line that runs `script` with `sh -c`, as root when `sudo` is set.
///
/// Root is reached with `sudo -n` only when the current user is not already root, so hosts without
/// sudo work when connected as root. `sudo -n` never prompts: when a password would be needed it
/// fails with a message [`sudo_needs_password`] recognises.
pub fn wrap(script: &str, sudo: bool) -> String {
    let q = quote(script);
    if !sudo {
        return format!("sh -c {q}");
    }
    // The outer `sh -c` keeps the login shell (which may not be POSIX) out of the `if`.
    let inner = format!(
        "if [ \"$(id -u)\" = 0 ]; then exec sh -c {q}; \
         elif command -v sudo >/dev/null 2>&1; then exec sudo -n sh -c {q}; \
         else echo 'k3sctl: sudo: not installed' >&2; exit 126; fi"
    );
    format!("sh -c {}", quote(&inner))
}

/// Like [`wrap`], bounded on the host by coreutils `timeout` when `limit` is set: the host kills
/// the command (TERM, then KILL 5 s later) one second after the caller gave up waiting, so a
/// timed-out command does not keep running there.
pub fn wrap_bounded(script: &str, sudo: bool, limit: Option<std::time::Duration>) -> String {
    let line = wrap(script, sudo);
    match limit {
        Some(limit) => format!("timeout -k 5 {}s {line}", limit.as_secs() + 1),
        None => line,
    }
}

/// True when stderr shows that `sudo -n` wanted a password.
pub fn sudo_needs_password(stderr: &str) -> bool {
    stderr.lines().any(|l| {
        l.starts_with("sudo:")
            && (l.contains("a password is required")
                || l.contains("a terminal is required")
                || l.contains("no tty present"))
    })
}

/// True when stderr shows that sudo is not installed on the host.
pub fn sudo_missing(stderr: &str) -> bool {
    stderr.contains("k3sctl: sudo: not installed")
}

/// Script that streams stdin into a temporary file beside `remote`, checks its sha256, sets
/// `mode`, and renames it over `remote`. On mismatch it exits [`CHECKSUM_EXIT`] and prints
/// [`CHECKSUM_MARKER`] followed by the actual hash; the target is never touched then.
pub fn atomic_write_script(remote: &Path, mode: u32, expected_sha256: &str) -> String {
    let dst = quote_path(remote);
    let expected = quote(&expected_sha256.to_ascii_lowercase());
    format!(
        r#"set -eu
dst={dst}
tmp="$dst.k3sctl-tmp.$$"
mkdir -p "$(dirname "$dst")"
trap 'rm -f "$tmp"' EXIT
umask 077
cat > "$tmp"
actual=$(sha256sum "$tmp" | cut -d' ' -f1)
if [ "$actual" != {expected} ]; then
  echo "{CHECKSUM_MARKER}$actual" >&2
  exit {CHECKSUM_EXIT}
fi
chmod {mode:o} "$tmp"
mv -f "$tmp" "$dst"
trap - EXIT
"#
    )
}

/// Script that prints the file at `remote`, or exits [`ABSENT_EXIT`] with [`ABSENT_MARKER`] when
/// it does not exist.
pub fn read_script(remote: &Path) -> String {
    let p = quote_path(remote);
    format!(
        "if [ ! -e {p} ]; then echo '{ABSENT_MARKER}' >&2; exit {ABSENT_EXIT}; fi\nexec cat -- {p}\n"
    )
}

/// Script that prints the sha256 of `remote`, or nothing when it does not exist.
pub fn sha256_script(remote: &Path) -> String {
    let p = quote_path(remote);
    format!("if [ -e {p} ]; then sha256sum -- {p} | cut -d' ' -f1; fi\n")
}

/// The last `max_lines` lines of `stderr`, for error messages.
pub fn tail(stderr: &str, max_lines: usize) -> String {
    let lines: Vec<&str> = stderr.trim_end().lines().collect();
    let start = lines.len().saturating_sub(max_lines);
    lines[start..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> std::process::Output {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .expect("sh runs")
    }

    #[test]
    fn quote_leaves_safe_words_and_escapes_the_rest() {
        assert_eq!(quote("/usr/local/bin/k3s"), "/usr/local/bin/k3s");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn quoted_strings_round_trip_through_a_real_shell() {
        for s in [
            "plain",
            "two words",
            "it's",
            "$HOME `id` \"q\"",
            "a\nb",
            "*?[x]",
            "-n",
        ] {
            let out = sh(&format!("printf %s {}", quote(s)));
            assert_eq!(String::from_utf8_lossy(&out.stdout), s, "input {s:?}");
        }
    }

    #[test]
    fn wrap_without_sudo_runs_the_script_as_is() {
        let out = sh(&wrap("echo \"$0\" 'x y'; exit 3", false));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "sh x y\n");
        assert_eq!(out.status.code(), Some(3));
    }

    #[test]
    fn bounded_commands_run_under_timeout() {
        let line = wrap_bounded(
            "echo hi",
            false,
            Some(std::time::Duration::from_millis(2500)),
        );
        assert_eq!(line, "timeout -k 5 3s sh -c 'echo hi'");
        assert_eq!(wrap_bounded("echo hi", false, None), "sh -c 'echo hi'");
        let out = sh(&line);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    }

    #[test]
    fn recognises_sudo_password_prompts() {
        assert!(sudo_needs_password("sudo: a password is required\n"));
        assert!(sudo_needs_password(
            "sudo: a terminal is required to read the password; either use the -S option"
        ));
        assert!(!sudo_needs_password("cat: x: Permission denied"));
        assert!(!sudo_needs_password(
            "echo sudo: a password is required is a line"
        ));
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
        assert_eq!(tail("", 5), "");
    }

    #[test]
    fn atomic_write_script_refuses_a_wrong_hash_and_leaves_the_target() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dst = dir.path().join("sub dir/target");
        fs_err::create_dir_all(dst.parent().expect("parent")).expect("mkdir");
        fs_err::write(&dst, "old").expect("write");
        let script = atomic_write_script(&dst, 0o600, &"0".repeat(64));
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"new")
            .expect("write stdin");
        let out = child.wait_with_output().expect("wait");
        assert_eq!(out.status.code(), Some(CHECKSUM_EXIT));
        assert!(String::from_utf8_lossy(&out.stderr).contains(CHECKSUM_MARKER));
        assert_eq!(fs_err::read_to_string(&dst).expect("read"), "old");
        let leftovers = fs_err::read_dir(dst.parent().expect("parent"))
            .expect("readdir")
            .count();
        assert_eq!(leftovers, 1, "temp file removed");
    }
}
