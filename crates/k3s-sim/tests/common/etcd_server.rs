//! A stand-in server on embedded etcd among local processes: its own API and etcd ports
//! (`K3S_SIM_ETCD_PORTS`), fast election and promotion knobs, and the referees used on it
//! (readiness through kubectl, members through Debian's etcdctl).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::{Cluster, Node, free_port, wait_for};

/// A server of an HA cluster: its node, API port and etcd client port.
pub struct EtcdServer {
    /// The node (process, root, log).
    pub node: Node,
    /// Supervisor/API port.
    pub port: u16,
    /// etcd client port.
    pub etcd: u16,
}

impl EtcdServer {
    /// `k3s server --node-name NAME ... --token TOKEN EXTRA` on free ports, not started.
    pub fn new(c: &Cluster, name: &str, token: &str, extra: &[&str]) -> Self {
        let port = free_port();
        let (etcd, peer) = (free_port(), free_port());
        let p = port.to_string();
        let mut args = vec![
            "server",
            "--node-name",
            name,
            "--https-listen-port",
            &p,
            "--node-ip",
            "127.0.0.1",
            "--token",
            token,
        ];
        args.extend_from_slice(extra);
        let mut node = c.node(name, "v1.33.5+k3s1", &args);
        node.env = vec![
            ("K3S_SIM_ETCD_PORTS".into(), format!("{etcd},{peer}")),
            ("K3S_SIM_ETCD_ELECTION_TIMEOUT".into(), "1s".into()),
            ("K3S_SIM_LEARNER_PROMOTE".into(), "1s".into()),
            ("K3S_SIM_LEADER_LEASE".into(), "4s".into()),
        ];
        Self { node, port, etcd }
    }

    /// The admin kubeconfig the server writes.
    pub fn kubeconfig(&self) -> PathBuf {
        self.node.path("/etc/rancher/k3s/k3s.yaml")
    }

    /// The server's URL on loopback.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// Waits (60 s) until the server answers /readyz; returns its kubeconfig.
    pub fn ready(&mut self, c: &Cluster) -> PathBuf {
        let kc = self.kubeconfig();
        wait_for(
            &format!("server {} ready; log:\n{}", self.node.name, self.node.log()),
            Duration::from_secs(60),
            || {
                assert!(self.node.running(), "server exited:\n{}", self.node.log());
                (kc.exists()
                    && c.kubectl(&kc, &["get", "--raw", "/readyz"])
                        .status
                        .success())
                .then_some(())
            },
        );
        kc
    }

    /// `etcdctl ARGS` against this server's etcd with K3s's client certificate; must succeed.
    pub fn etcdctl(&self, args: &[&str]) -> String {
        let tls = self.node.path("/var/lib/rancher/k3s/server/tls/etcd");
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg("--cacert")
            .arg(tls.join("server-ca.crt"))
            .arg("--cert")
            .arg(tls.join("client.crt"))
            .arg("--key")
            .arg(tls.join("client.key"))
            .arg("--endpoints")
            .arg(format!("https://127.0.0.1:{}", self.etcd))
            .args(args)
            .output()
            .expect("run etcdctl (apt-get install etcd-client)");
        assert!(
            out.status.success(),
            "etcdctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// (name, is_learner) of every etcd member, asked with etcdctl.
    pub fn members(&self) -> Vec<(String, bool)> {
        let v: serde_json::Value =
            serde_json::from_str(&self.etcdctl(&["member", "list", "-w", "json"]))
                .expect("etcdctl member list json");
        v["members"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                (
                    m["name"].as_str().unwrap_or("").to_string(),
                    m["isLearner"].as_bool().unwrap_or(false),
                )
            })
            .collect()
    }
}
