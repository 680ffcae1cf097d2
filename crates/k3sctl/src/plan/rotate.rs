//! Rotations, pure: which nodes `certs rotate` and `token rotate` restart and in what order
//! (servers one at a time in spec order, then agents one at a time), each node's turn as plan
//! [`Step`]s (run by the one step engine, `run::run_turn`), which K3s services
//! `k3s certificate rotate --service` accepts, and which servers `kubeconfig --rotate-if-expired`
//! must rotate.

use serde::Serialize;

use super::check::{CertOwner, CertRow};
use super::desired::FileContent;
use super::step::{HostPlan, Step};
use super::upgrade::NodeKind;
use crate::k3s::config::NodeRole;
use crate::k3s::unit::{ENV_FILE_MODE, env_path};

/// K3s's services whose certificates `k3s certificate rotate --service` renews on a server
/// (pkg/util/services `Server`).
pub const SERVER_SERVICES: &[&str] = &[
    "api-server",
    "admin",
    "auth-proxy",
    "cloud-controller",
    "controller-manager",
    "etcd",
    "scheduler",
    "supervisor",
    "k3s-server",
];
/// The services that also run on agents (pkg/util/services `Agent`).
pub const AGENT_SERVICES: &[&str] = &["kube-proxy", "kubelet", "k3s-controller"];

/// A client certificate that expires within this many days counts as "about to expire" for
/// `kubeconfig` (it says so, and `--rotate-if-expired` rotates).
pub const EXPIRES_SOON_DAYS: i64 = 14;

/// One node of a rotation, in the order it is restarted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RotateNode {
    /// Host (and Node) name.
    pub name: String,
    /// Server or agent.
    #[serde(serialize_with = "kind_name")]
    pub kind: NodeKind,
}

fn kind_name<S: serde::Serializer>(kind: &NodeKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match kind {
        NodeKind::Server => "server",
        NodeKind::Agent => "agent",
    })
}

/// Why a rotation cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RotatePlanError {
    /// `--node` names no host of the spec.
    #[error("--node {0}: the spec has no host of that name (hosts: {1})")]
    UnknownNode(String, String),
    /// `--services` names a service K3s does not know.
    #[error("--services {0}: not a K3s service (known: {1})")]
    UnknownService(String, String),
    /// `--services` names only server services, and `--node` is an agent.
    #[error("--node {0} is an agent, and none of the services {1} runs on agents ({2})")]
    NothingOnAgent(String, String, String),
}

/// Pure: the nodes to rotate, servers first (spec order), then agents. `only` restricts it to
/// one host; agents are left out when `services` names only server services (an agent has
/// none of their certificates).
pub fn rotation_order(
    hosts: &[(String, NodeKind)],
    only: Option<&str>,
    services: &[String],
) -> Result<Vec<RotateNode>, RotatePlanError> {
    for s in services {
        if !SERVER_SERVICES.contains(&s.as_str()) && !AGENT_SERVICES.contains(&s.as_str()) {
            let known: Vec<&str> = SERVER_SERVICES
                .iter()
                .chain(AGENT_SERVICES)
                .copied()
                .collect();
            return Err(RotatePlanError::UnknownService(s.clone(), known.join(", ")));
        }
    }
    let agents_too = services.is_empty()
        || services
            .iter()
            .any(|s| AGENT_SERVICES.contains(&s.as_str()));
    if let Some(name) = only {
        let Some((_, kind)) = hosts.iter().find(|(h, _)| h == name) else {
            let names: Vec<&str> = hosts.iter().map(|(h, _)| h.as_str()).collect();
            return Err(RotatePlanError::UnknownNode(name.into(), names.join(", ")));
        };
        if *kind == NodeKind::Agent && !agents_too {
            return Err(RotatePlanError::NothingOnAgent(
                name.into(),
                services.join(","),
                AGENT_SERVICES.join(", "),
            ));
        }
        return Ok(vec![RotateNode {
            name: name.into(),
            kind: *kind,
        }]);
    }
    let pick = |want: NodeKind| {
        hosts
            .iter()
            .filter(move |(_, k)| *k == want)
            .map(|(name, kind)| RotateNode {
                name: name.clone(),
                kind: *kind,
            })
    };
    let mut order: Vec<RotateNode> = pick(NodeKind::Server).collect();
    if agents_too {
        order.extend(pick(NodeKind::Agent));
    }
    Ok(order)
}

/// Pure: every node, servers first then agents (`token rotate` restarts them all).
pub fn restart_order(hosts: &[(String, NodeKind)]) -> Vec<RotateNode> {
    rotation_order(hosts, None, &[]).unwrap_or_default()
}

/// Pure: whether a certificate row is expired or expires within [`EXPIRES_SOON_DAYS`].
pub fn expiring(row: &CertRow) -> bool {
    row.days_left.is_some_and(|d| d < EXPIRES_SOON_DAYS)
}

/// Pure: the servers (in the order given) holding a certificate that is expired or about to
/// expire: those `kubeconfig --rotate-if-expired` rotates.
pub fn expiring_servers(rows: &[CertRow], servers: &[String]) -> Vec<String> {
    servers
        .iter()
        .filter(|s| {
            rows.iter()
                .any(|r| matches!(&r.owner, CertOwner::Host { host } if host == *s) && expiring(r))
        })
        .cloned()
        .collect()
}

/// What a rotation does to each node, between the quorum check and the waits.
#[derive(Debug, Clone, PartialEq)]
pub enum RotateAction {
    /// Stop K3s, `k3s certificate rotate [--service ...]`, start K3s.
    Certificates {
        /// `--service` values; empty: every certificate of the node.
        services: Vec<String>,
    },
    /// The unit's env file written again (its content rendered at run time with the new token,
    /// mode 0600), then K3s restarted.
    Token {
        /// The env file as apply renders it (`plan::from_spec::lasting_env`).
        env: FileContent,
    },
}

/// The K3s role of a node kind.
pub fn role_of(kind: NodeKind) -> NodeRole {
    match kind {
        NodeKind::Server => NodeRole::Server,
        NodeKind::Agent => NodeRole::Agent,
    }
}

/// Pure: `node`'s turn in a rotation. A server of a multi-server cluster first checks that
/// every other server is a healthy voter and runs (its own stop must not cost etcd quorum);
/// then the action; then the node must post Ready after its new start, and such a server must
/// be a voting member again with every member healthy before the next node goes down.
pub fn turn_steps(node: &RotateNode, ha: bool, action: &RotateAction) -> Vec<Step> {
    let ha_server = ha && node.kind == NodeKind::Server;
    let mut steps = Vec::new();
    if ha_server {
        steps.push(Step::CheckRotationQuorum);
    }
    match action {
        RotateAction::Certificates { services } => steps.push(Step::RotateCertificates {
            services: services.clone(),
        }),
        RotateAction::Token { env } => {
            steps.push(Step::WriteFile {
                path: env_path(role_of(node.kind)),
                mode: ENV_FILE_MODE,
                diff: String::new(),
                create: false,
                content: env.clone(),
            });
            steps.push(Step::Restart {
                reason: "new server token".into(),
            });
        }
    }
    steps.push(Step::WaitNodeReady);
    if ha_server {
        steps.push(Step::WaitQuorum);
    }
    steps
}

/// Pure: `node`'s turn as the step engine runs it (a node already in the cluster).
pub fn turn_plan(node: &RotateNode, ha: bool, action: &RotateAction) -> HostPlan {
    HostPlan {
        host: node.name.clone(),
        role: role_of(node.kind),
        group: None,
        first_server: false,
        in_cluster: true,
        steps: turn_steps(node, ha, action),
    }
}

/// The rotation as lines a person confirms: what stops and restarts, in order.
pub fn describe(what: &str, order: &[RotateNode]) -> Vec<String> {
    let mut lines = vec![format!(
        "{what}: {} node(s), one at a time (each back and Ready before the next; servers keep \
         etcd quorum):",
        order.len()
    )];
    for (i, n) in order.iter().enumerate() {
        let kind = match n.kind {
            NodeKind::Server => "server",
            NodeKind::Agent => "agent",
        };
        lines.push(format!("  {}. {} ({kind})", i + 1, n.name));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Vec<(String, NodeKind)> {
        vec![
            ("a1".into(), NodeKind::Agent),
            ("s1".into(), NodeKind::Server),
            ("s2".into(), NodeKind::Server),
            ("a2".into(), NodeKind::Agent),
        ]
    }

    fn names(order: &[RotateNode]) -> Vec<&str> {
        order.iter().map(|n| n.name.as_str()).collect()
    }

    #[test]
    fn servers_first_then_agents_in_spec_order() {
        let all = rotation_order(&hosts(), None, &[]).expect("order");
        assert_eq!(names(&all), ["s1", "s2", "a1", "a2"]);
        assert_eq!(names(&restart_order(&hosts())), ["s1", "s2", "a1", "a2"]);
        // Only server services: agents hold none of their certificates.
        let admin = rotation_order(&hosts(), None, &["admin".into(), "etcd".into()]).expect("o");
        assert_eq!(names(&admin), ["s1", "s2"]);
        let kubelet = rotation_order(&hosts(), None, &["kubelet".into()]).expect("o");
        assert_eq!(names(&kubelet), ["s1", "s2", "a1", "a2"]);
    }

    #[test]
    fn one_node_and_refusals() {
        let one = rotation_order(&hosts(), Some("a2"), &[]).expect("one");
        assert_eq!(names(&one), ["a2"]);
        assert_eq!(one[0].kind, NodeKind::Agent);
        let err = rotation_order(&hosts(), Some("nope"), &[]).expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "--node nope: the spec has no host of that name (hosts: a1, s1, s2, a2)"
        );
        let err = rotation_order(&hosts(), None, &["apiserver".into()]).expect_err("typo");
        assert!(
            err.to_string()
                .starts_with("--services apiserver: not a K3s service (known: api-server,"),
            "{err}"
        );
        let err = rotation_order(&hosts(), Some("a1"), &["admin".into()]).expect_err("agent");
        assert!(err.to_string().contains("a1 is an agent"), "{err}");
    }

    fn kinds(steps: &[Step]) -> Vec<&'static str> {
        steps.iter().map(Step::kind).collect()
    }

    #[test]
    fn a_servers_turn_checks_quorum_first_and_waits_for_ready_and_voter() {
        let server = RotateNode {
            name: "s1".into(),
            kind: NodeKind::Server,
        };
        let agent = RotateNode {
            name: "a1".into(),
            kind: NodeKind::Agent,
        };
        let certs = RotateAction::Certificates {
            services: vec!["admin".into()],
        };
        let ha = turn_steps(&server, true, &certs);
        assert_eq!(
            ha,
            vec![
                Step::CheckRotationQuorum,
                Step::RotateCertificates {
                    services: vec!["admin".into()]
                },
                Step::WaitNodeReady,
                Step::WaitQuorum,
            ]
        );
        assert_eq!(
            kinds(&ha),
            [
                "quorum",
                "rotate-certificates",
                "wait-node-ready",
                "wait-voter"
            ]
        );
        // A single server has no quorum to keep; an agent is no etcd member.
        assert_eq!(
            kinds(&turn_steps(&server, false, &certs)),
            ["rotate-certificates", "wait-node-ready"]
        );
        assert_eq!(
            kinds(&turn_steps(&agent, true, &certs)),
            ["rotate-certificates", "wait-node-ready"]
        );
        // The step shows the command it runs.
        assert!(
            ha[1]
                .title(NodeRole::Server)
                .contains("`/usr/local/bin/k3s certificate rotate --service admin`"),
            "{}",
            ha[1].title(NodeRole::Server)
        );
    }

    #[test]
    fn a_token_turn_writes_the_env_file_then_restarts() {
        let env = FileContent::Env {
            url: Some("https://10.0.0.1:6443".into()),
            with_token: true,
            cluster_init: false,
        };
        let agent = RotateNode {
            name: "a1".into(),
            kind: NodeKind::Agent,
        };
        let plan = turn_plan(&agent, true, &RotateAction::Token { env: env.clone() });
        assert_eq!(plan.role, NodeRole::Agent);
        assert!(plan.in_cluster, "Ready must be posted after the new start");
        assert_eq!(
            kinds(&plan.steps),
            ["write-file", "restart", "wait-node-ready"]
        );
        match &plan.steps[0] {
            Step::WriteFile {
                path,
                mode,
                content,
                ..
            } => {
                assert_eq!(path, "/etc/systemd/system/k3s-agent.service.env");
                assert_eq!(*mode, 0o600);
                assert_eq!(content, &env);
            }
            other => panic!("{other:?}"),
        }
        let server = RotateNode {
            name: "s2".into(),
            kind: NodeKind::Server,
        };
        assert_eq!(
            kinds(&turn_steps(&server, true, &RotateAction::Token { env })),
            [
                "quorum",
                "write-file",
                "restart",
                "wait-node-ready",
                "wait-voter"
            ]
        );
    }

    fn row(host: &str, days: Option<i64>) -> CertRow {
        CertRow {
            owner: CertOwner::Host { host: host.into() },
            file: "server/tls/client-admin.crt".into(),
            subject: "CN=system:admin".into(),
            expires: String::new(),
            days_left: days,
            renews_at_start: None,
            renewal_window_days: None,
            error: None,
        }
    }

    #[test]
    fn expiring_servers_are_those_with_a_certificate_due_within_two_weeks() {
        let servers = vec!["s1".to_string(), "s2".to_string(), "s3".to_string()];
        let export = CertRow {
            owner: CertOwner::Export {
                export: "s1".into(),
            },
            ..row("x", Some(-3))
        };
        let rows = [
            row("s1", Some(200)),
            row("s2", Some(13)),
            row("s3", Some(-1)),
            row("s1", None),
            export,
            row("a1", Some(0)),
        ];
        assert_eq!(expiring_servers(&rows, &servers), ["s2", "s3"]);
        assert!(!expiring(&row("s1", Some(14))));
        assert!(expiring(&row("s1", Some(0))));
    }
}
