//! Embedded etcd's quorum during an upgrade, pure: what the Node objects say about the etcd
//! members (K3s's `EtcdIsVoter` condition, the `node-role.kubernetes.io/etcd` label and the
//! `etcd.k3s.cattle.io/node-*` annotations), whether a server may go down now, and whether a
//! restarted server is back as a voter.
//!
//! etcd keeps working while a majority of its members (floor(n/2)+1) is healthy, so a cluster of
//! 3 tolerates one member down. The upgrade takes one server down at a time, and only when every
//! member is a healthy voter: a learner or a member already down means one more down could lose
//! quorum (docs.k3s.io upgrades/manual: servers first, one at a time).

use crate::kube::{CORDONED_FOR, EtcdMember, NodeInfo};

/// The annotation K3s writes with a server's etcd member name.
pub const ETCD_NODE_NAME: &str = "etcd.k3s.cattle.io/node-name";
/// The annotation K3s writes with a server's etcd peer address.
pub const ETCD_NODE_ADDRESS: &str = "etcd.k3s.cattle.io/node-address";

/// Why a server may not go down now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumRisk {
    /// What is wrong, one line each.
    pub problems: Vec<String>,
    /// Healthy voters (Ready and `EtcdIsVoter=True`) among the members.
    pub healthy: usize,
    /// Members (nodes labelled as etcd).
    pub members: usize,
    /// etcd's view of its members as the Node objects show it, one line per member.
    pub view: Vec<String>,
}

impl QuorumRisk {
    /// The majority the members need.
    pub fn quorum(&self) -> usize {
        self.members / 2 + 1
    }

    /// Fewer healthy voters than a majority: the cluster has already lost quorum.
    pub fn lost(&self) -> bool {
        self.healthy < self.quorum()
    }
}

impl std::fmt::Display for QuorumRisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        let state = if self.lost() {
            "quorum is lost"
        } else if self.healthy < self.members {
            "quorum is already degraded: one more server down could lose it"
        } else {
            "quorum holds, but not every server is a healthy voting member"
        };
        writeln!(
            f,
            "  etcd: {} of {} members are healthy voters, quorum needs {}: {state}",
            self.healthy,
            self.members,
            self.quorum()
        )?;
        write!(f, "  etcd members as the Node objects show them:")?;
        if self.view.is_empty() {
            write!(f, "\n    (no node carries the etcd role label)")?;
        }
        for line in &self.view {
            write!(f, "\n    {line}")?;
        }
        Ok(())
    }
}

fn voter(node: &NodeInfo) -> bool {
    node.etcd_voter.as_ref().is_some_and(|c| c.status)
}

/// Pure: one line per etcd member (and per node with an `EtcdIsVoter` condition), sorted by
/// name: `s1: Ready=True EtcdIsVoter=False (MemberIsLearner: ...) member s1-1a2b 10.0.0.1`.
pub fn etcd_view(nodes: &[NodeInfo]) -> Vec<String> {
    nodes
        .iter()
        .filter(|n| n.is_etcd_member() || n.etcd_voter.is_some())
        .map(|n| {
            let condition = match &n.etcd_voter {
                None => "EtcdIsVoter missing".to_string(),
                Some(c) => format!(
                    "EtcdIsVoter={}{}",
                    if c.status { "True" } else { "False" },
                    c.detail
                        .as_deref()
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default()
                ),
            };
            let mut line = format!(
                "{}: Ready={} {condition}",
                n.name,
                if n.ready { "True" } else { "False" }
            );
            if !n.is_etcd_member() {
                line.push_str(" (no etcd role label)");
            }
            for key in [ETCD_NODE_NAME, ETCD_NODE_ADDRESS] {
                if let Some(v) = n.annotations.get(key) {
                    line.push(' ');
                    line.push_str(v);
                }
            }
            line
        })
        .collect()
}

/// What the quorum check looks at.
#[derive(Debug, Clone, Copy)]
pub struct EtcdState<'a> {
    /// The spec's servers.
    pub servers: &'a [&'a str],
    /// Every Node.
    pub nodes: &'a [NodeInfo],
    /// etcd's own member list (`/db/info`), when the server answered it.
    pub members: Option<&'a [EtcdMember]>,
    /// Servers whose K3s service is not running (asked over SSH): down now, although their Node
    /// turns NotReady only after the node-monitor grace period (40 s).
    pub stopped: &'a [String],
}

/// Pure: whether every server is a healthy voting member: `Ok` when every server is Ready, runs
/// and is a voter, the members are exactly the spec's servers, and etcd has no learner; else
/// what is wrong, with etcd's view.
pub fn check_quorum(state: &EtcdState<'_>) -> Result<(), QuorumRisk> {
    check(state, None)
}

/// Pure: whether the server `next` may go down now. As [`check_quorum`], except that `next`
/// itself may already be down or not a voter when an interrupted k3sctl run left it so (it
/// carries k3sctl's cordon annotation): upgrading it does not take a second member down.
pub fn may_take_down(state: &EtcdState<'_>, next: &str) -> Result<(), QuorumRisk> {
    let interrupted = state
        .nodes
        .iter()
        .any(|n| n.name == next && n.annotations.contains_key(CORDONED_FOR));
    check(state, interrupted.then_some(next))
}

/// Pure: may server `next` be stopped and started now (certificate or token rotation)? Like
/// [`may_take_down`], except that `next` itself is not judged: it may be the one whose expired
/// certificates keep it from posting Ready; every other server must be a healthy voter.
pub fn may_restart(state: &EtcdState<'_>, next: &str) -> Result<(), QuorumRisk> {
    check(state, Some(next))
}

/// Pure: may server `next` be stopped and started when no server's API answers, so neither the
/// Nodes nor etcd's members can be read (every admin certificate expired: the case a rotation
/// is for)? Only when every other server's K3s service runs (asked over SSH); else the other
/// servers that are down, each one fewer member for etcd's majority.
pub fn may_restart_unseen(
    servers: &[&str],
    stopped: &[String],
    next: &str,
) -> Result<(), Vec<String>> {
    let down: Vec<String> = servers
        .iter()
        .filter(|s| **s != next && stopped.iter().any(|t| t == *s))
        .map(|s| (*s).to_string())
        .collect();
    if down.is_empty() { Ok(()) } else { Err(down) }
}

fn check(state: &EtcdState<'_>, tolerate: Option<&str>) -> Result<(), QuorumRisk> {
    let EtcdState {
        servers,
        nodes,
        members,
        stopped,
    } = *state;
    let mut problems = Vec::new();
    for &server in servers {
        let Some(node) = nodes.iter().find(|n| n.name == server) else {
            problems.push(format!("server {server}: no Node object"));
            continue;
        };
        if !node.is_etcd_member() {
            problems.push(format!(
                "server {server}: no node-role.kubernetes.io/etcd=true label"
            ));
        }
        if tolerate == Some(server) {
            continue;
        }
        if stopped.iter().any(|s| s == server) {
            problems.push(format!("server {server}: its K3s service is not running"));
        }
        if !node.ready {
            problems.push(format!("server {server}: not Ready ({})", node.describe()));
        }
        match &node.etcd_voter {
            None => problems.push(format!(
                "server {server}: no EtcdIsVoter condition (not an embedded-etcd member yet)"
            )),
            Some(c) if !c.status => problems.push(format!(
                "server {server}: not a voting member{} (a learner still catching up, or \
                 unhealthy)",
                c.detail
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            )),
            Some(_) => {}
        }
    }
    let labelled: Vec<&NodeInfo> = nodes.iter().filter(|n| n.is_etcd_member()).collect();
    for extra in labelled
        .iter()
        .filter(|m| !servers.contains(&m.name.as_str()))
    {
        problems.push(format!(
            "node {}: an etcd member that is not a server of the spec",
            extra.name
        ));
    }
    if labelled.len() != servers.len() {
        problems.push(format!(
            "{} node(s) carry the etcd role, the spec has {} server(s)",
            labelled.len(),
            servers.len()
        ));
    }
    let mut voters = labelled.len();
    if let Some(members) = members {
        for learner in members.iter().filter(|m| m.is_learner) {
            problems.push(format!(
                "etcd member {}: a learner, not a voting member yet",
                learner.describe()
            ));
        }
        if members.len() != servers.len() {
            problems.push(format!(
                "etcd lists {} member(s), the spec has {} server(s)",
                members.len(),
                servers.len()
            ));
        }
        voters = members.iter().filter(|m| !m.is_learner).count();
    }
    if problems.is_empty() {
        return Ok(());
    }
    let mut view = etcd_view(nodes);
    if let Some(members) = members {
        view.extend(
            members
                .iter()
                .map(|m| format!("etcd member list: {}", m.describe())),
        );
    }
    Err(QuorumRisk {
        problems,
        healthy: labelled
            .iter()
            .filter(|m| m.ready && voter(m) && !stopped.contains(&m.name))
            .count(),
        members: voters,
        view,
    })
}

/// Pure: whether the restarted server `name` is back: Ready and a voting member. `None` when it
/// is, else what it still lacks.
pub fn server_back(name: &str, nodes: &[NodeInfo]) -> Option<String> {
    let Some(node) = nodes.iter().find(|n| n.name == name) else {
        return Some(format!("server {name}: no Node object"));
    };
    match (&node.etcd_voter, node.ready) {
        (Some(c), true) if c.status => None,
        (None, _) => Some(format!("server {name}: no EtcdIsVoter condition yet")),
        (Some(c), ready) => Some(format!(
            "server {name}: Ready={} EtcdIsVoter={}{}",
            if ready { "True" } else { "False" },
            if c.status { "True" } else { "False" },
            c.detail
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::{Condition, ETCD_ROLE_LABEL};

    fn server(name: &str, ready: bool, voter: Option<bool>) -> NodeInfo {
        let mut n = NodeInfo {
            name: name.into(),
            ready,
            etcd_voter: voter.map(|v| Condition {
                status: v,
                detail: Some(
                    if v {
                        "MemberNotLearner"
                    } else {
                        "MemberIsLearner"
                    }
                    .into(),
                ),
            }),
            ..NodeInfo::default()
        };
        n.labels.insert(ETCD_ROLE_LABEL.into(), "true".into());
        n.annotations
            .insert(ETCD_NODE_NAME.into(), format!("{name}-1a2b3c4d"));
        n.annotations
            .insert(ETCD_NODE_ADDRESS.into(), "10.0.0.1".into());
        n
    }

    fn agent(name: &str) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            ready: true,
            ..NodeInfo::default()
        }
    }

    const SERVERS: [&str; 3] = ["s1", "s2", "s3"];

    fn nodes_only(nodes: &[NodeInfo]) -> EtcdState<'_> {
        EtcdState {
            servers: &SERVERS,
            nodes,
            members: None,
            stopped: &[],
        }
    }

    fn member(name: &str, learner: bool) -> EtcdMember {
        EtcdMember {
            name: name.into(),
            peer_urls: vec![format!("https://{name}:2380")],
            is_learner: learner,
        }
    }

    #[test]
    fn a_server_may_go_down_only_when_every_member_is_a_healthy_voter() {
        let healthy = vec![
            server("s1", true, Some(true)),
            server("s2", true, Some(true)),
            server("s3", true, Some(true)),
            agent("a1"),
        ];
        // (case, nodes, ok?, quorum lost?)
        let mut learner = healthy.clone();
        learner[1] = server("s2", true, Some(false));
        let mut down = healthy.clone();
        down[2] = server("s3", false, Some(true));
        let mut two_down = down.clone();
        two_down[1] = server("s2", false, Some(false));
        let mut missing = healthy.clone();
        missing.remove(2);
        let mut unlabelled = healthy.clone();
        unlabelled[0].labels.clear();
        let mut extra = healthy.clone();
        extra.push(server("s4", true, Some(true)));
        let mut no_condition = healthy.clone();
        no_condition[2].etcd_voter = None;
        let table: Vec<(&str, Vec<NodeInfo>, bool, bool)> = vec![
            ("all voters", healthy.clone(), true, false),
            ("a learner", learner, false, false),
            ("one member down", down, false, false),
            ("two members down", two_down, false, true),
            ("a server without a Node", missing, false, false),
            ("a server without the etcd label", unlabelled, false, false),
            ("a member not in the spec", extra, false, false),
            ("a server without EtcdIsVoter", no_condition, false, false),
        ];
        for (case, nodes, ok, lost) in table {
            let got = check_quorum(&nodes_only(&nodes));
            assert_eq!(got.is_ok(), ok, "{case}: {got:?}");
            if let Err(risk) = got {
                assert_eq!(risk.lost(), lost, "{case}: {risk:?}");
            }
        }
    }

    #[test]
    fn the_refusal_shows_etcds_view_of_the_members() {
        let nodes = vec![
            server("s1", true, Some(true)),
            server("s2", true, Some(false)),
            server("s3", false, Some(true)),
            agent("a1"),
        ];
        let risk = check_quorum(&nodes_only(&nodes)).expect_err("degraded");
        assert_eq!((risk.healthy, risk.members, risk.quorum()), (1, 3, 2));
        let text = risk.to_string();
        for want in [
            "server s2: not a voting member (MemberIsLearner)",
            "server s3: not Ready",
            "1 of 3 members are healthy voters, quorum needs 2: quorum is lost",
            "s1: Ready=True EtcdIsVoter=True (MemberNotLearner) s1-1a2b3c4d 10.0.0.1",
            "s3: Ready=False EtcdIsVoter=True",
        ] {
            assert!(text.contains(want), "missing `{want}` in:\n{text}");
        }
        assert!(!text.contains("a1:"), "agents are not members:\n{text}");
    }

    #[test]
    fn a_server_an_interrupted_run_left_down_may_be_upgraded_alone() {
        let mut nodes = vec![
            server("s1", true, Some(true)),
            server("s2", false, Some(false)),
            server("s3", true, Some(true)),
        ];
        // Down for a reason of its own: refused, whichever server is next.
        assert!(may_take_down(&nodes_only(&nodes), "s2").is_err());
        assert!(may_take_down(&nodes_only(&nodes), "s1").is_err());
        // Left down by an interrupted k3sctl run: that server may go on, no other.
        nodes[1]
            .annotations
            .insert(CORDONED_FOR.into(), "upgrade to v1.34.1+k3s1".into());
        assert_eq!(may_take_down(&nodes_only(&nodes), "s2"), Ok(()));
        assert!(may_take_down(&nodes_only(&nodes), "s3").is_err());
        assert!(check_quorum(&nodes_only(&nodes)).is_err());
        // With another member down too, not even that one.
        nodes[2] = server("s3", false, Some(true));
        assert!(may_take_down(&nodes_only(&nodes), "s2").is_err());
    }

    #[test]
    fn a_rotation_may_restart_a_server_that_is_itself_not_ready_but_no_second_one() {
        let mut nodes = vec![
            server("s1", false, Some(true)),
            server("s2", true, Some(true)),
            server("s3", true, Some(true)),
        ];
        // s1's expired certificates keep it NotReady: restarting it alone keeps quorum.
        assert_eq!(may_restart(&nodes_only(&nodes), "s1"), Ok(()));
        assert!(may_take_down(&nodes_only(&nodes), "s1").is_err());
        // Another server while s1 is not well: refused.
        assert!(may_restart(&nodes_only(&nodes), "s2").is_err());
        nodes[0] = server("s1", true, Some(true));
        nodes[2] = server("s3", true, Some(false));
        assert!(may_restart(&nodes_only(&nodes), "s1").is_err());
    }

    #[test]
    fn a_rotation_counts_servers_whose_k3s_is_stopped_although_their_node_says_ready() {
        let nodes = vec![
            server("s1", true, Some(true)),
            server("s2", true, Some(true)),
            server("s3", true, Some(true)),
        ];
        // K3s on s3 stopped seconds ago: its Node is still Ready and a voter.
        let stopped = ["s3".to_string()];
        let state = EtcdState {
            stopped: &stopped,
            ..nodes_only(&nodes)
        };
        let risk = may_restart(&state, "s2").expect_err("s3 is down");
        assert!(
            risk.to_string()
                .contains("server s3: its K3s service is not running"),
            "{risk}"
        );
        assert_eq!((risk.healthy, risk.members), (2, 3));
        // s3 itself may be restarted (it is the only one down).
        assert_eq!(may_restart(&state, "s3"), Ok(()));
    }

    #[test]
    fn without_the_api_a_rotation_needs_every_other_servers_k3s_running() {
        let none: [String; 0] = [];
        assert_eq!(may_restart_unseen(&SERVERS, &none, "s1"), Ok(()));
        let s1_down = ["s1".to_string()];
        // The node itself being down is no second member down.
        assert_eq!(may_restart_unseen(&SERVERS, &s1_down, "s1"), Ok(()));
        assert_eq!(
            may_restart_unseen(&SERVERS, &s1_down, "s2"),
            Err(vec!["s1".to_string()])
        );
        // A stopped host that is not a server of the spec does not count.
        let other = ["a1".to_string(), "s3".to_string()];
        assert_eq!(
            may_restart_unseen(&SERVERS, &other, "s1"),
            Err(vec!["s3".to_string()])
        );
    }

    #[test]
    fn etcds_own_list_and_stopped_services_count_before_the_nodes_notice() {
        let nodes = vec![
            server("s1", true, Some(true)),
            server("s2", true, Some(true)),
            server("s3", true, Some(true)),
        ];
        let voters = [
            member("s1-a", false),
            member("s2-b", false),
            member("s3-c", false),
        ];
        let full = EtcdState {
            members: Some(&voters),
            ..nodes_only(&nodes)
        };
        assert_eq!(check_quorum(&full), Ok(()));
        // A learner only etcd knows about (no Node carries it).
        let with_learner = [
            member("s1-a", false),
            member("s2-b", false),
            member("s3-c", false),
            member("", true),
        ];
        let risk = check_quorum(&EtcdState {
            members: Some(&with_learner),
            ..nodes_only(&nodes)
        })
        .expect_err("learner");
        let text = risk.to_string();
        assert!(
            text.contains("etcd member (unnamed: never started) (learner)"),
            "{text}"
        );
        assert!(
            text.contains("etcd lists 4 member(s), the spec has 3"),
            "{text}"
        );
        assert!(
            text.contains("etcd member list: s2-b (voter) https://s2-b:2380"),
            "{text}"
        );
        // A server whose K3s stopped a second ago: its Node still says Ready.
        let stopped = ["s3".to_string()];
        let risk = check_quorum(&EtcdState {
            stopped: &stopped,
            ..full
        })
        .expect_err("stopped");
        assert_eq!((risk.healthy, risk.members), (2, 3));
        assert!(
            risk.to_string()
                .contains("server s3: its K3s service is not running"),
            "{risk}"
        );
        assert!(
            risk.to_string().contains("quorum is already degraded"),
            "{risk}"
        );
    }

    #[test]
    fn a_restarted_server_is_back_when_ready_and_a_voter() {
        let table = [
            (server("s1", true, Some(true)), None),
            (
                server("s1", true, Some(false)),
                Some("server s1: Ready=True EtcdIsVoter=False (MemberIsLearner)"),
            ),
            (
                server("s1", false, Some(true)),
                Some("server s1: Ready=False EtcdIsVoter=True (MemberNotLearner)"),
            ),
            (
                server("s1", true, None),
                Some("server s1: no EtcdIsVoter condition yet"),
            ),
        ];
        for (node, want) in table {
            assert_eq!(server_back("s1", &[node]).as_deref(), want);
        }
        assert_eq!(
            server_back("s9", &[]).as_deref(),
            Some("server s9: no Node object")
        );
    }
}
