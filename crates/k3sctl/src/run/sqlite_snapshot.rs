//! Snapshots of a single server's SQLite store (the host side), which K3s does not snapshot itself. K3s's docs
//! (docs.k3s.io/datastore/backup-restore, "Backup and Restore with SQLite"): back up a copy of
//! `server/db` and the server token `server/token` (the token encrypts the bootstrap data kept in
//! the datastore, so a store is only usable with its own token); restore both. The copy is
//! taken with K3s stopped, so SQLite's `state.db`, `-wal` and `-shm` files are consistent.
//!
//! A snapshot is one archive `<name>-<node>-<unix time>.tar.gz` (K3s's naming of etcd
//! snapshots) holding `db/` and `token`, in [`SQLITE_SNAPSHOT_DIR`], beside `server/db` and not
//! inside it: a restore moves `server/db` aside and must not move its own snapshots with it.

use std::time::Duration;

use super::service::{QUICK, start_and_wait};
use super::snapshot::Saved;
use super::step_error::StepError;
use crate::host::{ExecRequest, Transport, shell};
use crate::k3s::ports::DATA_DIR;
pub use crate::plan::restore::{
    SQLITE_SNAPSHOT_DIR, SQLITE_SUFFIX as SUFFIX, sqlite_snapshot_path,
};

/// One SQLite snapshot found on a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteSnapshot {
    /// File name (`<name>-<node>-<unix time>.tar.gz`).
    pub name: String,
    /// Path on the server.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, RFC 3339 UTC.
    pub created: String,
}

/// Pure: the script printing `sqlite=1` when the server keeps its state in SQLite (K3s's
/// `server/db/state.db`, the stand-in's `server/db/state`) and has no etcd data.
pub fn datastore_probe_script() -> String {
    format!(
        "D={DATA_DIR}/server/db\n\
         if [ ! -d \"$D/etcd/member/wal\" ] && {{ [ -e \"$D/state.db\" ] || [ -e \"$D/state\" ]; }}; \
         then echo sqlite=1; fi\n"
    )
}

/// Pure: whether the probe's output says SQLite.
pub fn probe_says_sqlite(out: &str) -> bool {
    out.lines().any(|l| l.trim() == "sqlite=1")
}

/// Pure: the script that stops `unit` (when it runs), archives `server/db` (without etcd
/// snapshot directories and the conversion's backups) and `server/token` into
/// `<dir>/<prefix>-<node>-<unix time>.tar.gz` (written aside, then renamed, mode 0600), and
/// starts the unit again on every way out, also a failure. Prints `saved=<path> <size>`.
pub fn save_script(unit: &str, prefix: &str, node: &str) -> String {
    let base = shell::quote(&format!("{prefix}-{node}-"));
    format!(
        "set -eu\n\
         S={DATA_DIR}/server\n\
         [ -d \"$S/db\" ] || {{ echo \"$S/db not found: no SQLite store on this server\" >&2; exit 3; }}\n\
         [ -f \"$S/token\" ] || {{ echo \"$S/token not found: the store is useless without its token\" >&2; exit 3; }}\n\
         mkdir -p {SQLITE_SNAPSHOT_DIR}\n\
         chmod 700 {SQLITE_SNAPSHOT_DIR}\n\
         was=0\n\
         if systemctl is-active --quiet {unit}; then was=1; fi\n\
         trap 'if [ \"$was\" = 1 ]; then systemctl start {unit}; fi' EXIT\n\
         trap 'exit 1' HUP INT TERM\n\
         systemctl stop {unit}\n\
         f={SQLITE_SNAPSHOT_DIR}/{base}$(date +%s){SUFFIX}\n\
         (umask 077; tar -C \"$S\" -czf \"$f.partial\" --exclude=db/snapshots \
         --exclude='db/sqlite-backup-*' db token)\n\
         sync\n\
         mv \"$f.partial\" \"$f\"\n\
         echo \"saved=$f $(stat -c %s \"$f\")\"\n"
    )
}

/// Pure: the path and size `save_script` printed.
pub fn parse_saved(out: &str) -> Option<(String, u64)> {
    out.lines().find_map(|l| {
        let (path, size) = l.strip_prefix("saved=")?.rsplit_once(' ')?;
        Some((path.to_string(), size.trim().parse().ok()?))
    })
}

/// Pure: the script listing the snapshots: `<size> <RFC 3339 mtime> <path>` a line.
pub fn list_script() -> String {
    format!(
        "for f in {SQLITE_SNAPSHOT_DIR}/*{SUFFIX}; do\n\
         \x20 if [ -f \"$f\" ]; then echo \"$(stat -c %s \"$f\") $(date -u -r \"$f\" +%Y-%m-%dT%H:%M:%SZ) $f\"; fi\n\
         done\n"
    )
}

/// Pure: reads `list_script`'s output, sorted by name.
pub fn parse_list(out: &str) -> Vec<SqliteSnapshot> {
    let mut found: Vec<SqliteSnapshot> = out
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ' ');
            let size = it.next()?.parse().ok()?;
            let created = it.next()?.to_string();
            let path = it.next()?.to_string();
            let name = path.rsplit('/').next()?.to_string();
            Some(SqliteSnapshot {
                name,
                path,
                size,
                created,
            })
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

/// Pure: the Unix time in a snapshot name `<prefix>-<node>-<unix time>.tar.gz`.
pub fn taken_at(name: &str) -> Option<u64> {
    name.strip_suffix(SUFFIX)?.rsplit('-').next()?.parse().ok()
}

/// Pure: the snapshots of `prefix` on `node` that pruning to the newest `retention` removes,
/// oldest first (K3s prunes etcd snapshots by name prefix the same way).
pub fn prune_choice(names: &[String], prefix: &str, node: &str, retention: usize) -> Vec<String> {
    let start = format!("{prefix}-{node}-");
    let mut ours: Vec<(u64, &String)> = names
        .iter()
        .filter(|n| n.starts_with(&start))
        .filter_map(|n| Some((taken_at(n)?, n)))
        .collect();
    ours.sort();
    let drop = ours.len().saturating_sub(retention);
    ours.into_iter()
        .take(drop)
        .map(|(_, n)| n.clone())
        .collect()
}

/// Pure: the observation lines for a restore from `archive`: `sqlite_snapshot=<size> <mtime>`
/// when it is a file, `sqlite_complete=1` when it holds `db/` and `token`, and `token=same`,
/// `token=different` or `token=missing` comparing its token with the server's (never printed).
pub fn observe_lines(archive: &str) -> String {
    let q = shell::quote(archive);
    format!(
        "Q={q}\n\
         if [ -f \"$Q\" ]; then\n\
         \x20 echo \"sqlite_snapshot=$(stat -c '%s %Y' \"$Q\")\"\n\
         \x20 if tar -tzf \"$Q\" 2>/dev/null | grep -q '^db/' && tar -tzf \"$Q\" token >/dev/null 2>&1; then\n\
         \x20   echo sqlite_complete=1\n\
         \x20   if [ ! -e {DATA_DIR}/server/token ]; then echo token=missing;\n\
         \x20   elif tar -xzOf \"$Q\" token | cmp -s - {DATA_DIR}/server/token; then echo token=same;\n\
         \x20   else echo token=different; fi\n\
         \x20 fi\n\
         fi\n"
    )
}

/// Pure: the script that puts the archive's store in place with K3s stopped: the archive is
/// unpacked beside `server/db` first, then the current `server/db` is moved to `aside` (kept;
/// when `aside` already exists, an earlier run of this restore moved it there and the
/// `server/db` now present is a half-done restore or an empty store, which is replaced), the
/// unpacked `db` moved in, and the token written only when the server has none (a different
/// token is refused before this runs). Safe to run again.
pub fn replace_script(unit: &str, archive: &str, aside: &str, id: &str) -> String {
    let q = shell::quote(archive);
    let a = shell::quote(aside);
    let t = shell::quote(&format!("{DATA_DIR}/server/db-restoring-{id}"));
    format!(
        "set -eu\n\
         S={DATA_DIR}/server\n\
         if systemctl is-active --quiet {unit}; then echo \"{unit} is running\" >&2; exit 3; fi\n\
         rm -rf {t}\n\
         mkdir -p {t}\n\
         tar -C {t} -xzf {q} db token\n\
         [ -d {t}/db ] || {{ echo \"{archive} holds no db/\" >&2; exit 3; }}\n\
         if [ -d \"$S/db\" ]; then\n\
         \x20 if [ -e {a} ]; then rm -rf \"$S/db\"; else mv \"$S/db\" {a}; fi\n\
         fi\n\
         mv {t}/db \"$S/db\"\n\
         if [ ! -e \"$S/token\" ]; then cp -p {t}/token \"$S/token\"; echo token_restored=1; fi\n\
         rm -rf {t}\n\
         sync\n"
    )
}

/// Whether the server keeps its state in SQLite (and has no etcd data).
pub async fn is_sqlite(t: &dyn Transport) -> Result<bool, StepError> {
    let out = t
        .exec_checked(
            ExecRequest::new(datastore_probe_script())
                .sudo(true)
                .timeout(Some(QUICK))
                .describe("looking at the server's datastore"),
        )
        .await?;
    Ok(probe_says_sqlite(&out.stdout_text()))
}

/// Takes a SQLite snapshot named `prefix` on the server `t` reaches: K3s stopped for the copy
/// and started again (the script restarts it on any way out; this waits until systemd runs it,
/// with its journal when it does not). `timeout` bounds the copy and the start.
pub async fn save_on(
    t: &dyn Transport,
    prefix: &str,
    timeout: Duration,
) -> Result<Saved, StepError> {
    let node = t.name().to_string();
    let unit = crate::k3s::unit::unit_name(crate::k3s::config::NodeRole::Server);
    let out = t
        .exec_checked(
            ExecRequest::new(save_script(unit, prefix, &node))
                .sudo(true)
                .timeout(Some(timeout))
                .describe("copying the SQLite store with K3s stopped"),
        )
        .await;
    // Whatever the copy did, K3s must run again (the script started it; this waits and says so).
    let started = start_and_wait(t, unit, false, timeout)
        .await
        .map_err(|e| StepError::from(format!("{node}: {e}")));
    let out = out?;
    started?;
    let (path, size) = parse_saved(&out.stdout_text()).ok_or_else(|| {
        StepError::from(format!(
            "{node}: the SQLite snapshot script did not say where it saved:\n{}",
            out.stdout_text()
        ))
    })?;
    Ok(Saved {
        name: path.rsplit('/').next().unwrap_or(&path).to_string(),
        location: format!("file://{path}"),
        size: Some(size),
        node,
    })
}

/// The SQLite snapshots on the server `t` reaches.
pub async fn list_on(t: &dyn Transport) -> Result<Vec<SqliteSnapshot>, StepError> {
    let out = t
        .exec_checked(
            ExecRequest::new(list_script())
                .sudo(true)
                .timeout(Some(QUICK))
                .describe("listing SQLite snapshots"),
        )
        .await?;
    Ok(parse_list(&out.stdout_text()))
}

/// Deletes SQLite snapshots (file names in [`SQLITE_SNAPSHOT_DIR`]).
pub async fn delete_on(t: &dyn Transport, names: &[String]) -> Result<(), StepError> {
    if names.is_empty() {
        return Ok(());
    }
    let files: Vec<String> = names
        .iter()
        .map(|n| shell::quote(&format!("{SQLITE_SNAPSHOT_DIR}/{n}")))
        .collect();
    t.exec_checked(
        ExecRequest::new(format!("rm -f -- {}", files.join(" ")))
            .sudo(true)
            .timeout(Some(QUICK))
            .describe("deleting SQLite snapshots"),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
#[path = "sqlite_snapshot_tests.rs"]
mod tests;
