//! A real OpenSSH server on a loopback port for edge tests, with a generated host key and client
//! key. Root login is allowed in its own config; it stops when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A running sshd and the files a client needs.
pub struct Sshd {
    /// Holds the keys and config; removed on drop.
    pub dir: tempfile::TempDir,
    /// The port sshd listens on at 127.0.0.1.
    pub port: u16,
    child: Child,
    commands_log: Option<PathBuf>,
}

/// Sends `signal` (e.g. "STOP", "KILL") to `pids`; false when one of them was gone.
#[allow(dead_code)]
pub fn signal(pids: &[u32], signal: &str) -> bool {
    if pids.is_empty() {
        return true;
    }
    Command::new("kill")
        .arg(format!("-{signal}"))
        .args(pids.iter().map(u32::to_string))
        .stderr(std::process::Stdio::null())
        .status()
        .expect("kill")
        .success()
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "k3sctl-test", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success(), "ssh-keygen failed");
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl Sshd {
    /// Starts sshd and waits until it accepts connections.
    #[allow(dead_code)]
    pub fn start() -> Self {
        Self::start_in(tempfile::tempdir().expect("tempdir"), "")
    }

    /// Starts sshd recording every command it runs, with the connection it arrives on, in
    /// [`commands`](Self::commands).
    #[allow(dead_code)]
    pub fn start_recording_commands() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let wrapper = dir.path().join("record-command");
        let log = dir.path().join("commands.log");
        fs_err::write(
            &wrapper,
            format!(
                "#!/bin/sh\nprintf '%s|%s\\0' \"$SSH_CONNECTION\" \"$SSH_ORIGINAL_COMMAND\" >> {}\n\
                 exec /bin/sh -c \"$SSH_ORIGINAL_COMMAND\"\n",
                log.display()
            ),
        )
        .expect("wrapper");
        use std::os::unix::fs::PermissionsExt;
        fs_err::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let mut sshd = Self::start_in(dir, &format!("ForceCommand {}\n", wrapper.display()));
        sshd.commands_log = Some(log);
        sshd
    }

    fn start_in(dir: tempfile::TempDir, extra: &str) -> Self {
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("id_ed25519"));
        fs_err::copy(d.join("id_ed25519.pub"), d.join("authorized_keys")).expect("copy");
        fs_err::create_dir_all("/run/sshd").expect("privsep dir");
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile {pid}\n\
             AuthorizedKeysFile {ak}\nPermitRootLogin yes\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nLogLevel ERROR\n\
             AllowTcpForwarding yes\nAllowStreamLocalForwarding yes\nMaxSessions 64\n\
             MaxStartups 64\n{extra}",
            hk = d.join("host_key").display(),
            pid = d.join("sshd.pid").display(),
            ak = d.join("authorized_keys").display(),
        );
        fs_err::write(d.join("sshd_config"), config).expect("write config");
        let child = Command::new("/usr/sbin/sshd")
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(d.join("sshd_config"))
            .spawn()
            .expect("sshd starts");
        // sshd writes its pid file once it listens (connecting to probe would log noise).
        let deadline = Instant::now() + Duration::from_secs(10);
        while !d.join("sshd.pid").exists() {
            assert!(Instant::now() < deadline, "sshd did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            dir,
            port,
            child,
            commands_log: None,
        }
    }

    /// The commands run so far (with [`start_recording_commands`](Self::start_recording_commands)),
    /// in order: the client side of their connection (`$SSH_CONNECTION`) and the command.
    #[allow(dead_code)]
    pub fn commands(&self) -> Vec<(String, String)> {
        let log = self
            .commands_log
            .as_ref()
            .expect("started recording commands");
        let text = fs_err::read_to_string(log).unwrap_or_default();
        text.split('\0')
            .filter(|r| !r.is_empty())
            .map(|r| {
                let (conn, cmd) = r.split_once('|').expect("record");
                (conn.to_owned(), cmd.to_owned())
            })
            .collect()
    }

    /// The processes serving this sshd's connections now (every descendant of the listener):
    /// stopping them makes a client's connection hang as a host gone silent does, killing them
    /// drops it.
    #[allow(dead_code)]
    pub fn connection_processes(&self) -> Vec<u32> {
        let mut parents: Vec<(u32, u32)> = Vec::new();
        for entry in fs_err::read_dir("/proc").expect("/proc").flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = fs_err::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // The fields after the command name (which may hold spaces) in parentheses.
            let Some((_, rest)) = stat.rsplit_once(") ") else {
                continue;
            };
            if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
                parents.push((pid, ppid));
            }
        }
        let mut found = vec![self.child.id()];
        let mut i = 0;
        while i < found.len() {
            let parent = found[i];
            found.extend(
                parents
                    .iter()
                    .filter(|(_, pp)| *pp == parent)
                    .map(|(p, _)| *p),
            );
            i += 1;
        }
        found.remove(0);
        found
    }

    /// The client's private key.
    pub fn identity(&self) -> PathBuf {
        self.dir.path().join("id_ed25519")
    }

    /// A known_hosts line for this server's real host key.
    pub fn known_hosts_line(&self) -> String {
        let pubkey =
            fs_err::read_to_string(self.dir.path().join("host_key.pub")).expect("host key");
        let mut parts = pubkey.split_whitespace();
        let (kind, key) = (parts.next().expect("type"), parts.next().expect("key"));
        format!("[127.0.0.1]:{} {kind} {key}\n", self.port)
    }

    /// Writes a known_hosts file with `content` and returns its path.
    pub fn write_known_hosts(&self, name: &str, content: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        fs_err::write(&path, content).expect("write known_hosts");
        path
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
