//! Resuming when the first server itself failed its upgrade: K3s is down there, so the API is
//! too. The server carries a marker written before its binary was replaced; with it, the next
//! run puts the (fixed) new binary in place, restarts K3s, waits for /readyz, and then goes on
//! like any resumed run.

use std::path::Path;
use std::time::{Duration, Instant};

use super::context::Rollout;
use super::error::UpgradeError;
use super::stage::swap_in;
use crate::host::Transport;
use crate::k3s::config::NodeRole;
use crate::k3s::unit::unit_name;
use crate::k3s::version::K3sVersion;
use crate::kube::readyz;
use crate::ops::OpsError;
use crate::run::EventKind;
use crate::run::service::start_and_wait;

/// Written on the first server before its binary is replaced, removed once it is Ready again.
pub const MARKER_PATH: &str = "/var/lib/rancher/k3s/k3sctl-upgrade";

/// Pure: the `from=… to=…` marker's versions.
pub fn parse_marker(text: &str) -> Option<(K3sVersion, K3sVersion)> {
    let mut from = None;
    let mut to = None;
    for word in text.split_whitespace() {
        match word.split_once('=') {
            Some(("from", v)) => from = v.parse().ok(),
            Some(("to", v)) => to = v.parse().ok(),
            _ => {}
        }
    }
    Some((from?, to?))
}

/// The marker on `server`, when there is one.
pub async fn read_marker(
    server: &dyn Transport,
) -> Result<Option<(K3sVersion, K3sVersion)>, UpgradeError> {
    let bytes = server
        .read_file(Path::new(MARKER_PATH))
        .await
        .map_err(OpsError::from)?;
    Ok(bytes.and_then(|b| parse_marker(&String::from_utf8_lossy(&b))))
}

/// Puts the new binary on the first server, restarts K3s and waits until /readyz answers ok.
pub async fn restart_first_server(rollout: &Rollout<'_>) -> Result<(), UpgradeError> {
    let cluster = rollout.cluster;
    let name = cluster.first_server.as_str();
    let server = cluster.transport(name)?;
    let (local, sha) = rollout
        .archs
        .get(name)
        .and_then(|a| rollout.binaries.by_arch.get(a))
        .ok_or_else(|| UpgradeError::Cluster(format!("{name}: no binary for its architecture")))?;
    rollout.say(
        name,
        "resume",
        EventKind::Start,
        format!(
            "the API is down and {name} was mid-upgrade: putting {} in place and restarting it",
            rollout.target
        ),
    );
    let what = swap_in(server.as_ref(), local, sha)
        .await
        .map_err(UpgradeError::Cluster)?;
    rollout.say(name, "deliver", EventKind::Done, what);
    let unit = unit_name(NodeRole::Server);
    let timeout = rollout.policy.node_ready_timeout.to_std();
    if let Err(e) = start_and_wait(server.as_ref(), unit, true, timeout).await {
        return Err(UpgradeError::Cluster(format!(
            "{name}: step restart failed: {}\n  last journal lines on {name}:\n{}",
            e.headline(),
            e.journal()
                .unwrap_or_default()
                .lines()
                .map(|l| format!("    {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        )));
    }
    let started = Instant::now();
    while !matches!(readyz(&cluster.api.client).await, Ok(true)) {
        if started.elapsed() >= timeout {
            return Err(UpgradeError::Cluster(format!(
                "{name}: /readyz did not answer ok within {}s after the restart",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    rollout.say(
        name,
        "resume",
        EventKind::Done,
        "API back: resuming the rollout",
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_marker() {
        let (from, to) = parse_marker("from=v1.34.3+k3s1 to=v1.34.4+k3s1\n").expect("marker");
        assert_eq!(from.to_string(), "v1.34.3+k3s1");
        assert_eq!(to.to_string(), "v1.34.4+k3s1");
        assert_eq!(parse_marker("garbage"), None);
    }
}
