//! Nodes: a plain summary of the Node objects ([`NodeInfo`], pure) and listing them.

use std::collections::BTreeMap;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::Client;
use kube::api::{Api, ListParams};

use super::error::KubeError;

/// The Node condition K3s sets on embedded-etcd servers: `True` for a healthy voting member,
/// `False` for a learner, an unhealthy or an unjoined member.
pub const ETCD_IS_VOTER: &str = "EtcdIsVoter";
/// The label K3s puts on embedded-etcd servers.
pub const ETCD_ROLE_LABEL: &str = "node-role.kubernetes.io/etcd";

/// What k3sctl looks at in a Node object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeInfo {
    /// Node name.
    pub name: String,
    /// The Ready condition is True.
    pub ready: bool,
    /// Reason and message of the Ready condition, when it has them.
    pub ready_detail: Option<String>,
    /// When the kubelet last posted the Ready condition, in Unix seconds of the node's own
    /// clock: its lastHeartbeatTime, else its lastTransitionTime.
    pub ready_posted: Option<i64>,
    /// status.nodeInfo.kubeletVersion (the K3s version on K3s).
    pub kubelet_version: String,
    /// spec.unschedulable (cordoned).
    pub unschedulable: bool,
    /// metadata.annotations.
    pub annotations: BTreeMap<String, String>,
    /// metadata.labels.
    pub labels: BTreeMap<String, String>,
    /// metadata.resourceVersion, for conflict-checked patches.
    pub resource_version: Option<String>,
    /// metadata.creationTimestamp (set by the API server when the node registered), Unix
    /// seconds.
    pub created: Option<i64>,
    /// When the Ready condition last changed status, Unix seconds of the node's own clock.
    pub ready_since: Option<i64>,
    /// K3s's `EtcdIsVoter` condition on servers of an embedded-etcd cluster; `None` on nodes
    /// without it (agents, SQLite servers).
    pub etcd_voter: Option<Condition>,
    /// spec.taints, each `key[=value]:Effect`.
    pub taints: Vec<String>,
    /// The pressure conditions (`DiskPressure`, `MemoryPressure`, `PIDPressure`) that are True,
    /// each with its reason and message when it has them.
    pub pressure: Vec<String>,
    /// The node's `InternalIP` address (status.addresses), when it reports one.
    pub internal_ip: Option<String>,
}

/// The node conditions that report a resource running short.
pub const PRESSURE_CONDITIONS: &[&str] = &["DiskPressure", "MemoryPressure", "PIDPressure"];

/// A node condition other than Ready, as k3sctl reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Condition {
    /// status is `True`.
    pub status: bool,
    /// Reason and message, when the condition has them.
    pub detail: Option<String>,
}

fn condition_detail(c: &k8s_openapi::api::core::v1::NodeCondition) -> Option<String> {
    let parts: Vec<&str> = [c.reason.as_deref(), c.message.as_deref()]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(": "))
}

impl NodeInfo {
    /// Summarises a Node object.
    pub fn from_node(node: &Node) -> Self {
        let condition = |kind: &str| {
            node.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == kind))
        };
        let ready_condition = condition("Ready");
        let ready_detail = ready_condition.and_then(condition_detail);
        let ready_posted = ready_condition
            .and_then(|c| {
                c.last_heartbeat_time
                    .as_ref()
                    .or(c.last_transition_time.as_ref())
            })
            .map(|t| t.0.as_second());
        Self {
            name: node.metadata.name.clone().unwrap_or_default(),
            ready: ready_condition.is_some_and(|c| c.status == "True"),
            ready_detail,
            ready_posted,
            kubelet_version: node
                .status
                .as_ref()
                .and_then(|s| s.node_info.as_ref())
                .map(|i| i.kubelet_version.clone())
                .unwrap_or_default(),
            unschedulable: node
                .spec
                .as_ref()
                .and_then(|s| s.unschedulable)
                .unwrap_or(false),
            annotations: node.metadata.annotations.clone().unwrap_or_default(),
            labels: node.metadata.labels.clone().unwrap_or_default(),
            resource_version: node.metadata.resource_version.clone(),
            created: node
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.as_second()),
            ready_since: ready_condition
                .and_then(|c| c.last_transition_time.as_ref())
                .map(|t| t.0.as_second()),
            etcd_voter: condition(ETCD_IS_VOTER).map(|c| Condition {
                status: c.status == "True",
                detail: condition_detail(c),
            }),
            taints: node
                .spec
                .as_ref()
                .and_then(|s| s.taints.as_ref())
                .map(|ts| ts.iter().map(super::taints::taint_text).collect())
                .unwrap_or_default(),
            pressure: PRESSURE_CONDITIONS
                .iter()
                .filter_map(|kind| condition(kind).filter(|c| c.status == "True"))
                .map(|c| match condition_detail(c) {
                    Some(d) => format!("{} ({d})", c.type_),
                    None => c.type_.clone(),
                })
                .collect(),
            internal_ip: node
                .status
                .as_ref()
                .and_then(|s| s.addresses.as_ref())
                .and_then(|a| a.iter().find(|a| a.type_ == "InternalIP"))
                .map(|a| a.address.clone()),
        }
    }

    /// Carries K3s's etcd role label (`node-role.kubernetes.io/etcd=true`): a member of the
    /// embedded etcd cluster.
    pub fn is_etcd_member(&self) -> bool {
        self.labels.get(ETCD_ROLE_LABEL).map(String::as_str) == Some("true")
    }

    /// A one-line state for messages: `Ready=True kubelet v1.34.3+k3s1 cordoned`.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "Ready={} kubelet {}",
            if self.ready { "True" } else { "False" },
            if self.kubelet_version.is_empty() {
                "unknown"
            } else {
                &self.kubelet_version
            }
        );
        if let Some(d) = &self.ready_detail
            && !self.ready
        {
            s.push_str(&format!(" ({d})"));
        }
        if self.unschedulable {
            s.push_str(" cordoned");
        }
        s
    }
}

/// All nodes, sorted by name.
pub async fn list_nodes(client: &Client) -> Result<Vec<NodeInfo>, KubeError> {
    let api: Api<Node> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|e| KubeError::api("listing nodes", e))?;
    let mut nodes: Vec<NodeInfo> = list.items.iter().map(NodeInfo::from_node).collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(nodes)
}

/// One node, `None` when it is not registered.
pub async fn get_node(client: &Client, name: &str) -> Result<Option<NodeInfo>, KubeError> {
    let api: Api<Node> = Api::all(client.clone());
    let node = api
        .get_opt(name)
        .await
        .map_err(|e| KubeError::api(format!("reading node {name}"), e))?;
    Ok(node.as_ref().map(NodeInfo::from_node))
}

/// The renewTime of node `name`'s Lease in kube-node-lease (Unix microseconds on the node's
/// clock, as its kubelet stamped it), `None` when it has no Lease or no renewTime.
pub async fn node_lease_renewed(client: &Client, name: &str) -> Result<Option<i64>, KubeError> {
    let api: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let lease = api
        .get_opt(name)
        .await
        .map_err(|e| KubeError::api(format!("reading the Lease of node {name}"), e))?;
    Ok(lease
        .and_then(|l| l.spec)
        .and_then(|s| s.renew_time)
        .map(|t| t.0.as_microsecond()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(json: serde_json::Value) -> Node {
        serde_json::from_value(json).expect("valid node")
    }

    #[test]
    fn summarises_ready_version_cordon_and_annotations() {
        let n = node(serde_json::json!({
            "metadata": {"name": "a", "resourceVersion": "42",
                         "creationTimestamp": "2026-11-21T07:00:00Z",
                         "labels": {"node-role.kubernetes.io/etcd": "true"},
                         "annotations": {"k3sctl.io/cordoned-for": "upgrade to v1.34.3+k3s1"}},
            "spec": {"unschedulable": true},
            "status": {
                "conditions": [
                    {"type": "MemoryPressure", "status": "False"},
                    {"type": "DiskPressure", "status": "True", "reason": "KubeletHasDiskPressure"},
                    {"type": "EtcdIsVoter", "status": "False", "reason": "MemberIsLearner",
                     "message": "Node has not been promoted to a voting member"},
                    {"type": "Ready", "status": "True", "reason": "KubeletReady",
                     "lastHeartbeatTime": "2026-11-21T09:00:10Z",
                     "lastTransitionTime": "2026-11-21T08:00:00Z"}
                ],
                "nodeInfo": {"kubeletVersion": "v1.33.5+k3s1", "architecture": "amd64",
                  "bootID": "", "containerRuntimeVersion": "", "kernelVersion": "",
                  "kubeProxyVersion": "", "machineID": "", "operatingSystem": "linux",
                  "osImage": "", "systemUUID": ""}
            }
        }));
        let info = NodeInfo::from_node(&n);
        assert_eq!(info.name, "a");
        assert!(info.ready);
        assert!(info.unschedulable);
        assert_eq!(info.kubelet_version, "v1.33.5+k3s1");
        assert_eq!(info.resource_version.as_deref(), Some("42"));
        // 2026-11-21T09:00:10Z: the heartbeat wins over the transition time.
        assert_eq!(info.ready_posted, Some(1_795_251_610));
        assert_eq!(info.describe(), "Ready=True kubelet v1.33.5+k3s1 cordoned");
        assert_eq!(info.created, Some(1_795_251_610 - 2 * 3600 - 10));
        assert_eq!(info.ready_since, Some(1_795_251_610 - 3600 - 10));
        assert!(info.is_etcd_member());
        assert_eq!(info.pressure, ["DiskPressure (KubeletHasDiskPressure)"]);
        assert_eq!(
            info.etcd_voter,
            Some(Condition {
                status: false,
                detail: Some(
                    "MemberIsLearner: Node has not been promoted to a voting member".into()
                ),
            })
        );
    }

    #[test]
    fn a_node_without_status_is_not_ready() {
        let info = NodeInfo::from_node(&node(serde_json::json!({"metadata": {"name": "b"}})));
        assert!(!info.ready);
        assert!(!info.unschedulable);
        assert_eq!(info.ready_posted, None);
        assert_eq!(info.etcd_voter, None);
        assert!(!info.is_etcd_member());
        assert_eq!(info.describe(), "Ready=False kubelet unknown");
        let not_ready = node(serde_json::json!({
            "metadata": {"name": "c"},
            "status": {"conditions": [{"type": "Ready", "status": "False",
                "reason": "KubeletNotReady", "message": "container runtime is down"}]}
        }));
        assert_eq!(
            NodeInfo::from_node(&not_ready).describe(),
            "Ready=False kubelet unknown (KubeletNotReady: container runtime is down)"
        );
    }
}
