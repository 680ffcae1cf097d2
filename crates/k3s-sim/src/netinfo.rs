//! What a node knows about itself at start: its IP and the [`NodeInfo`] it registers with.

use std::net::UdpSocket;

use crate::flags::Role;
use crate::node::NodeInfo;
use crate::settings::Settings;

/// The node IP: `--node-ip`, else the local address used to reach `peer` (the server, for agents),
/// else the address of the default route, else 127.0.0.1.
pub fn node_ip(s: &Settings, peer: Option<&str>) -> String {
    if let Some(ip) = s.list("node-ip").first() {
        return ip.clone();
    }
    let probe = |target: &str| -> Option<String> {
        let sock = UdpSocket::bind("0.0.0.0:0").ok()?;
        sock.connect(target).ok()?;
        let ip = sock.local_addr().ok()?.ip();
        (!ip.is_unspecified()).then(|| ip.to_string())
    };
    peer.and_then(probe)
        .or_else(|| probe("10.255.255.255:9"))
        .unwrap_or_else(|| "127.0.0.1".to_string())
}

/// The registration data for this node.
pub fn node_info(s: &Settings, role: Role, version: &str, name: &str, ip: &str) -> NodeInfo {
    NodeInfo {
        name: name.to_string(),
        role,
        etcd: role == Role::Server && (s.flag("cluster-init") || s.str("server").is_some()),
        version: version.to_string(),
        internal_ip: ip.to_string(),
        external_ips: s.list("node-external-ip").to_vec(),
        labels: s.list("node-label").to_vec(),
        taints: s.list("node-taint").to_vec(),
        node_args: s.node_args.clone(),
        node_env: crate::node::node_env(std::env::vars()),
    }
}
