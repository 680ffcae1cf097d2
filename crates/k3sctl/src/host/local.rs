//! The local transport: runs scripts on the machine k3sctl runs on (spec `local: true`).

use async_trait::async_trait;
use std::process::Stdio;

use super::error::HostError;
use super::feed::feed;
use super::shell;
use super::transport::{ExecOutput, ExecRequest, Stdin, Transport};
use super::tunnel::Tunnel;

/// Runs scripts with `sh -c` on this machine, as root through `sudo -n` when asked and not
/// already root.
#[derive(Debug, Clone)]
pub struct LocalTransport {
    name: String,
}

impl LocalTransport {
    /// A local transport that calls itself `name` in log lines.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }
}

#[async_trait]
impl Transport for LocalTransport {
    fn name(&self) -> &str {
        &self.name
    }

    async fn exec(&self, req: ExecRequest) -> Result<ExecOutput, HostError> {
        let what = req.what();
        let io_err = |source| HostError::Io {
            host: self.name.clone(),
            what: format!("running {what}"),
            source,
        };
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c")
            .arg(shell::wrap_bounded(&req.command, req.sudo, req.timeout))
            .stdin(match req.stdin {
                Stdin::Null => Stdio::null(),
                _ => Stdio::piped(),
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(io_err)?;
        let stdin_pipe = child.stdin.take();
        let run = async {
            let feeding = async {
                match stdin_pipe {
                    Some(pipe) => feed(pipe, req.stdin).await,
                    None => Ok(()),
                }
            };
            let (fed, out) = tokio::join!(feeding, child.wait_with_output());
            fed.map_err(io_err)?;
            out.map_err(io_err)
        };
        ExecOutput::of_process(&self.name, &what, req.timeout, req.sudo, run).await
    }

    async fn forward_tcp(&self, remote_host: &str, remote_port: u16) -> Result<Tunnel, HostError> {
        let mut addrs = tokio::net::lookup_host((remote_host, remote_port))
            .await
            .map_err(|source| HostError::Io {
                host: self.name.clone(),
                what: format!("resolving {remote_host}"),
                source,
            })?;
        let addr = addrs.next().ok_or_else(|| HostError::Protocol {
            host: self.name.clone(),
            what: format!("resolving {remote_host}"),
            detail: "no address".to_owned(),
        })?;
        Ok(Tunnel::direct(addr))
    }
}
