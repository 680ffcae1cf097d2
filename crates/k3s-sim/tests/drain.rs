//! kubectl 1.20 drain against the stand-in: DaemonSet pods ignored, eviction through the policy
//! API, blocked by a PodDisruptionBudget until the replacement pod runs elsewhere.

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, server_token, wait_for};

const DEPLOYMENT: &str = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"default"},
"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},
"spec":{"containers":[{"name":"web","image":"nginx"}],"volumes":[{"name":"scratch","emptyDir":{}}]}}}}"#;

const PDB: &str = r#"{"apiVersion":"policy/v1","kind":"PodDisruptionBudget","metadata":{"name":"web","namespace":"default"},
"spec":{"minAvailable":1,"selector":{"matchLabels":{"app":"web"}}}}"#;

const DAEMONSET: &str = r#"{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"agent","namespace":"default"},
"spec":{"selector":{"matchLabels":{"app":"agent"}},"template":{"metadata":{"labels":{"app":"agent"}},
"spec":{"containers":[{"name":"agent","image":"busybox"}]}}}}"#;

fn pods_on(c: &Cluster, kc: &std::path::Path, node: &str, label: &str) -> Vec<String> {
    let out = c.kubectl_ok(
        kc,
        &[
            "get",
            "pods",
            "-l",
            label,
            "--field-selector",
            &format!("spec.nodeName={node},status.phase=Running"),
            "-o",
            "name",
        ],
    );
    out.lines().map(str::to_string).collect()
}

#[test]
fn drain_waits_for_the_pdb_and_completes_once_replacements_run() {
    let c = Cluster::new();
    let mut s = c.server(
        "s1",
        "v1.33.5+k3s1",
        &["--disable", "traefik,metrics-server,local-storage,coredns"],
    );
    s.env.push(("K3S_SIM_POD_START".into(), "6s".into()));
    s.start();
    let kc = c.wait_ready(&mut s);
    let token = server_token(&s);
    let mut a1 = c.agent("a1", "v1.33.5+k3s1", &token, &[]);
    let mut a2 = c.agent("a2", "v1.33.5+k3s1", &token, &[]);
    a1.start();
    a2.start();
    c.wait_node_status(&kc, "a1", "Ready", Duration::from_secs(30));
    c.wait_node_status(&kc, "a2", "Ready", Duration::from_secs(30));

    // Put both replicas on a1: only a1 is schedulable while the deployment starts.
    c.kubectl_ok(&kc, &["cordon", "s1", "a2"]);
    let dir = c.dir.path();
    for (name, body) in [
        ("deploy.json", DEPLOYMENT),
        ("pdb.json", PDB),
        ("ds.json", DAEMONSET),
    ] {
        fs_err::write(dir.join(name), body).expect("write");
        c.kubectl_ok(
            &kc,
            &[
                "create",
                "--validate=false",
                "-f",
                dir.join(name).to_str().expect("utf8"),
            ],
        );
    }
    wait_for("2 web pods running on a1", Duration::from_secs(30), || {
        (pods_on(&c, &kc, "a1", "app=web").len() == 2).then_some(())
    });
    wait_for("pdb status", Duration::from_secs(10), || {
        (c.kubectl_ok(
            &kc,
            &[
                "get",
                "pdb",
                "web",
                "-o",
                "jsonpath={.status.disruptionsAllowed}",
            ],
        ) == "1")
            .then_some(())
    });
    c.kubectl_ok(&kc, &["uncordon", "a2"]);

    // Without --ignore-daemonsets and --delete-emptydir-data kubectl refuses, as against real K3s.
    let refused = c.kubectl(&kc, &["drain", "a1", "--timeout=20s"]);
    assert!(!refused.status.success());
    let msg = String::from_utf8_lossy(&refused.stderr);
    assert!(
        msg.contains("DaemonSet-managed Pods") && msg.contains("local storage"),
        "{msg}"
    );

    let started = Instant::now();
    let out = c.kubectl(
        &kc,
        &[
            "drain",
            "a1",
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--timeout=90s",
        ],
    );
    let elapsed = started.elapsed();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "drain must have been blocked:\n{text}"
    );
    assert!(
        text.contains("node/a1 drained") || text.contains("node/a1 evicted"),
        "{text}"
    );
    assert!(
        elapsed >= Duration::from_secs(5),
        "blocked until a replacement was Running ({elapsed:?})"
    );
    let wide = c.kubectl_ok(&kc, &["get", "nodes"]);
    assert!(
        wide.lines()
            .any(|l| l.starts_with("a1 ") && l.contains("Ready,SchedulingDisabled")),
        "{wide}"
    );
    assert!(pods_on(&c, &kc, "a1", "app=web").is_empty());
    wait_for(
        "both replicas running on a2",
        Duration::from_secs(30),
        || (pods_on(&c, &kc, "a2", "app=web").len() == 2).then_some(()),
    );
    assert_eq!(
        pods_on(&c, &kc, "a1", "app=agent").len(),
        1,
        "DaemonSet pods stay on the drained node"
    );

    c.kubectl_ok(&kc, &["uncordon", "a1"]);
    c.kubectl_ok(&kc, &["delete", "node", "a2"]);
    let nodes = c.kubectl_ok(&kc, &["get", "nodes", "-o", "name"]);
    assert!(!nodes.contains("node/a2"), "{nodes}");
    wait_for("replicas move back to a1", Duration::from_secs(30), || {
        (pods_on(&c, &kc, "a1", "app=web").len() == 2).then_some(())
    });
    a1.stop();
    a2.stop();
    s.stop();
}
