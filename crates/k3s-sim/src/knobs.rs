//! Test knobs read from `K3S_SIM_*` environment variables (on lab hosts they live in
//! /etc/default/k3s or /etc/default/k3s-agent, which the official units read).

use std::time::Duration;

fn duration(name: &str, default: Duration) -> Duration {
    std::env::var(name)
        .ok()
        .and_then(|v| crate::clock::parse_duration(&v))
        .unwrap_or(default)
}

/// `K3S_SIM_HEARTBEAT`: how often nodes post status (kubelet: 10s).
pub fn heartbeat() -> Duration {
    duration("K3S_SIM_HEARTBEAT", Duration::from_secs(10))
}

/// `K3S_SIM_NODE_GRACE`: how long without a heartbeat before a node turns NotReady
/// (node-monitor-grace-period: 40s).
pub fn node_grace() -> Duration {
    duration("K3S_SIM_NODE_GRACE", Duration::from_secs(40))
}

/// `K3S_SIM_POD_START`: delay before a scheduled pod is Running and Ready.
pub fn pod_start() -> Duration {
    duration("K3S_SIM_POD_START", Duration::from_secs(2))
}

/// `K3S_SIM_RETRY`: how often an agent retries the server.
pub fn retry() -> Duration {
    duration("K3S_SIM_RETRY", Duration::from_secs(2))
}

/// `K3S_SIM_CERT_CHECK`: how often each node's certificate monitor looks at its certificates
/// (K3s: every 30 minutes).
pub fn cert_check() -> Duration {
    duration("K3S_SIM_CERT_CHECK", Duration::from_secs(30 * 60))
}

/// `K3S_SIM_MANIFEST_SCAN`: how often server/manifests is scanned.
pub fn manifest_scan() -> Duration {
    duration("K3S_SIM_MANIFEST_SCAN", Duration::from_secs(5))
}

/// `K3S_SIM_LEARNER_PROMOTE`: how often the server of the etcd leader promotes learners that
/// caught up (K3s checks every 15s; the stand-in defaults to 5s so joins take seconds).
pub fn learner_promote() -> Duration {
    duration("K3S_SIM_LEARNER_PROMOTE", Duration::from_secs(5))
}

/// `K3S_SIM_LEADER_LEASE`: how long the controller leader lease (kube-system/k3s) lasts without
/// renewal before another server takes over (client-go leader election default: 15s).
pub fn leader_lease() -> Duration {
    duration("K3S_SIM_LEADER_LEASE", Duration::from_secs(15))
}

/// `K3S_SIM_ETCD_ELECTION_TIMEOUT`: etcd's election timeout (K3s: 5s; the heartbeat interval is
/// a tenth). A single-member cluster waits about this long for its first leader at every start.
pub fn etcd_election_timeout() -> Duration {
    duration("K3S_SIM_ETCD_ELECTION_TIMEOUT", Duration::from_secs(5))
}
