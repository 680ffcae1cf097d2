//! Local process tests: k3s-sim servers and agents as child processes, each node with its own
//! `K3S_SIM_ROOT`, driven through Debian's kubectl 1.20 with the kubeconfig the server writes.

#![allow(dead_code)]

pub mod etcd_server;
pub mod lab_host;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The stand-in binary under test.
pub fn sim_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_k3s-sim"))
}

/// kubectl 1.20: `K3SCTL_KUBECTL`, else what scripts/ensure-kubectl.sh prints.
pub fn kubectl_path() -> PathBuf {
    if let Some(p) = std::env::var_os("K3SCTL_KUBECTL").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/ensure-kubectl.sh");
    let out = Command::new("bash")
        .arg(&script)
        .output()
        .expect("run scripts/ensure-kubectl.sh");
    assert!(
        out.status.success(),
        "ensure-kubectl.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Polls `f` until it returns Some or the timeout passes.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One node process (server or agent) with its own root directory.
pub struct Node {
    /// Node name.
    pub name: String,
    /// `K3S_SIM_ROOT` of this node.
    pub root: PathBuf,
    /// Binary used (possibly a stamped copy).
    pub binary: PathBuf,
    /// Arguments after the binary.
    pub args: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    child: Option<Child>,
    log: PathBuf,
}

impl Node {
    /// Starts the process; output goes to `<root>.log`.
    pub fn start(&mut self) {
        fs_err::create_dir_all(&self.root).expect("mkdir root");
        let log = fs_err::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log");
        let mut cmd = Command::new(&self.binary);
        cmd.args(&self.args)
            .env("K3S_SIM_ROOT", &self.root)
            .env("K3S_SIM_HEARTBEAT", "1s")
            .env("K3S_SIM_NODE_GRACE", "6s")
            .env("K3S_SIM_POD_START", "1s")
            .env("K3S_SIM_RETRY", "300ms")
            .env("K3S_SIM_MANIFEST_SCAN", "500ms")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("K3S_TOKEN")
            .env_remove("K3S_URL")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log").into_file())
            .stderr(log.into_file());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("spawn node"));
    }

    /// Stops the process with SIGTERM (as systemd does) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits for the process to exit on its own and returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let c = self.child.as_mut()?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = c.try_wait() {
                self.child = None;
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Everything the process logged so far.
    pub fn log(&self) -> String {
        fs_err::read_to_string(&self.log).unwrap_or_default()
    }

    /// A path inside this node's root (`/etc/rancher/k3s/k3s.yaml` → `<root>/etc/...`).
    pub fn path(&self, abs: &str) -> PathBuf {
        self.root.join(abs.trim_start_matches('/'))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A test cluster: a temp dir, a port, a server and agents.
pub struct Cluster {
    /// Holds every node root.
    pub dir: tempfile::TempDir,
    /// Server HTTPS port.
    pub port: u16,
    /// kubectl binary.
    pub kubectl: PathBuf,
}

impl Cluster {
    /// A fresh cluster directory and port.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            port: free_port(),
            kubectl: kubectl_path(),
        }
    }

    /// A stamped copy of the binary (cached per version).
    pub fn binary(&self, version: &str) -> PathBuf {
        let out = self.dir.path().join("bin").join(version).join("k3s");
        if !out.exists() {
            let st = Command::new(sim_binary())
                .args(["stamp", "--version", version, "-o"])
                .arg(&out)
                .output()
                .expect("stamp");
            assert!(
                st.status.success(),
                "stamping {version}: {}",
                String::from_utf8_lossy(&st.stderr)
            );
        }
        out
    }

    /// A node definition (not started).
    pub fn node(&self, name: &str, version: &str, args: &[&str]) -> Node {
        let root = self.dir.path().join(name);
        Node {
            name: name.to_string(),
            log: self.dir.path().join(format!("{name}.log")),
            root,
            binary: self.binary(version),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: Vec::new(),
            child: None,
        }
    }

    /// A server node listening on 127.0.0.1:<port>.
    pub fn server(&self, name: &str, version: &str, extra: &[&str]) -> Node {
        let port = self.port.to_string();
        let mut args = vec![
            "server",
            "--node-name",
            name,
            "--https-listen-port",
            &port,
            "--bind-address",
            "127.0.0.1",
            "--node-ip",
            "127.0.0.1",
        ];
        args.extend_from_slice(extra);
        self.node(name, version, &args)
    }

    /// The server URL.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// An agent node joining with `token`.
    pub fn agent(&self, name: &str, version: &str, token: &str, extra: &[&str]) -> Node {
        let url = self.url();
        let mut args = vec![
            "agent",
            "--server",
            &url,
            "--token",
            token,
            "--node-name",
            name,
            "--node-ip",
            "127.0.0.1",
        ];
        args.extend_from_slice(extra);
        self.node(name, version, &args)
    }

    /// Waits until the server's kubeconfig exists and the API answers; returns the kubeconfig path.
    pub fn wait_ready(&self, server: &mut Node) -> PathBuf {
        let kc = server.path("/etc/rancher/k3s/k3s.yaml");
        wait_for(
            &format!("server {} ready; log:\n{}", server.name, server.log()),
            Duration::from_secs(30),
            || {
                assert!(server.running(), "server exited:\n{}", server.log());
                (kc.exists()
                    && self
                        .kubectl(&kc, &["get", "--raw", "/readyz"])
                        .status
                        .success())
                .then_some(())
            },
        );
        kc
    }

    /// Runs kubectl with a kubeconfig.
    pub fn kubectl(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--request-timeout=10s")
            // kubectl caches discovery per host:port for 10 minutes; ports are reused across runs.
            .arg("--cache-dir")
            .arg(self.dir.path().join("kube-cache"))
            .args(args)
            .output()
            .expect("run kubectl")
    }

    /// Runs kubectl and returns stdout, failing the test on error.
    pub fn kubectl_ok(&self, kubeconfig: &Path, args: &[&str]) -> String {
        let out = self.kubectl(kubeconfig, args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Waits until `kubectl get nodes` shows `node` with `status`.
    pub fn wait_node_status(
        &self,
        kc: &Path,
        node: &str,
        status: &str,
        timeout: Duration,
    ) -> String {
        wait_for(&format!("node {node} {status}"), timeout, || {
            let out = self.kubectl(kc, &["get", "nodes", "--no-headers"]);
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            text.lines()
                .any(|l| {
                    let cols: Vec<&str> = l.split_whitespace().collect();
                    cols.first() == Some(&node) && cols.get(1) == Some(&status)
                })
                .then_some(text)
        })
    }
}

/// Reads the server's secure token.
/// The Events K3s's certificate monitor recorded on Node `node` with `reason`, as
/// `(type, message, count)`.
pub fn cert_events(c: &Cluster, kc: &Path, node: &str, reason: &str) -> Vec<(String, String, u64)> {
    let out = c.kubectl_ok(kc, &["get", "events", "-n", "default", "-o", "json"]);
    let list: serde_json::Value = serde_json::from_str(&out).expect("events JSON");
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| {
            e["involvedObject"]["kind"] == "Node"
                && e["involvedObject"]["name"] == node
                && e["reason"] == reason
                && e["source"]["component"] == "k3s-cert-monitor"
        })
        .map(|e| {
            (
                e["type"].as_str().unwrap_or_default().to_string(),
                e["message"].as_str().unwrap_or_default().to_string(),
                e["count"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

pub fn server_token(server: &Node) -> String {
    fs_err::read_to_string(server.path("/var/lib/rancher/k3s/server/token"))
        .expect("server token")
        .trim()
        .to_string()
}
