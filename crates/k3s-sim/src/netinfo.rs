//! What a node knows about itself at start: its IP and the [`NodeInfo`] it registers with.

use std::net::{IpAddr, UdpSocket};

use crate::fatal::Fatal;

use crate::flags::Role;
use crate::node::NodeInfo;
use crate::settings::Settings;

/// The node IP: `--node-ip`, else the local address used to reach `peer` (the server, for agents),
/// else the address of the default route, else 127.0.0.1. Every `--node-ip` value (comma lists
/// included) must be an IP address: K3s refuses a name with `invalid node-ip: invalid ip format
/// '<value>'` (pkg/util/net.go, `GetHostnameAndIPs` / `ParseStringSliceToIPs`).
pub fn node_ip(s: &Settings, peer: Option<&str>) -> Result<String, Fatal> {
    let given: Vec<&str> = s
        .list("node-ip")
        .iter()
        .flat_map(|v| v.split(','))
        .collect();
    if let Some(bad) = given.iter().find(|v| v.parse::<IpAddr>().is_err()) {
        return Err(Fatal(format!("invalid node-ip: invalid ip format '{bad}'")));
    }
    if let Some(ip) = given.first() {
        return Ok((*ip).to_owned());
    }
    let probe = |target: &str| -> Option<String> {
        let sock = UdpSocket::bind("0.0.0.0:0").ok()?;
        sock.connect(target).ok()?;
        let ip = sock.local_addr().ok()?.ip();
        (!ip.is_unspecified()).then(|| ip.to_string())
    };
    Ok(peer
        .and_then(probe)
        .or_else(|| probe("10.255.255.255:9"))
        .or_else(|| {
            fs_err::read_to_string("/proc/net/fib_trie")
                .ok()
                .and_then(|t| first_local_address(&t))
        })
        .unwrap_or_else(|| "127.0.0.1".to_string()))
}

/// The first non-loopback local IPv4 address in /proc/net/fib_trie (for hosts without a default
/// route): an address line followed by `/32 host LOCAL`.
pub fn first_local_address(fib_trie: &str) -> Option<String> {
    let mut last_ip: Option<&str> = None;
    for line in fib_trie.lines() {
        let t = line.trim();
        if let Some(ip) = t.strip_prefix("|-- ") {
            last_ip = Some(ip.trim());
        } else if t.starts_with("/32 host LOCAL")
            && let Some(ip) = last_ip.take()
            && !ip.starts_with("127.")
        {
            return Some(ip.to_string());
        }
    }
    None
}

/// The registration data for this node.
pub fn node_info(s: &Settings, role: Role, version: &str, name: &str, ip: &str) -> NodeInfo {
    NodeInfo {
        name: name.to_string(),
        role,
        etcd: role == Role::Server && (s.flag("cluster-init") || s.str("server").is_some()),
        etcd_member: None,
        version: version.to_string(),
        internal_ip: ip.to_string(),
        external_ips: s.list("node-external-ip").to_vec(),
        labels: s.list("node-label").to_vec(),
        taints: s.list("node-taint").to_vec(),
        node_args: s.node_args.clone(),
        node_env: crate::node::node_env(std::env::vars()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent_with(args: &[&str]) -> Settings {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        crate::settings::resolve(Role::Agent, &args).expect("settings")
    }

    #[test]
    fn node_ip_must_be_an_address_as_k3s_requires() {
        assert_eq!(
            node_ip(&agent_with(&["--node-ip", "10.0.0.7"]), None),
            Ok("10.0.0.7".to_owned())
        );
        assert_eq!(
            node_ip(&agent_with(&["--node-ip", "10.0.0.7,fd00::7"]), None),
            Ok("10.0.0.7".to_owned())
        );
        assert_eq!(
            node_ip(&agent_with(&["--node-ip", "k3sc1"]), None),
            Err(Fatal("invalid node-ip: invalid ip format 'k3sc1'".into()))
        );
        assert_eq!(
            node_ip(&agent_with(&["--node-ip", "10.0.0.7,k3sc1"]), None),
            Err(Fatal("invalid node-ip: invalid ip format 'k3sc1'".into()))
        );
    }

    #[test]
    fn local_address_from_fib_trie() {
        let trie = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     +-- 127.0.0.0/8 2 0 2\n           |-- 127.0.0.1\n              /32 host LOCAL\n           |-- 10.0.0.0\n              /24 link UNICAST\n           |-- 10.0.0.7\n              /32 host LOCAL\n";
        assert_eq!(first_local_address(trie).as_deref(), Some("10.0.0.7"));
        assert_eq!(first_local_address("Main:\n"), None);
    }
}
