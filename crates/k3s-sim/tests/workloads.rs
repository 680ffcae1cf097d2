//! Everyday kubectl against the stand-in: deployments, rollout, scale, `get all`, leases, describe,
//! watch.

mod common;

use std::time::Duration;

use common::{Cluster, wait_for};

#[test]
fn deployments_scale_roll_out_and_clean_up() {
    let c = Cluster::new();
    let mut s = c.server("s1", "v1.33.5+k3s1", &["--disable", "traefik"]);
    s.start();
    let kc = c.wait_ready(&mut s);
    c.kubectl_ok(
        &kc,
        &[
            "create",
            "deployment",
            "web",
            "--image=nginx",
            "--replicas=2",
        ],
    );
    c.kubectl_ok(
        &kc,
        &["rollout", "status", "deployment/web", "--timeout=30s"],
    );
    let scaled = c.kubectl_ok(&kc, &["scale", "deployment", "web", "--replicas=3"]);
    assert!(scaled.contains("deployment.apps/web scaled"), "{scaled}");
    wait_for("3 ready replicas", Duration::from_secs(20), || {
        (c.kubectl_ok(
            &kc,
            &[
                "get",
                "deployment",
                "web",
                "-o",
                "jsonpath={.status.readyReplicas}",
            ],
        ) == "3")
            .then_some(())
    });
    let all = c.kubectl_ok(&kc, &["get", "all"]);
    assert!(
        all.contains("deployment.apps/web")
            && all.contains("3/3")
            && all.contains("replicaset.apps/web-"),
        "{all}"
    );
    assert_eq!(
        all.lines()
            .filter(|l| l.starts_with("pod/web-") && l.contains("Running"))
            .count(),
        3,
        "{all}"
    );

    // Selectors as kubectl sends them.
    let on_s1 = c.kubectl_ok(
        &kc,
        &[
            "get",
            "pods",
            "-A",
            "--field-selector",
            "spec.nodeName=s1",
            "-l",
            "app=web",
            "-o",
            "name",
        ],
    );
    assert_eq!(on_s1.lines().count(), 3, "{on_s1}");
    let none = c.kubectl_ok(&kc, &["get", "pods", "-l", "app notin (web)", "-o", "name"]);
    assert!(none.trim().is_empty(), "{none}");

    c.kubectl_ok(&kc, &["delete", "deployment", "web"]);
    wait_for("pods garbage-collected", Duration::from_secs(20), || {
        c.kubectl_ok(&kc, &["get", "pods", "-o", "name"])
            .trim()
            .is_empty()
            .then_some(())
    });

    // The kubelet lease, as `kubectl describe node` shows it.
    wait_for("node lease", Duration::from_secs(10), || {
        c.kubectl(&kc, &["get", "lease", "-n", "kube-node-lease", "s1"])
            .status
            .success()
            .then_some(())
    });
    let describe = c.kubectl_ok(&kc, &["describe", "node", "s1"]);
    assert!(describe.contains("HolderIdentity:  s1"), "{describe}");

    // A watch from the beginning lists current objects as ADDED events, then ends at the timeout.
    let watch = c.kubectl_ok(
        &kc,
        &["get", "--raw", "/api/v1/nodes?watch=1&timeoutSeconds=2"],
    );
    let first: serde_json::Value =
        serde_json::from_str(watch.lines().next().expect("an event")).expect("json");
    assert_eq!(first["type"], "ADDED");
    assert_eq!(first["object"]["metadata"]["name"], "s1");
    s.stop();
}

#[test]
fn kubectl_apply_validates_against_the_openapi_document_and_patches() {
    let c = Cluster::new();
    let mut s = c.server("s1", "v1.33.5+k3s1", &["--disable", "traefik"]);
    s.start();
    let kc = c.wait_ready(&mut s);
    let manifest = c.dir.path().join("cm.yaml");
    let write = |value: &str| {
        fs_err::write(&manifest, format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: default\ndata:\n  mode: {value}\n")).expect("write");
    };
    let apply = || c.kubectl_ok(&kc, &["apply", "-f", manifest.to_str().expect("utf8")]);
    write("a");
    assert!(apply().contains("configmap/settings created"));
    assert!(apply().contains("configmap/settings unchanged"));
    write("b");
    assert!(apply().contains("configmap/settings configured"));
    assert_eq!(
        c.kubectl_ok(
            &kc,
            &[
                "get",
                "configmap",
                "settings",
                "-o",
                "jsonpath={.data.mode}"
            ]
        ),
        "b"
    );
    s.stop();
}

#[test]
fn eviction_and_delete_honour_uid_preconditions_and_apply_creates() {
    use k3s_sim::http::client::{Client, Trust};
    let c = Cluster::new();
    let mut s = c.server("s1", "v1.33.5+k3s1", &["--disable", "traefik"]);
    s.start();
    let kc = c.wait_ready(&mut s);
    c.kubectl_ok(&kc, &["run", "solo", "--image=busybox", "--restart=Never"]);
    let uid = c.kubectl_ok(
        &kc,
        &["get", "pod", "solo", "-o", "jsonpath={.metadata.uid}"],
    );
    let tls = s.path("/var/lib/rancher/k3s/server/tls");
    let read = |f: &str| fs_err::read_to_string(tls.join(f)).expect("tls file");
    let (ca, cert, key) = (
        read("server-ca.crt"),
        read("client-admin.crt"),
        read("client-admin.key"),
    );
    let client = Client::new(&c.url(), &Trust::Ca(ca), Some((&cert, &key))).expect("client");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let call = |method: &str, path: &str, ctype: &str, body: serde_json::Value| {
        rt.block_on(client.request(
            method,
            path,
            &[],
            Some((ctype, body.to_string().into_bytes())),
        ))
        .expect("request")
    };
    let eviction = |uid: &str| {
        serde_json::json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "solo", "namespace": "default"},
            "deleteOptions": {"preconditions": {"uid": uid}}})
    };
    let path = "/api/v1/namespaces/default/pods/solo";
    let stale = call(
        "POST",
        &format!("{path}/eviction"),
        "application/json",
        eviction("00000000-0000-4000-8000-000000000000"),
    );
    assert_eq!(stale.status, 409, "{}", stale.text());
    assert!(
        stale
            .text()
            .contains("Precondition failed: UID in precondition"),
        "{}",
        stale.text()
    );
    let wrong_delete = call(
        "DELETE",
        path,
        "application/json",
        serde_json::json!({"preconditions": {"uid": "nope"}}),
    );
    assert_eq!(wrong_delete.status, 409, "{}", wrong_delete.text());
    let ok = call(
        "POST",
        &format!("{path}/eviction"),
        "application/json",
        eviction(&uid),
    );
    assert_eq!(ok.status, 201, "{}", ok.text());
    assert!(
        !c.kubectl(&kc, &["get", "pod", "solo"]).status.success(),
        "evicted pod is gone"
    );

    let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied", "namespace": "default"}, "data": {"k": "v"}});
    let created = call(
        "PATCH",
        "/api/v1/namespaces/default/configmaps/applied?fieldManager=k3sctl",
        "application/apply-patch+yaml",
        cm,
    );
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(
        c.kubectl_ok(
            &kc,
            &["get", "configmap", "applied", "-o", "jsonpath={.data.k}"]
        ),
        "v"
    );
    s.stop();
}

#[test]
fn a_server_with_disable_agent_registers_no_node() {
    let c = Cluster::new();
    let mut s = c.server("s1", "v1.33.5+k3s1", &["--disable-agent"]);
    s.start();
    let kc = c.wait_ready(&mut s);
    let nodes = c.kubectl(&kc, &["get", "nodes", "-o", "name"]);
    assert!(nodes.status.success());
    assert!(
        String::from_utf8_lossy(&nodes.stdout).trim().is_empty(),
        "{}",
        String::from_utf8_lossy(&nodes.stdout)
    );
    // Without nodes the packaged components stay Pending, as on a real agentless server.
    let pending = c.kubectl_ok(
        &kc,
        &[
            "get",
            "pods",
            "-n",
            "kube-system",
            "--field-selector",
            "status.phase=Pending",
            "-o",
            "name",
        ],
    );
    assert!(pending.contains("pod/coredns-"), "{pending}");
    s.stop();
}

#[test]
fn watches_resume_from_a_resource_version() {
    let c = Cluster::new();
    let mut s = c.server("s1", "v1.33.5+k3s1", &["--disable", "traefik"]);
    s.start();
    let kc = c.wait_ready(&mut s);
    c.kubectl_ok(&kc, &["create", "configmap", "w", "--from-literal=a=1"]);
    let list: serde_json::Value = serde_json::from_str(&c.kubectl_ok(
        &kc,
        &["get", "--raw", "/api/v1/namespaces/default/configmaps"],
    ))
    .expect("list json");
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .expect("list resourceVersion")
        .to_string();
    c.kubectl_ok(&kc, &["label", "configmap", "w", "step=two"]);
    c.kubectl_ok(&kc, &["delete", "configmap", "w"]);
    let path = format!(
        "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=1"
    );
    let out = c.kubectl_ok(&kc, &["get", "--raw", &path]);
    let events: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("event json"))
        .collect();
    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(types, ["MODIFIED", "DELETED"], "{out}");
    assert_eq!(events[0]["object"]["metadata"]["labels"]["step"], "two");
    let rvs: Vec<u64> = events
        .iter()
        .filter_map(|e| {
            e["object"]["metadata"]["resourceVersion"]
                .as_str()?
                .parse()
                .ok()
        })
        .collect();
    assert!(
        rvs.windows(2).all(|w| w[0] < w[1]) && rvs[0] > rv.parse::<u64>().expect("rv"),
        "{rvs:?}"
    );
    s.stop();
}
