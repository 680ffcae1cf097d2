//! The record of an adoption on the host: k3sctl writes its own rendering of K3s's files while
//! K3s keeps running, because the effective configuration does not change. The files are then
//! newer than the service's start, which otherwise means "an apply was interrupted before the
//! restart". No local state: the record on the host says which file contents are in effect.
//!
//! The record is written *before* the files (the plan's `Adopt` step comes first), so an
//! adoption interrupted anywhere between its writes is still vouched for: the next run finds
//! the files it wrote explained, writes the rest and restarts nothing. Its lines:
//!
//! ```text
//! <service start, epoch s> <written at, epoch s>
//! set <sha256> <path>     one per start file: the set judged to leave K3s as it runs
//! kept <sha256> <path>    a file an earlier adoption of the same start wrote, still in place
//! ```
//!
//! A record counts only while K3s still runs from the start it names. A record of one line
//! (written by k3sctl before the set existed, after the files) vouches for every file older
//! than its write time.

use std::collections::{BTreeMap, BTreeSet};

use crate::host::shell::quote;

/// Where the record lives on a host.
pub const RECORD_PATH: &str = "/var/lib/k3sctl/adopted";

/// Shell that writes the record for `unit`'s current start, atomically: `set` (path → sha256
/// of the content k3sctl is about to write) and, kept from the record of the same start, the
/// entries whose file still has that content.
pub fn record_script(unit: &str, set: &BTreeMap<String, String>) -> String {
    let record = quote(RECORD_PATH);
    let tmp = quote(&format!("{RECORD_PATH}.tmp"));
    let mut lines = String::new();
    for (path, sha) in set {
        lines.push_str(&format!(
            "  printf 'set %s %s\\n' {} {}\n",
            quote(sha),
            quote(path)
        ));
    }
    format!(
        "set -e\n\
         ts=$(systemctl show -p ExecMainStartTimestamp --value {unit})\n\
         started=$(date -d \"$ts\" +%s)\n\
         mkdir -p \"$(dirname {record})\"\n\
         {{\n\
         \x20 printf '%s %s\\n' \"$started\" \"$(date +%s)\"\n\
         \x20 if [ -s {record} ] && [ \"$(head -n1 {record} | cut -d' ' -f1)\" = \"$started\" ]; then\n\
         \x20   tail -n +2 {record} | while read -r kind sha path; do\n\
         \x20     if [ -f \"$path\" ] && [ \"$(sha256sum \"$path\" | cut -d' ' -f1)\" = \"$sha\" ]; then printf 'kept %s %s\\n' \"$sha\" \"$path\"; fi\n\
         \x20   done\n\
         \x20 fi\n\
         {lines}\
         }} > {tmp}\n\
         mv -f {tmp} {record}\n",
        unit = quote(unit),
    )
}

/// A record as read back (the observation prints it on one line).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// The service start it vouches for.
    pub started: i64,
    /// When it was written.
    pub at: i64,
    /// The set of start files judged to leave K3s as it runs: path → sha256.
    pub set: BTreeMap<String, String>,
    /// Contents an earlier adoption of the same start wrote: `(path, sha256)`.
    pub kept: BTreeSet<(String, String)>,
}

impl Record {
    /// Parses the record's words; `None` when it is not one.
    pub fn parse(text: &str) -> Option<Self> {
        let mut words = text.split_whitespace();
        let started = words.next()?.parse().ok()?;
        let at = words.next()?.parse().ok()?;
        let mut record = Self {
            started,
            at,
            ..Self::default()
        };
        let rest: Vec<&str> = words.collect();
        for entry in rest.chunks(3) {
            match entry {
                ["set", sha, path] => {
                    record.set.insert((*path).to_owned(), (*sha).to_owned());
                }
                ["kept", sha, path] => {
                    record.kept.insert(((*path).to_owned(), (*sha).to_owned()));
                }
                _ => return None,
            }
        }
        Some(record)
    }

    /// Whether the record vouches for `path` having content `sha` while K3s runs.
    pub fn vouches(&self, path: &str, sha: &str) -> bool {
        self.set.get(path).is_some_and(|s| s == sha)
            || self.kept.contains(&(path.to_owned(), sha.to_owned()))
    }
}

/// A file K3s restarts for, as observed: path, modification time, sha256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    /// Path on the host.
    pub path: String,
    /// Modification time, epoch s.
    pub mtime: i64,
    /// Content hash.
    pub sha256: String,
}

/// Whether K3s must restart to use what is on disk: the binary or a file it restarts for
/// changed after the service's start (`started`), unless `record` (when it vouches for that
/// start) explains the file's content.
pub fn restart_pending(
    started: Option<i64>,
    record: Option<&Record>,
    binary_mtime: Option<i64>,
    files: &[Changed],
) -> bool {
    let Some(started) = started else {
        return false;
    };
    let record = record.filter(|r| r.started == started);
    // A one-line record (the old form) vouches for everything written before it.
    let old_form_until = record
        .filter(|r| r.set.is_empty())
        .map(|r| r.at.max(started));
    let after_start = |mtime: i64| mtime > old_form_until.unwrap_or(started);
    // The binary is never in a set: a new binary always needs a restart.
    binary_mtime.is_some_and(after_start)
        || files
            .iter()
            .filter(|f| after_start(f.mtime))
            .any(|f| match record {
                Some(r) if !r.set.is_empty() => !r.vouches(&f.path, &f.sha256),
                _ => true,
            })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(path: &str, mtime: i64, sha: &str) -> Changed {
        Changed {
            path: path.into(),
            mtime,
            sha256: sha.into(),
        }
    }

    #[test]
    fn parses_the_set_and_the_kept_entries() {
        let r = Record::parse("100 160 set aa /etc/a kept bb /etc/b set cc /etc/c ").expect("ok");
        assert_eq!((r.started, r.at), (100, 160));
        assert_eq!(r.set.len(), 2);
        assert!(r.vouches("/etc/a", "aa") && r.vouches("/etc/b", "bb"));
        assert!(!r.vouches("/etc/a", "bb") && !r.vouches("/etc/d", "aa"));
        assert_eq!(Record::parse("garbage"), None);
        assert_eq!(Record::parse("100 160 set aa"), None);
    }

    #[test]
    fn a_record_counts_only_for_the_start_it_vouches_for() {
        let record = Record::parse("100 160 set aa /etc/a").expect("ok");
        let files = [changed("/etc/a", 150, "aa")];
        assert!(!restart_pending(Some(100), Some(&record), None, &files));
        // K3s restarted since: the record says nothing about this start.
        assert!(restart_pending(
            Some(120),
            Some(&record),
            None,
            &[changed("/etc/a", 150, "aa")]
        ));
        assert!(restart_pending(Some(100), None, None, &files));
        assert!(!restart_pending(None, Some(&record), None, &files));
    }

    #[test]
    fn only_the_vouched_contents_are_explained() {
        let record = Record::parse("100 160 set aa /etc/a kept bb /etc/b").expect("ok");
        let ok = |files: &[Changed]| !restart_pending(Some(100), Some(&record), None, files);
        assert!(ok(&[
            changed("/etc/a", 170, "aa"),
            changed("/etc/b", 90, "zz")
        ]));
        assert!(ok(&[changed("/etc/b", 150, "bb")]));
        assert!(!ok(&[changed("/etc/a", 170, "zz")]), "other content");
        assert!(!ok(&[changed("/etc/c", 150, "aa")]), "other file");
        // The binary is never vouched for by a set.
        assert!(restart_pending(Some(100), Some(&record), Some(150), &[]));
    }

    #[test]
    fn a_one_line_record_vouches_for_what_was_written_before_it() {
        let record = Record::parse("100 160\n").expect("ok");
        assert!(!restart_pending(
            Some(100),
            Some(&record),
            Some(150),
            &[changed("/etc/a", 160, "x")]
        ));
        assert!(restart_pending(
            Some(100),
            Some(&record),
            None,
            &[changed("/etc/a", 161, "x")]
        ));
        assert!(restart_pending(Some(100), Some(&record), Some(161), &[]));
    }

    #[test]
    fn script_keeps_entries_still_in_place_and_writes_atomically() {
        let set = BTreeMap::from([("/etc/rancher/k3s/config.yaml".to_owned(), "ab".repeat(32))]);
        let script = record_script("k3s-agent", &set);
        assert!(script.contains("--value k3s-agent)\n"), "{script}");
        assert!(
            script.contains(&format!(
                "set %s %s\\n' {} /etc/rancher/k3s/config.yaml",
                "ab".repeat(32)
            )),
            "{script}"
        );
        assert!(script.contains("printf 'kept %s %s\\n'"), "{script}");
        assert!(
            script.contains(&format!("mv -f {RECORD_PATH}.tmp {RECORD_PATH}")),
            "{script}"
        );
    }
}
