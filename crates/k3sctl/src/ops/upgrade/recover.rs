//! Resuming when the first server itself failed its upgrade: K3s is down there, so the API is
//! too. The server carries a marker written before its binary was replaced; with it, the next
//! run puts the (fixed) new binary in place, restarts K3s, waits for /readyz, and then goes on
//! like any resumed run.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::error::UpgradeError;
use super::observe::Cluster;
use crate::host::Transport;
use crate::k3s::config::NodeRole;
use crate::k3s::unit::unit_name;
use crate::k3s::version::K3sVersion;
use crate::kube::readyz;
use crate::ops::OpsError;
use crate::run::node_steps::MARKER_PATH;
use crate::run::service::start_and_wait;
use crate::run::stage::swap_in;
use crate::run::{Event, EventKind, Reporter};

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

/// Puts the new binary (`local`, `sha`) on the first server, restarts K3s and waits until
/// /readyz answers ok (within `timeout`).
pub async fn restart_first_server(
    cluster: &Cluster,
    reporter: &dyn Reporter,
    target: K3sVersion,
    (local, sha): (&PathBuf, &str),
    timeout: Duration,
) -> Result<(), UpgradeError> {
    let name = cluster.first_server.as_str();
    let say = |step: &str, kind: EventKind, message: String| {
        reporter.report(Event::new(name, step, kind, message));
    };
    let server = cluster.transport(name)?;
    say(
        "resume",
        EventKind::Start,
        format!(
            "the API is down and {name} was mid-upgrade: putting {target} in place and restarting it"
        ),
    );
    let what = swap_in(server.as_ref(), local, sha, &Semaphore::new(1))
        .await
        .map_err(OpsError::from)?;
    say("deliver", EventKind::Done, what.to_string());
    let unit = unit_name(NodeRole::Server);
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
    say(
        "resume",
        EventKind::Done,
        "API back: resuming the rollout".to_string(),
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
