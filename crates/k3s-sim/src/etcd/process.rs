//! Runs Debian's etcd as a supervised child, as K3s runs it embedded: its log lines go to the
//! server's stderr (journald), it dies with the server (SIGTERM on shutdown; `setpriv
//! --pdeathsig KILL` when the server is killed outright), and the server exits when it dies.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::fatal::Fatal;

/// The etcd binary (Debian's etcd-server package installs /usr/bin/etcd).
pub const ETCD_BIN: &str = "etcd";

/// A running etcd child.
pub struct EtcdProcess {
    pid: i32,
    stopping: Arc<AtomicBool>,
    exited: Arc<AtomicBool>,
}

/// Starts etcd with `args` and watches it; when it exits unexpectedly the server logs a fatal
/// line and exits 1 (systemd restarts it). Must be called from the main thread: the parent-death
/// signal follows the thread that forked.
pub fn spawn(args: &[String]) -> Result<EtcdProcess, Fatal> {
    let with_pdeathsig = std::path::Path::new("/usr/bin/setpriv").exists();
    let mut cmd = if with_pdeathsig {
        let mut c = Command::new("/usr/bin/setpriv");
        c.args(["--pdeathsig", "KILL", "--", ETCD_BIN]);
        c
    } else {
        Command::new(ETCD_BIN)
    };
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    let child: Child = cmd.spawn().map_err(|e| {
        Fatal(format!(
            "starting etcd: {ETCD_BIN}: {e} (k3s-sim runs Debian's etcd: apt-get install etcd-server)"
        ))
    })?;
    let pid = i32::try_from(child.id()).unwrap_or(0);
    let stopping = Arc::new(AtomicBool::new(false));
    let exited = Arc::new(AtomicBool::new(false));
    let (s, x) = (stopping.clone(), exited.clone());
    std::thread::spawn(move || {
        let mut child = child;
        let status = child.wait();
        x.store(true, Ordering::SeqCst);
        if !s.load(Ordering::SeqCst) {
            let why = match status {
                Ok(st) => st.to_string(),
                Err(e) => e.to_string(),
            };
            crate::log::fatal(format!("etcd exited: {why}"));
            std::process::exit(1);
        }
    });
    crate::log::info(format!("Started etcd (pid {pid})"));
    Ok(EtcdProcess {
        pid,
        stopping,
        exited,
    })
}

impl EtcdProcess {
    /// Stops etcd (SIGTERM, then SIGKILL after 10 s) and waits for it.
    pub fn stop(&self) {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        self.stopping.store(true, Ordering::SeqCst);
        if self.exited.load(Ordering::SeqCst) || self.pid <= 0 {
            return;
        }
        let _ = kill(Pid::from_raw(self.pid), Signal::SIGTERM);
        let start = Instant::now();
        while !self.exited.load(Ordering::SeqCst) {
            if start.elapsed() > Duration::from_secs(10) {
                let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
            }
            if start.elapsed() > Duration::from_secs(15) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
