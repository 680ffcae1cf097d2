//! The ssh transport: one OpenSSH master connection per host (started with the system `ssh`, so
//! ~/.ssh/config, the agent, ProxyJump and known_hosts all apply), every command a channel on it
//! through the native multiplexing protocol.

mod master;
mod reuse;

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use openssh::{ForwardType, Socket, Stdio};

use super::error::HostError;
use super::feed::feed;
use super::shell;
use super::ssh_target::SshTarget;
use super::transport::{ExecOutput, ExecRequest, Stdin, Transport};
use super::tunnel::Tunnel;
use master::Paths;
use reuse::MasterCell;

/// A connected ssh host. While it lives, the master is held open (an idle channel on it); dropping it
/// leaves the master running for the next run to reuse, and the master ends by itself
/// [`SshTarget::persist`] after that ([`close`](Self::close) ends it at once).
///
/// A master found alive from an earlier run is verified by the first channel opened on it, and
/// replaced by a fresh one (once) if that channel does not open: see `host/ssh/reuse.rs`.
#[derive(Debug)]
pub struct SshTransport {
    target: SshTarget,
    paths: Paths,
    master: MasterCell,
}

impl SshTransport {
    /// Reuses this target's master connection when one of an earlier run is alive (its local
    /// process answers; whether the host still answers is checked by the first command, which
    /// moves to a fresh master if not), else starts one: authenticates, checks the host key, and
    /// returns once commands can be run. Fails with a classified [`HostError`] (unreachable,
    /// host key mismatch or unknown) otherwise. Call [`verify`](Self::verify) to know at once
    /// that a reused master still reaches its host.
    pub async fn connect(target: SshTarget) -> Result<Self, HostError> {
        let paths = Paths::of(&target)?;
        let master = master::open(&target, &paths).await?;
        Ok(Self {
            target,
            paths,
            master: MasterCell::new(master),
        })
    }

    /// The target this transport was built from.
    pub fn target(&self) -> &SshTarget {
        &self.target
    }

    /// Whether the master in use is one an earlier run started (found alive by
    /// [`connect`](Self::connect)). It turns false when that master did not answer the first
    /// command (or [`verify`](Self::verify)) and a fresh one replaced it.
    pub fn reused(&self) -> bool {
        self.master.current().reused
    }

    /// The master's control socket.
    pub fn control_socket(&self) -> &Path {
        &self.paths.control
    }

    /// Ends the master connection now instead of leaving it for the next run.
    pub async fn close(self) -> Result<(), HostError> {
        master::exit(&self.paths.control)
            .await
            .map_err(|source| HostError::Io {
                host: self.target.name.clone(),
                what: "ending the ssh master connection".to_owned(),
                source,
            })
    }

    fn session_err(&self, what: &str, e: &openssh::Error) -> HostError {
        session_error(&self.target.name, what, e)
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
        let script = shell::wrap_bounded(&req.command, sudo, req.timeout);
        let piped = !matches!(req.stdin, Stdin::Null);
        let run = async {
            // Nothing is read from stdin before the channel is open: a reused master that does
            // not answer is replaced and the channel opened again with the stdin untouched.
            let mut child = self
                .open_channel(&what, |session| {
                    let mut cmd = session.arc_raw_command(&script);
                    cmd.stdin(if piped { Stdio::piped() } else { Stdio::null() })
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped());
                    async move { cmd.spawn().await }
                })
                .await?;
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
        ExecOutput::of_process(&self.target.name, &what, req.timeout, sudo, run).await
    }

    async fn forward_tcp(&self, remote_host: &str, remote_port: u16) -> Result<Tunnel, HostError> {
        // The master forwards locally without asking the host: make sure it still reaches it.
        self.verify().await?;
        let socket = forward_socket_path(&self.paths.dir, remote_port);
        let what = format!("forwarding to {remote_host}:{remote_port}");
        self.master
            .current()
            .session
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

/// A fresh path for a forwarding socket in the (shared) control directory: this process's id
/// keeps runs apart, and a name whose file already exists is skipped. A master keeps its
/// forwarding sockets until it exits, and one killed leaves them behind, so an earlier run whose
/// process had this same id (ids wrap at `kernel.pid_max`, 32768 by default) may have left one:
/// the master refuses to listen on a path that exists ("Address already in use").
fn forward_socket_path(control_dir: &Path, remote_port: u16) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = control_dir.join(format!("fwd-{}-{remote_port}-{n}", std::process::id()));
        if fs_err::symlink_metadata(&path).is_err() {
            return path;
        }
    }
}
