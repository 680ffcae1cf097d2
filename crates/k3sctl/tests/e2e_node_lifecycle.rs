//! End-to-end node lifecycle on one 4-host lab (1 server + agents), scenarios in their natural
//! order: `node remove` of a worker carrying a Deployment (2 replicas, PDB minAvailable 1)
//! watched by kubectl (the PDB never violated, pods moved, Node and node-password secret gone,
//! the host clean as an SSH referee sees it); the seeds' canary cutover of a worker with
//! `node replace --stop-old --delete-old`; `reset` of one agent; `reset` of the whole cluster;
//! `apply` again builds a fresh cluster.

#[allow(dead_code)]
#[path = "e2e_upgrade/release_site.rs"]
mod release_site;
#[allow(dead_code)]
#[path = "e2e_upgrade/scenario.rs"]
mod scenario;
#[path = "e2e_lifecycle/support.rs"]
mod support;
#[allow(dead_code)]
#[path = "e2e_upgrade/watcher.rs"]
mod watcher;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use scenario::{Scenario, budgeted_deployment};
use support::{
    apply_until_ready, get, k3s_left_on, k3sctl, node_names, ready_nodes, wait_until, write_spec,
};

/// The web pods: node → ready pods there, and how many are ready in all.
fn web_pods(s: &Scenario) -> Option<(BTreeMap<String, usize>, usize)> {
    let pods = get(s, &["get", "pods", "-l", "app=web"])?;
    let mut by_node = BTreeMap::new();
    let mut ready = 0;
    for p in pods["items"].as_array().cloned().unwrap_or_default() {
        let is_ready = p["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        }) && p["metadata"]["deletionTimestamp"].is_null();
        if is_ready {
            ready += 1;
            let node = p["spec"]["nodeName"].as_str().unwrap_or("").to_string();
            *by_node.entry(node).or_default() += 1;
        }
    }
    Some((by_node, ready))
}

/// Polls the web pods until stopped; returns (samples, fewest ready pods seen).
fn watch_web(s: &Scenario, stop: &AtomicBool) -> (usize, usize) {
    let mut samples = 0;
    let mut min_ready = usize::MAX;
    while !stop.load(Ordering::SeqCst) {
        if let Some((_, ready)) = web_pods(s) {
            samples += 1;
            min_ready = min_ready.min(ready);
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    (samples, min_ready)
}

fn secret_exists(s: &Scenario, name: &str) -> bool {
    get(
        s,
        &[
            "get",
            "secret",
            "-n",
            "kube-system",
            &format!("{name}.node-password.k3s"),
        ],
    )
    .is_some()
}

#[test]
fn remove_replace_and_reset_nodes() {
    let s = Scenario::boot("lc", 4);
    let h: Vec<String> = s.hosts.clone();
    let (server, victim, old, new) = (&h[0], &h[1], &h[2], &h[3]);
    write_spec(&s, &[(server, "server"), (victim, "agent"), (old, "agent")]);
    eprintln!("apply of 3 nodes: {:?}", apply_until_ready(&s, 3));

    // Both web replicas on the worker to remove: the other nodes cordoned meanwhile.
    s.kubectl(&["cordon", server, old]);
    s.kubectl_apply(&budgeted_deployment("web", "nginx", 2, 1, None));
    wait_until(Duration::from_secs(60), "2 web pods on the victim", || {
        web_pods(&s).is_some_and(|(by, ready)| ready == 2 && by.get(victim.as_str()) == Some(&2))
    });
    s.kubectl(&["uncordon", server, old]);

    // Still in the spec: refused; no terminal and no --yes: refused; nothing changed.
    let out = k3sctl(&s, &["node", "remove", victim]);
    assert!(
        !out.ok && out.text.contains("is still in the spec"),
        "{}",
        out.text
    );
    write_spec(&s, &[(server, "server"), (old, "agent")]);
    let out = k3sctl(&s, &["node", "remove", victim]);
    assert!(
        !out.ok && out.text.contains("needs a confirmation") && out.text.contains("--yes"),
        "{}",
        out.text
    );
    let out = k3sctl(&s, &["node", "remove", victim, "--dry-run"]);
    assert!(out.ok, "{}", out.text);
    for want in ["cordon", "drain", "uninstall K3s", "delete the Node"] {
        assert!(
            out.text.contains(want),
            "dry run lacks {want}:\n{}",
            out.text
        );
    }
    assert!(node_names(&s).contains(victim));
    assert!(
        !k3s_left_on(&s, victim).is_empty(),
        "the dry run changed the host"
    );
    assert!(s.unschedulable().is_empty(), "the dry run cordoned");

    // The removal, watched.
    let stop = AtomicBool::new(false);
    let (out, took, (samples, min_ready)) = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| watch_web(&s, &stop));
        std::thread::sleep(Duration::from_millis(300));
        let t = Instant::now();
        let out = k3sctl(&s, &["--yes", "node", "remove", victim]);
        let took = t.elapsed();
        stop.store(true, Ordering::SeqCst);
        (out, took, watcher.join().expect("watcher"))
    });
    eprintln!("node remove took {took:?}; watcher: {samples} samples, min ready {min_ready}");
    assert!(out.ok, "node remove failed:\n{}", out.text);
    assert!(samples > 5, "too few samples: {samples}");
    assert!(
        min_ready >= 1,
        "PodDisruptionBudget violated: {min_ready} ready"
    );
    assert!(
        !node_names(&s).contains(victim),
        "{victim}'s Node is still there"
    );
    assert!(!secret_exists(&s, victim), "node-password secret left");
    wait_until(Duration::from_secs(60), "2 web pods elsewhere", || {
        web_pods(&s).is_some_and(|(by, ready)| ready == 2 && !by.contains_key(victim.as_str()))
    });
    let left = k3s_left_on(&s, victim);
    assert!(left.is_empty(), "K3s left on {victim}: {left:?}");
    // /etc/rancher/node stays, as with K3s's uninstall.
    s.lab()
        .exec(victim, "test -f /etc/rancher/node/password")
        .expect("node password kept");
    // Once gone, the name alone finds nothing; with its address, nothing left to do.
    let out = k3sctl(&s, &["--yes", "node", "remove", victim]);
    assert!(!out.ok && out.text.contains("--address"), "{}", out.text);
    let address = s
        .lab()
        .hosts()
        .into_iter()
        .find(|x| &x.name == victim)
        .expect("victim")
        .address
        .to_string();
    let out = k3sctl(
        &s,
        &["--yes", "node", "remove", victim, "--address", &address],
    );
    assert!(out.ok && out.text.contains("Nothing to do"), "{}", out.text);

    // Canary cutover of a worker: NEW joins, OLD drained, stopped, deleted.
    write_spec(&s, &[(server, "server"), (old, "agent"), (new, "agent")]);
    let before = web_pods(&s).expect("web pods").0;
    let t = Instant::now();
    let out = k3sctl(
        &s,
        &[
            "--yes",
            "node",
            "replace",
            old,
            "--with",
            new,
            "--stop-old",
            "--delete-old",
        ],
    );
    eprintln!(
        "node replace (agent) took {:?}; web before: {before:?}",
        t.elapsed()
    );
    assert!(out.ok, "node replace failed:\n{}", out.text);
    assert!(out.text.contains("still in the spec"), "{}", out.text);
    let names = node_names(&s);
    assert!(ready_nodes(&s).contains(new), "{new} not Ready: {names:?}");
    assert!(
        !names.contains(old),
        "{old}'s Node is still there: {names:?}"
    );
    assert!(!secret_exists(&s, old));
    wait_until(
        Duration::from_secs(60),
        "web pods off the old worker",
        || web_pods(&s).is_some_and(|(by, ready)| ready == 2 && !by.contains_key(old.as_str())),
    );
    let left = k3s_left_on(&s, old);
    assert!(left.is_empty(), "K3s left on {old}: {left:?}");
    write_spec(&s, &[(server, "server"), (new, "agent")]);

    // Reset of one agent.
    let out = k3sctl(&s, &["--yes", "reset", "--host", new]);
    assert!(out.ok, "reset --host failed:\n{}", out.text);
    assert!(!node_names(&s).contains(new));
    let left = k3s_left_on(&s, new);
    assert!(left.is_empty(), "K3s left on {new}: {left:?}");

    // Reset of the whole cluster: every host clean.
    let out = k3sctl(&s, &["reset", "--dry-run"]);
    assert!(
        out.ok && out.text.contains("the cluster is gone"),
        "{}",
        out.text
    );
    let out = k3sctl(&s, &["--yes", "reset"]);
    assert!(out.ok, "reset failed:\n{}", out.text);
    for host in &h {
        let left = k3s_left_on(&s, host);
        assert!(left.is_empty(), "K3s left on {host}: {left:?}");
    }
    let out = k3sctl(&s, &["--yes", "reset"]);
    assert!(out.ok && out.text.contains("Nothing to do"), "{}", out.text);

    // Apply again: a fresh cluster (the old objects are gone with the old datastore).
    apply_until_ready(&s, 2);
    assert!(
        get(&s, &["get", "deployment", "web"]).is_none(),
        "the old cluster's Deployment survived the reset"
    );
}
