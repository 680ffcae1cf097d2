//! An independent referee: Debian's kubectl 1.20 polls the API through the exported kubeconfig
//! during a rollout and records what it saw.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// What the watcher saw.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// Samples taken.
    pub samples: usize,
    /// Lowest readyReplicas of the watched Deployment.
    pub min_ready: i64,
    /// Most nodes unschedulable at once.
    pub max_unschedulable: usize,
    /// Samples in which an agent ran the target while the server did not.
    pub agent_before_server: usize,
    /// Samples where the server ran the target.
    pub server_at_target: usize,
    /// UIDs of the DaemonSet's pods seen over time.
    pub daemonset_uids: BTreeSet<String>,
}

/// Runs kubectl with the kubeconfig, returning parsed JSON.
pub fn kubectl_json(kubectl: &Path, kubeconfig: &Path, args: &[&str]) -> Option<Value> {
    let out = Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .args(["-o", "json"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// Polls until stopped.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    samples: Arc<AtomicUsize>,
    handle: JoinHandle<Seen>,
}

impl Watcher {
    /// Starts watching Deployment `deployment` and DaemonSet pods labelled `ds_label` (k=v);
    /// `server` is the server node's name, `target` the version.
    pub fn start(
        kubectl: PathBuf,
        kubeconfig: PathBuf,
        deployment: &str,
        ds_label: &str,
        server: &str,
        target: &str,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let samples = Arc::new(AtomicUsize::new(0));
        let taken = Arc::clone(&samples);
        let (deployment, ds_label, server, target) = (
            deployment.to_string(),
            ds_label.to_string(),
            server.to_string(),
            target.to_string(),
        );
        let handle = std::thread::spawn(move || {
            let mut seen = Seen {
                min_ready: i64::MAX,
                ..Seen::default()
            };
            while !flag.load(Ordering::SeqCst) {
                sample(
                    &kubectl,
                    &kubeconfig,
                    &deployment,
                    &ds_label,
                    &server,
                    &target,
                    &mut seen,
                );
                taken.store(seen.samples, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(150));
            }
            sample(
                &kubectl,
                &kubeconfig,
                &deployment,
                &ds_label,
                &server,
                &target,
                &mut seen,
            );
            seen
        });
        Self {
            stop,
            samples,
            handle,
        }
    }

    /// Returns once the watcher has taken its first sample (the state before what is watched
    /// starts); panics when none is taken `within`.
    pub fn wait_for_first_sample(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while self.samples.load(Ordering::SeqCst) == 0 {
            assert!(
                Instant::now() < deadline,
                "the watcher took no sample within {within:?} (API not answering?)"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops and returns what was seen.
    pub fn finish(self) -> Seen {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().expect("watcher thread")
    }
}

fn sample(
    kubectl: &Path,
    kubeconfig: &Path,
    deployment: &str,
    ds_label: &str,
    server: &str,
    target: &str,
    seen: &mut Seen,
) {
    // The API is briefly down while the server restarts: such samples are skipped.
    let Some(nodes) = kubectl_json(kubectl, kubeconfig, &["get", "nodes"]) else {
        return;
    };
    let Some(deploy) = kubectl_json(kubectl, kubeconfig, &["get", "deployment", deployment]) else {
        return;
    };
    let Some(pods) = kubectl_json(kubectl, kubeconfig, &["get", "pods", "-l", ds_label]) else {
        return;
    };
    seen.samples += 1;
    let ready = deploy["status"]["readyReplicas"].as_i64().unwrap_or(0);
    seen.min_ready = seen.min_ready.min(ready);
    let items = nodes["items"].as_array().cloned().unwrap_or_default();
    let unschedulable = items
        .iter()
        .filter(|n| n["spec"]["unschedulable"].as_bool() == Some(true))
        .count();
    seen.max_unschedulable = seen.max_unschedulable.max(unschedulable);
    let version = |n: &Value| {
        n["status"]["nodeInfo"]["kubeletVersion"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let server_done = items
        .iter()
        .any(|n| n["metadata"]["name"] == server && version(n) == target);
    let agent_done = items
        .iter()
        .any(|n| n["metadata"]["name"] != server && version(n) == target);
    if server_done {
        seen.server_at_target += 1;
    }
    if agent_done && !server_done {
        seen.agent_before_server += 1;
    }
    for pod in pods["items"].as_array().cloned().unwrap_or_default() {
        if let Some(uid) = pod["metadata"]["uid"].as_str() {
            seen.daemonset_uids.insert(uid.to_string());
        }
    }
}
