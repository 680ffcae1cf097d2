//! Entering a container host from the machine: its init's namespaces through `nsenter`, the way
//! `lxc-attach` enters an LXC container. Used by the agent for `pct exec`, and by the lab itself
//! (readiness, [`crate::Lab::exec`]) for containers, which run no sshd.

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::command::{self, TimedOutput};
use crate::context::Ctx;
use crate::error::{LabError, Result};
use crate::readiness::{Readiness, boot_timeout, wait_for_systemd};
use crate::state::HostState;

/// PID (on the machine) of the container's init: the child of its systemd-nspawn that is
/// PID 1 in its own PID namespace.
pub fn leader_pid(nspawn_pid: u32) -> Option<u32> {
    let children =
        fs_err::read_to_string(format!("/proc/{nspawn_pid}/task/{nspawn_pid}/children")).ok()?;
    children
        .split_whitespace()
        .filter_map(|c| c.parse::<u32>().ok())
        .find(|c| {
            fs_err::read_to_string(format!("/proc/{c}/status"))
                .ok()
                .and_then(|s| {
                    s.lines().find_map(|l| l.strip_prefix("NSpid:")).map(|ids| {
                        let ids: Vec<&str> = ids.split_whitespace().collect();
                        ids.len() > 1 && ids.last() == Some(&"1")
                    })
                })
                .unwrap_or(false)
        })
}

/// `nsenter` into every namespace of `leader` (the command follows `--`).
pub fn nsenter(leader: u32) -> Command {
    let mut cmd = Command::new("nsenter");
    cmd.arg("-t")
        .arg(leader.to_string())
        .args(["-a", "-r", "-w", "--"]);
    cmd
}

/// The container's init PID, or an error saying it does not run.
pub fn leader(ctx: &Ctx, h: &HostState) -> Result<u32> {
    ctx.boot_target(h)
        .running_pid()
        .and_then(leader_pid)
        .ok_or_else(|| LabError::Host {
            host: h.name.clone(),
            step: "enter the container".into(),
            detail: "the container is not running".into(),
            hint: "start it (`pct start <vmid>` on the Proxmox host, or `k3sctl-lab start`)".into(),
        })
}

/// Runs `script` with `sh -c` inside the container, with a deadline.
pub fn run(ctx: &Ctx, h: &HostState, script: &str, limit: Duration) -> Result<TimedOutput> {
    let pid = leader(ctx, h)?;
    let mut cmd = nsenter(pid);
    cmd.args(["/bin/sh", "-c", script])
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("LANG", "C.UTF-8");
    command::run_with_deadline(
        &format!("host {}: attach `{script}`", h.name),
        &mut cmd,
        limit,
    )
}

/// Like [`crate::readiness::wait_ready`] for a container: waits until its init runs and (for
/// [`Readiness::SystemRunning`]) systemd reports `running`. Returns the time until it could
/// be entered.
pub fn wait_ready(
    ctx: &Ctx,
    h: &HostState,
    timeout: Duration,
    until: Readiness,
) -> Result<Duration> {
    let start = Instant::now();
    let target = ctx.boot_target(h);
    let timeout_err = |step: &str, detail| boot_timeout(&h.name, timeout, step, detail);
    let entered = loop {
        let Some(nspawn) = target.running_pid() else {
            return Err(LabError::Host {
                host: h.name.clone(),
                step: "boot".into(),
                detail: "systemd-nspawn exited before the container's init ran".into(),
                hint: format!("see {}", target.console_log.display()),
            });
        };
        if leader_pid(nspawn).is_some() {
            break start.elapsed();
        }
        if start.elapsed() > timeout {
            return Err(timeout_err("wait for init", "no init process".into()));
        }
        thread::sleep(Duration::from_millis(20));
    };
    let probe = |script: &str, limit| run(ctx, h, script, limit);
    wait_for_systemd(&ctx.state.name, &h.name, until, start, timeout, probe)?;
    Ok(entered)
}
