//! Waits: poll with an interval until a condition holds or a timeout passes, and say what was
//! awaited and what was last seen.

use std::future::Future;
use std::time::{Duration, Instant};

use kube::Client;

use super::error::KubeError;
use super::nodes::{NodeInfo, get_node, node_lease_renewed};

/// How often and how long to poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Poll {
    /// Time between checks.
    pub interval: Duration,
    /// Give up after this long.
    pub timeout: Duration,
}

impl Poll {
    /// Polls every `interval` for at most `timeout`.
    pub fn new(interval: Duration, timeout: Duration) -> Self {
        Self { interval, timeout }
    }
}

/// Calls `check` every `poll.interval` until it returns `Ok(Ok(value))`. `Ok(Err(state))` means
/// "not yet" with the state to report on timeout; `Err` stops the wait at once. `what` names
/// what is awaited.
pub async fn poll_until<T, F, Fut>(what: &str, poll: Poll, mut check: F) -> Result<T, KubeError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Result<T, String>, KubeError>>,
{
    let start = Instant::now();
    loop {
        let last_seen = match check().await? {
            Ok(value) => return Ok(value),
            Err(state) => state,
        };
        let waited = start.elapsed();
        if waited >= poll.timeout {
            return Err(KubeError::Timeout {
                what: what.to_owned(),
                waited,
                last_seen,
            });
        }
        tokio::time::sleep(poll.interval.min(poll.timeout - waited)).await;
    }
}

/// Waits until node `name` is registered and Ready and, when `kubelet_version` is given, runs
/// that version. Transient API errors (server restarting) count as "not yet".
pub async fn wait_node_ready(
    client: &Client,
    name: &str,
    kubelet_version: Option<&str>,
    poll: Poll,
) -> Result<NodeInfo, KubeError> {
    let what = match kubelet_version {
        Some(v) => format!("node {name} to be Ready with kubelet {v}"),
        None => format!("node {name} to be Ready"),
    };
    wait_node(client, name, &what, poll, |node| {
        node_matches(node, kubelet_version)
    })
    .await
}

/// Waits until node `name` is Ready as posted by a kubelet that started at `started_at` (on the
/// node's clock, see [`ready_posted_after`]); a Ready condition left over from before a restart
/// does not count. `None` waits for any Ready.
pub async fn wait_node_ready_after(
    client: &Client,
    name: &str,
    started_at: Option<StartedAt>,
    poll: Poll,
) -> Result<NodeInfo, KubeError> {
    let what = match started_at {
        Some(t) => format!("node {name} to post Ready after its K3s started ({t})"),
        None => format!("node {name} to be Ready"),
    };
    poll_until(&what, poll, || async {
        let node = match get_node(client, name).await {
            Ok(Some(node)) => node,
            Ok(None) => return Ok(Err("not registered".to_owned())),
            Err(e) => return Ok(Err(format!("API not answering: {e}"))),
        };
        let Some(start) = started_at else {
            return Ok(if node.ready {
                Ok(node)
            } else {
                Err(describe_with_post_time(&node))
            });
        };
        // The Lease is read only when the Ready post alone cannot tell.
        let lease = if ready_needs_lease(&node, start) {
            match node_lease_renewed(client, name).await {
                Ok(renewed) => renewed,
                Err(e) => return Ok(Err(format!("reading its Lease: {e}"))),
            }
        } else {
            None
        };
        Ok(if ready_posted_after(&node, start, lease) {
            Ok(node)
        } else {
            let lease = lease.map_or(String::new(), |us| {
                format!(", Lease renewed at {}", StartedAt::from_micros(us))
            });
            Err(format!("{}{lease}", describe_with_post_time(&node)))
        })
    })
    .await
}

/// Waits until server `name` is a voting etcd member (`EtcdIsVoter=True`). A joining server is
/// a learner until the etcd leader promotes it once it caught up.
pub async fn wait_etcd_voter(
    client: &Client,
    name: &str,
    poll: Poll,
) -> Result<NodeInfo, KubeError> {
    let what = format!("server {name} to become a voting etcd member (EtcdIsVoter=True)");
    wait_node(client, name, &what, poll, |node| {
        node.etcd_voter.as_ref().is_some_and(|c| c.status)
    })
    .await
}

async fn wait_node(
    client: &Client,
    name: &str,
    what: &str,
    poll: Poll,
    accept: impl Fn(&NodeInfo) -> bool,
) -> Result<NodeInfo, KubeError> {
    poll_until(what, poll, || async {
        Ok(match get_node(client, name).await {
            Ok(Some(node)) if accept(&node) => Ok(node),
            Ok(Some(node)) => Err(describe_with_post_time(&node)),
            Ok(None) => Err("not registered".to_owned()),
            Err(e) => Err(format!("API not answering: {e}")),
        })
    })
    .await
}

fn describe_with_post_time(node: &NodeInfo) -> String {
    match node.ready_posted {
        Some(t) => format!("{}, Ready posted at unix time {t}", node.describe()),
        None => node.describe(),
    }
}

/// Pure: is `node` Ready (at `kubelet_version` when given)?
pub fn node_matches(node: &NodeInfo, kubelet_version: Option<&str>) -> bool {
    node.ready && kubelet_version.is_none_or(|v| node.kubelet_version == v)
}

/// When a node's K3s process started, on the node's own clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartedAt {
    /// Unix seconds.
    pub second: i64,
    /// Unix microseconds, when systemd told them.
    pub micros: Option<i64>,
}

impl StartedAt {
    /// A start known to the second only.
    pub fn from_second(second: i64) -> Self {
        Self {
            second,
            micros: None,
        }
    }

    /// A start known to the microsecond.
    pub fn from_micros(micros: i64) -> Self {
        Self {
            second: micros.div_euclid(1_000_000),
            micros: Some(micros),
        }
    }
}

impl std::fmt::Display for StartedAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.micros {
            Some(us) => write!(
                f,
                "unix time {}.{:06}",
                self.second,
                us.rem_euclid(1_000_000)
            ),
            None => write!(f, "unix time {}", self.second),
        }
    }
}

/// Pure: whether judging `node` against `start` needs the node's Lease: it is Ready with a
/// heartbeat in the very second of the start, and the start is known to the microsecond.
pub fn ready_needs_lease(node: &NodeInfo, start: StartedAt) -> bool {
    node.ready && start.micros.is_some() && node.ready_posted == Some(start.second)
}

/// Pure: is `node` Ready as posted by a kubelet that started at `start`? `lease_renewed` is
/// the node Lease's renewTime (Unix microseconds), read when [`ready_needs_lease`] says so.
///
/// Every time here comes from the node's own clock (systemd stamps the start, the kubelet its
/// heartbeat and its Lease), so clock skew with the operator does not matter. The Ready
/// condition's lastHeartbeatTime has whole seconds only, and the old kubelet is stopped
/// before the new process starts, so:
/// - a heartbeat in a later second than the start is the new kubelet's;
/// - an earlier one is the old kubelet's (stale);
/// - one in the start's own second may be either. Waiting for the next heartbeat (up to
///   10 s, the kubelet's status interval) was the old answer and cost every restart that
///   long. Instead, the node Lease's renewTime is a MicroTime: a renewal after the start (to
///   the microsecond) is the new kubelet's own post, made as it comes up (a kubelet renews
///   its Lease and posts its status at once when it starts). Then the new kubelet is
///   demonstrably running and talking to the API server, and the Ready condition is at most
///   the old kubelet's from within the same second: a kubelet that comes up unhealthy posts
///   NotReady, which the next wait or health gate sees. Without microseconds (systemd older
///   than 247) the strict rule stays.
pub fn ready_posted_after(node: &NodeInfo, start: StartedAt, lease_renewed: Option<i64>) -> bool {
    let Some(posted) = node.ready_posted.filter(|_| node.ready) else {
        return false;
    };
    posted > start.second
        || (posted == start.second
            && start
                .micros
                .zip(lease_renewed)
                .is_some_and(|(started, renewed)| renewed > started))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn poll_until_returns_once_the_check_passes() {
        let mut calls = 0;
        let got = poll_until(
            "three calls",
            Poll::new(Duration::from_millis(1), Duration::from_secs(5)),
            || {
                calls += 1;
                let n = calls;
                async move {
                    Ok(if n >= 3 {
                        Ok(n)
                    } else {
                        Err(format!("call {n}"))
                    })
                }
            },
        )
        .await
        .expect("passes");
        assert_eq!(got, 3);
    }

    #[tokio::test]
    async fn poll_until_times_out_with_the_last_state() {
        let err = poll_until::<(), _, _>(
            "node a to be Ready",
            Poll::new(Duration::from_millis(5), Duration::from_millis(30)),
            || async { Ok(Err("Ready=False".to_owned())) },
        )
        .await
        .expect_err("times out");
        let msg = err.to_string();
        assert!(msg.contains("waiting for node a to be Ready"), "{msg}");
        assert!(msg.contains("last seen: Ready=False"), "{msg}");
    }

    #[test]
    fn version_must_match_when_asked() {
        let node = NodeInfo {
            ready: true,
            kubelet_version: "v1.33.5+k3s1".into(),
            ..NodeInfo::default()
        };
        assert!(node_matches(&node, None));
        assert!(node_matches(&node, Some("v1.33.5+k3s1")));
        assert!(!node_matches(&node, Some("v1.34.3+k3s1")));
    }

    fn node(ready: bool, posted: Option<i64>) -> NodeInfo {
        NodeInfo {
            ready,
            ready_posted: posted,
            ..NodeInfo::default()
        }
    }

    #[test]
    fn a_ready_condition_from_before_the_restart_is_stale() {
        let started = StartedAt::from_second(1_000);
        // Posted by the old kubelet: stale even though it says Ready.
        assert!(!ready_posted_after(&node(true, Some(990)), started, None));
        // Same second as the start, known to the second only: cannot tell, wait.
        assert!(!ready_needs_lease(&node(true, Some(1_000)), started));
        assert!(!ready_posted_after(
            &node(true, Some(1_000)),
            started,
            Some(2_000_000_000)
        ));
        // Posted after the start: the new kubelet.
        assert!(ready_posted_after(&node(true, Some(1_001)), started, None));
        // Fresh but NotReady, or no post time at all: not yet.
        assert!(!ready_posted_after(
            &node(false, Some(1_005)),
            started,
            None
        ));
        assert!(!ready_posted_after(&node(true, None), started, None));
    }

    #[test]
    fn in_the_start_second_a_lease_renewed_after_the_start_decides() {
        // Started at 1000.250000 on the node's clock.
        let started = StartedAt::from_micros(1_000_250_000);
        let same_second = node(true, Some(1_000));
        assert!(ready_needs_lease(&same_second, started));
        // Renewed by the new kubelet 0.1 s after the start.
        assert!(ready_posted_after(
            &same_second,
            started,
            Some(1_000_350_000)
        ));
        // Renewed before the start (the old kubelet's last renewal): not yet.
        assert!(!ready_posted_after(
            &same_second,
            started,
            Some(1_000_100_000)
        ));
        assert!(!ready_posted_after(
            &same_second,
            started,
            Some(1_000_250_000)
        ));
        // No Lease: not yet.
        assert!(!ready_posted_after(&same_second, started, None));
        // The Lease never rescues a stale or NotReady condition.
        assert!(!ready_posted_after(
            &node(true, Some(999)),
            started,
            Some(1_000_900_000)
        ));
        assert!(!ready_posted_after(
            &node(false, Some(1_000)),
            started,
            Some(1_000_900_000)
        ));
        // A later second needs no Lease.
        assert!(!ready_needs_lease(&node(true, Some(1_001)), started));
        assert!(ready_posted_after(&node(true, Some(1_001)), started, None));
    }

    #[test]
    fn start_times_print_with_their_precision() {
        assert_eq!(StartedAt::from_second(7).to_string(), "unix time 7");
        assert_eq!(
            StartedAt::from_micros(1_000_000_042).to_string(),
            "unix time 1000.000042"
        );
    }
}
