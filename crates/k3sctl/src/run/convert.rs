//! The host side of converting a single server from SQLite to embedded etcd: the backup before
//! the restart with `cluster-init`, and the check after it (K3s renames the migrated store
//! `*.migrated`; every node registered before is still in the API).

use super::context::Shared;
use super::observe::DB_DIR;
use super::service::QUICK;
use crate::host::{ExecRequest, Transport, shell};
use crate::plan::HostPlan;

/// The script that refuses stale etcd data, stops K3s and copies the store (SQLite's `-wal`
/// and `-shm` files with it) into a new directory under the datastore directory, printing its
/// path. K3s is stopped first so that the copy is consistent.
pub fn backup_script(unit: &str, store: &str) -> String {
    let store = shell::quote(store);
    format!(
        "set -eu\n\
         if [ -d {DB_DIR}/etcd/member/wal ]; then\n\
         \x20 echo \"{DB_DIR}/etcd/member/wal exists: stale etcd data would be started instead of migrating {store}\" >&2; exit 3\n\
         fi\n\
         [ -e {store} ] || {{ echo \"{store} not found\" >&2; exit 3; }}\n\
         systemctl stop {unit}\n\
         backup={DB_DIR}/sqlite-backup-$(date +%Y%m%d-%H%M%S)\n\
         mkdir -p \"$backup\"\n\
         cp -a {store}* \"$backup\"/\n\
         sync\n\
         echo \"$backup\"\n"
    )
}

/// Stops K3s and backs the store up; returns the backup's path on the host.
pub async fn backup_store(
    transport: &dyn Transport,
    unit: &str,
    store: &str,
) -> Result<String, String> {
    let req = ExecRequest::new(backup_script(unit, store))
        .sudo(true)
        .timeout(Some(QUICK * 4))
        .describe(format!("backing up {store} before the conversion to etcd"));
    let out = transport
        .exec_checked(req)
        .await
        .map_err(|e| e.to_string())?;
    let path = out
        .stdout_text()
        .trim()
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    if path.is_empty() {
        return Err(format!("backing up {store}: no backup path reported"));
    }
    Ok(path)
}

/// The script that succeeds only when the store was migrated: gone, and `<store>.migrated`
/// present.
pub fn migrated_script(store: &str) -> String {
    let quoted = shell::quote(store);
    let migrated = shell::quote(&format!("{store}.migrated"));
    format!(
        "if [ -e {migrated} ] && [ ! -e {quoted} ]; then echo migrated; \
         else echo \"{store} was not migrated (no {store}.migrated)\" >&2; exit 3; fi\n"
    )
}

/// Checks the migration on the host and in the API.
pub async fn verify_migration(
    shared: &Shared,
    host: &HostPlan,
    transport: &dyn Transport,
    store: &str,
) -> Result<(), String> {
    let req = ExecRequest::new(migrated_script(store))
        .sudo(true)
        .timeout(Some(QUICK))
        .describe("checking the migration of the SQLite store");
    transport.exec_checked(req).await.map_err(|e| {
        format!(
            "{}: K3s did not migrate the SQLite store (restore it from the backup): {e}",
            host.host
        )
    })?;
    let api = shared.api().await?;
    let nodes = api
        .nodes()
        .await
        .map_err(|e| format!("{}: listing nodes after the conversion: {e}", host.host))?;
    let missing: Vec<&str> = shared
        .known_nodes
        .iter()
        .filter(|known| !nodes.iter().any(|n| &n.name == *known))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "{}: after the conversion the API no longer knows node(s) {}: the datastore was not \
             carried over; restore the SQLite backup",
            host.host,
            missing.join(", ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn backup_copies_the_store_and_its_wal_and_the_check_sees_the_rename() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("state.db");
        fs_err::write(&store, "db").expect("write");
        fs_err::write(dir.path().join("state.db-wal"), "wal").expect("write");
        let store = store.to_string_lossy().into_owned();
        // The real script stops a unit and writes under DB_DIR; run its copy part here.
        let script = backup_script("k3s-none", &store)
            .replace(DB_DIR, &dir.path().to_string_lossy())
            .replace("systemctl stop k3s-none\n", "");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let backup = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert!(std::path::Path::new(&backup).join("state.db").is_file());
        assert!(std::path::Path::new(&backup).join("state.db-wal").is_file());

        let check = |script: String| {
            std::process::Command::new("sh")
                .arg("-c")
                .arg(script)
                .status()
                .expect("runs")
                .success()
        };
        assert!(!check(migrated_script(&store)), "not migrated yet");
        fs_err::rename(&store, format!("{store}.migrated")).expect("rename");
        assert!(check(migrated_script(&store)));
    }

    #[test]
    fn stale_etcd_data_is_refused_before_stopping() {
        let script = backup_script("k3s", "/var/lib/rancher/k3s/server/db/state.db");
        let wal = script.find("member/wal").expect("checks wal");
        let stop = script.find("systemctl stop").expect("stops");
        assert!(wal < stop);
    }
}
