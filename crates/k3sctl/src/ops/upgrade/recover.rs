//! Resuming when the first server itself failed its upgrade: K3s is down there, so the API is
//! too. The server carries a marker written before its binary was replaced; with it, the next
//! run puts the (fixed) new binary in place, restarts K3s and waits until it is Ready with
//! /readyz ok (plan steps on the rollout's engine), and then goes on like any resumed run.

use std::path::Path;

use super::error::UpgradeError;
use super::observe::UpgradeSession;
use crate::host::Transport;
use crate::k3s::config::NodeRole;
use crate::k3s::version::K3sVersion;
use crate::ops::OpsError;
use crate::plan::HostPlan;
use crate::plan::upgrade::steps::recovery_steps;
use crate::run::upgrade_marker::{MARKER_PATH, UpgradeMarker};
use crate::run::{Event, EventKind, Shared, Stopwatch, run_turn};

/// The marker on `server`, when there is one.
pub async fn read_marker(
    server: &dyn Transport,
) -> Result<Option<(K3sVersion, K3sVersion)>, UpgradeError> {
    let bytes = server
        .read_file(Path::new(MARKER_PATH))
        .await
        .map_err(OpsError::from)?;
    Ok(bytes
        .and_then(|b| UpgradeMarker::parse(&String::from_utf8_lossy(&b)))
        .map(|m| (m.from, m.to)))
}

/// Brings back the first server after it failed its own upgrade: its recovery steps
/// (`plan::upgrade::steps::recovery_steps`: the new binary put in place, K3s restarted, Ready at
/// `target` with /readyz ok) run through the rollout's step engine (`run::run_turn`), which
/// reports them and fails with the step, its hint and the journal.
pub async fn restart_first_server(
    cluster: &UpgradeSession,
    shared: &Shared,
    from: K3sVersion,
    target: K3sVersion,
) -> Result<(), UpgradeError> {
    let name = cluster.first_server.as_str();
    let say = |kind: EventKind, message: String| {
        shared
            .reporter
            .report(Event::new(name, "resume", kind, message));
    };
    let server = cluster.transport(name)?;
    say(
        EventKind::Start,
        format!(
            "the API is down and {name} was mid-upgrade: putting {target} in place and restarting it"
        ),
    );
    let turn = HostPlan {
        host: name.to_string(),
        role: NodeRole::Server,
        group: None,
        first_server: true,
        in_cluster: true,
        steps: recovery_steps(from, target),
    };
    if let Err((failure, _)) =
        run_turn(shared, server.as_ref(), &turn, &mut Stopwatch::start()).await
    {
        return Err(UpgradeError::Recovery { failure });
    }
    say(
        EventKind::Done,
        "API back: resuming the rollout".to_string(),
    );
    Ok(())
}
