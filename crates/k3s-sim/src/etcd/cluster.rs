//! Bringing up the local etcd member the way K3s's `pkg/etcd` does: an existing data dir
//! (`server/db/etcd/member/wal`) wins over `--cluster-init`/`--server`; otherwise a new
//! single-member cluster (then the file store is migrated, as K3s migrates SQLite), or a join:
//! `/db/info` for the members, `MemberAddAsLearner`, etcd with `initial-cluster-state=existing`,
//! then wait for the etcd leader's server to promote this learner.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::EtcdHandle;
use super::args::{self, Initial, Ports};
use super::client::{EtcdClient, EtcdError, Member};
use super::join::JoinSource;
use super::process::EtcdProcess;
use crate::fatal::Fatal;
use crate::paths::DataDir;

/// `server/db/etcd`.
pub fn db_dir(dd: &DataDir) -> PathBuf {
    dd.db().join("etcd")
}

/// Whether etcd data exists (K3s `IsInitialized`: `server/db/etcd/member/wal` is a directory).
pub fn initialized(dd: &DataDir) -> bool {
    db_dir(dd).join("member").join("wal").is_dir()
}

/// The file store standing in for K3s's SQLite `state.db`.
pub fn file_store_dir(dd: &DataDir) -> PathBuf {
    dd.db().join("state")
}

/// Reads the member name from `server/db/etcd/name`, creating `<node>-<8 hex>` when missing.
pub fn member_name(dir: &Path, node: &str) -> Result<String, Fatal> {
    let file = dir.join("name");
    if let Ok(existing) = fs_err::read_to_string(&file)
        && !existing.trim().is_empty()
    {
        return Ok(existing.trim().to_string());
    }
    let name = args::new_member_name(node, &crate::random::uid().replace('-', ""));
    crate::paths::write_atomic(&file, name.as_bytes(), 0o600)
        .map_err(|e| Fatal(format!("writing {}: {e}", file.display())))?;
    Ok(name)
}

/// The running local member.
pub struct Started {
    /// What the rest of the server uses.
    pub handle: Arc<EtcdHandle>,
    /// The etcd child.
    pub process: EtcdProcess,
    /// The store revision right after start-up.
    pub ports: Ports,
}

fn host_of(url: &str) -> String {
    super::client::split_url(url)
        .map(|(h, _)| h)
        .unwrap_or_default()
}

/// Decides the members to start with when joining through `src` (adding this member as a
/// learner unless it already is a member).
async fn join_members(
    src: &JoinSource,
    node: &str,
    name: &str,
    address: &str,
    ports: Ports,
    tls: &Arc<rustls::ClientConfig>,
    dir: &Path,
) -> Result<Initial, Fatal> {
    let peer = args::url(address, ports.peer);
    loop {
        let members = src.members().await?;
        let mut cluster = Vec::new();
        let mut add = true;
        for m in &members {
            let mut mname = m.name.clone();
            let ours = m.peer_urls.iter().any(|u| host_of(u) == address);
            // An unstarted learner has no name; with our address it must be us.
            if mname.is_empty() && ours {
                mname = name.to_string();
            }
            if mname == name && ours {
                add = false;
            }
            if mname != name && args::node_of_member(&mname) == node {
                let _ = fs_err::remove_file(dir.join("name"));
                return Err(Fatal(
                    "starting kubernetes: preparing server: start managed database: duplicate node name found, please use a unique name for this node".into(),
                ));
            }
            if let Some(p) = m.peer_urls.first() {
                cluster.push(format!("{mname}={p}"));
            }
        }
        if !add {
            crate::log::info(format!(
                "Starting etcd to join cluster with members {cluster:?}"
            ));
            return Ok(Initial::Join(cluster));
        }
        let voters: Vec<String> = members
            .iter()
            .filter(|m| !m.is_learner)
            .flat_map(|m| m.client_urls.iter().cloned())
            .collect();
        let client = EtcdClient::new(&voters, tls.clone()).map_err(|e| Fatal(e.to_string()))?;
        crate::log::info(format!(
            "Adding member {name}={peer} to etcd cluster {cluster:?}"
        ));
        match client.member_add_learner(&peer) {
            Ok(_) => {
                cluster.push(format!("{name}={peer}"));
                crate::log::info(format!(
                    "Starting etcd to join cluster with members {cluster:?}"
                ));
                return Ok(Initial::Join(cluster));
            }
            Err(EtcdError::Server(msg))
                if msg.contains("too many learner") || msg.contains("unhealthy") =>
            {
                crate::log::info(format!(
                    "Waiting for other members to finish joining etcd cluster: etcdserver: {msg}"
                ));
            }
            Err(e @ EtcdError::Wire { .. }) => {
                crate::log::info(format!("Waiting to retrieve etcd cluster member list: {e}"))
            }
            Err(e) => return Err(Fatal(format!("etcd cluster join failed: {e}"))),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// What a joining server shows while it is a learner: its Node (with `EtcdIsVoter` False,
/// `MemberIsLearner`), created through the server it joins, and the client certificate for it.
pub struct LearnerNotice {
    /// The Node object.
    pub node: serde_json::Value,
    /// Client certificate and key (admin, from the shared client CA).
    pub cert: (String, String),
}

/// The etcd certificates under `dd` (made when missing, naming `sans`) and a client TLS
/// configuration that uses them.
pub fn client_tls(dd: &DataDir, sans: &[String]) -> Result<Arc<rustls::ClientConfig>, Fatal> {
    let epki = crate::etcd::pki::ensure(&dd.tls().join("etcd"), sans)
        .map_err(|e| Fatal::ctx("preparing etcd certificates", e))?;
    crate::etcd::client::tls_config(
        &epki.server_ca.cert_pem,
        &epki.client.cert_pem,
        &epki.client.key_pem,
    )
    .map_err(|e| Fatal(e.to_string()))
}

/// The local etcd member to run: its data directory, name, address and ports.
pub(super) struct LocalMember<'a> {
    pub dir: &'a Path,
    pub name: &'a str,
    pub address: &'a str,
    pub ports: Ports,
}

/// Spawns the local etcd member as `initial` says (`resetting`: the run of `--cluster-reset`)
/// and a client of it on the loopback.
pub(super) fn spawn_member(
    dd: &DataDir,
    member: &LocalMember<'_>,
    initial: &Initial,
    resetting: bool,
    tls: Arc<rustls::ClientConfig>,
) -> Result<(EtcdProcess, EtcdClient), Fatal> {
    let election_ms =
        u64::try_from(crate::knobs::etcd_election_timeout().as_millis()).unwrap_or(5000);
    let argv = args::command_args(
        member.dir,
        &dd.tls().join("etcd"),
        member.name,
        member.address,
        member.ports,
        election_ms,
        initial,
        resetting,
    );
    let process = super::process::spawn(&argv)?;
    let client = EtcdClient::new(&[args::url("127.0.0.1", member.ports.client)], tls)
        .map_err(|e| Fatal(e.to_string()))?;
    Ok((process, client))
}

/// Starts the local member. `join` is the server to join when there is no etcd data yet and
/// `--server` is set; without it and without data a new cluster is created. A joining server
/// shows `notice` (its Node) through the server it joins while it is a learner.
pub async fn start(
    dd: &DataDir,
    node: &str,
    address: &str,
    join: Option<&JoinSource>,
    notice: Option<LearnerNotice>,
    tls: Arc<rustls::ClientConfig>,
) -> Result<Started, Fatal> {
    let ports =
        args::parse_ports(std::env::var("K3S_SIM_ETCD_PORTS").ok().as_deref()).map_err(Fatal)?;
    let dir = db_dir(dd);
    fs_err::create_dir_all(&dir).map_err(|e| Fatal(e.to_string()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = fs_err::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
    }
    let name = member_name(&dir, node)?;
    let was_initialized = initialized(dd);
    let initial = if was_initialized {
        crate::log::info("Starting etcd for existing cluster member");
        Initial::Restart
    } else if let Some(src) = join {
        join_members(src, node, &name, address, ports, &tls, &dir).await?
    } else {
        crate::log::info("Starting etcd for new cluster, cluster-reset=false");
        Initial::New
    };
    let member = LocalMember {
        dir: &dir,
        name: &name,
        address,
        ports,
    };
    let (process, client) = spawn_member(dd, &member, &initial, false, tls)?;
    let client = Arc::new(client);
    if let (Some(src), Some(n), Initial::Join(_)) = (join, notice, &initial) {
        wait_learner(&client).await;
        if let Err(e) = src.announce(&n.node, &n.cert.0, &n.cert.1).await {
            crate::log::warn(format!("registering the node while a learner: {e}"));
        }
    }
    wait_voter(&client).await?;
    let handle = Arc::new(EtcdHandle {
        client,
        member: name,
        address: address.to_string(),
    });
    if initial == Initial::New {
        migrate_file_store(dd, &handle.client)?;
    }
    Ok(Started {
        handle,
        process,
        ports,
    })
}

/// Waits (up to 30 s) until the local member answers as a learner.
async fn wait_learner(client: &EtcdClient) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if client.status().is_ok_and(|st| st.is_learner) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the local member answers, is a voting member and sees a leader (a quorum of the
/// cluster is up); without quorum it waits as long as it takes, as K3s does.
pub(crate) async fn wait_voter(client: &EtcdClient) -> Result<(), Fatal> {
    let start = Instant::now();
    let mut last_log = Instant::now();
    loop {
        match client.status() {
            Ok(st) if !st.is_learner && st.leader != 0 => {
                crate::log::info(format!(
                    "etcd member is a voter (etcd {}), ready after {} ms",
                    st.version,
                    start.elapsed().as_millis()
                ));
                return Ok(());
            }
            Ok(st) => {
                if last_log.elapsed() >= Duration::from_secs(5) {
                    crate::log::info(if st.is_learner {
                        "Waiting for etcd: this server has not yet been promoted from learner to voting member"
                    } else {
                        "Waiting for etcd: the cluster has no leader yet (waiting for a quorum of members)"
                    });
                    last_log = Instant::now();
                }
            }
            // etcd serves clients only once its member is published through raft, which needs
            // a quorum: wait as long as it takes.
            Err(e) => {
                if last_log.elapsed() >= Duration::from_secs(5) {
                    crate::log::info(format!(
                        "Waiting for etcd to become available (a quorum of members must be up): {e}"
                    ));
                    last_log = Instant::now();
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Copies the file store's `/registry/` keys into etcd and renames it `state.migrated` (K3s
/// `migrateFromSQLite`: `state.db` → `state.db.migrated`), once, for a new cluster.
pub fn migrate_file_store(dd: &DataDir, client: &EtcdClient) -> Result<(), Fatal> {
    let dir = file_store_dir(dd);
    if !dir.is_dir() {
        return Ok(());
    }
    crate::log::info("Migrating content from sqlite to etcd");
    let ds = crate::store::FileDatastore::open(&dir).map_err(|e| Fatal::ctx("migration", e))?;
    let entries = ds.entries().map_err(|e| Fatal::ctx("migration", e))?;
    for (key, value) in entries {
        if !key.starts_with("/registry/") {
            continue;
        }
        crate::log::info(format!("Migrating etcd key {key}"));
        client
            .write(
                &key,
                crate::store::Write::Put(&value),
                crate::store::Expect::Any,
            )
            .map_err(|e| {
                Fatal(format!(
                    "failed to migrate content from sqlite to etcd: {e}"
                ))
            })?;
    }
    let done = dd.db().join("state.migrated");
    fs_err::rename(&dir, &done).map_err(|e| {
        Fatal(format!(
            "failed to migrate content from sqlite to etcd: renaming {}: {e}",
            dir.display()
        ))
    })?;
    Ok(())
}

/// The leader's learner management (K3s `manageLearners`): every `K3S_SIM_LEARNER_PROMOTE`,
/// when the local member is the etcd leader, promote each started learner; etcd itself refuses
/// learners that have not caught up, which are retried next round.
pub fn spawn_learner_manager(client: Arc<EtcdClient>) {
    std::thread::spawn(move || {
        let every = crate::knobs::learner_promote();
        loop {
            std::thread::sleep(every);
            let Ok(st) = client.status() else {
                continue;
            };
            if st.leader == 0 || st.leader != st.member_id {
                continue;
            }
            let Ok(members) = client.member_list() else {
                continue;
            };
            for m in members
                .iter()
                .filter(|m| m.is_learner && !m.name.is_empty())
            {
                promote(&client, m);
            }
        }
    });
}

fn promote(client: &EtcdClient, m: &Member) {
    match client.member_promote(m.id) {
        Ok(()) => crate::log::info(format!(
            "Promoted learner {} to voting member of the etcd cluster",
            m.name
        )),
        Err(e) => crate::log::info(format!("Learner {} not promoted yet: {e}", m.name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_name_is_persisted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let n = member_name(dir.path(), "server-1").expect("name");
        assert!(
            n.starts_with("server-1-") && n.len() == "server-1-".len() + 8,
            "{n}"
        );
        assert_eq!(member_name(dir.path(), "server-1").expect("again"), n);
        assert_eq!(
            fs_err::read_to_string(dir.path().join("name")).expect("file"),
            n
        );
    }
}
