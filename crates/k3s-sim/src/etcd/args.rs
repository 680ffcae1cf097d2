//! Pure parts of running etcd as K3s does: member names (`<node>-<8 hex>`), URLs, ports and the
//! etcd command line (K3s `pkg/etcd/etcd.go` `cluster()`: client on loopback and the node IP,
//! peers on the node IP, mutual TLS on both, heartbeat 500 ms, election timeout 5 s; the timeout
//! is the `K3S_SIM_ETCD_ELECTION_TIMEOUT` knob and the heartbeat a tenth of it).

use std::path::Path;

/// Ports of the local member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// Client port (K3s: 2379).
    pub client: u16,
    /// Peer port (K3s: 2380).
    pub peer: u16,
    /// Metrics port on loopback (K3s: 2381).
    pub metrics: u16,
}

impl Default for Ports {
    fn default() -> Self {
        Ports {
            client: 2379,
            peer: 2380,
            metrics: 2381,
        }
    }
}

/// Parses `K3S_SIM_ETCD_PORTS` (`client,peer`; metrics = client + 2) for several servers on one
/// machine. None keeps K3s's fixed ports.
pub fn parse_ports(v: Option<&str>) -> Result<Ports, String> {
    let Some(v) = v.filter(|v| !v.trim().is_empty()) else {
        return Ok(Ports::default());
    };
    let bad = || format!("K3S_SIM_ETCD_PORTS={v:?}: expected CLIENT,PEER, e.g. 12379,12380");
    let (c, p) = v.split_once(',').ok_or_else(bad)?;
    let client: u16 = c.trim().parse().map_err(|_| bad())?;
    let peer: u16 = p.trim().parse().map_err(|_| bad())?;
    Ok(Ports {
        client,
        peer,
        metrics: client.checked_add(2).ok_or_else(bad)?,
    })
}

/// `https://ip:port` (IPv6 in brackets).
pub fn url(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("https://[{ip}]:{port}")
    } else {
        format!("https://{ip}:{port}")
    }
}

/// A new member name: the node name, a hyphen and 8 hex digits (K3s `setName`).
pub fn new_member_name(node: &str, random_hex: &str) -> String {
    format!("{node}-{}", &random_hex[..8.min(random_hex.len())])
}

/// The node name a member name belongs to (everything before the last hyphen).
pub fn node_of_member(member: &str) -> &str {
    match member.rfind('-') {
        Some(i) if i > 1 => &member[..i],
        _ => member,
    }
}

/// How this start brings up etcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Initial {
    /// Data exists on disk: etcd ignores the initial-cluster settings.
    Restart,
    /// A new single-member cluster (`--cluster-init`, or a wiped disk).
    New,
    /// Joining an existing cluster with these `name=peerURL` members (self included).
    Join(Vec<String>),
    /// `--cluster-reset` without a snapshot: the existing data, forced into a new one-member
    /// cluster (etcd `--force-new-cluster` drops every other member).
    ForceNewCluster,
}

/// Whether this etcd runs for `--cluster-reset`: then it listens and advertises on loopback
/// only, so no apiserver or peer of another node reaches it mid-reset (K3s `pkg/etcd/etcd.go`
/// `listenClientURLs`, `listenPeerURLs`, `advertiseClientURLs` with `reset` true).
pub fn is_reset(initial: &Initial, resetting: bool) -> bool {
    resetting || matches!(initial, Initial::ForceNewCluster)
}

/// The etcd command line; `resetting` for the etcd of `--cluster-reset` (loopback only).
#[allow(clippy::too_many_arguments)]
pub fn command_args(
    data_dir: &Path,
    tls_dir: &Path,
    name: &str,
    address: &str,
    ports: Ports,
    election_ms: u64,
    initial: &Initial,
    resetting: bool,
) -> Vec<String> {
    let tls = |f: &str| tls_dir.join(f).display().to_string();
    let reset = is_reset(initial, resetting);
    let loop_client = url("127.0.0.1", ports.client);
    let node_client = url(address, ports.client);
    let listen_client = if node_client == loop_client || reset {
        loop_client.clone()
    } else {
        format!("{loop_client},{node_client}")
    };
    let advertise_client = if reset {
        loop_client.clone()
    } else {
        node_client
    };
    let loop_peer = url("127.0.0.1", ports.peer);
    let node_peer = url(address, ports.peer);
    let listen_peer = if node_peer == loop_peer || reset {
        loop_peer
    } else {
        format!("{loop_peer},{node_peer}")
    };
    let mut args: Vec<String> = [
        ("--name", name.to_string()),
        ("--data-dir", data_dir.display().to_string()),
        ("--listen-client-urls", listen_client),
        ("--advertise-client-urls", advertise_client),
        ("--listen-peer-urls", listen_peer),
        ("--initial-advertise-peer-urls", node_peer.clone()),
        (
            "--listen-metrics-urls",
            format!("http://127.0.0.1:{}", ports.metrics),
        ),
        ("--cert-file", tls("server-client.crt")),
        ("--key-file", tls("server-client.key")),
        ("--trusted-ca-file", tls("server-ca.crt")),
        ("--peer-cert-file", tls("peer-server-client.crt")),
        ("--peer-key-file", tls("peer-server-client.key")),
        ("--peer-trusted-ca-file", tls("peer-ca.crt")),
        (
            "--heartbeat-interval",
            (election_ms / 10).max(10).to_string(),
        ),
        ("--election-timeout", election_ms.to_string()),
        ("--snapshot-count", "10000".into()),
        ("--logger", "zap".into()),
        ("--log-outputs", "stderr".into()),
    ]
    .into_iter()
    .flat_map(|(k, v)| [k.to_string(), v])
    .collect();
    args.push("--client-cert-auth".into());
    args.push("--peer-client-cert-auth".into());
    match initial {
        Initial::Restart => {}
        Initial::ForceNewCluster => args.push("--force-new-cluster".into()),
        Initial::New => {
            args.push("--initial-cluster".into());
            args.push(format!("{name}={node_peer}"));
            args.push("--initial-cluster-state".into());
            args.push("new".into());
        }
        Initial::Join(members) => {
            args.push("--initial-cluster".into());
            args.push(members.join(","));
            args.push("--initial-cluster-state".into());
            args.push("existing".into());
        }
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_default_and_knob() {
        assert_eq!(parse_ports(None), Ok(Ports::default()));
        assert_eq!(
            parse_ports(Some("12379,12380")),
            Ok(Ports {
                client: 12379,
                peer: 12380,
                metrics: 12381
            })
        );
        assert!(parse_ports(Some("12379")).is_err());
    }

    #[test]
    fn member_names() {
        assert_eq!(
            new_member_name("server-1", "0a1b2c3d4e5f"),
            "server-1-0a1b2c3d"
        );
        assert_eq!(node_of_member("server-1-0a1b2c3d"), "server-1");
        assert_eq!(url("fd00::1", 2380), "https://[fd00::1]:2380");
    }

    #[test]
    fn command_line_for_new_and_join() {
        let d = Path::new("/d/server/db/etcd");
        let t = Path::new("/d/server/tls/etcd");
        let new = command_args(
            d,
            t,
            "s1-aaaaaaaa",
            "10.0.0.1",
            Ports::default(),
            5000,
            &Initial::New,
            false,
        );
        let joined = new.join(" ");
        assert!(
            joined.contains("--listen-client-urls https://127.0.0.1:2379,https://10.0.0.1:2379")
        );
        assert!(joined.contains("--advertise-client-urls https://10.0.0.1:2379"));
        assert!(joined.contains(
            "--initial-cluster s1-aaaaaaaa=https://10.0.0.1:2380 --initial-cluster-state new"
        ));
        assert!(joined.contains("--trusted-ca-file /d/server/tls/etcd/server-ca.crt"));
        assert!(joined.contains("--client-cert-auth"));
        assert!(joined.contains("--heartbeat-interval 500 --election-timeout 5000"));
        let join = command_args(
            d,
            t,
            "s2-bbbbbbbb",
            "10.0.0.2",
            Ports::default(),
            5000,
            &Initial::Join(vec![
                "s1-aaaaaaaa=https://10.0.0.1:2380".into(),
                "s2-bbbbbbbb=https://10.0.0.2:2380".into(),
            ]),
            false,
        )
        .join(" ");
        assert!(join.contains("--initial-cluster s1-aaaaaaaa=https://10.0.0.1:2380,s2-bbbbbbbb=https://10.0.0.2:2380 --initial-cluster-state existing"));
        let restart = command_args(
            d,
            t,
            "s1-aaaaaaaa",
            "127.0.0.1",
            Ports::default(),
            5000,
            &Initial::Restart,
            false,
        )
        .join(" ");
        assert!(!restart.contains("--initial-cluster"));
        assert!(restart.contains("--listen-client-urls https://127.0.0.1:2379 "));
    }

    #[test]
    fn a_reset_listens_and_advertises_on_loopback_only() {
        let d = Path::new("/d/server/db/etcd");
        let t = Path::new("/d/server/tls/etcd");
        for (initial, resetting) in [(Initial::Restart, true), (Initial::ForceNewCluster, false)] {
            let reset = command_args(
                d,
                t,
                "s1-aaaaaaaa",
                "10.0.0.1",
                Ports::default(),
                5000,
                &initial,
                resetting,
            )
            .join(" ");
            assert!(!reset.contains("10.0.0.1:2379"), "{reset}");
            assert!(
                reset.contains("--listen-client-urls https://127.0.0.1:2379 "),
                "{reset}"
            );
            assert!(
                reset.contains("--advertise-client-urls https://127.0.0.1:2379 "),
                "{reset}"
            );
            assert!(
                reset.contains("--listen-peer-urls https://127.0.0.1:2380 "),
                "{reset}"
            );
        }
    }
}
