//! The facts script: one POSIX shell script that prints everything k3sctl needs to know about a
//! host as tab-separated records, so gathering costs one round trip.
//!
//! Records (one per line, fields separated by a tab, `-` for "none"):
//! `os ID VERSION_ID`, `arch UNAME_M`, `uid N`, `systemd PRESENT RUNNING`, `hostname NAME`,
//! `ipv4 IFACE ADDR/PREFIX`, `clock EPOCH`, `virt CONTAINER`, `kmsg 0|1`, `disk PATH FREE_BYTES`,
//! `file PATH SHA256 MTIME MODE`, `binary PATH SHA256 VERSION_LINE`,
//! `unit NAME LOAD ACTIVE UNIT_FILE_STATE ACTIVE_SINCE_EPOCH`, and `end` last.

use std::path::{Path, PathBuf};

use super::shell::quote_path;

/// What to inspect beyond the basics (OS, arch, systemd, addresses, clock, container, disk).
/// The host layer knows nothing of K3s: callers list the K3s paths and units.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FactsRequest {
    /// Files to hash (absent ones are reported as absent).
    pub files: Vec<PathBuf>,
    /// Directories and file-name patterns (`*` wildcards) whose matches are hashed, e.g.
    /// `("/var/lib/rancher/k3s/server/manifests", "k3sctl-*.yaml")`.
    pub globs: Vec<(PathBuf, String)>,
    /// Executables to hash and ask for `--version` (first line).
    pub binaries: Vec<PathBuf>,
    /// systemd units to inspect.
    pub units: Vec<String>,
    /// Where free disk space matters; the nearest existing ancestor is measured.
    pub disk_path: Option<PathBuf>,
}

/// A pattern the script may splice unquoted: letters, digits, `.`, `_`, `-`, `*` only.
pub fn is_safe_pattern(pattern: &str) -> bool {
    !pattern.is_empty()
        && pattern
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-*".contains(&b))
}

/// A unit name the script may use: `[A-Za-z0-9:_.@-]`.
pub fn is_safe_unit(unit: &str) -> bool {
    !unit.is_empty()
        && unit
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":_.@-".contains(&b))
}

const PRELUDE: &str = r#"export LC_ALL=C
T="$(printf '\t')"
rec() { (IFS="$T"; printf '%s\n' "$*"); }
one() { printf '%s' "$1" | tr '\t\n' '  '; }
os_id=-; os_ver=-
if [ -r /etc/os-release ]; then
  os_id=$(. /etc/os-release; printf '%s' "${ID:--}")
  os_ver=$(. /etc/os-release; printf '%s' "${VERSION_ID:--}")
fi
rec os "$(one "$os_id")" "$(one "$os_ver")"
rec arch "$(uname -m)"
rec uid "$(id -u)"
sd_present=0; sd_running=0
command -v systemctl >/dev/null 2>&1 && sd_present=1
[ -d /run/systemd/system ] && sd_running=1
rec systemd "$sd_present" "$sd_running"
rec hostname "$(one "$(hostname 2>/dev/null || cat /proc/sys/kernel/hostname)")"
if command -v ip >/dev/null 2>&1; then
  ip -4 -o addr show scope global 2>/dev/null | while read -r _ ifc _ addr _; do
    rec ipv4 "$ifc" "$addr"
  done
else
  for a in $(hostname -I 2>/dev/null); do
    case "$a" in *:*) ;; *) rec ipv4 - "$a" ;; esac
  done
fi
rec clock "$(date +%s)"
virt=-
if command -v systemd-detect-virt >/dev/null 2>&1; then
  virt=$(systemd-detect-virt -c 2>/dev/null) || true
  [ -n "$virt" ] || virt=none
fi
rec virt "$(one "$virt")"
if [ -e /dev/kmsg ]; then rec kmsg 1; else rec kmsg 0; fi
file_rec() {
  if [ -f "$1" ]; then
    rec file "$(one "$1")" "$(sha256sum < "$1" | cut -d' ' -f1)" "$(stat -c %Y "$1")" "$(stat -c %a "$1")"
  else
    rec file "$(one "$1")" - - -
  fi
}
bin_rec() {
  if [ -f "$1" ]; then
    v=$(timeout 10 "$1" --version 2>/dev/null | head -n 1) || true
    [ -n "$v" ] || v=-
    rec binary "$(one "$1")" "$(sha256sum < "$1" | cut -d' ' -f1)" "$(one "$v")"
  else
    rec binary "$(one "$1")" - -
  fi
}
unit_rec() {
  if command -v systemctl >/dev/null 2>&1; then
    props="-p LoadState -p ActiveState -p UnitFileState -p ActiveEnterTimestamp"
    out=$(systemctl show --timestamp=unix $props "$1" 2>/dev/null) \
      || out=$(systemctl show $props "$1" 2>/dev/null) || out=
    since=$(prop ActiveEnterTimestamp)
    case "$since" in @*) since=${since#@} ;; *) since= ;; esac
    rec unit "$1" "$(dash "$(prop LoadState)")" "$(dash "$(prop ActiveState)")" \
      "$(dash "$(prop UnitFileState)")" "$(dash "$since")"
  else
    rec unit "$1" - - - -
  fi
}
prop() { printf '%s\n' "$out" | sed -n "s/^$1=//p" | head -n 1; }
dash() { if [ -n "$1" ]; then one "$1"; else printf -; fi; }
"#;

/// The script for `req`. Callers must validate patterns and unit names first
/// ([`is_safe_pattern`], [`is_safe_unit`]); unsafe ones are skipped here.
pub fn facts_script(req: &FactsRequest) -> String {
    let mut s = String::from(PRELUDE);
    if let Some(path) = &req.disk_path {
        s.push_str(&format!(
            "d={}\nwhile [ ! -e \"$d\" ] && [ \"$d\" != / ]; do d=$(dirname \"$d\"); done\n\
             free=$(df -Pk \"$d\" 2>/dev/null | awk 'NR==2 {{print $4}}')\n\
             [ -n \"$free\" ] && rec disk \"$(one \"$d\")\" \"$((free * 1024))\"\n",
            quote_path(path)
        ));
    }
    for f in &req.files {
        s.push_str(&format!("file_rec {}\n", quote_path(f)));
    }
    for (dir, pattern) in &req.globs {
        if !is_safe_pattern(pattern) {
            continue;
        }
        let prefix = quote_path(&Path::new(dir).join(""));
        s.push_str(&format!(
            "for f in {prefix}{pattern}; do [ -e \"$f\" ] && file_rec \"$f\"; done\n"
        ));
    }
    for b in &req.binaries {
        s.push_str(&format!("bin_rec {}\n", quote_path(b)));
    }
    for u in req.units.iter().filter(|u| is_safe_unit(u)) {
        s.push_str(&format!("unit_rec {u}\n"));
    }
    s.push_str("rec end\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_and_units_are_restricted() {
        assert!(is_safe_pattern("k3sctl-*.yaml"));
        assert!(!is_safe_pattern("x;rm -rf /"));
        assert!(!is_safe_pattern("$(id)"));
        assert!(is_safe_unit("k3s-agent.service"));
        assert!(!is_safe_unit("k3s service"));
    }

    #[test]
    fn unsafe_entries_are_left_out() {
        let req = FactsRequest {
            globs: vec![("/d".into(), "$(reboot)".into())],
            units: vec!["a;b".into()],
            ..FactsRequest::default()
        };
        let s = facts_script(&req);
        assert!(!s.contains("reboot"));
        assert!(!s.contains("a;b"));
        assert!(s.ends_with("rec end\n"));
    }
}
