//! The kube edge against the K3s stand-in: a k3s-sim server and two agents as local processes,
//! reached through an SSH tunnel over a real loopback sshd, as k3sctl reaches a private API.

#[path = "support/sim.rs"]
mod sim;
#[path = "support/sshd.rs"]
mod sshd;

use std::time::Duration;

use k3sctl::host::{SshTarget, SshTransport};
use k3sctl::kube::{
    self as k, CORDONED_FOR, Client, CordonOutcome, DrainOptions, DrainRules, KubeError, Poll,
    SkipReason, UncordonOutcome,
};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use sim::SimNode;

const VERSION: &str = "v1.33.5+k3s1";

async fn create<K>(client: &Client, v: serde_json::Value)
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), "default");
    let obj: K = serde_json::from_value(v).expect("object");
    api.create(&PostParams::default(), &obj)
        .await
        .expect("create");
}

/// A cordon done by a person (plain patch, no k3sctl annotation).
async fn person_cordon(client: &Client, node: &str, on: bool) {
    let api: Api<Node> = Api::all(client.clone());
    api.patch(
        node,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"unschedulable": on}})),
    )
    .await
    .expect("patch");
}

async fn web_pods_on(client: &Client, node: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let lp = ListParams::default()
        .labels("app=web")
        .fields(&format!("spec.nodeName={node}"));
    api.list(&lp)
        .await
        .expect("list")
        .items
        .into_iter()
        .filter(|p| {
            p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                && p.metadata.deletion_timestamp.is_none()
        })
        .collect()
}

async fn wait_web_pods(client: &Client, node: &str, n: usize) {
    k::poll_until(
        &format!("{n} web pods running on {node}"),
        Poll::new(Duration::from_millis(200), Duration::from_secs(30)),
        || async {
            let count = web_pods_on(client, node).await.len();
            Ok(if count == n {
                Ok(())
            } else {
                Err(format!("{count} running"))
            })
        },
    )
    .await
    .expect("pods placed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_cordon_and_drain_through_an_ssh_tunnel_against_the_stand_in() {
    k::install_crypto_provider();
    let bin = sim::sim_binary();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let server_args: Vec<String> = [
        "server",
        "--node-name",
        "s1",
        "--https-listen-port",
        &port.to_string(),
        "--bind-address",
        "127.0.0.1",
        "--node-ip",
        "127.0.0.1",
        "--disable",
        "traefik,metrics-server,local-storage,coredns",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    let mut server = SimNode::start(&bin, dir.path().join("s1"), &server_args);
    let kubeconfig_path = server.wait_file("/etc/rancher/k3s/k3s.yaml", Duration::from_secs(30));
    let token_path = server.wait_file("/var/lib/rancher/k3s/server/token", Duration::from_secs(30));
    let token = fs_err::read_to_string(token_path).expect("token");
    let agents: Vec<SimNode> = ["a1", "a2"]
        .iter()
        .map(|name| {
            let args: Vec<String> = [
                "agent",
                "--server",
                &format!("https://127.0.0.1:{port}"),
                "--token",
                token.trim(),
                "--node-name",
                name,
                "--node-ip",
                "127.0.0.1",
            ]
            .iter()
            .map(ToString::to_string)
            .collect();
            SimNode::start(&bin, dir.path().join(name), &args)
        })
        .collect();

    // Reach the API the way apply does: kubeconfig content + tunnel over the server's ssh.
    let sshd = sshd::Sshd::start();
    let kh = sshd.write_known_hosts("known_hosts", &sshd.known_hosts_line());
    let mut target = SshTarget::new("s1", "127.0.0.1");
    target.user = Some("root".into());
    target.port = Some(sshd.port);
    target.identity_file = Some(sshd.identity());
    target.known_hosts_file = Some(kh);
    target.config_file = Some("/dev/null".into());
    let ssh = SshTransport::connect(target).await.expect("ssh");
    let yaml = fs_err::read_to_string(&kubeconfig_path).expect("kubeconfig");
    let conn = k::connect_through(&ssh, &yaml, port)
        .await
        .expect("connect");
    assert_ne!(
        conn.tunnel.as_ref().expect("tunnel").local_addr().port(),
        port
    );
    let client = conn.client.clone();

    let fast = Poll::new(Duration::from_millis(200), Duration::from_secs(30));
    for name in ["s1", "a1", "a2"] {
        let node = k::wait_node_ready(&client, name, Some(VERSION), fast)
            .await
            .expect("node ready");
        assert_eq!(node.kubelet_version, VERSION);
    }
    let nodes = k::list_nodes(&client).await.expect("list");
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["a1", "a2", "s1"]);
    assert!(nodes.iter().all(|n| n.ready && !n.unschedulable));
    assert!(k::readyz(&client).await.expect("readyz"));
    let err = k::wait_node_ready(
        &client,
        "a1",
        Some("v1.34.3+k3s1"),
        Poll::new(Duration::from_millis(100), Duration::from_millis(500)),
    )
    .await
    .expect_err("wrong version never comes");
    let msg = err.to_string();
    assert!(
        msg.contains("node a1 to be Ready with kubelet v1.34.3+k3s1"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("last seen: Ready=True kubelet {VERSION}")),
        "{msg}"
    );

    // Two web replicas (emptyDir, PDB minAvailable 1) on a1, a DaemonSet everywhere; s1 stays
    // cordoned by a person.
    person_cordon(&client, "s1", true).await;
    person_cordon(&client, "a2", true).await;
    create::<Deployment>(
        &client,
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
              "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}],
                         "volumes": [{"name": "scratch", "emptyDir": {}}]}}}
        }),
    )
    .await;
    create::<PodDisruptionBudget>(
        &client,
        json!({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}
        }),
    )
    .await;
    create::<DaemonSet>(
        &client,
        json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
              "template": {"metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "agent", "image": "busybox"}]}}}
        }),
    )
    .await;
    wait_web_pods(&client, "a1", 2).await;
    let ds_pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    k::poll_until("the DaemonSet pod on a1", fast, || async {
        let lp = ListParams::default()
            .labels("app=agent")
            .fields("spec.nodeName=a1");
        let n = ds_pods
            .list(&lp)
            .await
            .map_err(|e| KubeError::api("list", e))?
            .items
            .len();
        Ok(if n == 1 {
            Ok(())
        } else {
            Err(format!("{n} pods"))
        })
    })
    .await
    .expect("DaemonSet pod placed");
    person_cordon(&client, "a2", false).await;

    // Cordon: ours on a1, a person's on s1 is left alone.
    let reason = "upgrade to v1.34.3+k3s1";
    assert_eq!(
        k::cordon(&client, "a1", reason).await.expect("cordon"),
        CordonOutcome::Cordoned
    );
    assert_eq!(
        k::cordon(&client, "a1", reason).await.expect("again"),
        CordonOutcome::AlreadyOurs
    );
    assert_eq!(
        k::cordon(&client, "s1", reason).await.expect("cordon s1"),
        CordonOutcome::CordonedByOthers
    );
    let a1 = k::get_node(&client, "a1").await.expect("get").expect("a1");
    assert!(a1.unschedulable);
    assert_eq!(
        a1.annotations.get(CORDONED_FOR).map(String::as_str),
        Some(reason)
    );
    let s1 = k::get_node(&client, "s1").await.expect("get").expect("s1");
    assert!(!s1.annotations.contains_key(CORDONED_FOR));

    // Without deleteEmptyDirData the drain refuses before evicting anything.
    let refused = k::drain_node(&client, "a1", &DrainOptions::default())
        .await
        .expect_err("emptyDir blocks");
    assert!(
        matches!(refused, KubeError::DrainRefused { .. }),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("deleteEmptyDirData: true"),
        "{refused}"
    );
    assert_eq!(web_pods_on(&client, "a1").await.len(), 2, "nothing evicted");

    // The real drain: the PDB lets one pod go, refuses the second (429) until the replacement
    // runs on a2, and the DaemonSet pod stays.
    let opts = DrainOptions {
        rules: DrainRules {
            delete_emptydir_data: true,
            force: false,
        },
        timeout: Duration::from_secs(60),
        interval: Duration::from_millis(300),
        ..DrainOptions::default()
    };
    let report = k::drain_node(&client, "a1", &opts).await.expect("drain");
    assert_eq!(report.plan.evict.len(), 2);
    assert!(
        report
            .plan
            .skip
            .iter()
            .any(|(p, r)| p.name.starts_with("agent") && *r == SkipReason::DaemonSet)
    );
    assert!(!report.bypassed_pdbs);
    assert!(web_pods_on(&client, "a1").await.is_empty());
    let agent_pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let on_a1 = agent_pods
        .list(
            &ListParams::default()
                .labels("app=agent")
                .fields("spec.nodeName=a1"),
        )
        .await
        .expect("list");
    assert_eq!(on_a1.items.len(), 1, "DaemonSet pod not evicted");
    wait_web_pods(&client, "a2", 2).await;

    // A PDB that can never be satisfied: the drain of a2 times out naming it.
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "default");
    pdbs.delete("web", &DeleteParams::default())
        .await
        .expect("delete pdb");
    create::<PodDisruptionBudget>(
        &client,
        json!({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "web-strict", "namespace": "default"},
            "spec": {"minAvailable": 3, "selector": {"matchLabels": {"app": "web"}}}
        }),
    )
    .await;
    assert_eq!(
        k::cordon(&client, "a2", reason).await.expect("cordon a2"),
        CordonOutcome::Cordoned
    );
    let short = DrainOptions {
        timeout: Duration::from_secs(3),
        ..opts
    };
    let started = std::time::Instant::now();
    let blocked = k::drain_node(&client, "a2", &short)
        .await
        .expect_err("PDB blocks");
    // The drain timeout bounds the whole drain (no client-side 429 retries hiding inside a call).
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let msg = blocked.to_string();
    assert!(
        matches!(blocked, KubeError::EvictionBlocked { .. }),
        "{msg}"
    );
    assert!(
        msg.contains("PodDisruptionBudget default/web-strict (minAvailable 3"),
        "{msg}"
    );
    assert!(msg.contains("disruption budget"), "{msg}");
    assert_eq!(
        web_pods_on(&client, "a2").await.len(),
        2,
        "nothing evicted while blocked"
    );

    // disableEviction deletes instead and goes through.
    let delete = DrainOptions {
        disable_eviction: true,
        ..opts
    };
    let report = k::drain_node(&client, "a2", &delete)
        .await
        .expect("delete drain");
    assert!(report.bypassed_pdbs);
    assert!(web_pods_on(&client, "a2").await.is_empty());

    // Uncordon: only k3sctl's cordons are lifted.
    assert_eq!(
        k::uncordon_if_ours(&client, "a1").await.expect("a1"),
        UncordonOutcome::Uncordoned
    );
    assert_eq!(
        k::uncordon_if_ours(&client, "a2").await.expect("a2"),
        UncordonOutcome::Uncordoned
    );
    assert_eq!(
        k::uncordon_if_ours(&client, "s1").await.expect("s1"),
        UncordonOutcome::LeftCordoned
    );
    let after = k::list_nodes(&client).await.expect("list");
    let cordoned: Vec<&str> = after
        .iter()
        .filter(|n| n.unschedulable)
        .map(|n| n.name.as_str())
        .collect();
    assert_eq!(cordoned, ["s1"]);
    assert!(
        after
            .iter()
            .all(|n| !n.annotations.contains_key(CORDONED_FOR))
    );
    objects_by_kind(&client).await;
    drop(agents);
    drop(server);
}

/// Objects named by apiVersion and kind (the manifests' drift): read, created and put back by
/// server-side apply of the declared fields, a field nobody declared kept, an unknown kind
/// absent.
async fn objects_by_kind(client: &Client) {
    let declared = json!({"apiVersion": "helm.cattle.io/v1", "kind": "HelmChartConfig",
        "metadata": {"name": "traefik", "namespace": "kube-system"},
        "spec": {"valuesContent": "a: 1\n"}});
    let read = || {
        k::read_object(
            client,
            "helm.cattle.io/v1",
            "HelmChartConfig",
            Some("kube-system"),
            "traefik",
        )
    };
    assert_eq!(read().await.expect("read"), None, "not there yet");
    k::apply_object(client, &declared).await.expect("create");
    let live = read().await.expect("read").expect("created");
    assert_eq!(live["spec"]["valuesContent"], "a: 1\n");
    // A person edits the values and adds an annotation of their own.
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        "kube-system",
        &kube::discovery::ApiResource::from_gvk_with_plural(
            &kube::core::GroupVersionKind::gvk("helm.cattle.io", "v1", "HelmChartConfig"),
            "helmchartconfigs",
        ),
    );
    api.patch(
        "traefik",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"note": "mine"}},
            "spec": {"valuesContent": "edited"}})),
    )
    .await
    .expect("edit");
    k::apply_object(client, &declared).await.expect("put back");
    let live = read().await.expect("read").expect("there");
    assert_eq!(
        live["spec"]["valuesContent"], "a: 1\n",
        "declared value back"
    );
    assert_eq!(
        live["metadata"]["annotations"]["note"], "mine",
        "a person's field kept"
    );
    // A core kind without a namespace is looked up in `default`; a kind the API does not serve
    // is absent, and applying it says so.
    k::apply_object(
        client,
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1"},
                "data": {"k": "v"}}),
    )
    .await
    .expect("configmap");
    let cm = k::read_object(client, "v1", "ConfigMap", None, "c1")
        .await
        .expect("read")
        .expect("in default");
    assert_eq!(cm["data"]["k"], "v");
    assert_eq!(
        k::read_object(client, "example.com/v1", "Widget", None, "w")
            .await
            .expect("read"),
        None
    );
    let err = k::apply_object(
        client,
        &json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}),
    )
    .await
    .expect_err("unknown kind");
    assert!(err.to_string().contains("does not serve Widget"), "{err}");
}
