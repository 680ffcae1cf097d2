//! Opening a transport to every host of the spec, all at once. Containers reached through
//! `pct` share one ssh connection per Proxmox host, and are checked (and, with
//! `pct.autostart`, started) before anything else happens on them.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::future::join_all;

use crate::host::{HostError, LocalTransport, PctTransport, SshTarget, SshTransport, Transport};
use crate::spec::{ResolvedHost, ResolvedSsh, ResolvedTransport};

/// Flags that change how hosts are reached.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnectOptions {
    /// Record unknown host keys (`--accept-new-host-keys`).
    pub accept_new_host_keys: bool,
    /// Leave out hosts that cannot be connected to instead of refusing (`--skip-unreachable`
    /// of plan and apply); never the first server, never a host-key or sudo problem.
    pub skip_unreachable: bool,
    /// Start stopped pct containers whose `pct.autostart` allows it (apply); otherwise
    /// (plan) a stopped container is an error.
    pub start_containers: bool,
    /// Leave the check that a reused ssh master still reaches its host to the host's first
    /// command (which then moves to a fresh master, or fails with the classified connection
    /// error): saves a round trip per host. Only for callers whose first command on every host
    /// changes nothing and who treat a [`HostError::Unreachable`] from it like a connection
    /// failure (plan and apply, see `ops::prepare`); otherwise connecting checks it.
    pub first_command_checks_reuse: bool,
}

/// What [`connect_all_noted`] returns: transports, failures, and notes for the user (containers
/// started, onboot not set).
pub struct Connected {
    /// Transports by host name.
    pub transports: BTreeMap<String, Arc<dyn Transport>>,
    /// Hosts (or Proxmox hosts) that could not be reached.
    pub errors: Vec<HostError>,
    /// What was done or noticed while connecting.
    pub notes: Vec<String>,
    /// The pct containers among the transports, for the LXC checks.
    pub containers: BTreeMap<String, Arc<PctTransport>>,
}

fn target_from(
    name: &str,
    address: &str,
    ssh: &ResolvedSsh,
    sudo: bool,
    options: ConnectOptions,
) -> SshTarget {
    let mut target = SshTarget::new(name.to_owned(), address.to_owned());
    target.user = ssh.user.clone();
    target.port = ssh.port;
    target.identity_file = ssh.identity_file.clone();
    target.config_file = ssh.config_file.clone();
    target.known_hosts_file = ssh.known_hosts_file.clone();
    target.options = ssh
        .options
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    target.accept_new_host_keys = ssh.accept_new_host_keys || options.accept_new_host_keys;
    target.sudo = sudo;
    target
}

/// The SSH target for a host reached over ssh.
pub fn ssh_target(host: &ResolvedHost, options: ConnectOptions) -> Option<SshTarget> {
    let ResolvedTransport::Ssh(ssh) = &host.transport else {
        return None;
    };
    Some(target_from(
        &host.name,
        &host.address,
        ssh,
        host.sudo.unwrap_or(true),
        options,
    ))
}

/// The SSH target of the Proxmox host a pct host goes through.
pub fn proxmox_target(host: &ResolvedHost, options: ConnectOptions) -> Option<SshTarget> {
    let ResolvedTransport::Pct {
        proxmox_name,
        proxmox_address,
        ssh,
        ..
    } = &host.transport
    else {
        return None;
    };
    Some(target_from(
        proxmox_name,
        proxmox_address,
        ssh,
        true,
        options,
    ))
}

/// Connects to one host (a pct host gets its own connection to its Proxmox host; use
/// [`connect_all`] to share them).
pub async fn connect(
    host: &ResolvedHost,
    options: ConnectOptions,
) -> Result<Arc<dyn Transport>, HostError> {
    let mut nodes = BTreeMap::new();
    let mut notes = Vec::new();
    connect_one(host, options, &mut nodes, &mut notes)
        .await
        .map(|(t, _)| t)
}

/// A Proxmox host's connection, shared by its containers: checked at once (its failure is then
/// reported once, not by each container's first command).
async fn connect_verified(target: SshTarget) -> Result<SshTransport, HostError> {
    let transport = SshTransport::connect(target).await?;
    transport.verify().await?;
    Ok(transport)
}

type Nodes = BTreeMap<String, Result<Arc<SshTransport>, String>>;

async fn connect_one(
    host: &ResolvedHost,
    options: ConnectOptions,
    nodes: &mut Nodes,
    notes: &mut Vec<String>,
) -> Result<(Arc<dyn Transport>, Option<Arc<PctTransport>>), HostError> {
    match &host.transport {
        ResolvedTransport::Local => Ok((Arc::new(LocalTransport::new(host.name.clone())), None)),
        ResolvedTransport::Ssh(_) => {
            let target = ssh_target(host, options).ok_or_else(|| HostError::Unreachable {
                host: host.name.clone(),
                detail: "no ssh settings".into(),
            })?;
            let transport = SshTransport::connect(target).await?;
            if !options.first_command_checks_reuse {
                transport.verify().await?;
            }
            Ok((Arc::new(transport), None))
        }
        ResolvedTransport::Pct {
            proxmox_name,
            vmid,
            autostart,
            ..
        } => {
            if !nodes.contains_key(proxmox_name) {
                let target =
                    proxmox_target(host, options).ok_or_else(|| HostError::Unreachable {
                        host: host.name.clone(),
                        detail: "no Proxmox host settings".into(),
                    })?;
                let node = connect_verified(target).await.map(Arc::new);
                nodes.insert(proxmox_name.clone(), node.map_err(|e| e.to_string()));
            }
            let node = match nodes.get(proxmox_name) {
                Some(Ok(node)) => Arc::clone(node),
                Some(Err(e)) => {
                    return Err(HostError::Unreachable {
                        host: host.name.clone(),
                        detail: format!("through Proxmox host {proxmox_name}: {e}"),
                    });
                }
                None => unreachable!("inserted above"),
            };
            let t = Arc::new(PctTransport::new(
                &host.name,
                proxmox_name,
                node,
                *vmid,
                &host.address,
            ));
            notes.extend(
                t.ensure_running(*autostart && options.start_containers)
                    .await?,
            );
            Ok((Arc::clone(&t) as Arc<dyn Transport>, Some(t)))
        }
        ResolvedTransport::Lxd { .. } => Err(HostError::Unsupported {
            host: host.name.clone(),
            what: "the lxd transport (not implemented yet): reach this host over ssh".into(),
        }),
    }
}

/// Connects to every host in parallel; returns the transports and the failures.
pub async fn connect_all(
    hosts: &[ResolvedHost],
    options: ConnectOptions,
) -> (BTreeMap<String, Arc<dyn Transport>>, Vec<HostError>) {
    let connected = connect_all_noted(hosts, options).await;
    for note in &connected.notes {
        tracing::info!("{note}");
    }
    (connected.transports, connected.errors)
}

/// Connects to every host in parallel, one ssh connection per Proxmox host shared by its
/// containers; a Proxmox host that cannot be reached is reported once.
pub async fn connect_all_noted(hosts: &[ResolvedHost], options: ConnectOptions) -> Connected {
    // Proxmox hosts first, once each, in parallel.
    let mut wanted: BTreeMap<String, SshTarget> = BTreeMap::new();
    for h in hosts {
        if let (ResolvedTransport::Pct { proxmox_name, .. }, Some(target)) =
            (&h.transport, proxmox_target(h, options))
        {
            wanted.entry(proxmox_name.clone()).or_insert(target);
        }
    }
    let mut errors = Vec::new();
    let mut nodes: Nodes = BTreeMap::new();
    for (name, result) in join_all(
        wanted
            .into_iter()
            .map(|(name, target)| async move { (name, connect_verified(target).await) }),
    )
    .await
    {
        match result {
            Ok(t) => {
                nodes.insert(name, Ok(Arc::new(t)));
            }
            Err(e) => {
                nodes.insert(name, Err(e.to_string()));
                errors.push(e);
            }
        }
    }
    let failed_nodes: Vec<String> = nodes
        .iter()
        .filter(|(_, n)| n.is_err())
        .map(|(name, _)| name.clone())
        .collect();
    let attempts = join_all(hosts.iter().map(|h| {
        let mut nodes = nodes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Nodes>();
        async move {
            let mut notes = Vec::new();
            let result = connect_one(h, options, &mut nodes, &mut notes).await;
            (h, result, notes)
        }
    }))
    .await;
    let mut transports = BTreeMap::new();
    let mut containers = BTreeMap::new();
    let mut notes = Vec::new();
    for (host, result, host_notes) in attempts {
        notes.extend(host_notes);
        match result {
            Ok((t, pct)) => {
                transports.insert(host.name.clone(), t);
                if let Some(pct) = pct {
                    containers.insert(host.name.clone(), pct);
                }
            }
            Err(e) => {
                // The Proxmox host's own failure is reported once, not per container.
                let via_failed_node = matches!(&host.transport,
                    ResolvedTransport::Pct { proxmox_name, .. } if failed_nodes.contains(proxmox_name));
                if !via_failed_node {
                    errors.push(e);
                }
            }
        }
    }
    Connected {
        transports,
        errors,
        notes,
        containers,
    }
}
