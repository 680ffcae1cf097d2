//! Waits: poll with an interval until a condition holds or a timeout passes, and say what was
//! awaited and what was last seen.

use std::future::Future;
use std::time::{Duration, Instant};

use kube::Client;

use super::error::KubeError;
use super::nodes::{NodeInfo, get_node};

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

/// Waits until node `name` is Ready as posted by a kubelet that started at `started_at` (Unix
/// seconds on the node's clock, see [`ready_posted_after`]); a Ready condition left over from
/// before a restart does not count. `None` waits for any Ready.
pub async fn wait_node_ready_after(
    client: &Client,
    name: &str,
    started_at: Option<i64>,
    poll: Poll,
) -> Result<NodeInfo, KubeError> {
    let what = match started_at {
        Some(t) => format!("node {name} to post Ready after its K3s started (unix time {t})"),
        None => format!("node {name} to be Ready"),
    };
    wait_node(client, name, &what, poll, |node| {
        started_at.map_or(node.ready, |t| ready_posted_after(node, t))
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

/// Pure: is `node` Ready as posted by a kubelet that started at `started_at`?
///
/// Both times come from the node's own clock (the kubelet stamps the condition, systemd the
/// start), so clock skew with the operator does not matter. Both are whole seconds: a post in
/// the same second as the start may be the old kubelet's last one, so only a strictly later
/// second counts (a fresh kubelet posts again within one heartbeat).
pub fn ready_posted_after(node: &NodeInfo, started_at: i64) -> bool {
    node.ready && node.ready_posted.is_some_and(|posted| posted > started_at)
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

    #[test]
    fn a_ready_condition_from_before_the_restart_is_stale() {
        let node = |ready: bool, posted: Option<i64>| NodeInfo {
            ready,
            ready_posted: posted,
            ..NodeInfo::default()
        };
        let started = 1_000;
        // Posted by the old kubelet: stale even though it says Ready.
        assert!(!ready_posted_after(&node(true, Some(990)), started));
        // Same second as the start: cannot tell old from new, wait for the next post.
        assert!(!ready_posted_after(&node(true, Some(1_000)), started));
        // Posted after the start: the new kubelet.
        assert!(ready_posted_after(&node(true, Some(1_001)), started));
        // Fresh but NotReady, or no post time at all: not yet.
        assert!(!ready_posted_after(&node(false, Some(1_005)), started));
        assert!(!ready_posted_after(&node(true, None), started));
    }
}
