//! Namespaces every cluster has and the packaged components k3s deploys in kube-system (coredns,
//! traefik via HelmChart, local-path-provisioner, metrics-server, servicelb's svclb DaemonSet),
//! minus those named in `disable`, which are removed if they were deployed before.

use serde_json::{Value, json};

use crate::store::{ObjectStore, ResourceKey};

/// Namespaces present in every cluster.
pub const NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// The `kubernetes` Service in `default` (first address of the service CIDR, port 443).
fn kubernetes_service() -> Value {
    json!({
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"type": "ClusterIP", "clusterIP": "10.43.0.1", "clusterIPs": ["10.43.0.1"],
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]},
    })
}

/// Creates the standard namespaces (and the `kubernetes` Service) when missing.
pub fn seed_namespaces(store: &ObjectStore) {
    for ns in NAMESPACES {
        if store.get(&ResourceKey::new("namespaces", "", ns)).is_none() {
            let obj = json!({"metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
            if let Err(e) = store.create("namespaces", "", obj) {
                crate::log::error(format!("creating namespace {ns}: {}", e.message));
            }
        }
    }
    if store
        .get(&ResourceKey::new("services", "default", "kubernetes"))
        .is_none()
        && let Err(e) = store.create("services", "default", kubernetes_service())
    {
        crate::log::error(format!(
            "creating service default/kubernetes: {}",
            e.message
        ));
    }
}

fn deployment(name: &str, labels: Value, image: &str) -> Value {
    json!({
        "metadata": {"name": name, "namespace": "kube-system", "labels": labels.clone()},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels.clone()},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [{"name": name, "image": image}],
                    "priorityClassName": "system-cluster-critical",
                    "tolerations": [
                        {"key": "CriticalAddonsOnly", "operator": "Exists"},
                        {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"},
                        {"key": "node-role.kubernetes.io/master", "operator": "Exists", "effect": "NoSchedule"},
                    ],
                },
            },
        },
    })
}

/// Labels and annotations Helm puts on every object of the traefik release (k3sctl's preflight
/// looks for them: objects without them make Helm fail with "invalid ownership metadata").
fn helm_owned(name: &str, namespace: Option<&str>) -> Value {
    let mut meta = json!({
        "name": name,
        "labels": {"app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/name": "traefik",
                   "app.kubernetes.io/instance": "traefik-kube-system"},
        "annotations": {"meta.helm.sh/release-name": "traefik", "meta.helm.sh/release-namespace": "kube-system"},
    });
    if let Some(ns) = namespace {
        meta["namespace"] = json!(ns);
    }
    meta
}

fn traefik_service() -> Value {
    json!({
        "metadata": helm_owned("traefik", Some("kube-system")),
        "spec": {
            "type": "LoadBalancer",
            "clusterIP": "10.43.0.100",
            "clusterIPs": ["10.43.0.100"],
            "selector": {"app.kubernetes.io/name": "traefik", "app.kubernetes.io/instance": "traefik-kube-system"},
            "ports": [{"name": "web", "port": 80, "protocol": "TCP", "targetPort": "web"},
                      {"name": "websecure", "port": 443, "protocol": "TCP", "targetPort": "websecure"}],
        },
        "status": {"loadBalancer": {}},
    })
}

fn traefik_ingress_class() -> Value {
    let mut meta = helm_owned("traefik", None);
    meta["annotations"]["ingressclass.kubernetes.io/is-default-class"] = json!("true");
    json!({"metadata": meta, "spec": {"controller": "traefik.io/ingress-controller"}})
}

/// One packaged component: the `disable` name and the objects it consists of.
struct Component {
    disable: &'static str,
    objects: Vec<(&'static str, Value)>,
}

fn components() -> Vec<Component> {
    let svclb_labels =
        json!({"app": "svclb-traefik", "svccontroller.k3s.cattle.io/svcname": "traefik"});
    vec![
        Component {
            disable: "coredns",
            objects: vec![(
                "deployments.apps",
                deployment(
                    "coredns",
                    json!({"k8s-app": "kube-dns"}),
                    "rancher/mirrored-coredns-coredns:1.12.3",
                ),
            )],
        },
        Component {
            disable: "local-storage",
            objects: vec![(
                "deployments.apps",
                deployment(
                    "local-path-provisioner",
                    json!({"app": "local-path-provisioner"}),
                    "rancher/local-path-provisioner:v0.0.31",
                ),
            )],
        },
        Component {
            disable: "metrics-server",
            objects: vec![(
                "deployments.apps",
                deployment(
                    "metrics-server",
                    json!({"k8s-app": "metrics-server"}),
                    "rancher/mirrored-metrics-server:v0.8.0",
                ),
            )],
        },
        Component {
            disable: "traefik",
            objects: vec![
                (
                    "helmcharts.helm.cattle.io",
                    json!({"metadata": {"name": "traefik-crd", "namespace": "kube-system"}, "spec": {"chart": "https://%{KUBERNETES_API}%/static/charts/traefik-crd.tgz"}}),
                ),
                (
                    "helmcharts.helm.cattle.io",
                    json!({"metadata": {"name": "traefik", "namespace": "kube-system"}, "spec": {"chart": "https://%{KUBERNETES_API}%/static/charts/traefik.tgz", "set": {"global.systemDefaultRegistry": ""}}}),
                ),
                ("services", traefik_service()),
                ("ingressclasses.networking.k8s.io", traefik_ingress_class()),
                (
                    "deployments.apps",
                    deployment(
                        "traefik",
                        json!({"app.kubernetes.io/name": "traefik", "app.kubernetes.io/instance": "traefik-kube-system"}),
                        "rancher/mirrored-library-traefik:3.3.6",
                    ),
                ),
            ],
        },
        Component {
            disable: "servicelb",
            objects: vec![(
                "daemonsets.apps",
                json!({
                    "metadata": {"name": "svclb-traefik", "namespace": "kube-system", "labels": svclb_labels.clone()},
                    "spec": {"selector": {"matchLabels": svclb_labels.clone()}, "template": {"metadata": {"labels": svclb_labels},
                        "spec": {"containers": [{"name": "lb-tcp-80", "image": "rancher/klipper-lb:v0.4.13"}],
                                 "tolerations": [{"operator": "Exists", "effect": "NoSchedule"}, {"key": "CriticalAddonsOnly", "operator": "Exists"}]}}},
                }),
            )],
        },
    ]
}

/// Deploys enabled components that are missing and removes disabled ones.
pub fn reconcile(store: &ObjectStore, disabled: &[String]) {
    let traefik_off = disabled.iter().any(|d| d == "traefik");
    for c in components() {
        let off =
            disabled.iter().any(|d| d == c.disable) || (c.disable == "servicelb" && traefik_off);
        for (resource, obj) in c.objects {
            let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
            let ns = obj["metadata"]["namespace"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let key = ResourceKey::new(resource, &ns, &name);
            let exists = store.get(&key).is_some();
            if off && exists {
                if store.delete(&key).is_ok() {
                    crate::log::info(format!("Removed disabled component {resource}/{name}"));
                }
            } else if !off
                && !exists
                && let Err(e) = store.create(resource, &ns, obj)
            {
                crate::log::error(format!("deploying {resource}/{name}: {}", e.message));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::FileDatastore;

    #[test]
    fn disable_removes_components() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ObjectStore::open(Box::new(FileDatastore::open(dir.path()).expect("ds")))
            .expect("store");
        seed_namespaces(&store);
        reconcile(&store, &[]);
        let traefik = ResourceKey::new("deployments.apps", "kube-system", "traefik");
        assert!(store.get(&traefik).is_some());
        let class = ResourceKey::new("ingressclasses.networking.k8s.io", "", "traefik");
        let class_obj = store.get(&class).expect("traefik IngressClass");
        assert_eq!(
            class_obj["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "Helm"
        );
        assert_eq!(
            class_obj["metadata"]["annotations"]["meta.helm.sh/release-name"],
            "traefik"
        );
        let svc = store
            .get(&ResourceKey::new("services", "kube-system", "traefik"))
            .expect("service");
        assert_eq!(svc["spec"]["type"], "LoadBalancer");
        assert!(
            store
                .get(&ResourceKey::new(
                    "helmcharts.helm.cattle.io",
                    "kube-system",
                    "traefik"
                ))
                .is_some()
        );
        reconcile(
            &store,
            &["traefik".to_string(), "metrics-server".to_string()],
        );
        assert!(store.get(&traefik).is_none());
        assert!(
            store.get(&class).is_none(),
            "the IngressClass goes with traefik"
        );
        assert!(
            store
                .get(&ResourceKey::new(
                    "daemonsets.apps",
                    "kube-system",
                    "svclb-traefik"
                ))
                .is_none(),
            "servicelb goes with traefik"
        );
        assert!(
            store
                .get(&ResourceKey::new(
                    "deployments.apps",
                    "kube-system",
                    "metrics-server"
                ))
                .is_none()
        );
        assert!(
            store
                .get(&ResourceKey::new(
                    "deployments.apps",
                    "kube-system",
                    "coredns"
                ))
                .is_some()
        );
    }
}
