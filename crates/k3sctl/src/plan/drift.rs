//! Drift, pure: where the live cluster differs from the spec beyond the files and services the
//! steps already compare. Node labels and taints the spec sets (K3s applies them only at
//! registration), the effective K3s arguments (`k3s.io/node-args`) against the rendered
//! config.yaml (both normalised by `k3s::effective`, so only differences K3s acts on count),
//! kubelet versions against the spec's version, the objects of the manifests k3sctl writes
//! (`super::manifest_drift`), and Nodes no spec host explains.
//! Each item says whether apply puts it back (then the plan also has the step that does) or
//! leaves it to a person, with a hint.

use std::collections::BTreeMap;

use serde::Serialize;

use super::desired::{Desired, DesiredHost, FileContent};
use super::observed::{Observed, ObservedNode, StartFiles};
use super::step::{HostPlan, Step};
use crate::k3s::config::CONFIG_PATH;
use crate::k3s::config::NodeRole;
use crate::k3s::effective::node_args::{self, NODE_ARGS_ANNOTATION};
use crate::k3s::effective::{Compare, NodeDefaults, changes, flags_from_environment};
use crate::kube::{plan_labels, plan_taints};

/// What differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DriftKind {
    /// A node label the spec sets (or k3sctl set and the spec no longer names).
    Label,
    /// A node taint the spec sets (or k3sctl set and the spec no longer lists).
    Taint,
    /// One K3s argument (flag) of the running node.
    NodeArg,
    /// The kubelet (K3s) version of the node.
    KubeletVersion,
    /// A Node that no host of the spec explains.
    UnknownNode,
    /// An object a manifest k3sctl manages declares (HelmChartConfig overrides,
    /// `addons.manifests`), changed or deleted in the API; or such a manifest that cannot be
    /// read as objects.
    Manifest,
}

/// Who puts it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DriftFix {
    /// `apply` puts it back (the plan has the step).
    Apply,
    /// `apply` leaves it: a person decides (see the hint).
    Manual,
}

/// One difference between the live cluster and the spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriftItem {
    /// Node (host) name.
    pub host: String,
    /// What differs.
    pub kind: DriftKind,
    /// The label key, taint key and effect, or flag name; the node name for a Node.
    pub subject: String,
    /// What the spec declares (`None`: nothing).
    pub declared: Option<String>,
    /// What the cluster has (`None`: nothing).
    pub live: Option<String>,
    /// Who puts it back.
    pub fix: DriftFix,
    /// What to do, when apply does not.
    pub hint: Option<String>,
}

impl DriftItem {
    /// One line: `a1 label zone: spec a, live b (apply puts it back)`.
    pub fn describe(&self) -> String {
        let kind = match self.kind {
            DriftKind::Label => "label",
            DriftKind::Taint => "taint",
            DriftKind::NodeArg => "k3s argument",
            DriftKind::KubeletVersion => "kubelet version",
            DriftKind::UnknownNode => "unknown Node",
            DriftKind::Manifest => "manifest object",
        };
        let side = |v: &Option<String>| one_line(v.as_deref().unwrap_or("(none)"));
        let what = if self.kind == DriftKind::UnknownNode {
            format!("{}: not a host of the spec", self.host)
        } else {
            format!(
                "{} {kind} {}: spec {}, live {}",
                self.host,
                self.subject,
                side(&self.declared),
                side(&self.live)
            )
        };
        match self.fix {
            DriftFix::Apply => format!("{what} (apply puts it back)"),
            DriftFix::Manual => format!("{what} (apply leaves it)"),
        }
    }
}

/// A value on one line: line breaks shown as `\n`, long values cut.
fn one_line(value: &str) -> String {
    const MAX: usize = 60;
    let flat = value.replace('\n', "\\n");
    match flat.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &flat[..cut]),
        None => flat,
    }
}

/// Every drift item, by host in plan order, then the unknown Nodes. `hosts` are the planned
/// steps (they tell whether a restart will pick up the rendered configuration). Nothing is
/// compared while the API is not reachable.
pub fn find_drift(desired: &Desired, observed: &Observed, hosts: &[HostPlan]) -> Vec<DriftItem> {
    let Some(nodes) = &observed.nodes else {
        return Vec::new();
    };
    // Indexes built once: a search per host made this quadratic in the cluster's size.
    let by_name = observed.nodes_by_name();
    let mut plans: BTreeMap<&str, &HostPlan> = BTreeMap::new();
    for plan in hosts {
        plans.entry(plan.host.as_str()).or_insert(plan);
    }
    let mut out = Vec::new();
    for host in &desired.hosts {
        let Some(node) = by_name.get(host.name.as_str()).copied() else {
            continue;
        };
        let restarts = plans.get(host.name.as_str()).is_some_and(|p| {
            p.steps
                .iter()
                .any(|s| matches!(s, Step::Restart { .. } | Step::Start { .. }))
        });
        label_drift(host, node, &mut out);
        taint_drift(host, node, &mut out);
        let start = observed
            .hosts
            .get(&host.name)
            .and_then(|o| o.start.as_ref());
        arg_drift(host, node, start, restarts, &mut out);
        let version = desired.version.to_string();
        if node.kubelet_version != version {
            out.push(DriftItem {
                host: host.name.clone(),
                kind: DriftKind::KubeletVersion,
                subject: "kubeletVersion".into(),
                declared: Some(version),
                live: Some(node.kubelet_version.clone()),
                fix: if restarts {
                    DriftFix::Apply
                } else {
                    DriftFix::Manual
                },
                hint: (!restarts).then(|| {
                    "`k3sctl upgrade` moves nodes between versions (or set k3s.version to what \
                     runs)"
                        .to_string()
                }),
            });
        }
    }
    out.extend(super::manifest_drift::drift_items(desired, observed));
    for node in nodes {
        if !desired.spec_nodes.contains(&node.name) {
            out.push(DriftItem {
                host: node.name.clone(),
                kind: DriftKind::UnknownNode,
                subject: node.name.clone(),
                declared: None,
                live: Some(format!(
                    "Node {} ({})",
                    node.name,
                    if node.ready { "Ready" } else { "not Ready" }
                )),
                fix: DriftFix::Manual,
                hint: Some(format!(
                    "apply never deletes Nodes: add its host to the spec, or drain it and \
                     `kubectl delete node {}`",
                    node.name
                )),
            });
        }
    }
    out
}

fn label_drift(host: &DesiredHost, node: &ObservedNode, out: &mut Vec<DriftItem>) {
    let change = plan_labels(&node.labels, &node.owned_labels, &host.labels, false);
    for (key, value) in &change.set {
        out.push(DriftItem {
            host: host.name.clone(),
            kind: DriftKind::Label,
            subject: key.clone(),
            declared: Some(value.clone()),
            live: node.labels.get(key).cloned(),
            fix: DriftFix::Apply,
            hint: None,
        });
    }
    for key in &change.remove {
        out.push(DriftItem {
            host: host.name.clone(),
            kind: DriftKind::Label,
            subject: key.clone(),
            declared: None,
            live: node.labels.get(key).cloned(),
            fix: DriftFix::Apply,
            hint: Some("k3sctl set it and the spec no longer names it".into()),
        });
    }
}

/// `key:Effect` of a taint written `key[=value]:Effect`.
fn taint_identity(taint: &str) -> String {
    match taint.rsplit_once(':') {
        Some((spec, effect)) => {
            let key = spec.split_once('=').map_or(spec, |(k, _)| k);
            format!("{key}:{effect}")
        }
        None => taint.to_string(),
    }
}

fn taint_drift(host: &DesiredHost, node: &ObservedNode, out: &mut Vec<DriftItem>) {
    let change = plan_taints(&node.taints, &node.owned_taints, &host.taints, false);
    for taint in &host.taints {
        if node.taints.contains(taint) {
            continue;
        }
        let identity = taint_identity(taint);
        let other = node
            .taints
            .iter()
            .find(|t| taint_identity(t) == identity && !change.remove.contains(t))
            .cloned();
        let fixed = change.add.contains(taint);
        out.push(DriftItem {
            host: host.name.clone(),
            kind: DriftKind::Taint,
            subject: identity,
            declared: Some(taint.clone()),
            live: other,
            fix: if fixed {
                DriftFix::Apply
            } else {
                DriftFix::Manual
            },
            hint: (!fixed).then(|| {
                format!(
                    "k3sctl did not set the taint the node has: remove it (kubectl taint node \
                     {} KEY:EFFECT-) or list it in the spec as it is",
                    host.name
                )
            }),
        });
    }
    for taint in &change.remove {
        out.push(DriftItem {
            host: host.name.clone(),
            kind: DriftKind::Taint,
            subject: taint_identity(taint),
            declared: None,
            live: Some(taint.clone()),
            fix: DriftFix::Apply,
            hint: Some("k3sctl set it and the spec no longer lists it".into()),
        });
    }
}

fn arg_drift(
    host: &DesiredHost,
    node: &ObservedNode,
    start: Option<&StartFiles>,
    restarts: bool,
    out: &mut Vec<DriftItem>,
) {
    let Some(annotation) = &node.node_args else {
        return;
    };
    let Some(config) = host.files.iter().find_map(|f| match &f.content {
        FileContent::Plain(text) if f.path == CONFIG_PATH => Some(text),
        _ => None,
    }) else {
        return;
    };
    let item = |subject: String, declared, live, hint: Option<String>| DriftItem {
        host: host.name.clone(),
        kind: DriftKind::NodeArg,
        subject,
        declared,
        live,
        fix: if restarts {
            DriftFix::Apply
        } else {
            DriftFix::Manual
        },
        hint: if restarts { None } else { hint },
    };
    // Without a node-name argument K3s names the node after the host, so the Node's name is
    // what an unset node-name means (a cluster the install script started, then adopted).
    let defaults = NodeDefaults {
        hostname: Some(node.name.clone()),
        internal_ip: node.internal_ip.clone(),
    };
    let parsed = node_args::rendered(host.role, config, &defaults)
        .and_then(|declared| Ok((declared, node_args::from_node_args(annotation, &defaults)?)));
    let (declared, live) = match parsed {
        Ok(both) => both,
        Err(e) => {
            out.push(item(
                NODE_ARGS_ANNOTATION.into(),
                None,
                Some(annotation.clone()),
                Some(format!("cannot compare: {e}")),
            ));
            return;
        }
    };
    let how = Compare {
        role: host.role,
        server_with_data: host.role == NodeRole::Server,
    };
    // The env file k3sctl writes joins through `K3S_URL` and `K3S_TOKEN`, which the
    // annotation never shows: a node started with `--server`/`--token` (k3s-ansible, k3sup)
    // that now has them in the env file runs the same.
    let joins_by_env = host.files.iter().find_map(|f| match &f.content {
        FileContent::Env {
            url, with_token, ..
        } => Some((url.clone(), *with_token)),
        _ => None,
    });
    let given_by_env = |change: &crate::k3s::effective::Change| {
        let Some((url, with_token)) = &joins_by_env else {
            return false;
        };
        change.before.is_none()
            && match change.key.as_str() {
                "server" => {
                    let trim = |u: &str| u.trim_end_matches('/').to_owned();
                    url.as_deref().map(trim) == change.after.as_deref().map(trim)
                }
                "token" => *with_token,
                _ => false,
            }
    };
    // A flag the host's unit (or a drop-in of it) or env files give as an environment
    // variable (`Environment=K3S_RESOLV_CONF=...`) is not in the annotation either: with the
    // declared value, K3s runs as declared.
    let from_environment = start
        .map(|s| flags_from_environment(&super::adopt::observed_sources(host.role, s)))
        .unwrap_or_default();
    let set_by_environment = |change: &crate::k3s::effective::Change| {
        change.after.is_none()
            && change.before.is_some()
            && from_environment.get(&change.key) == change.before.as_ref()
    };
    for change in changes(&declared, &live, how)
        .into_iter()
        .filter(|c| !given_by_env(c) && !set_by_environment(c))
    {
        out.push(item(
            change.key,
            change.before,
            change.after,
            Some(format!(
                "K3s on {0} runs with arguments that the files k3sctl manages do not give: a \
                 unit drop-in that replaces ExecStart is taken over by apply (its `take over` \
                 step; move the setting into the spec to keep it); otherwise look at \
                 `systemctl cat {1}` on {0} and at K3s's command line, and restart {1} once \
                 its files say what it should run with",
                host.name,
                crate::k3s::unit::unit_name(host.role)
            )),
        ));
    }
}
