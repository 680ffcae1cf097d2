//! Runs k3sctl on a pseudo-terminal, as a person at a terminal does, and answers its
//! confirmation prompt: the only honest way to test a prompt that is shown only when stdin and
//! stderr are terminals.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::pty::openpty;

/// What a run on the terminal showed and how it ended.
pub struct PtyRun {
    /// Everything written to the terminal (stdout and stderr, escape sequences included).
    pub screen: String,
    /// The exit status.
    pub status: ExitStatus,
}

/// Runs k3sctl with `args` on a fresh pseudo-terminal (without `K3SCTL_YES`); when `prompt`
/// appears on the screen, types `answer` and Enter. Fails the test after `limit`.
pub fn k3sctl_on_pty(args: &[&str], prompt: &str, answer: &str, limit: Duration) -> PtyRun {
    let pty = openpty(None, None).expect("openpty");
    let slave = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup pty"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_k3sctl"))
        .env_remove("K3SCTL_YES")
        .env("TERM", "xterm")
        .args(args)
        .stdin(slave(&pty.slave))
        .stdout(slave(&pty.slave))
        .stderr(slave(&pty.slave))
        .spawn()
        .expect("k3sctl starts");
    // Only the child holds the terminal now: its exit makes the reads below end.
    drop(pty.slave);
    let mut master = std::fs::File::from(pty.master);
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let mut reader = master.try_clone().expect("dup master");
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // EIO once the child has exited and closed the terminal.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    let mut screen = Vec::new();
    let mut answered = false;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(chunk) => screen.extend_from_slice(&chunk),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        if !answered && String::from_utf8_lossy(&screen).contains(prompt) {
            master
                .write_all(format!("{answer}\r").as_bytes())
                .expect("type the answer");
            answered = true;
        }
        if let Some(status) = child.try_wait().expect("wait") {
            // Drain what is left on the terminal.
            while let Ok(chunk) = rx.recv_timeout(Duration::from_millis(200)) {
                screen.extend_from_slice(&chunk);
            }
            return PtyRun {
                screen: String::from_utf8_lossy(&screen).into_owned(),
                status,
            };
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!(
                "k3sctl on the terminal did not finish within {limit:?}:\n{}",
                String::from_utf8_lossy(&screen)
            );
        }
    }
    let status = child.wait().expect("wait");
    PtyRun {
        screen: String::from_utf8_lossy(&screen).into_owned(),
        status,
    }
}
