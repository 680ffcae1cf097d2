//! What kubectl 1.20 (the referee) sees of the cluster: nodes, their readiness, taints, roles,
//! versions and cordons, and where pods run.

use std::path::Path;
use std::process::Command;

use super::e2e::{kubectl, text};

/// `kubectl ARGS` with the lab kubeconfig; stdout, panicking on failure.
pub fn kubectl_ok(kubeconfig: &Path, args: &[&str]) -> String {
    let out = Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The Node objects.
pub fn nodes(kubeconfig: &Path) -> Vec<serde_json::Value> {
    let json: serde_json::Value =
        serde_json::from_str(&kubectl_ok(kubeconfig, &["get", "nodes", "-o", "json"]))
            .expect("node list JSON");
    json["items"].as_array().cloned().unwrap_or_default()
}

fn node<'a>(nodes: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    nodes
        .iter()
        .find(|n| n["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no node {name} in {nodes:#?}"))
}

/// Asserts every one of `names` is a Node whose Ready condition is True, as kubectl prints it.
pub fn all_ready(kubeconfig: &Path, names: &[&str]) {
    let table = kubectl_ok(kubeconfig, &["get", "nodes", "--no-headers"]);
    for name in names {
        let status = table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .and_then(|l| l.split_whitespace().nth(1));
        assert_eq!(status, Some("Ready"), "node {name} in:\n{table}");
    }
}

/// The taints of node `name` as `key=value:Effect`.
pub fn taints(kubeconfig: &Path, name: &str) -> Vec<String> {
    let nodes = nodes(kubeconfig);
    node(&nodes, name)["spec"]["taints"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|t| {
                    format!(
                        "{}={}:{}",
                        t["key"].as_str().unwrap_or(""),
                        t["value"].as_str().unwrap_or(""),
                        t["effect"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether node `name` carries label `key` with value `value`.
pub fn has_label(kubeconfig: &Path, name: &str, key: &str, value: &str) -> bool {
    let nodes = nodes(kubeconfig);
    node(&nodes, name)["metadata"]["labels"][key] == value
}

/// The kubelet version of node `name`.
pub fn version(kubeconfig: &Path, name: &str) -> String {
    let nodes = nodes(kubeconfig);
    node(&nodes, name)["status"]["nodeInfo"]["kubeletVersion"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// Cordoned nodes.
pub fn unschedulable(kubeconfig: &Path) -> Vec<String> {
    nodes(kubeconfig)
        .iter()
        .filter(|n| n["spec"]["unschedulable"].as_bool() == Some(true))
        .filter_map(|n| n["metadata"]["name"].as_str().map(str::to_owned))
        .collect()
}

/// Nodes of the running pods labelled `app=<app>` in `default`.
pub fn pod_nodes(kubeconfig: &Path, app: &str) -> Vec<String> {
    let json: serde_json::Value = serde_json::from_str(&kubectl_ok(
        kubeconfig,
        &["get", "pods", "-l", &format!("app={app}"), "-o", "json"],
    ))
    .expect("pod list JSON");
    json["items"]
        .as_array()
        .map(|pods| {
            pods.iter()
                .filter(|p| p["status"]["phase"] == "Running")
                .filter_map(|p| p["spec"]["nodeName"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
