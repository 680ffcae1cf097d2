//! Opening a transport to every host of the spec, all at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::future::join_all;

use crate::host::{HostError, LocalTransport, SshTarget, SshTransport, Transport};
use crate::spec::{ResolvedHost, ResolvedTransport};

/// Flags that change how hosts are reached.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnectOptions {
    /// Record unknown host keys (`--accept-new-host-keys`).
    pub accept_new_host_keys: bool,
    /// Leave out hosts that cannot be connected to instead of refusing (`--skip-unreachable`
    /// of plan and apply); never the first server, never a host-key or sudo problem.
    pub skip_unreachable: bool,
}

/// The SSH target for a host reached over ssh.
pub fn ssh_target(host: &ResolvedHost, options: ConnectOptions) -> Option<SshTarget> {
    let ResolvedTransport::Ssh(ssh) = &host.transport else {
        return None;
    };
    let mut target = SshTarget::new(host.name.clone(), host.address.clone());
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
    target.sudo = host.sudo.unwrap_or(true);
    Some(target)
}

/// Connects to one host.
pub async fn connect(
    host: &ResolvedHost,
    options: ConnectOptions,
) -> Result<Arc<dyn Transport>, HostError> {
    match &host.transport {
        ResolvedTransport::Local => Ok(Arc::new(LocalTransport::new(host.name.clone()))),
        ResolvedTransport::Ssh(_) => {
            let target = ssh_target(host, options).ok_or_else(|| HostError::Unreachable {
                host: host.name.clone(),
                detail: "no ssh settings".into(),
            })?;
            Ok(Arc::new(SshTransport::connect(target).await?))
        }
        ResolvedTransport::Pct { .. } | ResolvedTransport::Lxd { .. } => {
            Err(HostError::Unreachable {
                host: host.name.clone(),
                detail: "pct and lxd transports are not supported yet: reach this host over ssh"
                    .into(),
            })
        }
    }
}

/// Connects to every host in parallel; returns the transports and the failures.
pub async fn connect_all(
    hosts: &[ResolvedHost],
    options: ConnectOptions,
) -> (BTreeMap<String, Arc<dyn Transport>>, Vec<HostError>) {
    let attempts = join_all(
        hosts
            .iter()
            .map(|h| async move { (h.name.clone(), connect(h, options).await) }),
    )
    .await;
    let mut transports = BTreeMap::new();
    let mut errors = Vec::new();
    for (name, result) in attempts {
        match result {
            Ok(t) => {
                transports.insert(name, t);
            }
            Err(e) => errors.push(e),
        }
    }
    (transports, errors)
}
