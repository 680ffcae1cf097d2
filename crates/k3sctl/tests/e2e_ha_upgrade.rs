//! End-to-end: a quorum-safe rolling upgrade of an HA cluster (3 servers on the stand-in's
//! embedded etcd + 2 agents) on one 5-host lab. Refusals first (the first server with K3s
//! stopped: the API is reached through another server and the quorum check refuses, and
//! `k3sctl check` answers through another server and names the stopped one, and
//! `k3sctl etcd snapshot save|list` work through another server; an etcd learner), then the rollout watched by etcdctl (`endpoint health` of the three members) and
//! kubectl: never more than one member down, quorum always kept, servers before agents; the etcd
//! snapshot taken before the first server is listed by K3s; k3sctl's
//! overhead per server beyond the waits is printed.

#[path = "e2e_ha_upgrade/ha_watcher.rs"]
mod ha_watcher;
#[allow(dead_code)]
#[path = "e2e_upgrade/release_site.rs"]
mod release_site;
#[allow(dead_code)]
#[path = "e2e_upgrade/scenario.rs"]
mod scenario;
#[allow(dead_code)]
#[path = "e2e_upgrade/watcher.rs"]
mod watcher;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ha_watcher::{
    ETCDCTL, add_health, healthy_endpoints, start_health_loop, stop_health_loop, watch,
};
use scenario::{Scenario, V133, V134_1};

/// Waits until etcdctl sees every member healthy.
fn wait_all_healthy(s: &Scenario, on: &str, endpoints: &[String]) {
    let start = Instant::now();
    loop {
        let health = healthy_endpoints(s.lab(), on, endpoints).unwrap_or_default();
        if health.len() == endpoints.len() && health.iter().all(|(_, h)| *h) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "etcd members not all healthy: {health:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// When K3s's current process started on `host` (systemd's monotonic timestamp).
fn k3s_started(s: &Scenario, host: &str) -> String {
    s.lab()
        .exec(
            host,
            "systemctl show -p ExecMainStartTimestampMonotonic --value k3s",
        )
        .expect("systemctl show")
        .trim()
        .to_string()
}

#[test]
fn ha_upgrade_keeps_quorum_and_refuses_when_it_is_at_risk() {
    let s = Scenario::boot_with_servers("hau", 5, 3);
    let servers: Vec<String> = s.hosts[..3].to_vec();
    let first = servers[0].clone();
    let endpoints: Vec<String> = s
        .lab()
        .hosts()
        .iter()
        .take(3)
        .map(|h| format!("https://{}:2379", h.address))
        .collect();
    s.apply_initial();
    wait_all_healthy(&s, &first, &endpoints);

    // The first server's K3s is stopped (its Node still says Ready for 40 s): the upgrade
    // reaches the API through another server and refuses at once, nothing changed.
    s.lab()
        .exec(&servers[0], "systemctl stop k3s")
        .expect("stop k3s");
    let out = s.upgrade(&["--to", V134_1]);
    assert!(!out.ok, "{}", out.text);
    for want in [
        "refusing to upgrade: taking a server down now could lose etcd quorum",
        &format!("server {}: its K3s service is not running", servers[0]),
        "quorum is already degraded",
        "etcd members as the Node objects show them",
    ] {
        assert!(out.text.contains(want), "missing `{want}`:\n{}", out.text);
    }
    assert!(
        s.versions().values().all(|v| v == V133),
        "{:?}",
        s.versions()
    );
    assert!(s.unschedulable().is_empty());
    // `check` too reaches the API through the next server and reports the stopped one.
    let t = Instant::now();
    let (healthy, report) = s.check();
    eprintln!("check with {first} stopped took {:?}", t.elapsed());
    assert!(!healthy, "{report:#}");
    let checks = report["checks"].as_array().cloned().unwrap_or_default();
    let api: Vec<&serde_json::Value> = checks.iter().filter(|c| c["check"] == "api").collect();
    assert!(
        api.len() == 1 && api[0]["status"] == "ok" && api[0]["subject"] == servers[1].as_str(),
        "the API should answer through {}: {report:#}",
        servers[1]
    );
    let failing: Vec<&str> = report["failing"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str())
        .collect();
    for want in [format!("service {first}"), format!("readyz {first}")] {
        assert!(
            failing.contains(&want.as_str()),
            "no `{want}` in {report:#}"
        );
    }
    assert!(
        checks
            .iter()
            .any(|c| c["check"] == "node" && c["status"] == "ok"),
        "nodes judged through {}: {report:#}",
        servers[1]
    );
    // `etcd snapshot save` and `list` too: the snapshot is taken on the second server (the
    // first one's Node still says Ready, but its API does not answer), and both say so.
    let t = Instant::now();
    let (saved, said) = s.etcd_snapshot(&["save", "--name", "failover"]);
    eprintln!(
        "etcd snapshot save with {first} stopped took {:?}",
        t.elapsed()
    );
    assert_eq!(saved["node"].as_str(), Some(servers[1].as_str()), "{saved}");
    let through = format!(
        "the Kubernetes API answered through {} ({first}: ",
        servers[1]
    );
    assert!(said.contains(&through), "no `{through}` in:\n{said}");
    let name = saved["name"].as_str().expect("saved name");
    let t = Instant::now();
    let (listed, said) = s.etcd_snapshot(&["list"]);
    eprintln!(
        "etcd snapshot list with {first} stopped took {:?}",
        t.elapsed()
    );
    assert!(said.contains(&through), "no `{through}` in:\n{said}");
    assert!(
        listed
            .as_array()
            .into_iter()
            .flatten()
            .any(|f| f["name"] == name && f["node"] == servers[1].as_str()),
        "{name} not listed: {listed:#}"
    );
    s.lab()
        .exec(&servers[0], "systemctl start k3s")
        .expect("start k3s");
    wait_all_healthy(&s, &first, &endpoints);

    // A learner only etcd knows about (added by hand, never started): refused, etcd's own
    // member list shown.
    // etcd refuses a reconfiguration ("unhealthy cluster") until every member has been
    // connected for a few seconds, as after the restart above.
    let start = Instant::now();
    let added = loop {
        let out = s
            .lab()
            .exec_output(
                &first,
                &format!(
                    "{ETCDCTL} --endpoints https://127.0.0.1:2379 member add straggler --learner \
                     --peer-urls=https://10.255.255.1:2380 -w json"
                ),
                Duration::from_secs(15),
            )
            .expect("ssh");
        if out.code == Some(0) {
            break out.stdout;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "member add --learner: {}",
            out.stderr
        );
        std::thread::sleep(Duration::from_secs(1));
    };
    let added: serde_json::Value = serde_json::from_str(added.trim()).expect("member add json");
    let id = format!("{:x}", added["member"]["ID"].as_u64().expect("member ID"));
    let out = s.upgrade(&["--to", V134_1]);
    assert!(!out.ok, "{}", out.text);
    for want in [
        "a learner, not a voting member yet",
        "etcd lists 4 member(s), the spec has 3 server(s)",
        "etcd member list:",
    ] {
        assert!(out.text.contains(want), "missing `{want}`:\n{}", out.text);
    }
    assert!(
        s.versions().values().all(|v| v == V133),
        "{:?}",
        s.versions()
    );
    s.lab()
        .exec(
            &first,
            &format!("{ETCDCTL} --endpoints https://127.0.0.1:2379 member remove {id}"),
        )
        .expect("member remove");

    // The watched rollout.
    let started_before: Vec<String> = servers.iter().map(|h| k3s_started(&s, h)).collect();
    start_health_loop(s.lab(), &first, &endpoints);
    let stop = AtomicBool::new(false);
    let (out, took, mut seen) = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| watch(&s.kubectl, &s.kubeconfig, &servers, V134_1, &stop));
        std::thread::sleep(Duration::from_millis(500));
        let started = Instant::now();
        let out = s.upgrade(&["-o", "json", "--to", V134_1]);
        let took = started.elapsed();
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::SeqCst);
        (out, took, watcher.join().expect("watcher"))
    });
    add_health(&mut seen, &stop_health_loop(s.lab(), &first), &endpoints);
    eprintln!("HA rollout of 5 nodes took {took:?}; referee saw {seen:?}");
    assert!(out.ok, "HA upgrade failed:\n{}", out.text);
    assert!(seen.etcd_samples > 10, "{seen:?}");
    assert!(
        seen.max_down <= 1,
        "two etcd members down at once: {seen:?}"
    );
    assert!(seen.min_healthy >= 2, "quorum lost: {seen:?}");
    assert_eq!(
        seen.down_seen.len(),
        3,
        "the referee saw each member down during its restart: {seen:?}"
    );
    for (server, before) in servers.iter().zip(&started_before) {
        assert_ne!(
            &k3s_started(&s, server),
            before,
            "{server} was not restarted"
        );
    }
    assert_eq!(seen.agent_before_server, 0, "{seen:?}");
    assert_eq!(
        seen.servers_at_target, servers,
        "servers one after another in order: {seen:?}"
    );
    assert!(
        s.versions().values().all(|v| v == V134_1),
        "{:?}",
        s.versions()
    );
    assert!(s.unschedulable().is_empty());
    let report = out
        .json_lines()
        .into_iter()
        .rev()
        .find(|l| l.get("nodes").is_some())
        .expect("final JSON report");
    let mut worst = 0.0f64;
    for node in report["nodes"].as_array().cloned().unwrap_or_default() {
        let name = node["name"].as_str().unwrap_or("");
        let overhead = node["overhead_seconds"].as_f64().unwrap_or(0.0);
        eprintln!(
            "overhead {name}: total {:.2}s waited {:.2}s k3sctl {overhead:.3}s",
            node["seconds"].as_f64().unwrap_or(0.0),
            node["waited_seconds"].as_f64().unwrap_or(0.0),
        );
        if servers.iter().any(|s| s == name) {
            worst = worst.max(overhead);
        }
    }
    eprintln!("largest k3sctl overhead per server: {worst:.3}s (target < 0.5s)");
    let events: Vec<(String, String)> = out
        .json_lines()
        .iter()
        .filter_map(|e| {
            Some((
                e["host"].as_str()?.to_string(),
                e["step"].as_str()?.to_string(),
            ))
        })
        .collect();
    for server in &servers {
        for step in ["quorum", "wait-voter"] {
            assert!(
                events.contains(&(server.clone(), step.to_string())),
                "{server}: no {step} event"
            );
        }
    }

    // The etcd snapshot taken before the first server was touched (upgrade.snapshot is on by
    // default with several servers): named after the target, on the first Ready voter, and
    // K3s lists it there.
    let saved = &report["snapshot"];
    let name = saved["name"].as_str().expect("snapshot in the report");
    assert!(
        name.starts_with(&format!(
            "pre-upgrade-{}-{first}-",
            V134_1.replace('+', "-")
        )),
        "{saved}"
    );
    assert_eq!(saved["node"].as_str(), Some(first.as_str()), "{saved}");
    assert!(
        saved["location"]
            .as_str()
            .is_some_and(|l| l.starts_with("file:///var/lib/rancher/k3s/server/db/snapshots/")),
        "{saved}"
    );
    let listed = s
        .lab()
        .exec(&first, "k3s etcd-snapshot ls")
        .expect("k3s etcd-snapshot ls");
    assert!(listed.contains(name), "{name} not listed:\n{listed}");
    let snapshot_at = events
        .iter()
        .position(|(h, step)| h == &first && step == "etcd-snapshot")
        .expect("etcd-snapshot event");
    let first_cordon = events
        .iter()
        .position(|(_, step)| step == "cordon")
        .expect("cordon event");
    assert!(
        snapshot_at < first_cordon,
        "the snapshot came after a node was touched"
    );
}
