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
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
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
             MaxStartups 64\n",
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
        Self { dir, port, child }
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
