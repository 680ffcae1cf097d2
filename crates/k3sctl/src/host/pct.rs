//! The pct transport: a Proxmox LXC container reached with `pct exec` on its Proxmox host.
//!
//! All containers of one Proxmox host share that host's [`SshTransport`] (one OpenSSH master).
//! Every request becomes `pct exec <vmid> -- /usr/bin/env -i PATH=… LANG=C.UTF-8 sh -c '…'`
//! run there, with the request's stdin streamed through: `pct exec` hands its descriptors to
//! the command (`lxc-attach`), so uploads are the same sha-verified atomic write scripts as over
//! ssh, never `pct push` (which exits 0 on failure). `env -i` keeps the ssh session's
//! environment out of the container whether or not the node's pct has `--keep-env`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::error::HostError;
use super::pct_errors::{CtRef, ProxmoxError, classify};
use super::shell;
use super::ssh::SshTransport;
use super::transport::{ExecOutput, ExecRequest, Transport};
use super::tunnel::Tunnel;

/// PATH inside the container for every command.
const CONTAINER_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Time limit of `pct status`/`config`.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);
/// Time limit of `pct start`/`reboot` (the container boots).
const START_TIMEOUT: Duration = Duration::from_secs(180);

/// `status: running` or `status: stopped`, as `pct status` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtStatus {
    /// The container runs.
    Running,
    /// The container is stopped.
    Stopped,
}

/// The command line running `script` in container `vmid` with a clean environment.
pub fn pct_exec_line(vmid: u32, script: &str) -> String {
    format!(
        "pct exec {vmid} -- /usr/bin/env -i PATH={CONTAINER_PATH} LANG=C.UTF-8 sh -c {}",
        shell::quote(script)
    )
}

/// Parses `pct status` output.
pub fn parse_status(stdout: &str) -> Option<CtStatus> {
    match stdout.trim().strip_prefix("status:")?.trim() {
        "running" => Some(CtStatus::Running),
        "stopped" => Some(CtStatus::Stopped),
        _ => None,
    }
}

/// A container reached through `pct` on its Proxmox host.
#[derive(Debug, Clone)]
pub struct PctTransport {
    name: String,
    node_name: String,
    node: Arc<SshTransport>,
    vmid: u32,
    address: String,
}

impl PctTransport {
    /// The container `vmid` on `node` (connected), known in the spec as `name` at `address`.
    pub fn new(
        name: impl Into<String>,
        node_name: impl Into<String>,
        node: Arc<SshTransport>,
        vmid: u32,
        address: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            node_name: node_name.into(),
            node,
            vmid,
            address: address.into(),
        }
    }

    /// The container id.
    pub fn vmid(&self) -> u32 {
        self.vmid
    }

    /// The Proxmox host's name.
    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    /// The Proxmox host's transport (shared by its containers).
    pub fn node(&self) -> &Arc<SshTransport> {
        &self.node
    }

    fn ct(&self) -> CtRef<'_> {
        CtRef {
            host: &self.name,
            node: &self.node_name,
            vmid: self.vmid,
        }
    }

    /// Runs a `pct` command line on the node (as root); pct's refusals become typed errors.
    pub async fn pct(&self, args: &str, timeout: Duration) -> Result<ExecOutput, HostError> {
        let what = format!("`pct {args}` on {}", self.node_name);
        let out = self
            .node
            .exec(
                ExecRequest::new(format!("pct {args}"))
                    .sudo(true)
                    .timeout(Some(timeout))
                    .describe(what.clone()),
            )
            .await
            .map_err(|e| rename(e, &self.name))?;
        if let Some(e) = classify(self.ct(), out.status, &out.stderr_text()) {
            return Err(e.into());
        }
        out.check(&self.name, &what)
    }

    /// `pct status <vmid>`.
    pub async fn status(&self) -> Result<CtStatus, HostError> {
        let out = self
            .pct(&format!("status {}", self.vmid), QUERY_TIMEOUT)
            .await?;
        parse_status(&out.stdout_text()).ok_or_else(|| HostError::Protocol {
            host: self.name.clone(),
            what: format!("`pct status {}`", self.vmid),
            detail: format!("unexpected answer {:?}", out.stdout_text().trim()),
        })
    }

    /// `pct start <vmid>`.
    pub async fn start(&self) -> Result<(), HostError> {
        self.pct(&format!("start {}", self.vmid), START_TIMEOUT)
            .await
            .map(drop)
    }

    /// `pct reboot <vmid>`.
    pub async fn reboot(&self) -> Result<(), HostError> {
        self.pct(&format!("reboot {}", self.vmid), START_TIMEOUT)
            .await
            .map(drop)
    }

    /// `pct config <vmid> --current 1`: the applied configuration.
    pub async fn current_config(&self) -> Result<String, HostError> {
        self.pct(&format!("config {} --current 1", self.vmid), QUERY_TIMEOUT)
            .await
            .map(|o| o.stdout_text())
    }

    /// Makes sure the container runs before anything else: starts a stopped one when
    /// `autostart`, else fails with [`ProxmoxError::NotRunning`]. Returns what it did and
    /// noticed (started, `onboot` not set), for the user.
    pub async fn ensure_running(&self, autostart: bool) -> Result<Vec<String>, HostError> {
        let mut notes = Vec::new();
        if self.status().await? == CtStatus::Stopped {
            if !autostart {
                return Err(ProxmoxError::NotRunning {
                    host: self.name.clone(),
                    node: self.node_name.clone(),
                    vmid: self.vmid,
                }
                .into());
            }
            self.start().await?;
            notes.push(format!(
                "{}: container {} on {} was stopped; started it (pct.autostart)",
                self.name, self.vmid, self.node_name
            ));
        }
        let config = self.current_config().await?;
        let onboot = config
            .lines()
            .find_map(|l| l.strip_prefix("onboot:"))
            .map(str::trim);
        if onboot != Some("1") {
            notes.push(format!(
                "{}: container {} does not start with {} (onboot is not 1); to change: `pct set {} --onboot 1` on {}",
                self.name, self.vmid, self.node_name, self.vmid, self.node_name
            ));
        }
        Ok(notes)
    }
}

/// The same error, about `host` (the container) instead of the node.
fn rename(e: HostError, host: &str) -> HostError {
    let h = host.to_owned();
    match e {
        HostError::Unreachable { detail, .. } => HostError::Unreachable { host: h, detail },
        HostError::SudoNeedsPassword { .. } => HostError::SudoNeedsPassword { host: h },
        HostError::SudoMissing { .. } => HostError::SudoMissing { host: h },
        HostError::CommandFailed {
            what,
            status,
            stderr,
            ..
        } => HostError::CommandFailed {
            host: h,
            what,
            status,
            stderr,
        },
        HostError::Timeout { what, timeout, .. } => HostError::Timeout {
            host: h,
            what,
            timeout,
        },
        HostError::Session { what, detail, .. } => HostError::Session {
            host: h,
            what,
            detail,
        },
        HostError::Io { what, source, .. } => HostError::Io {
            host: h,
            what,
            source,
        },
        HostError::Protocol { what, detail, .. } => HostError::Protocol {
            host: h,
            what,
            detail,
        },
        other => other,
    }
}

#[async_trait]
impl Transport for PctTransport {
    fn name(&self) -> &str {
        &self.name
    }

    async fn exec(&self, req: ExecRequest) -> Result<ExecOutput, HostError> {
        let what = req.what();
        // Commands run as root in the container: pct exec enters it as root.
        let inner = shell::wrap_bounded(&req.command, false, req.timeout);
        let hop = ExecRequest {
            command: pct_exec_line(self.vmid, &inner),
            stdin: req.stdin,
            sudo: true,
            timeout: req.timeout,
            what: Some(what),
        };
        let out = self
            .node
            .exec(hop)
            .await
            .map_err(|e| rename(e, &self.name))?;
        if (out.status == Some(255) || out.status == Some(127))
            && let Some(e) = classify(self.ct(), out.status, &out.stderr_text())
        {
            return Err(e.into());
        }
        Ok(out)
    }

    /// The node forwards to the container's address: a container's loopback is not reachable
    /// from the node, so `127.0.0.1` means the container's own address (K3s serving
    /// certificates carry both).
    async fn forward_tcp(&self, remote_host: &str, remote_port: u16) -> Result<Tunnel, HostError> {
        let target = if remote_host == "127.0.0.1" || remote_host == "localhost" {
            self.address.as_str()
        } else {
            remote_host
        };
        self.node
            .forward_tcp(target, remote_port)
            .await
            .map_err(|e| rename(e, &self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_line_clears_the_environment_and_quotes_the_script() {
        assert_eq!(
            pct_exec_line(201, "echo 'a b'"),
            "pct exec 201 -- /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 sh -c 'echo '\\''a b'\\'''"
        );
    }

    #[test]
    fn status_lines_parse() {
        assert_eq!(parse_status("status: running\n"), Some(CtStatus::Running));
        assert_eq!(parse_status("status: stopped"), Some(CtStatus::Stopped));
        assert_eq!(parse_status("status: unknown"), None);
        assert_eq!(parse_status(""), None);
    }
}
