//! `k3s server --cluster-reset [--cluster-reset-restore-path P]` (K3s `pkg/etcd` `Reset`): with a
//! snapshot, the current `server/db/etcd` is moved aside to `server/db/etcd-old-<unix ts>` and the
//! snapshot restored into a new one-member cluster (`etcdctl snapshot restore`, which is where
//! etcd 3.4 keeps restore); without one, the existing data is restarted with
//! `--force-new-cluster`, dropping every other member. Once the member leads its one-member
//! cluster, etcd is stopped, `server/db/reset-flag` is written (a second reset is refused until it
//! is deleted; a normal start deletes it) and K3s's message is logged; the process exits 0.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::args::{self, Initial};
use super::cluster::{db_dir, initialized};
use crate::fatal::Fatal;
use crate::paths::DataDir;
use crate::settings::Settings;

/// What K3s logs after a successful reset (literally, `${datadir}` included).
pub const DONE: &str = "Managed etcd cluster membership has been reset, restart without --cluster-reset flag now. Backup and delete ${datadir}/server/db on each peer etcd server and rejoin the nodes";

/// K3s's refusal of `--cluster-reset` while `server` is set (flag, `K3S_URL` or config.yaml;
/// k3s-io/k3s#8488, PR #8455 and its backports, 2023-09 releases).
pub const WITH_SERVER_URL: &str = "cannot perform cluster-reset while server URL is set - remove server from configuration before resetting";

/// `server/db/reset-flag`.
pub fn flag_path(dd: &DataDir) -> PathBuf {
    dd.db().join("reset-flag")
}

/// A normal start deletes the reset flag (K3s: so the next reset is allowed again).
pub fn clear_flag(dd: &DataDir) {
    let flag = flag_path(dd);
    if flag.exists() {
        match fs_err::remove_file(&flag) {
            Ok(()) => crate::log::info(format!("Removed {}", flag.display())),
            Err(e) => crate::log::warn(format!("removing {}: {e}", flag.display())),
        }
    }
}

/// The refusal of a reset while the flag of the previous one is still there (K3s's wording).
pub fn refused_again(flag: &Path) -> String {
    format!(
        "cluster-reset was successfully performed, please remove the cluster-reset flag and start k3s normally, if you need to perform another cluster reset, you must first manually delete the {} file",
        flag.display()
    )
}

fn existing_member_name(dir: &Path) -> Option<String> {
    fs_err::read_to_string(dir.join("name"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn restore(snapshot: &Path, dir: &Path, name: &str, peer: &str) -> Result<(), Fatal> {
    let out = std::process::Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg("snapshot")
        .arg("restore")
        .arg(snapshot)
        .arg("--data-dir")
        .arg(dir)
        .args(["--name", name])
        .args(["--initial-cluster", &format!("{name}={peer}")])
        .args(["--initial-advertise-peer-urls", peer])
        .output()
        .map_err(|e| {
            Fatal(format!(
                "restoring etcd snapshot: etcdctl: {e} (k3s-sim restores with Debian's etcdctl: apt-get install etcd-client)"
            ))
        })?;
    if !out.status.success() {
        return Err(Fatal(format!(
            "failed to restore etcd snapshot {}: {}",
            snapshot.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Runs the reset; Ok means K3s's message was logged and the server should exit 0.
pub async fn run(
    s: &Settings,
    dd: &DataDir,
    node: &str,
    address: &str,
    sans: &[String],
) -> Result<(), Fatal> {
    let flag = flag_path(dd);
    if flag.exists() {
        return Err(Fatal(refused_again(&flag)));
    }
    let dir = db_dir(dd);
    let restore_path = s
        .str("cluster-reset-restore-path")
        .filter(|p| !p.is_empty())
        .map(crate::paths::host_path);
    if restore_path.is_none() && !initialized(dd) {
        return Err(Fatal(format!(
            "cluster-reset: no etcd data in {} to reset (give --cluster-reset-restore-path to restore a snapshot)",
            dir.display()
        )));
    }
    let ports =
        args::parse_ports(std::env::var("K3S_SIM_ETCD_PORTS").ok().as_deref()).map_err(Fatal)?;
    let peer = args::url(address, ports.peer);
    let started = Instant::now();
    let initial = match &restore_path {
        Some(p) => {
            if !p.is_file() {
                return Err(Fatal(format!(
                    "cluster-reset-restore-path {}: no such snapshot file",
                    p.display()
                )));
            }
            let name = existing_member_name(&dir).unwrap_or_else(|| {
                args::new_member_name(node, &crate::random::uid().replace('-', ""))
            });
            if dir.exists() {
                let old = dd
                    .db()
                    .join(format!("etcd-old-{}", crate::clock::now().unix_timestamp()));
                fs_err::rename(&dir, &old).map_err(|e| {
                    Fatal(format!(
                        "moving {} to {}: {e}",
                        dir.display(),
                        old.display()
                    ))
                })?;
                crate::log::info(format!("Moved the current etcd data to {}", old.display()));
            }
            crate::log::info(format!(
                "Restoring etcd snapshot {} as member {name}",
                p.display()
            ));
            restore(p, &dir, &name, &peer)?;
            crate::paths::write_atomic(&dir.join("name"), name.as_bytes(), 0o600)
                .map_err(|e| Fatal(format!("writing {}: {e}", dir.join("name").display())))?;
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = fs_err::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
            }
            Initial::Restart
        }
        None => {
            crate::log::info("Resetting etcd cluster membership to this member only");
            Initial::ForceNewCluster
        }
    };
    let name = existing_member_name(&dir)
        .ok_or_else(|| Fatal(format!("no member name in {}", dir.join("name").display())))?;
    let tls = super::cluster::client_tls(dd, sans)?;
    let member = super::cluster::LocalMember {
        dir: &dir,
        name: &name,
        address,
        ports,
    };
    let (process, client) = super::cluster::spawn_member(dd, &member, &initial, true, tls)?;
    super::cluster::wait_voter(&client).await?;
    let members = client
        .member_list()
        .map_err(|e| Fatal(format!("listing etcd members after the reset: {e}")))?;
    process.stop();
    if members.len() != 1 {
        return Err(Fatal(format!(
            "cluster-reset left {} etcd members; expected this member alone",
            members.len()
        )));
    }
    crate::paths::write_atomic(&flag, b"", 0o600)
        .map_err(|e| Fatal(format!("writing {}: {e}", flag.display())))?;
    crate::log::info(format!(
        "etcd cluster reset in {} ms",
        started.elapsed().as_millis()
    ));
    crate::log::info(DONE);
    Ok(())
}
