//! The health gate's judgement, pure: (nodes, pods that are not healthy, the time now, the
//! grace a node gets to turn Ready) → healthy, worth waiting for (with what), or stuck.
//!
//! A cluster that was just created or just had a node restarted is still settling: pods are
//! Pending or ContainerCreating, a node that just registered is not Ready yet. Those are waited
//! for (bounded by `upgrade.gateTimeout`). States that waiting will not fix (CrashLoopBackOff,
//! ImagePullBackOff, a failed pod, a node NotReady for longer than the grace period) fail the
//! gate at once.

use crate::kube::{NodeInfo, PodHealth};

/// What the gate concludes from one look at the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateVerdict {
    /// Every node Ready, every pod healthy.
    Healthy,
    /// Only things on their way: wait for these.
    Settling(Vec<String>),
    /// At least one thing that will not settle: stop now. `settling` lists what else was
    /// still on its way, for the message.
    Stuck {
        /// What will not settle.
        stuck: Vec<String>,
        /// What was still settling.
        settling: Vec<String>,
    },
}

/// Pure: judges one node. `None` when Ready; else its problem, and whether it is stuck.
pub fn judge_node(node: &NodeInfo, now: i64, grace_secs: u64) -> Option<(bool, String)> {
    if node.ready {
        return None;
    }
    let grace = i64::try_from(grace_secs).unwrap_or(i64::MAX);
    // The latest of "registered" and "Ready last changed": a node that just registered or
    // just went through a restart gets the grace period from then.
    let since = [node.created, node.ready_since].into_iter().flatten().max();
    let detail = node
        .ready_detail
        .as_deref()
        .map(|d| format!(" ({d})"))
        .unwrap_or_default();
    Some(match since {
        None => (
            false,
            format!("node {}: registered, no Ready condition yet", node.name),
        ),
        Some(t) if now.saturating_sub(t) < grace => (
            false,
            format!(
                "node {}: not Ready yet{detail}, for {}s (grace period {grace_secs}s)",
                node.name,
                now.saturating_sub(t).max(0)
            ),
        ),
        Some(t) => (
            true,
            format!(
                "node {}: NotReady{detail} for {}s, past the {grace_secs}s grace period",
                node.name,
                now - t
            ),
        ),
    })
}

/// Pure: the gate's verdict on `nodes` and the `pods` that are not healthy, at `now` (Unix
/// seconds), a NotReady node getting `grace_secs` from its registration or last Ready change.
pub fn judge_gate(
    nodes: &[NodeInfo],
    pods: &[PodHealth],
    now: i64,
    grace_secs: u64,
) -> GateVerdict {
    let mut stuck = Vec::new();
    let mut settling = Vec::new();
    for node in nodes {
        match judge_node(node, now, grace_secs) {
            Some((true, p)) => stuck.push(p),
            Some((false, p)) => settling.push(p),
            None => {}
        }
    }
    for pod in pods {
        match pod {
            PodHealth::Healthy => {}
            PodHealth::Settling(p) => settling.push(format!("pod {p}")),
            PodHealth::Stuck(p) => stuck.push(format!("pod {p}")),
        }
    }
    match (stuck.is_empty(), settling.is_empty()) {
        (true, true) => GateVerdict::Healthy,
        (true, false) => GateVerdict::Settling(settling),
        (false, _) => GateVerdict::Stuck { stuck, settling },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn node(name: &str, ready: bool, created: Option<i64>, since: Option<i64>) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            ready,
            created,
            ready_since: since,
            ready_detail: (!ready).then(|| "KubeletNotReady".to_string()),
            ..NodeInfo::default()
        }
    }

    fn kind(v: &GateVerdict) -> &'static str {
        match v {
            GateVerdict::Healthy => "healthy",
            GateVerdict::Settling(_) => "settling",
            GateVerdict::Stuck { .. } => "stuck",
        }
    }

    #[test]
    fn waits_for_what_settles_and_stops_on_what_does_not() {
        let old = Some(NOW - 3600);
        let ready = node("s", true, old, old);
        let pending = PodHealth::Settling("kube-system/svclb-traefik-x: Pending".into());
        let creating =
            PodHealth::Settling("kube-system/coredns-y: Pending (ContainerCreating)".into());
        let crash =
            PodHealth::Stuck("kube-system/m: Running, container c: CrashLoopBackOff".into());
        let pull = PodHealth::Stuck("kube-system/m: Pending, container c: ImagePullBackOff".into());
        // (case, nodes, pods, expected verdict)
        let table: Vec<(&str, Vec<NodeInfo>, Vec<PodHealth>, &str)> = vec![
            ("all good", vec![ready.clone()], vec![], "healthy"),
            (
                "right after apply: svclb Pending",
                vec![ready.clone()],
                vec![pending.clone()],
                "settling",
            ),
            (
                "ContainerCreating",
                vec![ready.clone()],
                vec![creating.clone()],
                "settling",
            ),
            (
                "just registered, no condition",
                vec![ready.clone(), node("a", false, None, None)],
                vec![],
                "settling",
            ),
            (
                "registered 5s ago",
                vec![node("a", false, Some(NOW - 5), None)],
                vec![],
                "settling",
            ),
            (
                "old node, NotReady since 10s (restarted)",
                vec![node("a", false, old, Some(NOW - 10))],
                vec![],
                "settling",
            ),
            (
                "NotReady past the grace period",
                vec![node("a", false, old, Some(NOW - 61))],
                vec![],
                "stuck",
            ),
            (
                "NotReady exactly at the grace period",
                vec![node("a", false, old, Some(NOW - 60))],
                vec![],
                "stuck",
            ),
            (
                "CrashLoopBackOff",
                vec![ready.clone()],
                vec![crash.clone()],
                "stuck",
            ),
            (
                "ImagePullBackOff among settling pods",
                vec![ready.clone()],
                vec![pending.clone(), pull],
                "stuck",
            ),
            (
                "a healthy pod entry is ignored",
                vec![ready.clone()],
                vec![PodHealth::Healthy],
                "healthy",
            ),
        ];
        for (case, nodes, pods, want) in table {
            let got = judge_gate(&nodes, &pods, NOW, 60);
            assert_eq!(kind(&got), want, "{case}: {got:?}");
        }
    }

    #[test]
    fn says_what_it_waits_for_and_what_will_not_settle() {
        let old = Some(NOW - 3600);
        let nodes = vec![
            node("s", true, old, old),
            node("a1", false, Some(NOW - 3), None),
            node("a2", false, old, Some(NOW - 300)),
        ];
        let pods = vec![PodHealth::Settling(
            "kube-system/svclb-traefik-x: Pending".into(),
        )];
        let verdict = judge_gate(&nodes, &pods, NOW, 60);
        assert_eq!(
            verdict,
            GateVerdict::Stuck {
                stuck: vec![
                    "node a2: NotReady (KubeletNotReady) for 300s, past the 60s grace period"
                        .into()
                ],
                settling: vec![
                    "node a1: not Ready yet (KubeletNotReady), for 3s (grace period 60s)".into(),
                    "pod kube-system/svclb-traefik-x: Pending".into(),
                ],
            }
        );
    }
}
