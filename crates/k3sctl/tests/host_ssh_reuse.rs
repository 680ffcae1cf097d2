//! Reusing an earlier run's ssh master: the first command is the check that it still reaches its
//! host (no extra round trip), and a master that does not answer is replaced before anything
//! runs on the host. Real sshd on a loopback port; a "host gone silent" is its connection's
//! processes stopped (SIGSTOP), so the master lives but nothing answers.

#[path = "support/sshd.rs"]
mod sshd;

use std::io::Cursor;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use k3sctl::host::{
    ExecRequest, HostError, SshTarget, SshTransport, Transport, UploadRequest, UploadSource,
};
use sshd::{Sshd, signal};
use tokio::io::{AsyncRead, ReadBuf};

fn target(sshd: &Sshd) -> SshTarget {
    let kh = sshd.write_known_hosts("known_hosts", &sshd.known_hosts_line());
    let mut t = SshTarget::new("node-1", "127.0.0.1");
    t.user = Some("root".into());
    t.port = Some(sshd.port);
    t.identity_file = Some(sshd.identity());
    t.known_hosts_file = Some(kh);
    t.config_file = Some("/dev/null".into());
    // A master that does not open a channel within this is replaced.
    t.connect_timeout = Duration::from_secs(1);
    t
}

/// Starts a master for `t` in a first "run" and leaves it for the next; returns the connection
/// it is on. Returns once its command has ended: no shell is starting on the host then (a shell
/// stopped or killed in its start-up files may leave their locks behind). The transport's hold
/// on its master runs nothing on the host.
async fn earlier_run(t: &SshTarget) -> String {
    let first = SshTransport::connect(t.clone()).await.expect("first run");
    assert!(!first.reused());
    let conn = first
        .exec_checked(ExecRequest::new("echo \"$SSH_CONNECTION\""))
        .await
        .expect("exec")
        .stdout_text();
    let conn = conn.trim().to_owned();
    drop(first);
    conn
}

/// Stops every process serving sshd's connections (the master's host goes silent); they are
/// killed when the guard goes.
struct Silenced(Vec<u32>);

impl Silenced {
    fn now(sshd: &Sshd) -> Self {
        let pids = sshd.connection_processes();
        assert!(!pids.is_empty(), "the master's connection is served");
        assert!(signal(&pids, "STOP"), "stopping {pids:?}");
        Self(pids)
    }
}

impl Drop for Silenced {
    fn drop(&mut self) {
        signal(&self.0, "KILL");
    }
}

fn lines(path: &Path) -> usize {
    fs_err::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .count()
}

#[tokio::test]
async fn a_healthy_reused_master_runs_the_first_command_without_a_check_of_its_own() {
    let sshd = Sshd::start_recording_commands();
    let t = target(&sshd);
    let conn = earlier_run(&t).await;
    let before = sshd.commands().len();

    let second = SshTransport::connect(t.clone()).await.expect("second run");
    assert!(second.reused(), "the live master is reused");
    let out = second
        .exec_checked(ExecRequest::new("echo \"$SSH_CONNECTION\""))
        .await
        .expect("first command");
    assert_eq!(
        out.stdout_text().trim(),
        conn,
        "on the earlier run's master"
    );
    assert!(second.reused(), "it answered: still the reused master");
    let ran: Vec<String> = sshd.commands()[before..]
        .iter()
        .map(|(_, cmd)| cmd.clone())
        .collect();
    assert_eq!(
        ran.len(),
        1,
        "only the command itself: no check, and the hold runs nothing on the host: {ran:?}"
    );
    assert!(ran[0].contains("echo \"$SSH_CONNECTION\""), "{ran:?}");

    // A port forward opens no channel, so on a reused master it checks first, once.
    drop(second);
    let third = SshTransport::connect(t).await.expect("third run");
    assert!(third.reused());
    let before = sshd.commands().len();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let tunnel = third.forward_tcp("127.0.0.1", port).await.expect("forward");
    let _ = tokio::net::TcpStream::connect(tunnel.local_addr()).await;
    third.forward_tcp("127.0.0.1", port).await.expect("again");
    third
        .exec_checked(ExecRequest::new("echo after"))
        .await
        .expect("exec");
    let checks = sshd.commands()[before..]
        .iter()
        .filter(|(_, cmd)| cmd == "true")
        .count();
    assert_eq!(checks, 1, "{:?}", &sshd.commands()[before..]);
}

#[tokio::test]
async fn a_reused_master_whose_host_went_silent_is_replaced_and_the_command_runs_once() {
    let sshd = Sshd::start_recording_commands();
    let mut t = target(&sshd);
    // Short, so that the fresh master's hold is seen to keep it past its persist time.
    t.persist = Duration::from_secs(1);
    let conn = earlier_run(&t).await;
    let silenced = Silenced::now(&sshd);

    let second = SshTransport::connect(t)
        .await
        .expect("connect answers locally");
    assert!(second.reused(), "the master itself is alive");
    let marker = sshd.dir.path().join("ran");
    let out = second
        .exec_checked(ExecRequest::new(format!(
            "echo once >> {}; echo \"$SSH_CONNECTION\"",
            marker.display()
        )))
        .await
        .expect("the command runs on a fresh master");
    let fresh = out.stdout_text().trim().to_owned();
    assert_ne!(fresh, conn, "a new connection");
    assert!(!second.reused(), "the silent master was replaced");
    assert_eq!(lines(&marker), 1, "the command ran exactly once");
    // The fresh master is held as the old one was (idle past its persist time, it is still
    // there), and later commands use it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let again = second
        .exec_checked(ExecRequest::new("echo \"$SSH_CONNECTION\""))
        .await
        .expect("next command");
    assert_eq!(again.stdout_text().trim(), fresh);
    drop(silenced);
    second.close().await.expect("close");
}

#[tokio::test]
async fn concurrent_first_commands_replace_a_silent_master_once() {
    let sshd = Sshd::start_recording_commands();
    let t = target(&sshd);
    let conn = earlier_run(&t).await;
    let _silenced = Silenced::now(&sshd);
    let second = Arc::new(SshTransport::connect(t).await.expect("connect"));
    let mut runs = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let second = Arc::clone(&second);
        runs.spawn(async move {
            second
                .exec_checked(ExecRequest::new("echo \"$SSH_CONNECTION\""))
                .await
                .map(|o| o.stdout_text().trim().to_owned())
        });
    }
    let mut seen = Vec::new();
    while let Some(joined) = runs.join_next().await {
        seen.push(joined.expect("task").expect("exec"));
    }
    seen.dedup();
    assert_eq!(seen.len(), 1, "all on one fresh master: {seen:?}");
    assert_ne!(seen[0], conn);
}

/// A reader that counts the bytes taken from it.
struct Counting {
    inner: Cursor<Vec<u8>>,
    taken: Arc<AtomicUsize>,
}

impl AsyncRead for Counting {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.taken.fetch_add(n, Ordering::SeqCst);
        polled
    }
}

#[tokio::test]
async fn a_streamed_upload_on_a_silent_reused_master_is_read_once_on_the_fresh_one() {
    let sshd = Sshd::start_recording_commands();
    let t = target(&sshd);
    earlier_run(&t).await;
    let _silenced = Silenced::now(&sshd);
    let second = SshTransport::connect(t).await.expect("connect");
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let taken = Arc::new(AtomicUsize::new(0));
    let remote = sshd.dir.path().join("uploaded");
    second
        .upload(UploadRequest {
            source: UploadSource::Reader(Box::new(Counting {
                inner: Cursor::new(bytes.clone()),
                taken: Arc::clone(&taken),
            })),
            remote: remote.clone(),
            mode: 0o600,
            sha256: k3sctl::host::hash::sha256_hex(&bytes),
            timeout: Some(Duration::from_secs(60)),
        })
        .await
        .expect("upload on the fresh master");
    assert_eq!(taken.load(Ordering::SeqCst), bytes.len(), "read once");
    assert_eq!(fs_err::read(&remote).expect("uploaded"), bytes);
    assert!(!second.reused());
}

#[tokio::test]
async fn a_connection_lost_after_the_first_command_started_is_an_error_not_a_retry() {
    let sshd = Sshd::start_recording_commands();
    let t = target(&sshd);
    earlier_run(&t).await;
    let second = Arc::new(SshTransport::connect(t).await.expect("connect"));
    assert!(second.reused());
    let marker = sshd.dir.path().join("started");
    let run = {
        let second = Arc::clone(&second);
        let script = format!(
            "cat >/dev/null; echo started >> {}; sleep 20",
            marker.display()
        );
        tokio::spawn(async move {
            second
                .exec(ExecRequest::new(script).stdin_reader(Cursor::new(vec![7u8; 100_000])))
                .await
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while lines(&marker) == 0 {
        assert!(Instant::now() < deadline, "the command never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The host's side of the connection goes away while the command runs.
    signal(&sshd.connection_processes(), "KILL");
    let err = run
        .await
        .expect("task")
        .expect_err("the connection was lost");
    assert!(matches!(err, HostError::Session { .. }), "{err}");
    assert!(err.to_string().starts_with("node-1: "), "{err}");
    assert_eq!(lines(&marker), 1, "not run again");
}
