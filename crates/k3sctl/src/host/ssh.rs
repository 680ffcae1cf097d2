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
use super::ssh_control::{control_dir, socket_name, trust_files_digest};
use super::ssh_errors::classify_connect_failure;
use super::ssh_target::SshTarget;
use super::transport::{ExecOutput, ExecRequest, Stdin, Transport};
use super::tunnel::Tunnel;

/// A connected ssh host. While it lives, the master is held open (an idle channel on it); dropping it
/// leaves the master running for the next run to reuse, and the master ends by itself
/// [`SshTarget::persist`] after that ([`close`](Self::close) ends it at once).
#[derive(Debug)]
pub struct SshTransport {
    target: SshTarget,
    session: Session,
    control_dir: PathBuf,
    reused: bool,
    _hold: Hold,
}

/// Keeps the master in use for as long as the transport lives: one idle channel (`cat` reading
/// its stdin) on it. `ControlPersist` counts from the moment a master has no channel left, so
/// without this a host that waits more than [`SshTarget::persist`] for its turn (the last
/// agents of an upgrade, every agent during a restore) would find its master gone. Dropping the
/// hold closes the channel's stdin: `cat` ends, and the persist countdown starts.
#[derive(Debug)]
struct Hold {
    _release: tokio::sync::oneshot::Sender<()>,
}

impl Hold {
    /// Opens the idle channel in the background (connecting does not wait for it).
    fn start(control: &Path) -> Self {
        let session = std::sync::Arc::new(Session::resume_mux(control.into(), None));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let child = session
                .arc_raw_command("exec cat >/dev/null")
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .await;
            // Held until the transport is dropped (the sender goes away).
            let _ = rx.await;
            drop(child);
        });
        Self { _release: tx }
    }
}

impl SshTransport {
    /// Reuses this target's master connection when one is alive and answers, else starts one:
    /// authenticates, checks the host key, and returns once commands can be run. Fails with a
    /// classified [`HostError`] (unreachable, host key mismatch or unknown) otherwise.
    pub async fn connect(target: SshTarget) -> Result<Self, HostError> {
        let io_err = |what: &str, source| HostError::Io {
            host: target.name.clone(),
            what: what.to_owned(),
            source,
        };
        let dir = control_dir().map_err(|detail| HostError::Session {
            host: target.name.clone(),
            what: "choosing the ssh control directory".to_owned(),
            detail,
        })?;
        // The known_hosts and config files' contents count too: after an edit (a key removed or
        // replaced) the host key is checked again by a new master instead of trusting the old one.
        let mut key = target.connection_args();
        key.push(trust_files_digest(&target).into());
        let name = socket_name(&key);
        let control = dir.path.join(&name);
        let log = dir.path.join(format!("{name}.log"));
        // One k3sctl at a time decides about this master: two runs starting the same master at
        // once would leave one of them without its control socket.
        let _lock = lock_file(&dir.path.join(format!("{name}.lock")))
            .await
            .map_err(|e| io_err("locking the ssh control socket", e))?;
        if dir.reuse && control.exists() {
            let session = Session::resume_mux(control.clone().into_boxed_path(), None);
            let limit = target.connect_timeout.min(Duration::from_secs(5));
            if answers(&session, limit).await {
                tracing::debug!(host = %target.name, "reusing the ssh master connection");
                return Ok(Self {
                    target,
                    session,
                    control_dir: dir.path.clone(),
                    reused: true,
                    _hold: Hold::start(&control),
                });
            }
            retire(&control).await;
        }
        // A fresh log for this master: ssh appends, and a failure is classified from it.
        fs_err::File::create(&log).map_err(|e| io_err("creating the ssh log", e))?;
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
        Ok(Self {
            target,
            _hold: Hold::start(&control),
            session: Session::resume_mux(control.into_boxed_path(), None),
            control_dir: dir.path.clone(),
            reused: false,
        })
    }

    /// The target this transport was built from.
    pub fn target(&self) -> &SshTarget {
        &self.target
    }

    /// Whether [`connect`](Self::connect) found a live master of an earlier run and reused it.
    pub fn reused(&self) -> bool {
        self.reused
    }

    /// The master's control socket.
    pub fn control_socket(&self) -> &Path {
        self.session.control_socket()
    }

    /// Ends the master connection now instead of leaving it for the next run.
    pub async fn close(self) -> Result<(), HostError> {
        exit_master(self.session.control_socket())
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

/// Takes an exclusive lock on `path` (created if missing), released when the file is dropped.
async fn lock_file(path: &Path) -> std::io::Result<fs_err::File> {
    let file = fs_err::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    tokio::task::spawn_blocking(move || file.lock().map(|()| file))
        .await
        .map_err(std::io::Error::other)?
}

/// Whether the master behind `session` still reaches its host: a command round trip, bounded by
/// `limit` (a master whose host went away answers locally but never runs anything).
async fn answers(session: &Session, limit: Duration) -> bool {
    let run = async {
        session
            .raw_command("true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
    };
    matches!(tokio::time::timeout(limit, run).await, Ok(Ok(s)) if s.success())
}

/// Retires a master that no longer answers: tells it to exit (it removes its socket), and
/// removes a socket file no process serves.
async fn retire(control: &Path) {
    if exit_master(control).await.is_err() && control.exists() {
        let _ = fs_err::remove_file(control);
    }
}

/// `ssh -O exit`: the master behind `control` ends now, closing its channels.
async fn exit_master(control: &Path) -> std::io::Result<()> {
    let mut cmd = tokio::process::Command::new("ssh");
    cmd.arg("-S")
        .arg(control)
        .args(["-O", "exit", "k3sctl-master"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(5), cmd.output())
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "ssh -O exit hung"))??;
    if out.status.success() {
        // The master answers the exit request before it unlinks its socket: wait (briefly) for
        // it to be gone, so that "closed" means the next connect cannot find this master.
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        while control.exists() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    } else {
        Err(std::io::Error::other(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ))
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
        ExecOutput::of_process(&self.target.name, &what, req.timeout, sudo, run).await
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

/// A fresh path for a forwarding socket in the (shared) control directory: this process's id
/// keeps runs apart.
fn forward_socket_path(control_dir: &Path, remote_port: u16) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    control_dir.join(format!("fwd-{}-{remote_port}-{n}", std::process::id()))
}
