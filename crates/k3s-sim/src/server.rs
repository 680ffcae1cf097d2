//! `k3s server`: PKI, token and bootstrap check, datastore, kubeconfig, the :6443 listener, the
//! server's own Node, packaged components, manifests and controllers; READY=1 once serving.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::api::ApiState;
use crate::fatal::Fatal;
use crate::flags::Role;
use crate::lock::{LockState, try_lock};
use crate::paths::{DEFAULT_KUBECONFIG, DataDir, host_path};
use crate::settings::Settings;
use crate::store::{FileDatastore, ObjectStore, ResourceKey};

/// Runs the server until SIGTERM/SIGINT.
pub async fn run(s: Settings) -> Result<(), Fatal> {
    let version = crate::version::current().to_string();
    crate::log::info(format!(
        "Starting k3s {version} ({})",
        crate::version::commit_for(&version)
    ));
    for k in &s.ignored_keys {
        crate::log::warn(format!("Unknown flag --{k} found in config.yaml, skipping"));
    }
    let server_url = s
        .str("server")
        .filter(|u| !u.is_empty())
        .map(str::to_string);
    if s.str("datastore-endpoint").is_some() {
        crate::log::warn("datastore-endpoint is ignored by k3s-sim: state is kept in server/db");
    }
    let dd = DataDir::new(s.data_dir());
    let _lock = match try_lock(&dd.server_lock())
        .map_err(|e| Fatal::ctx(&dd.server_lock().display().to_string(), e))?
    {
        LockState::Held(f) => f,
        LockState::Busy => {
            return Err(Fatal(format!(
                "another k3s server is already running with data dir {}",
                dd.root().display()
            )));
        }
    };
    let port = s.https_port().map_err(Fatal)?;
    let node_name = s.node_name();
    let node_ip = crate::netinfo::node_ip(&s, None)?;
    let mut sans_extra: Vec<String> = s.list("node-ip").to_vec();
    sans_extra.push(node_ip.clone());
    sans_extra.extend(s.list("node-external-ip").iter().cloned());
    for flag in ["advertise-address", "bind-address"] {
        if let Some(a) = s.str(flag).filter(|a| *a != "0.0.0.0") {
            sans_extra.push(a.to_string());
        }
    }
    let domain = s.str("cluster-domain").unwrap_or("cluster.local");
    let sans = crate::certs::serving_sans(&node_name, &sans_extra, s.list("tls-san"), domain);
    if s.flag("cluster-reset") {
        if server_url.is_some() {
            return Err(Fatal(crate::etcd::reset::WITH_SERVER_URL.into()));
        }
        return crate::etcd::reset::run(&s, &dd, &node_name, &node_ip, &sans).await;
    }
    crate::etcd::reset::clear_flag(&dd);
    // Embedded etcd when asked for, or when its data exists (then --cluster-init and --server
    // are ignored, as K3s ignores datastore arguments once etcd data is on disk).
    let etcd_data = crate::etcd::cluster::initialized(&dd);
    let ha = etcd_data || s.flag("cluster-init") || server_url.is_some();
    let join = match (&server_url, etcd_data) {
        (Some(url), false) => Some(join_source(&s, &dd, url).await?),
        _ => None,
    };
    let pki = crate::certs::load_server_pki(&dd.tls(), &sans)
        .map_err(|e| Fatal::ctx("preparing certificates", e))?;

    let tokens = crate::bootstrap::resolve(&s, &dd)?;
    let (store, etcd) = if ha {
        let notice = (join.is_some() && !s.flag("disable-agent"))
            .then(|| learner_notice(&s, &version, &node_name, &node_ip, &pki));
        let (store, started) = open_etcd(
            &dd,
            &node_name,
            &node_ip,
            &sans,
            join.as_ref(),
            notice.flatten(),
        )
        .await?;
        (store, Some(started))
    } else {
        let ds = FileDatastore::open(&crate::etcd::cluster::file_store_dir(&dd))
            .map_err(|e| Fatal::ctx("opening datastore", e))?;
        let store = Arc::new(
            ObjectStore::open(Box::new(ds)).map_err(|e| Fatal::ctx("loading datastore", e))?,
        );
        (store, None)
    };
    let etcd_handle = etcd.as_ref().map(|e| e.handle.clone());
    crate::bootstrap::check_bootstrap(&store, &tokens)?;
    crate::bootstrap::write_token_files(&dd, &pki.server_ca.cert_pem, &tokens)?;
    write_kubeconfig(&s, port, &pki)?;

    crate::components::seed_namespaces(&store);
    crate::components::reconcile(&store, s.disabled());
    crate::registries::apply(&s, &dd)?;

    let snapshots = etcd_handle
        .as_ref()
        .map(|h| snapshot_service(&s, &dd, &store, h, &node_name))
        .transpose()?;

    let client_auth = crate::tls::ClientAuth::new(&pki.client_ca.cert_pem)
        .map_err(|e| Fatal::ctx("client CA", e))?;
    let serving_chain = format!("{}{}", pki.serving.cert_pem, pki.server_ca.cert_pem);
    let tls = crate::tls::server_config(&serving_chain, &pki.serving.key_pem, &client_auth)
        .map_err(|e| Fatal::ctx("serving certificate", e))?;
    let bind = s.str("bind-address").unwrap_or("0.0.0.0");
    let addr: SocketAddr = format!("{bind}:{port}")
        .parse()
        .or_else(|_| format!("[{bind}]:{port}").parse())
        .map_err(|_| Fatal(format!("invalid --bind-address {bind:?}")))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Fatal(format!("listen tcp {addr}: bind: {e}")))?;
    let state = Arc::new(ApiState {
        store: store.clone(),
        version: version.clone(),
        ca_pem: pki.server_ca.cert_pem.clone(),
        client_auth,
        client_ca: Arc::new(pki.client_ca),
        server_ca: Arc::new(pki.server_ca),
        server_password: std::sync::RwLock::new(tokens.server.clone()),
        agent_password: tokens.agent.clone(),
        advertise: format!("{}:{port}", s.str("advertise-address").unwrap_or(&node_ip)),
        tls_dir: dd.tls(),
        etcd: etcd_handle.clone(),
        critical: crate::etcd::critical::args(&s),
        snapshots: snapshots.as_ref().map(|(svc, _)| svc.clone()),
    });
    let handler_state = state.clone();
    let serving = tokio::spawn(crate::http::server::serve(
        listener,
        tls,
        move |req, peer| crate::api::handle(handler_state.clone(), req, peer),
    ));
    crate::log::info(format!(
        "Serving the Kubernetes API and supervisor on {addr}"
    ));

    if let Some(h) = &etcd_handle {
        h.publish_api_address(&state.advertise)
            .map_err(|e| Fatal(format!("publishing the API address in etcd: {e}")))?;
    }

    // With --disable-agent the server runs no kubelet, so it registers no Node.
    if !s.flag("disable-agent") {
        register_own_node(
            &s,
            &store,
            &version,
            &node_name,
            &node_ip,
            etcd_handle.as_deref(),
        )?;
        let local = format!("https://{}:{port}", kubeconfig_host(&s));
        crate::kubelet_kubeconfig::write_for_server(
            &dd,
            &state.client_ca,
            &state.ca_pem,
            &node_name,
            &local,
        )
        .map_err(Fatal)?;
        tokio::spawn(local_heartbeat(
            store.clone(),
            node_name.clone(),
            etcd_handle.clone(),
        ));
        tokio::spawn(crate::certmonitor::run(
            crate::certmonitor::Sink::Local(store.clone()),
            dd.clone(),
            node_name.clone(),
            true,
        ));
    }

    // Controllers run on one server: the holder of the kube-system/k3s lease (always this one
    // without etcd).
    let leader = match &etcd_handle {
        Some(_) => crate::etcd::leader::spawn(store.clone(), node_name.clone()),
        None => Arc::new(AtomicBool::new(true)),
    };
    if let Some(h) = &etcd_handle {
        tokio::spawn(crate::etcd::members::run(
            store.clone(),
            h.clone(),
            leader.clone(),
        ));
    }
    tokio::spawn(crate::controller::run(store.clone(), leader));
    tokio::spawn(crate::manifests::watch(store.clone(), dd.manifests()));

    if let Some((svc, schedule)) = &snapshots {
        svc.sync(&svc.default_dir);
        if let Some(cfg) = schedule {
            crate::snapshot::local::spawn_schedule(svc.clone(), cfg.clone());
        }
    }

    crate::notify::ready();
    crate::log::info("k3s is up and running");
    crate::signals::wait_for_shutdown().await;
    crate::log::info("Shutting down k3s server");
    // Stop accepting first, so clients move to another server instead of meeting a datastore
    // that is going away.
    serving.abort();
    if let Some(e) = &etcd {
        e.process.stop();
    }
    Ok(())
}

/// The server to join: the token (required) checked against its CA, then its bootstrap data
/// (CAs) written under server/tls and its critical configuration values compared with ours.
async fn join_source(
    s: &Settings,
    dd: &DataDir,
    url: &str,
) -> Result<crate::etcd::join::JoinSource, Fatal> {
    let raw = crate::bootstrap::given_token(s, "token", "token-file")?.ok_or_else(|| {
        Fatal("starting kubernetes: preparing server: token is required to join a cluster (--token or K3S_TOKEN)".into())
    })?;
    let token = crate::token::parse(&raw);
    let src = crate::etcd::join::connect(url, &token).await?;
    let theirs = src.critical_args().await?;
    crate::etcd::critical::compare(&theirs, &crate::etcd::critical::args(s)).map_err(Fatal)?;
    let data = src.bootstrap().await?;
    crate::etcd::bootstrap::write(&dd.tls(), &data).map_err(|e| Fatal(e.to_string()))?;
    Ok(src)
}

/// The Node a joining server shows while its member is a learner (member name from
/// `server/db/etcd/name`, created here when new).
fn learner_notice(
    s: &Settings,
    version: &str,
    node_name: &str,
    node_ip: &str,
    pki: &crate::certs::ServerPki,
) -> Option<crate::etcd::cluster::LearnerNotice> {
    let dir = crate::etcd::cluster::db_dir(&DataDir::new(s.data_dir()));
    let member = crate::etcd::cluster::member_name(&dir, node_name).ok()?;
    let mut info = crate::netinfo::node_info(s, Role::Server, version, node_name, node_ip);
    info.etcd = true;
    info.etcd_member = Some((member, node_ip.to_string()));
    let mut node = crate::node::new_node(&info).ok()?;
    let (status, reason, message) = crate::etcd::MemberStatus::Learner.condition();
    crate::node::set_condition(&mut node, "EtcdIsVoter", status, reason, message);
    Some(crate::etcd::cluster::LearnerNotice {
        node,
        cert: (pki.admin.cert_pem.clone(), pki.admin.key_pem.clone()),
    })
}

/// Starts the local etcd member and opens the object store on it, fed by an etcd watch.
async fn open_etcd(
    dd: &DataDir,
    node_name: &str,
    node_ip: &str,
    sans: &[String],
    join: Option<&crate::etcd::join::JoinSource>,
    notice: Option<crate::etcd::cluster::LearnerNotice>,
) -> Result<(Arc<ObjectStore>, crate::etcd::cluster::Started), Fatal> {
    let tls = crate::etcd::cluster::client_tls(dd, sans)?;
    let started = crate::etcd::cluster::start(dd, node_name, node_ip, join, notice, tls).await?;
    let client = started.handle.client.clone();
    let ds = crate::etcd::datastore::EtcdDatastore::new(client.clone());
    let store =
        Arc::new(ObjectStore::open(Box::new(ds)).map_err(|e| Fatal::ctx("loading datastore", e))?);
    crate::etcd::datastore::spawn_feed(store.clone(), client.clone(), store.current_rv());
    crate::etcd::cluster::spawn_learner_manager(client);
    Ok((store, started))
}

/// The host local clients use: the bind address when it is a specific one, else 127.0.0.1.
fn kubeconfig_host(s: &Settings) -> String {
    match s.str("bind-address") {
        Some(b) if b != "0.0.0.0" && b != "::" => b.to_string(),
        _ => "127.0.0.1".to_string(),
    }
}

fn write_kubeconfig(s: &Settings, port: u16, pki: &crate::certs::ServerPki) -> Result<(), Fatal> {
    let url = format!("https://{}:{port}", kubeconfig_host(s));
    let text = crate::kubeconfig::render(
        &url,
        &pki.server_ca.cert_pem,
        &pki.admin.cert_pem,
        &pki.admin.key_pem,
    );
    let mode = match s.str("write-kubeconfig-mode") {
        Some(m) => crate::kubeconfig::parse_mode(m).map_err(Fatal)?,
        None => 0o600,
    };
    let path = host_path(s.str("write-kubeconfig").unwrap_or(DEFAULT_KUBECONFIG));
    crate::paths::write_atomic(&path, text.as_bytes(), mode)
        .map_err(|e| Fatal(format!("writing kubeconfig {}: {e}", path.display())))?;
    crate::log::info(format!("Wrote kubeconfig {}", path.display()));
    Ok(())
}

/// The server's own agent part: node password check, then the Node.
fn register_own_node(
    s: &Settings,
    store: &ObjectStore,
    version: &str,
    node_name: &str,
    node_ip: &str,
    etcd: Option<&crate::etcd::EtcdHandle>,
) -> Result<(), Fatal> {
    let pw_path = host_path(crate::paths::NODE_PASSWORD);
    let password = crate::nodepass::ensure_password_file(&pw_path)
        .map_err(|e| Fatal(format!("{}: {e}", pw_path.display())))?;
    crate::nodepass::verify_or_store(store, node_name, &password).map_err(|e| Fatal(e.message))?;
    let mut info = crate::netinfo::node_info(s, Role::Server, version, node_name, node_ip);
    if let Some(h) = etcd {
        info.etcd = true;
        info.etcd_member = Some((h.member.clone(), h.address.clone()));
    }
    register_local(store, &info)?;
    if let Some(h) = etcd {
        set_etcd_condition(store, node_name, h);
    }
    Ok(())
}

/// Sets the `EtcdIsVoter` condition of the server's Node from the member list.
fn set_etcd_condition(store: &ObjectStore, node_name: &str, h: &crate::etcd::EtcdHandle) {
    let (status, reason, message) = h.status().condition();
    let key = ResourceKey::new("nodes", "", node_name);
    if let Err(e) = store.modify(&key, |n| {
        crate::node::set_condition(n, "EtcdIsVoter", status, reason, message);
        Ok(())
    }) {
        crate::log::error(format!(
            "Failed to set etcd status condition on node {node_name}: {}",
            e.message
        ));
    }
}

fn register_local(store: &ObjectStore, info: &crate::node::NodeInfo) -> Result<(), Fatal> {
    let key = ResourceKey::new("nodes", "", &info.name);
    if store.get(&key).is_some() {
        store.modify(&key, |n| {
            crate::node::refresh(n, info);
            Ok(())
        })
    } else {
        let node = crate::node::new_node(info).map_err(Fatal)?;
        store.create("nodes", "", node)
    }
    .map_err(|e| Fatal(format!("registering node {}: {}", info.name, e.message)))?;
    crate::log::info(format!("Node {} registered", info.name));
    Ok(())
}

async fn local_heartbeat(
    store: Arc<ObjectStore>,
    name: String,
    etcd: Option<Arc<crate::etcd::EtcdHandle>>,
) {
    let every = crate::knobs::heartbeat();
    // Right after start, as a kubelet does; then every heartbeat interval.
    let mut first = true;
    loop {
        if !first {
            tokio::time::sleep(every).await;
        }
        first = false;
        let key = ResourceKey::new("nodes", "", &name);
        if let Err(e) = store.modify(&key, |n| {
            crate::node::heartbeat(n);
            Ok(())
        }) {
            crate::log::error(format!(
                "Failed to update node {name} status: {}",
                e.message
            ));
            continue;
        }
        if let Some(h) = &etcd {
            set_etcd_condition(&store, &name, h);
        }
        renew_local_lease(&store, &name);
    }
}

/// Renews the server node's Lease in kube-node-lease, creating it when missing.
fn renew_local_lease(store: &ObjectStore, name: &str) {
    let lease = crate::node::lease(name, crate::knobs::node_grace().as_secs());
    let key = ResourceKey::new("leases.coordination.k8s.io", "kube-node-lease", name);
    let renewed = store.modify(&key, |l| {
        l["spec"] = lease["spec"].clone();
        Ok(())
    });
    if renewed.is_err()
        && let Err(e) = store.create("leases.coordination.k8s.io", "kube-node-lease", lease)
    {
        crate::log::error(format!(
            "Failed to renew lease for node {name}: {}",
            e.message
        ));
    }
}

/// The snapshot service of an etcd server and its schedule (none with `etcd-disable-snapshots`);
/// a schedule the stand-in cannot read stops the server, as an invalid flag would.
fn snapshot_service(
    s: &Settings,
    dd: &DataDir,
    store: &Arc<ObjectStore>,
    h: &Arc<crate::etcd::EtcdHandle>,
    node_name: &str,
) -> Result<
    (
        Arc<crate::snapshot::local::Service>,
        Option<crate::snapshot::local::ScheduleConfig>,
    ),
    Fatal,
> {
    let dir = s
        .str("etcd-snapshot-dir")
        .filter(|d| !d.is_empty())
        .map(host_path)
        .unwrap_or_else(|| dd.db().join("snapshots"));
    let svc = Arc::new(crate::snapshot::local::Service {
        store: store.clone(),
        etcd: h.clone(),
        node: node_name.to_string(),
        default_dir: dir.clone(),
    });
    if s.flag("etcd-disable-snapshots") {
        return Ok((svc, None));
    }
    let cron = s
        .str("etcd-snapshot-schedule-cron")
        .unwrap_or("0 */12 * * *");
    let schedule = crate::snapshot::cron::parse(cron).map_err(|e| Fatal(e.to_string()))?;
    let retention_text = s.str("etcd-snapshot-retention").unwrap_or("5");
    let retention: usize = retention_text.trim().parse().map_err(|_| {
        Fatal(format!(
            "invalid etcd-snapshot-retention {retention_text:?}: expected a whole number"
        ))
    })?;
    let prefix = s
        .str("etcd-snapshot-name")
        .filter(|n| !n.is_empty())
        .unwrap_or(crate::snapshot::names::SCHEDULED)
        .to_string();
    crate::log::info(format!(
        "Scheduled etcd snapshots at {cron:?} (retention {retention}) to {}",
        dir.display()
    ));
    Ok((
        svc,
        Some(crate::snapshot::local::ScheduleConfig {
            schedule,
            prefix,
            retention,
            dir,
        }),
    ))
}
