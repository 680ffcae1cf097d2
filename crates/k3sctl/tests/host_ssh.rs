//! Edge tests of the ssh transport against a real sshd on a loopback port.

#[path = "support/sshd.rs"]
mod sshd;
#[path = "support/transport_suite.rs"]
mod transport_suite;

use std::sync::Arc;
use std::time::{Duration, Instant};

use k3sctl::host::{ExecRequest, HostError, SshTarget, SshTransport, Transport};
use sshd::Sshd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn target(sshd: &Sshd, known_hosts: std::path::PathBuf) -> SshTarget {
    let mut t = SshTarget::new("node-1", "127.0.0.1");
    t.user = Some("root".into());
    t.port = Some(sshd.port);
    t.identity_file = Some(sshd.identity());
    t.known_hosts_file = Some(known_hosts);
    // Keep the test independent of the user's ~/.ssh/config.
    t.config_file = Some("/dev/null".into());
    t
}

#[tokio::test]
async fn ssh_transport_passes_the_transport_suite() {
    let sshd = Sshd::start();
    let kh = sshd.write_known_hosts("known_hosts", &sshd.known_hosts_line());
    let t = SshTransport::connect(target(&sshd, kh))
        .await
        .expect("connect");
    let scratch = tempfile::tempdir().expect("scratch");
    transport_suite::run_all(&t, scratch.path()).await;
}

#[tokio::test]
async fn commands_are_channels_on_one_master_and_run_in_parallel() {
    let sshd = Sshd::start();
    let kh = sshd.write_known_hosts("known_hosts", &sshd.known_hosts_line());
    let t = Arc::new(
        SshTransport::connect(target(&sshd, kh))
            .await
            .expect("connect"),
    );
    let start = Instant::now();
    let mut runs = tokio::task::JoinSet::new();
    for i in 0..20 {
        let t = Arc::clone(&t);
        runs.spawn(async move {
            let out = t
                .exec_checked(ExecRequest::new(format!("sleep 1; echo {i}")))
                .await;
            (i, out)
        });
    }
    while let Some(joined) = runs.join_next().await {
        let (i, out) = joined.expect("task");
        assert_eq!(out.expect("exec").stdout_text(), format!("{i}\n"));
    }
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "20 × 1 s must overlap (serially 20 s), took {:?}",
        start.elapsed()
    );
    let start = Instant::now();
    for _ in 0..20 {
        t.exec_checked(ExecRequest::new("true"))
            .await
            .expect("exec");
    }
    let per_exec = start.elapsed() / 20;
    eprintln!("sequential exec round trip over the mux: {per_exec:?}");
    // Generous for a loaded 2-core CI machine; a new ssh process per command is far slower.
    assert!(per_exec < Duration::from_secs(1), "{per_exec:?}");
}

#[tokio::test]
async fn a_changed_host_key_stops_with_the_known_hosts_file_named() {
    let sshd = Sshd::start();
    let other = tempfile::tempdir().expect("tmp");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(other.path().join("k"))
        .status()
        .expect("keygen");
    assert!(status.success());
    let wrong = fs_err::read_to_string(other.path().join("k.pub")).expect("pub");
    let mut parts = wrong.split_whitespace();
    let line = format!(
        "[127.0.0.1]:{} {} {}\n",
        sshd.port,
        parts.next().expect("type"),
        parts.next().expect("key")
    );
    let kh = sshd.write_known_hosts("known_hosts_wrong", &line);
    let mut t = target(&sshd, kh.clone());
    // Even accept-new must refuse a changed key.
    t.accept_new_host_keys = true;
    let err = SshTransport::connect(t).await.expect_err("mismatch");
    let msg = err.to_string();
    assert!(matches!(err, HostError::HostKeyMismatch { .. }), "{msg}");
    assert!(msg.contains(&kh.display().to_string()), "{msg}");
    assert!(msg.contains("ssh-keygen -R 127.0.0.1"), "{msg}");
    assert!(msg.starts_with("node-1: "), "{msg}");
}

#[tokio::test]
async fn an_unknown_host_key_is_refused_unless_accept_new() {
    let sshd = Sshd::start();
    let kh = sshd.write_known_hosts("known_hosts_empty", "");
    let err = SshTransport::connect(target(&sshd, kh.clone()))
        .await
        .expect_err("strict refuses unknown key");
    assert!(matches!(err, HostError::HostKeyUnknown { .. }), "{err}");
    assert_eq!(
        fs_err::read_to_string(&kh).expect("kh"),
        "",
        "nothing recorded"
    );

    let mut t = target(&sshd, kh.clone());
    t.accept_new_host_keys = true;
    let ssh = SshTransport::connect(t).await.expect("accept-new connects");
    let out = ssh
        .exec_checked(ExecRequest::new("echo hi"))
        .await
        .expect("exec");
    assert_eq!(out.stdout_text(), "hi\n");
    let recorded = fs_err::read_to_string(&kh).expect("kh");
    assert!(
        recorded.contains(&format!("[127.0.0.1]:{}", sshd.port)),
        "{recorded}"
    );
    // Now strict checking accepts the recorded key.
    SshTransport::connect(target(&sshd, kh))
        .await
        .expect("strict after record");
}

#[tokio::test]
async fn an_ssh_config_file_alias_supplies_address_port_user_and_key() {
    let sshd = Sshd::start();
    let kh = sshd.write_known_hosts("known_hosts", &sshd.known_hosts_line());
    let config = sshd.dir.path().join("ssh_config");
    fs_err::write(
        &config,
        format!(
            "Host k3s-node\n  HostName 127.0.0.1\n  Port {}\n  User root\n  IdentityFile {}\n  \
             UserKnownHostsFile {}\n  StrictHostKeyChecking yes\n",
            sshd.port,
            sshd.identity().display(),
            kh.display()
        ),
    )
    .expect("config");
    let mut t = SshTarget::new("node-1", "k3s-node");
    t.config_file = Some(config);
    let ssh = SshTransport::connect(t).await.expect("connect via alias");
    let out = ssh
        .exec_checked(ExecRequest::new("id -un"))
        .await
        .expect("exec");
    assert_eq!(out.stdout_text(), "root\n");
    ssh.close().await.expect("close");
}

#[tokio::test]
async fn a_closed_port_is_unreachable_with_sshs_reason() {
    let sshd = Sshd::start();
    let kh = sshd.write_known_hosts("known_hosts", &sshd.known_hosts_line());
    let mut t = target(&sshd, kh);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    t.port = Some(port);
    let err = SshTransport::connect(t).await.expect_err("refused");
    let msg = err.to_string();
    assert!(matches!(err, HostError::Unreachable { .. }), "{msg}");
    assert!(msg.contains("Connection refused"), "{msg}");
}

#[tokio::test]
async fn a_wrong_identity_is_unreachable_with_permission_denied() {
    let sshd = Sshd::start();
    let kh = sshd.write_known_hosts("known_hosts", &sshd.known_hosts_line());
    let mut t = target(&sshd, kh);
    t.identity_file = Some(sshd.dir.path().join("host_key"));
    let err = SshTransport::connect(t).await.expect_err("denied");
    assert!(err.to_string().contains("Permission denied"), "{err}");
}

#[tokio::test]
async fn forward_tcp_reaches_a_port_on_the_hosts_loopback() {
    let sshd = Sshd::start();
    let kh = sshd.write_known_hosts("known_hosts", &sshd.known_hosts_line());
    let ssh = SshTransport::connect(target(&sshd, kh))
        .await
        .expect("connect");
    let echo = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let echo_port = echo.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = echo.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    // Forwarding sockets an earlier run with this same process id left behind (ids wrap) do
    // not stand in the way: the master would refuse to listen on an existing path.
    let dir = ssh
        .control_socket()
        .parent()
        .expect("control dir")
        .to_owned();
    let stale: Vec<_> = (0..64)
        .map(|n| dir.join(format!("fwd-{}-{echo_port}-{n}", std::process::id())))
        .collect();
    for path in &stale {
        fs_err::write(path, "").expect("stale forwarding socket");
    }
    let tunnel = ssh
        .forward_tcp("127.0.0.1", echo_port)
        .await
        .expect("forward");
    for path in &stale {
        let _ = fs_err::remove_file(path);
    }
    assert_ne!(tunnel.local_addr().port(), echo_port);
    for round in 0..3 {
        let mut c = tokio::net::TcpStream::connect(tunnel.local_addr())
            .await
            .expect("connect tunnel");
        let msg = format!("hello {round}");
        c.write_all(msg.as_bytes()).await.expect("write");
        let mut buf = vec![0u8; msg.len()];
        c.read_exact(&mut buf).await.expect("read");
        assert_eq!(buf, msg.as_bytes());
    }
}

#[tokio::test]
async fn proxy_jump_from_the_options_reaches_the_host_through_a_bastion() {
    let sshd = Sshd::start();
    let kh = sshd.write_known_hosts("known_hosts", &sshd.known_hosts_line());
    // The jump connection is a separate ssh process: it reads the config file (-F is passed
    // on), not the command-line options of the master.
    let config = sshd.dir.path().join("ssh_config_jump");
    fs_err::write(
        &config,
        format!(
            "Host bastion\n  HostName 127.0.0.1\n  Port {port}\n  User root\n  IdentityFile {id}\n  \
             UserKnownHostsFile {kh}\n  StrictHostKeyChecking yes\n  BatchMode yes\n",
            port = sshd.port,
            id = sshd.identity().display(),
            kh = kh.display()
        ),
    )
    .expect("config");
    let mut t = target(&sshd, kh);
    t.config_file = Some(config);
    t.options = vec![("ProxyJump".into(), "bastion".into())];
    let ssh = SshTransport::connect(t)
        .await
        .expect("connect through the bastion");
    // The session arrives from the bastion's own connection to 127.0.0.1, not from our client.
    let out = ssh
        .exec_checked(ExecRequest::new("echo \"$SSH_CONNECTION\""))
        .await
        .expect("exec");
    let fields: Vec<String> = out
        .stdout_text()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(fields.len(), 4, "{fields:?}");
    assert_eq!(fields[3], sshd.port.to_string());
    let jump_procs = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ps -eo args | grep -c -- '[-]W .127.0.0.1.:{} bastion'",
            sshd.port
        ))
        .output()
        .expect("ps");
    let count: u32 = String::from_utf8_lossy(&jump_procs.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    assert!(count >= 1, "a `ssh -W` jump process carries the connection");
}

/// The client side of the ssh connection a command arrives on (`$SSH_CONNECTION`): the same
/// value means the same TCP connection, i.e. the same master.
async fn connection_of(t: &SshTransport) -> String {
    t.exec_checked(ExecRequest::new("echo \"$SSH_CONNECTION\""))
        .await
        .expect("exec")
        .stdout_text()
}

#[tokio::test]
async fn a_second_run_reuses_the_master_which_ends_by_itself_after_persist() {
    use std::os::unix::fs::MetadataExt;
    let sshd = Sshd::start();
    let kh = sshd.write_known_hosts("known_hosts", &sshd.known_hosts_line());
    let mut t = target(&sshd, kh);
    t.persist = Duration::from_secs(2);
    let first = SshTransport::connect(t.clone()).await.expect("connect");
    assert!(!first.reused());
    let control = first.control_socket().to_owned();
    let conn = connection_of(&first).await;
    drop(first);

    // The directory holding the socket is private to this user.
    let dir = fs_err::symlink_metadata(control.parent().expect("dir")).expect("dir meta");
    assert!(dir.is_dir());
    assert_eq!(dir.mode() & 0o777, 0o700);
    assert_eq!(
        dir.uid(),
        fs_err::metadata("/proc/self").expect("self").uid()
    );

    let second = SshTransport::connect(t.clone()).await.expect("reconnect");
    assert!(second.reused(), "a live master is reused");
    assert_eq!(second.control_socket(), control);
    assert_eq!(connection_of(&second).await, conn, "same TCP connection");
    drop(second);

    // Nobody uses it any more: ControlPersist ends the master and its socket goes.
    let deadline = Instant::now() + Duration::from_secs(30);
    while control.exists() {
        assert!(
            Instant::now() < deadline,
            "master still there 30 s after a 2 s ControlPersist"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let third = SshTransport::connect(t).await.expect("connect again");
    assert!(!third.reused());
    assert_ne!(connection_of(&third).await, conn, "a new connection");
    third.close().await.expect("close");
    assert!(!control.exists(), "close ends the master now");
}

#[tokio::test]
async fn a_control_socket_no_master_serves_is_replaced() {
    let sshd = Sshd::start();
    let kh = sshd.write_known_hosts("known_hosts", &sshd.known_hosts_line());
    let t = target(&sshd, kh);
    let first = SshTransport::connect(t.clone()).await.expect("connect");
    let control = first.control_socket().to_owned();
    first.close().await.expect("close");
    assert!(!control.exists());
    // A socket file left behind (a master killed with SIGKILL does not remove it).
    drop(std::os::unix::net::UnixListener::bind(&control).expect("bind"));
    assert!(control.exists());
    let second = SshTransport::connect(t)
        .await
        .expect("connect over a stale socket");
    assert!(!second.reused());
    assert_eq!(connection_of(&second).await.split(' ').count(), 4);
    second.close().await.expect("close");
}

#[tokio::test]
async fn a_transport_idle_longer_than_control_persist_still_runs_commands() {
    let sshd = Sshd::start();
    let kh = sshd.write_known_hosts("known_hosts", &sshd.known_hosts_line());
    let mut t = target(&sshd, kh);
    t.persist = Duration::from_secs(1);
    let held = SshTransport::connect(t).await.expect("connect");
    let control = held.control_socket().to_owned();
    // Idle three times the persist time: the host is waiting for its turn, not done.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        control.exists(),
        "the master ended while its transport was held"
    );
    let out = held
        .exec_checked(ExecRequest::new("echo still-here"))
        .await
        .expect("a command after the idle time");
    assert_eq!(out.stdout_text().trim(), "still-here");
    // Released: now the persist countdown runs and the master goes.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(30);
    while control.exists() {
        assert!(
            Instant::now() < deadline,
            "master still there 30 s after the transport was dropped (1 s ControlPersist)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
