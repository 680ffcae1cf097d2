//! Waiting until a booted host is usable: sshd answers and systemd reports `running`.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::command::TimedOutput;
use crate::error::{LabError, Result};
use crate::ssh;

/// How far a (re)booting host must get before it counts as ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Readiness {
    /// A command over ssh succeeds (units may still be starting or waiting, e.g. for a peer).
    SshAnswers,
    /// systemd reports `running`: every unit started (failed units are an error naming them).
    #[default]
    SystemRunning,
}

/// What the wait needs to know about one host.
#[derive(Debug, Clone, Copy)]
pub struct ReadyProbe<'a> {
    /// Lab name (for hints).
    pub lab: &'a str,
    /// Host name (ssh alias).
    pub host: &'a str,
    /// Address sshd listens on.
    pub address: Ipv4Addr,
    /// The lab's ssh_config.
    pub ssh_config: &'a Path,
    /// How far the host must get.
    pub until: Readiness,
}

/// Waits until `probe`'s host accepts SSH and (for [`Readiness::SystemRunning`]) systemd is
/// running. `still_booting` is polled to
/// fail fast when the container died. Returns the time until SSH answered.
pub fn wait_ready(
    probe: ReadyProbe<'_>,
    timeout: Duration,
    still_booting: impl Fn() -> bool,
) -> Result<Duration> {
    let start = Instant::now();
    let host = probe.host;
    let port = SocketAddr::from((probe.address, 22));
    let timeout_err = |step: &str, detail| boot_timeout(host, timeout, step, detail);
    loop {
        if TcpStream::connect_timeout(&port, Duration::from_millis(250)).is_ok() {
            break;
        }
        if !still_booting() {
            return Err(LabError::Host {
                host: host.to_owned(),
                step: "boot".into(),
                detail: "systemd-nspawn exited before sshd answered".into(),
                hint: format!(
                    "see console.log of host {host} in /var/lib/k3sctl-lab/{}/hosts/{host}/",
                    probe.lab
                ),
            });
        }
        if start.elapsed() > timeout {
            return Err(timeout_err(
                "wait for sshd on port 22",
                format!("{port} does not accept connections"),
            ));
        }
        thread::sleep(Duration::from_millis(50));
    }
    let ssh_up = start.elapsed();
    let run = |remote: &str, limit| ssh::run(probe.ssh_config, host, remote, limit);
    wait_for_systemd(probe.lab, host, probe.until, start, timeout, run)?;
    Ok(ssh_up)
}

/// The words of a wait for host `host` that ran out of `timeout` at `step`.
pub(crate) fn boot_timeout(host: &str, timeout: Duration, step: &str, detail: String) -> LabError {
    LabError::Timeout {
        host: host.to_owned(),
        step: step.to_owned(),
        after: timeout,
        detail,
        hint: "look at console.log in the host's lab dir; a slow machine may need a longer timeout",
    }
}

/// The end of a wait for a booted host: until its systemd reports `running` (for
/// [`Readiness::SystemRunning`]; for [`Readiness::SshAnswers`], until a command answers), each
/// probe run by `run` (over ssh, or entering the container); a degraded system is refused
/// naming its failed units. `timeout` counts from `start`.
pub(crate) fn wait_for_systemd(
    lab: &str,
    host: &str,
    until: Readiness,
    start: Instant,
    timeout: Duration,
    run: impl Fn(&str, Duration) -> Result<TimedOutput>,
) -> Result<()> {
    let mut last = String::new();
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            let detail = format!("last answer: {last}");
            return Err(boot_timeout(host, timeout, "wait for systemd", detail));
        }
        let probe = match until {
            Readiness::SshAnswers => "echo running",
            Readiness::SystemRunning => "systemctl is-system-running --wait",
        };
        let out = run(probe, left)?;
        let state = out.stdout.trim().to_owned();
        match state.as_str() {
            "running" => return Ok(()),
            "degraded" => {
                let failed = run(
                    "systemctl list-units --failed --plain --no-legend | cut -d' ' -f1",
                    Duration::from_secs(10),
                )?;
                return Err(LabError::Degraded {
                    lab: lab.to_owned(),
                    host: host.to_owned(),
                    state,
                    failed: failed
                        .stdout
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            _ => {
                last = if state.is_empty() {
                    out.stderr.trim().to_owned()
                } else {
                    state
                };
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
}
