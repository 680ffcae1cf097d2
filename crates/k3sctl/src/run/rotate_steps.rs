//! The host side of a rotation's turn (`certs rotate`, `token rotate`): the quorum check
//! before a server is stopped and started again, and the certificate rotation itself (stop,
//! `k3s certificate rotate`, start). Run by the one step executor ([`super::host_steps`]);
//! the judgements are `plan::upgrade::quorum`'s (pure).

use std::time::Duration;

use super::context::Shared;
use super::host_steps::{Done, StepResult};
use super::node_steps::context;
use super::quorum;
use super::service::{QUICK, start_and_wait};
use super::step_error::StepError;
use crate::host::{ExecRequest, Transport};
use crate::k3s::certs::rotate_command;
use crate::k3s::unit::unit_name;
use crate::kube::StartedAt;
use crate::plan::HostPlan;
use crate::plan::upgrade::quorum::{may_restart, may_restart_unseen};

/// Before server `name` is stopped and started again: every other server a healthy voting
/// member whose K3s runs (asked over SSH: a stopped server's Node stays Ready for the
/// node-monitor grace period). When no server's API answers (every admin certificate expired,
/// the case a rotation exists for), every other server's K3s service must run, and that is said.
pub(super) async fn check_rotation_quorum(shared: &Shared, name: &str) -> StepResult {
    let ctx = context(shared)?;
    let servers: Vec<&str> = ctx.servers.iter().map(String::as_str).collect();
    let api = match shared.api().await {
        Ok(api) => api,
        Err(why) => {
            shared.forget_api().await;
            let asked: Vec<(&str, Option<&dyn Transport>)> = ctx
                .servers
                .iter()
                .map(|s| (s.as_str(), ctx.transports.get(s).map(|t| t.as_ref())))
                .collect();
            let stopped = quorum::stopped_servers(&asked).await;
            return match may_restart_unseen(&servers, &stopped, name) {
                Ok(()) => Ok(Done::saying(format!(
                    "no server's API answered ({why}); every other server's K3s service runs"
                ))),
                Err(down) => Err(StepError::refused(
                    format!(
                        "not taking this server down: server(s) {} are not running and the API \
                         could not be asked ({why})",
                        down.join(", ")
                    ),
                    "start K3s on them (or `k3sctl apply`), then re-run",
                )),
            };
        }
    };
    let look = quorum::look(api.as_ref(), &ctx.servers, &ctx.transports)
        .await
        .map_err(|e| StepError::api(format!("{name}: reading etcd's members"), e))?;
    let names = look.server_names();
    may_restart(&look.state(&names), name).map_err(|risk| {
        StepError::refused(
            format!("not taking this server down: it could lose etcd quorum\n{risk}"),
            "bring every other server back as a voting member, then re-run",
        )
    })?;
    Ok(Done::saying(format!(
        "every other etcd member is a healthy voter and runs ({} servers)",
        names.len()
    )))
}

/// Stops K3s, runs `k3s certificate rotate [--service ...]` (K3s refuses it while it runs),
/// starts K3s. When the rotate command fails, K3s is started again with its old certificates
/// rather than left down, and the step fails with what the command said. The API client is
/// dropped afterwards: the next look connects again with the admin kubeconfig as it is now.
pub(super) async fn rotate_certificates(
    shared: &Shared,
    host: &HostPlan,
    transport: &dyn Transport,
    services: &[String],
    started_at: &mut Option<StartedAt>,
) -> StepResult {
    let unit = unit_name(host.role);
    let timeout = shared.options.node_ready_timeout;
    let stop = ExecRequest::new(format!("systemctl stop {unit}"))
        .sudo(true)
        .timeout(Some(timeout))
        .describe(format!("stopping {unit}"));
    transport.exec_checked(stop).await?;
    let command = rotate_command(services);
    let rotated = rotate(transport, &command).await;
    let started = start_and_wait(transport, unit, false, timeout).await;
    shared.forget_api().await;
    match (rotated, started) {
        (Ok(()), Ok(at)) => {
            *started_at = at;
            Ok(Done::saying(format!(
                "{unit} stopped, `{command}`, {unit} started"
            )))
        }
        (Ok(()), Err(e)) => Err(e.into()),
        (Err(said), Ok(at)) => {
            *started_at = at;
            Err(StepError::refused(
                format!(
                    "`{command}` failed: {said}\n  {unit} was started again with its old \
                     certificates"
                ),
                "fix what the rotate command reports, then re-run",
            ))
        }
        (Err(said), Err(e)) => Err(StepError::refused(
            format!(
                "`{command}` failed: {said}\n  and starting {unit} again failed too: {}",
                e.headline()
            ),
            format!(
                "K3s is down on {}: look at `journalctl -u {unit}` there and start it",
                host.host
            ),
        )),
    }
}

/// Runs the rotate command; what it said when it failed.
async fn rotate(transport: &dyn Transport, command: &str) -> Result<(), String> {
    let req = ExecRequest::new(format!("{command} 2>&1"))
        .sudo(true)
        .timeout(Some(ROTATE_TIMEOUT))
        .describe("rotating K3s's certificates");
    match transport.exec(req).await {
        Ok(out) if out.success() => Ok(()),
        Ok(out) => Err(format!(
            "{}: {}",
            out.status_text(),
            out.stdout_text().trim()
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// How long `k3s certificate rotate` may take (it backs up and deletes files).
const ROTATE_TIMEOUT: Duration = QUICK;
