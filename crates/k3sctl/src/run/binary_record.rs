//! The verified hash of the installed K3s binary, remembered on the host.
//!
//! Hashing a 70 MB binary on every host is most of what a no-op `apply` costs once the ssh
//! connections are up. After an upload (whose sha256 the host has just verified) k3sctl records
//! `<sha256> <size> <mtime> <ctime> <inode>` of the binary; the observation reuses the hash only
//! while all four still match, and hashes the file otherwise. Replacing or editing the binary
//! changes its inode or ctime (which no one can set back), so a stale record is never trusted.
//! The design's "what k3sctl must remember lives on the hosts" rule: no local state.

use crate::host::shell::quote;

/// Where the record lives on a host.
pub const RECORD_PATH: &str = "/var/lib/k3sctl/k3s-binary.sha256";

/// `stat` format of the identity the record is keyed by: size, mtime, ctime, inode.
const STAT_FORMAT: &str = "%s %Y %Z %i";

/// Shell that writes the record for `binary` (just verified to have `sha256`) to `record`,
/// atomically.
pub fn record_script(binary: &str, record: &str, sha256: &str) -> String {
    let (binary, tmp, record_q) = (
        quote(binary),
        quote(&format!("{record}.tmp")),
        quote(record),
    );
    let sha = quote(sha256);
    format!(
        "set -e\n\
         mkdir -p \"$(dirname {record_q})\"\n\
         printf '%s %s\\n' {sha} \"$(stat -c '{STAT_FORMAT}' {binary})\" > {tmp}\n\
         mv -f {tmp} {record_q}\n"
    )
}

/// Shell that sets `$bh` to the sha256 of `binary`: from `record` when its identity matches,
/// else by hashing the file; `$bst` keeps the identity (`size mtime ctime inode`).
pub fn hash_snippet(binary: &str, record: &str) -> String {
    let (binary, record) = (quote(binary), quote(record));
    format!(
        "bh=; rec=; read -r rec 2>/dev/null < {record} || true\n\
         bst=$(stat -c '{STAT_FORMAT}' {binary})\n\
         if [ -n \"$rec\" ] && [ \"${{rec#* }}\" = \"$bst\" ]; then bh=${{rec%% *}}; fi\n\
         if [ -z \"$bh\" ]; then bh=$(sha256sum {binary} | cut -d' ' -f1); fi\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> String {
        let out = std::process::Command::new("sh")
            .args(["-c", script])
            .output()
            .expect("run sh");
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    #[test]
    fn record_is_used_while_the_binary_is_unchanged_and_ignored_after() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("k3s");
        let record = dir.path().join("state/k3s-binary.sha256");
        fs_err::write(&bin, b"binary v1").expect("write");
        let (bin, record) = (
            bin.to_string_lossy().into_owned(),
            record.to_string_lossy().into_owned(),
        );
        let real = crate::host::hash::sha256_hex(b"binary v1");
        let probe = format!("{}echo \"$bh\"", hash_snippet(&bin, &record));

        // No record: hashed.
        assert_eq!(sh(&probe), real);
        // A record whose identity matches is trusted (a marker hash shows it was used).
        let marker = "f".repeat(64);
        sh(&record_script(&bin, &record, &marker));
        assert_eq!(sh(&probe), marker);
        // A new binary (here another size; in general another ctime or inode): hashed again.
        fs_err::write(&bin, b"binary v2!").expect("rewrite");
        assert_eq!(sh(&probe), crate::host::hash::sha256_hex(b"binary v2!"));
        // A garbled record is ignored.
        fs_err::write(&record, "nonsense").expect("garble");
        assert_eq!(sh(&probe), crate::host::hash::sha256_hex(b"binary v2!"));
    }
}
