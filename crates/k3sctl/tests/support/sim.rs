//! k3s-sim nodes as local child processes (one K3S_SIM_ROOT each) for kube edge tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The k3s-sim binary: `K3SCTL_SIM_BINARY`, else `k3s-sim` in this test's target directory,
/// built there with cargo when missing.
pub fn sim_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("K3SCTL_SIM_BINARY").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> → target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile dir")
        .to_path_buf();
    let bin = profile_dir.join("k3s-sim");
    if !bin.exists() {
        let target_dir = profile_dir.parent().expect("target dir");
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", "k3s-sim", "--bin", "k3s-sim"])
            .env("CARGO_TARGET_DIR", target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo build -p k3s-sim");
        assert!(status.success(), "building k3s-sim failed");
    }
    bin
}

/// One k3s-sim process.
pub struct SimNode {
    /// Its K3S_SIM_ROOT.
    pub root: PathBuf,
    log: PathBuf,
    child: Child,
}

impl SimNode {
    /// Starts `k3s-sim <args>` with fast test timings, logging to `<root>.log`.
    pub fn start(binary: &Path, root: PathBuf, args: &[String]) -> Self {
        fs_err::create_dir_all(&root).expect("mkdir root");
        let log = root.with_extension("log");
        let file = fs_err::File::create(&log).expect("log file");
        let child = Command::new(binary)
            .args(args)
            .env("K3S_SIM_ROOT", &root)
            .env("K3S_SIM_HEARTBEAT", "1s")
            .env("K3S_SIM_NODE_GRACE", "4s")
            .env("K3S_SIM_POD_START", "1s")
            .env("K3S_SIM_RETRY", "300ms")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("K3S_TOKEN")
            .env_remove("K3S_URL")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log").into_file())
            .stderr(file.into_file())
            .spawn()
            .expect("spawn k3s-sim");
        Self { root, log, child }
    }

    /// A path inside this node's root.
    pub fn path(&self, abs: &str) -> PathBuf {
        self.root.join(abs.trim_start_matches('/'))
    }

    /// What it logged.
    pub fn log(&self) -> String {
        fs_err::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `abs` exists in its root, failing with the log.
    pub fn wait_file(&mut self, abs: &str, timeout: Duration) -> PathBuf {
        let p = self.path(abs);
        let deadline = Instant::now() + timeout;
        while !p.exists() {
            assert!(
                matches!(self.child.try_wait(), Ok(None)),
                "k3s-sim exited:\n{}",
                self.log()
            );
            assert!(Instant::now() < deadline, "no {abs}; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }
}

impl Drop for SimNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
