//! One OpenSSH master connection's life: finding a live one of an earlier run, starting a fresh
//! one, replacing one that stopped answering, and ending it. Every decision about a control
//! socket is taken under that socket's lock file, so two k3sctl runs never start (or retire) the
//! same master at once.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use openssh::Session;

use super::super::error::HostError;
use super::super::ssh_control::{control_dir, socket_name, trust_files_digest};
use super::super::ssh_errors::classify_connect_failure;
use super::super::ssh_target::SshTarget;

/// How long a master may take to answer a local (mux) request before it counts as hung.
const LOCAL_CHECK_LIMIT: Duration = Duration::from_secs(2);

/// Where one target's master lives: its control socket, the log a fresh master writes, the lock
/// file, and the (shared) control directory.
#[derive(Debug, Clone)]
pub(super) struct Paths {
    /// The control socket.
    pub(super) control: PathBuf,
    /// The directory holding the sockets (forwarding sockets go there too).
    pub(super) dir: PathBuf,
    log: PathBuf,
    lock: PathBuf,
    /// False when the control directory is a private one-run directory (nothing to reuse).
    reuse: bool,
}

impl Paths {
    /// The paths for `target`. The known_hosts and config files' contents count in the socket's
    /// name: after an edit (a key removed or replaced) the host key is checked again by a new
    /// master instead of trusting the old one.
    pub(super) fn of(target: &SshTarget) -> Result<Self, HostError> {
        let dir = control_dir().map_err(|detail| HostError::Session {
            host: target.name.clone(),
            what: "choosing the ssh control directory".to_owned(),
            detail,
        })?;
        let mut key = target.connection_args();
        key.push(trust_files_digest(target).into());
        let name = socket_name(&key);
        Ok(Self {
            control: dir.path.join(&name),
            dir: dir.path.clone(),
            log: dir.path.join(format!("{name}.log")),
            lock: dir.path.join(format!("{name}.lock")),
            reuse: dir.reuse,
        })
    }
}

/// A master connection this transport runs its channels on.
#[derive(Debug)]
pub(super) struct Master {
    /// The multiplexing client of the master.
    pub(super) session: Arc<Session>,
    /// True when an earlier run started this master (found alive at its socket), false when
    /// this run's handshake started it.
    pub(super) reused: bool,
    /// Which socket file this master listens on (device, inode): a master started later by
    /// another run has a new one.
    socket_id: Option<(u64, u64)>,
    _hold: Hold,
}

impl Master {
    fn new(paths: &Paths, reused: bool) -> Self {
        Self {
            session: Arc::new(Session::resume_mux(
                paths.control.clone().into_boxed_path(),
                None,
            )),
            reused,
            socket_id: socket_id(&paths.control),
            _hold: Hold::start(&paths.control),
        }
    }
}

/// Reuses the master at `paths` when one is alive there (it answers the local mux check: no
/// round trip to the host, so whether the host still answers is not known yet), else starts a
/// fresh one: authenticates, checks the host key, and returns once commands can be run.
pub(super) async fn open(target: &SshTarget, paths: &Paths) -> Result<Master, HostError> {
    let _lock = lock(target, paths).await?;
    if paths.reuse && paths.control.exists() {
        if alive_locally(&paths.control).await {
            tracing::debug!(host = %target.name, "reusing the ssh master connection");
            return Ok(Master::new(paths, true));
        }
        retire(&paths.control).await;
    }
    start(target, paths).await
}

/// Replaces `failed`, a master that did not answer: ends it and starts a fresh one. When another
/// run has already replaced it (the socket is a new one and its master is alive), that master is
/// taken instead (as a reused one: it still has to prove that it answers).
pub(super) async fn replace(
    target: &SshTarget,
    paths: &Paths,
    failed: &Master,
) -> Result<Master, HostError> {
    let _lock = lock(target, paths).await?;
    let current = socket_id(&paths.control);
    if current.is_some() && current != failed.socket_id && alive_locally(&paths.control).await {
        tracing::debug!(host = %target.name, "taking the ssh master another run started");
        return Ok(Master::new(paths, true));
    }
    tracing::debug!(host = %target.name, "retiring an ssh master that does not answer");
    retire(&paths.control).await;
    start(target, paths).await
}

/// Starts a fresh master (the caller holds the lock) and waits until it is ready.
async fn start(target: &SshTarget, paths: &Paths) -> Result<Master, HostError> {
    // A fresh log for this master: ssh appends, and a failure is classified from it.
    fs_err::File::create(&paths.log).map_err(|e| io_err(target, "creating the ssh log", e))?;
    let mut cmd = tokio::process::Command::new("ssh");
    cmd.args(target.master_args(&paths.control, &paths.log))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    // ConnectTimeout bounds each TCP connect; this bounds the whole handshake (ProxyJump, a
    // server that accepts TCP but never answers).
    let limit = target.connect_timeout * 3 + Duration::from_secs(5);
    let status = tokio::time::timeout(limit, cmd.status())
        .await
        .map_err(|_| HostError::Unreachable {
            host: target.name.clone(),
            detail: format!("no ssh handshake within {}s", limit.as_secs()),
        })?
        .map_err(|e| io_err(target, "running ssh (is the OpenSSH client installed?)", e))?;
    if !status.success() {
        let text = tokio::fs::read_to_string(&paths.log)
            .await
            .unwrap_or_default();
        return Err(classify_connect_failure(target, &text));
    }
    Ok(Master::new(paths, false))
}

fn io_err(target: &SshTarget, what: &str, source: std::io::Error) -> HostError {
    HostError::Io {
        host: target.name.clone(),
        what: what.to_owned(),
        source,
    }
}

/// Takes the socket's lock (released when the returned file is dropped).
async fn lock(target: &SshTarget, paths: &Paths) -> Result<fs_err::File, HostError> {
    let file = fs_err::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&paths.lock)
        .map_err(|e| io_err(target, "locking the ssh control socket", e))?;
    tokio::task::spawn_blocking(move || file.lock().map(|()| file))
        .await
        .map_err(std::io::Error::other)
        .and_then(|locked| locked)
        .map_err(|e| io_err(target, "locking the ssh control socket", e))
}

/// The socket file's identity, `None` when there is none.
fn socket_id(control: &Path) -> Option<(u64, u64)> {
    fs_err::symlink_metadata(control)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// Whether a master process serves `control` (the mux's alive check, answered by the local ssh
/// process without asking the host). A socket left by a killed master fails here.
async fn alive_locally(control: &Path) -> bool {
    let session = Session::resume_mux(control.to_owned().into_boxed_path(), None);
    matches!(
        tokio::time::timeout(LOCAL_CHECK_LIMIT, session.check()).await,
        Ok(Ok(()))
    )
}

/// Retires a master that no longer answers: tells it to exit (it removes its socket), and
/// removes a socket file no process serves.
pub(super) async fn retire(control: &Path) {
    if exit(control).await.is_err() && control.exists() {
        let _ = fs_err::remove_file(control);
    }
}

/// `ssh -O exit`: the master behind `control` ends now, closing its channels.
pub(super) async fn exit(control: &Path) -> std::io::Result<()> {
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

/// Keeps the master in use for as long as the transport lives: one idle control client
/// connected to its socket. `ControlPersist` counts from the moment a master has no channel
/// left, and OpenSSH counts a connected control client as one (`channel_still_open` in
/// channels.c), so without this a host that waits more than [`SshTarget::persist`] for its turn
/// (the last agents of an upgrade, every agent during a restore) would find its master gone. The
/// client runs nothing on the host: no session, no shell, no process there (an idle remote
/// `cat` did this before, one more sshd session and shell per host on every run). Dropping the
/// hold closes the client's socket and the persist countdown starts. A replaced master gets a
/// hold of its own (the old one ends with its master).
#[derive(Debug)]
struct Hold {
    _release: tokio::sync::oneshot::Sender<()>,
}

impl Hold {
    /// Connects the idle control client in the background (connecting does not wait for it).
    fn start(control: &Path) -> Self {
        let control = control.to_owned();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let client = openssh_mux_client::Connection::connect(&control).await;
            if let Err(e) = &client {
                tracing::debug!(socket = %control.display(), "holding the ssh master: {e}");
            }
            // Held until the transport is dropped (the sender goes away).
            let _ = rx.await;
            drop(client);
        });
        Self { _release: tx }
    }
}
