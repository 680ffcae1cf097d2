//! The ssh transport: one OpenSSH master connection per host (started with the system `ssh`, so
//! ~/.ssh/config, the agent, ProxyJump and known_hosts all apply), every command a channel on it
//! through the native multiplexing protocol.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use openssh::{ForwardType, Session, Socket, Stdio};

use super::error::HostError;
use super::feed::feed;
use super::shell;
use super::ssh_errors::classify_connect_failure;
use super::ssh_target::SshTarget;
use super::transport::{ExecOutput, ExecRequest, Stdin, Transport};
use super::tunnel::Tunnel;

/// A connected ssh host. Dropping it stops the master connection.
#[derive(Debug)]
pub struct SshTransport {
    target: SshTarget,
    session: Session,
    control_dir: PathBuf,
}

impl SshTransport {
    /// Starts the master connection: authenticates, checks the host key, and returns once
    /// commands can be run. Fails with a classified [`HostError`] (unreachable, host key mismatch
    /// or unknown) otherwise.
    pub async fn connect(target: SshTarget) -> Result<Self, HostError> {
        let io_err = |what: &str, source| HostError::Io {
            host: target.name.clone(),
            what: what.to_owned(),
            source,
        };
        // Short base path: unix socket paths are limited to ~100 bytes.
        let dir = tempfile::Builder::new()
            .prefix(".k3sctl-ssh-")
            .tempdir_in(control_base())
            .map_err(|e| io_err("creating the ssh control directory", e))?;
        let control = dir.path().join("master");
        let log = dir.path().join("log");
        let mut cmd = tokio::process::Command::new("ssh");
        cmd.args(target.master_args(&control, &log))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        // ConnectTimeout bounds each TCP connect; this bounds the whole handshake (ProxyJump,
        // a server that accepts TCP but never answers).
        let limit = target.connect_timeout * 3 + Duration::from_secs(5);
        let status = tokio::time::timeout(limit, cmd.status())
            .await
            .map_err(|_| HostError::Unreachable {
                host: target.name.clone(),
                detail: format!("no ssh handshake within {}s", limit.as_secs()),
            })?
            .map_err(|e| io_err("running ssh (is the OpenSSH client installed?)", e))?;
        if !status.success() {
            let text = tokio::fs::read_to_string(&log).await.unwrap_or_default();
            return Err(classify_connect_failure(&target, &text));
        }
        let control_dir = dir.path().to_owned();
        Ok(Self {
            target,
            session: Session::new_native_mux(dir),
            control_dir,
        })
    }

    /// The target this transport was built from.
    pub fn target(&self) -> &SshTarget {
        &self.target
    }

    /// Stops the master connection now (dropping does the same, without waiting).
    pub async fn close(self) -> Result<(), HostError> {
        let host = self.target.name.clone();
        self.session
            .close()
            .await
            .map_err(|e| session_error(&host, "closing", &e))
    }

    fn session_err(&self, what: &str, e: &openssh::Error) -> HostError {
        session_error(&self.target.name, what, e)
    }
}

/// Where control directories go: $XDG_RUNTIME_DIR when short, else /tmp.
fn control_base() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        Some(p) if p.is_absolute() && p.as_os_str().len() < 40 => p,
        _ => PathBuf::from("/tmp"),
    }
}

fn session_error(host: &str, what: &str, e: &openssh::Error) -> HostError {
    let detail = match e {
        openssh::Error::Disconnected => "the ssh connection was lost".to_owned(),
        openssh::Error::RemoteProcessTerminated => {
            "the remote process ended without an exit code (killed by a signal, or the connection \
             dropped)"
                .to_owned()
        }
        other => {
            let mut s = other.to_string();
            let mut src = std::error::Error::source(other);
            while let Some(inner) = src {
                s.push_str(": ");
                s.push_str(&inner.to_string());
                src = inner.source();
            }
            s
        }
    };
    HostError::Session {
        host: host.to_owned(),
        what: what.to_owned(),
        detail,
    }
}

#[async_trait]
impl Transport for SshTransport {
    fn name(&self) -> &str {
        &self.target.name
    }

    async fn exec(&self, req: ExecRequest) -> Result<ExecOutput, HostError> {
        let what = req.what();
        let sudo = req.sudo && self.target.sudo;
        let mut cmd =
            self.session
                .raw_command(shell::wrap_bounded(&req.command, sudo, req.timeout));
        cmd.stdin(match req.stdin {
            Stdin::Null => Stdio::null(),
            _ => Stdio::piped(),
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let run = async {
            let mut child = cmd.spawn().await.map_err(|e| self.session_err(&what, &e))?;
            let pipe = child.stdin().take();
            let feeding = async {
                match pipe {
                    Some(pipe) => feed(pipe, req.stdin).await,
                    None => Ok(()),
                }
            };
            let (fed, out) = tokio::join!(feeding, child.wait_with_output());
            fed.map_err(|source| HostError::Io {
                host: self.target.name.clone(),
                what: format!("streaming stdin of {what}"),
                source,
            })?;
            out.map_err(|e| self.session_err(&what, &e))
        };
        let out = match req.timeout {
            Some(limit) => {
                tokio::time::timeout(limit, run)
                    .await
                    .map_err(|_| HostError::Timeout {
                        host: self.target.name.clone(),
                        what: what.clone(),
                        timeout: limit,
                    })??
            }
            None => run.await?,
        };
        ExecOutput {
            status: out.status.code(),
            stdout: out.stdout,
            stderr: out.stderr,
        }
        .check_sudo(&self.target.name, sudo)
    }

    async fn forward_tcp(&self, remote_host: &str, remote_port: u16) -> Result<Tunnel, HostError> {
        let socket = forward_socket_path(&self.control_dir, remote_port);
        let what = format!("forwarding to {remote_host}:{remote_port}");
        self.session
            .request_port_forward(
                ForwardType::Local,
                Socket::from(socket.clone()),
                Socket::new(remote_host, remote_port),
            )
            .await
            .map_err(|e| self.session_err(&what, &e))?;
        Tunnel::relay_to_unix_socket(&self.target.name, socket).await
    }
}

/// A fresh path for a forwarding socket in the control directory.
fn forward_socket_path(control_dir: &Path, remote_port: u16) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    control_dir.join(format!("fwd-{remote_port}-{n}"))
}
