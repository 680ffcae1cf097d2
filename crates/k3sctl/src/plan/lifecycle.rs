//! Node lifecycle, pure: the steps that take a node out of the cluster (`node remove`, the old
//! side of `node replace`, `reset`), their order, and whether taking a server's etcd member away
//! keeps quorum.
//!
//! etcd needs a majority (floor(n/2)+1) of its members healthy both to carry out the removal
//! and afterwards. Removing the last server ends the cluster: refused (that is `reset`).

use super::step::{DrainSettings, HostPlan, Step};
use crate::k3s::config::NodeRole;
use crate::kube::{ETCD_ROLE_LABEL, EtcdMember, NodeInfo, members_of};
use crate::plan::upgrade::quorum::ETCD_NODE_NAME;

/// The label K3s puts on servers.
pub const CONTROL_PLANE_LABEL: &str = "node-role.kubernetes.io/control-plane";

/// What is known of a node about to leave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaving {
    /// Node (and host) name.
    pub name: String,
    /// Its role (from the spec, or its Node's labels).
    pub role: NodeRole,
    /// Its Node object exists.
    pub registered: bool,
    /// It has an etcd member (by its Node's annotation or etcd's member list).
    pub etcd_member: bool,
    /// The host was reached: what of K3s it still has (see [`crate::k3s::uninstall`]); `None`
    /// when it could not be reached.
    pub found: Option<Vec<String>>,
}

/// What to do to the leaving host once its workloads and etcd member are gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostEnd {
    /// Uninstall K3s (and delete the Node).
    Uninstall,
    /// Stop and disable K3s (kept installed), delete the Node.
    StopAndDelete,
    /// Stop and disable K3s; the Node stays (NotReady).
    Stop,
    /// Leave K3s running on the host (cordoned and drained only).
    Keep,
}

/// Pure: the steps that take `node` out: cordon and drain when it is registered, its etcd
/// member removed (servers), then per `end`: K3s stopped or uninstalled when the host was
/// reached, and the Node deleted last (a running kubelet would register it again).
pub fn leaving_steps(
    node: &Leaving,
    drain: DrainSettings,
    reason: &str,
    end: HostEnd,
) -> Vec<Step> {
    let mut steps = Vec::new();
    if node.registered {
        steps.push(Step::Cordon {
            reason: reason.to_string(),
        });
        steps.push(Step::Drain(drain));
    }
    if node.role == NodeRole::Server && node.etcd_member && end != HostEnd::Keep {
        steps.push(Step::LeaveEtcd);
    }
    match (end, &node.found) {
        (HostEnd::Uninstall, Some(found)) if !found.is_empty() => steps.push(Step::Uninstall {
            found: found.clone(),
        }),
        (HostEnd::StopAndDelete | HostEnd::Stop, Some(found))
            if found.iter().any(|f| f.starts_with("unit ")) =>
        {
            steps.push(Step::StopService);
        }
        _ => {}
    }
    if node.registered && matches!(end, HostEnd::Uninstall | HostEnd::StopAndDelete) {
        steps.push(Step::DeleteNode);
    }
    steps
}

/// The host plan for a leaving node.
pub fn leaving_plan(node: &Leaving, steps: Vec<Step>) -> HostPlan {
    HostPlan {
        host: node.name.clone(),
        role: node.role,
        group: None,
        first_server: false,
        in_cluster: node.registered,
        steps,
    }
}

/// Pure: the order of a reset: agents first, servers last (in the order given).
pub fn reset_order(mut hosts: Vec<HostPlan>) -> Vec<HostPlan> {
    hosts.sort_by_key(|h| h.role == NodeRole::Server);
    hosts
}

/// Pure: a node's role as its Node object shows it (K3s labels servers control-plane).
pub fn role_of(node: &NodeInfo) -> NodeRole {
    let server = [CONTROL_PLANE_LABEL, ETCD_ROLE_LABEL]
        .iter()
        .any(|l| node.labels.get(*l).map(String::as_str) == Some("true"));
    if server {
        NodeRole::Server
    } else {
        NodeRole::Agent
    }
}

/// Pure: whether the server `victim` may leave now. Refused when it is the last server, when
/// etcd would not have a majority of healthy voters to carry out the removal, or would not have
/// one afterwards, or while a member is a learner (a join in progress). `Ok` says what etcd
/// goes from and to. `stopped` are servers whose K3s service is known not to run (asked over
/// ssh): their Node stays Ready for the node-monitor grace period (40 s) after K3s stops, so
/// the Node alone would count a dead server as a healthy voter.
pub fn check_server_removal(
    nodes: &[NodeInfo],
    members: Option<&[EtcdMember]>,
    victim: &str,
    stopped: &[String],
) -> Result<String, String> {
    let servers: Vec<&NodeInfo> = nodes
        .iter()
        .filter(|n| role_of(n) == NodeRole::Server)
        .collect();
    if !servers.iter().any(|n| n.name != victim) {
        return Err(format!(
            "{victim} is the last server: removing it ends the cluster\n  hint: `k3sctl reset` \
             uninstalls the whole cluster"
        ));
    }
    let runs = |n: &NodeInfo| !stopped.contains(&n.name);
    let healthy =
        |n: &NodeInfo| runs(n) && n.ready && n.etcd_voter.as_ref().is_some_and(|c| c.status);
    let etcd_nodes: Vec<&NodeInfo> = servers
        .iter()
        .copied()
        .filter(|n| n.is_etcd_member())
        .collect();
    let victim_node = nodes.iter().find(|n| n.name == victim);
    let victim_member_name = victim_node.and_then(|n| n.annotations.get(ETCD_NODE_NAME));
    let (total, victim_is_member, learners) = match members {
        Some(members) => {
            let mine = members_of(victim, victim_member_name.map(String::as_str), members);
            let learners: Vec<String> = members
                .iter()
                .filter(|m| m.is_learner)
                .map(EtcdMember::describe)
                .collect();
            (members.len(), !mine.is_empty(), learners)
        }
        None => (
            etcd_nodes.len(),
            victim_node.is_some_and(NodeInfo::is_etcd_member),
            Vec::new(),
        ),
    };
    if total == 0 {
        // No embedded etcd (a single SQLite server, or an external datastore): only the
        // last-server rule applies.
        return Ok("no embedded etcd member to remove".into());
    }
    if !learners.is_empty() {
        return Err(format!(
            "etcd has a learner ({}): a server is still joining\n  hint: wait until it is a \
             voting member (k3sctl check), then re-run",
            learners.join(", ")
        ));
    }
    let healthy_all = etcd_nodes.iter().filter(|n| healthy(n)).count();
    let healthy_left = etcd_nodes
        .iter()
        .filter(|n| n.name != victim && healthy(n))
        .count();
    let left = if victim_is_member { total - 1 } else { total };
    let quorum_now = total / 2 + 1;
    let quorum_after = left / 2 + 1;
    if left == 0 {
        return Err(format!(
            "{victim} holds the only etcd member: removing it ends the cluster"
        ));
    }
    let view = etcd_nodes
        .iter()
        .map(|n| {
            format!(
                "{}: Ready={} EtcdIsVoter={}{}",
                n.name,
                if n.ready { "True" } else { "False" },
                match &n.etcd_voter {
                    Some(c) if c.status => "True",
                    Some(_) => "False",
                    None => "missing",
                },
                if runs(n) { "" } else { " (K3s stopped)" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    if healthy_all < quorum_now {
        return Err(format!(
            "etcd has {healthy_all} healthy voter(s) of {total} member(s), fewer than the {quorum_now} \
             it needs to remove a member (quorum is lost) [{view}]\n  hint: bring the servers \
             back first"
        ));
    }
    if healthy_left < quorum_after {
        return Err(format!(
            "removing {victim} would leave {healthy_left} healthy voter(s) of {left} member(s), \
             fewer than the {quorum_after} etcd needs: it would lose quorum [{view}]\n  hint: \
             bring the other servers back, or add a server first (`k3sctl node replace`)"
        ));
    }
    Ok(format!(
        "etcd goes from {total} to {left} member(s); {healthy_left} healthy voter(s) remain \
         (quorum {quorum_after})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::Condition;

    fn server(name: &str, ready: bool, voter: bool) -> NodeInfo {
        let mut n = NodeInfo {
            name: name.into(),
            ready,
            etcd_voter: Some(Condition {
                status: voter,
                detail: None,
            }),
            ..NodeInfo::default()
        };
        n.labels.insert(ETCD_ROLE_LABEL.into(), "true".into());
        n.labels.insert(CONTROL_PLANE_LABEL.into(), "true".into());
        n.annotations
            .insert(ETCD_NODE_NAME.into(), format!("{name}-0a0b0c0d"));
        n
    }

    fn agent(name: &str) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            ready: true,
            ..NodeInfo::default()
        }
    }

    fn member(name: &str, learner: bool) -> EtcdMember {
        EtcdMember {
            name: format!("{name}-0a0b0c0d"),
            peer_urls: vec![],
            is_learner: learner,
        }
    }

    #[test]
    fn the_last_server_is_never_removed() {
        let nodes = [server("s1", true, true), agent("a1")];
        let err =
            check_server_removal(&nodes, Some(&[member("s1", false)]), "s1", &[]).unwrap_err();
        assert!(err.contains("last server"), "{err}");
        let single = [
            NodeInfo {
                labels: [(CONTROL_PLANE_LABEL.to_string(), "true".to_string())].into(),
                ..agent("s1")
            },
            agent("a1"),
        ];
        assert!(check_server_removal(&single, None, "s1", &[]).is_err());
    }

    #[test]
    fn quorum_is_kept_during_and_after_the_removal() {
        let members4 = [
            member("s1", false),
            member("s2", false),
            member("s3", false),
            member("s4", false),
        ];
        // Surge: 4 healthy members, one leaves: 3 remain.
        let four = [
            server("s1", true, true),
            server("s2", true, true),
            server("s3", true, true),
            server("s4", true, true),
        ];
        let ok = check_server_removal(&four, Some(&members4), "s3", &[]).expect("allowed");
        assert!(ok.contains("from 4 to 3"), "{ok}");
        // 3 members, one other down: removing a healthy one leaves 1 healthy of 2.
        let members3 = &members4[..3];
        let degraded = [
            server("s1", true, true),
            server("s2", false, false),
            server("s3", true, true),
        ];
        let err = check_server_removal(&degraded, Some(members3), "s3", &[]).unwrap_err();
        assert!(err.contains("would lose quorum"), "{err}");
        // The dead member itself may go: 2 healthy of the 2 left.
        assert!(check_server_removal(&degraded, Some(members3), "s2", &[]).is_ok());
        // Two of three down: quorum already lost, nothing can be removed.
        let lost = [
            server("s1", true, true),
            server("s2", false, false),
            server("s3", false, false),
        ];
        let err = check_server_removal(&lost, Some(members3), "s3", &[]).unwrap_err();
        assert!(err.contains("quorum is lost"), "{err}");
        // A learner: a join in progress.
        let joining = [
            member("s1", false),
            member("s2", false),
            member("s3", false),
            member("s4", true),
        ];
        let err = check_server_removal(&four, Some(&joining), "s3", &[]).unwrap_err();
        assert!(err.contains("learner"), "{err}");
        // 3 healthy → 2: allowed (both must stay healthy).
        let three = &four[..3];
        assert!(check_server_removal(three, Some(members3), "s1", &[]).is_ok());
        // K3s stopped on s2 seconds ago: its Node still says Ready and voter, the service
        // does not; removing s1 would leave s3 alone of 2 members.
        let err = check_server_removal(three, Some(members3), "s1", &["s2".into()]).unwrap_err();
        assert!(
            err.contains("would lose quorum")
                && err.contains("s2: Ready=True EtcdIsVoter=True (K3s stopped)"),
            "{err}"
        );
        // The stopped server itself may go.
        assert!(check_server_removal(three, Some(members3), "s2", &["s2".into()]).is_ok());
        // Two stopped: quorum is already lost.
        let err = check_server_removal(three, Some(members3), "s3", &["s1".into(), "s2".into()])
            .unwrap_err();
        assert!(err.contains("quorum is lost"), "{err}");
    }

    #[test]
    fn steps_follow_the_role_and_what_was_found() {
        let drain = DrainSettings {
            timeout_secs: 60,
            delete_empty_dir_data: false,
            force: false,
            disable_eviction: false,
        };
        let kinds = |steps: Vec<Step>| steps.iter().map(Step::kind).collect::<Vec<_>>();
        let agent = Leaving {
            name: "a1".into(),
            role: NodeRole::Agent,
            registered: true,
            etcd_member: false,
            found: Some(vec!["unit k3s-agent".into(), "/usr/local/bin/k3s".into()]),
        };
        assert_eq!(
            kinds(leaving_steps(&agent, drain, "removal", HostEnd::Uninstall)),
            ["cordon", "drain", "uninstall", "delete-node"]
        );
        assert_eq!(
            kinds(leaving_steps(&agent, drain, "r", HostEnd::StopAndDelete)),
            ["cordon", "drain", "stop-service", "delete-node"]
        );
        assert_eq!(
            kinds(leaving_steps(&agent, drain, "r", HostEnd::Keep)),
            ["cordon", "drain"]
        );
        let server = Leaving {
            name: "s3".into(),
            role: NodeRole::Server,
            etcd_member: true,
            ..agent.clone()
        };
        assert_eq!(
            kinds(leaving_steps(&server, drain, "r", HostEnd::Uninstall)),
            ["cordon", "drain", "leave-etcd", "uninstall", "delete-node"]
        );
        // Unreachable host: the API side only.
        let gone = Leaving {
            found: None,
            ..server.clone()
        };
        assert_eq!(
            kinds(leaving_steps(&gone, drain, "r", HostEnd::Uninstall)),
            ["cordon", "drain", "leave-etcd", "delete-node"]
        );
        // Already removed from the API, host still has files: uninstall only.
        let leftover = Leaving {
            registered: false,
            etcd_member: false,
            ..agent.clone()
        };
        assert_eq!(
            kinds(leaving_steps(&leftover, drain, "r", HostEnd::Uninstall)),
            ["uninstall"]
        );
        // Nothing left anywhere: nothing to do (re-run after success).
        let clean = Leaving {
            found: Some(vec![]),
            ..leftover
        };
        assert!(leaving_steps(&clean, drain, "r", HostEnd::Uninstall).is_empty());
    }

    #[test]
    fn resets_take_agents_before_servers() {
        let plan = |name: &str, role| HostPlan {
            host: name.into(),
            role,
            group: None,
            first_server: false,
            in_cluster: true,
            steps: vec![],
        };
        let order = reset_order(vec![
            plan("s1", NodeRole::Server),
            plan("a1", NodeRole::Agent),
            plan("s2", NodeRole::Server),
            plan("a2", NodeRole::Agent),
        ]);
        let names: Vec<&str> = order.iter().map(|h| h.host.as_str()).collect();
        assert_eq!(names, ["a1", "a2", "s1", "s2"]);
    }
}
