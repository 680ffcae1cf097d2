//! The resource types the stand-in serves, with what discovery says about them.

/// One resource type in one group version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceType {
    /// API group ("" for core).
    pub group: &'static str,
    /// Version.
    pub version: &'static str,
    /// Plural (URL) name.
    pub plural: &'static str,
    /// Singular name.
    pub singular: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names (`no`, `po`, ...).
    pub short: &'static [&'static str],
    /// Subresources served (`status`, `eviction`).
    pub subresources: &'static [&'static str],
}

impl ResourceType {
    /// The storage name: plural, plus `.group` outside the core group. Versions of one group share it.
    pub fn storage(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `apiVersion` of objects served in this version.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

const fn r(
    (group, version): (&'static str, &'static str),
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    subresources: &'static [&'static str],
) -> ResourceType {
    ResourceType {
        group,
        version,
        plural,
        singular,
        kind,
        namespaced,
        short,
        subresources,
    }
}

/// Every served resource.
pub static RESOURCES: &[ResourceType] = &[
    r(
        ("", "v1"),
        "namespaces",
        "namespace",
        "Namespace",
        false,
        &["ns"],
        &["status"],
    ),
    r(
        ("", "v1"),
        "nodes",
        "node",
        "Node",
        false,
        &["no"],
        &["status"],
    ),
    r(
        ("", "v1"),
        "pods",
        "pod",
        "Pod",
        true,
        &["po"],
        &["status", "eviction"],
    ),
    r(("", "v1"), "secrets", "secret", "Secret", true, &[], &[]),
    r(
        ("", "v1"),
        "configmaps",
        "configmap",
        "ConfigMap",
        true,
        &["cm"],
        &[],
    ),
    r(
        ("", "v1"),
        "services",
        "service",
        "Service",
        true,
        &["svc"],
        &["status"],
    ),
    r(
        ("", "v1"),
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
        &["sa"],
        &[],
    ),
    r(("", "v1"), "events", "event", "Event", true, &["ev"], &[]),
    r(
        ("networking.k8s.io", "v1"),
        "ingressclasses",
        "ingressclass",
        "IngressClass",
        false,
        &[],
        &[],
    ),
    r(
        ("networking.k8s.io", "v1"),
        "ingresses",
        "ingress",
        "Ingress",
        true,
        &["ing"],
        &["status"],
    ),
    r(
        ("apiextensions.k8s.io", "v1"),
        "customresourcedefinitions",
        "customresourcedefinition",
        "CustomResourceDefinition",
        false,
        &["crd", "crds"],
        &["status"],
    ),
    r(
        ("apps", "v1"),
        "deployments",
        "deployment",
        "Deployment",
        true,
        &["deploy"],
        &["status", "scale"],
    ),
    r(
        ("apps", "v1"),
        "replicasets",
        "replicaset",
        "ReplicaSet",
        true,
        &["rs"],
        &["status", "scale"],
    ),
    r(
        ("apps", "v1"),
        "daemonsets",
        "daemonset",
        "DaemonSet",
        true,
        &["ds"],
        &["status"],
    ),
    r(
        ("apps", "v1"),
        "statefulsets",
        "statefulset",
        "StatefulSet",
        true,
        &["sts"],
        &["status", "scale"],
    ),
    r(
        ("coordination.k8s.io", "v1"),
        "leases",
        "lease",
        "Lease",
        true,
        &[],
        &[],
    ),
    r(
        ("policy", "v1"),
        "poddisruptionbudgets",
        "poddisruptionbudget",
        "PodDisruptionBudget",
        true,
        &["pdb"],
        &["status"],
    ),
    r(
        ("policy", "v1beta1"),
        "poddisruptionbudgets",
        "poddisruptionbudget",
        "PodDisruptionBudget",
        true,
        &["pdb"],
        &["status"],
    ),
    r(
        ("helm.cattle.io", "v1"),
        "helmcharts",
        "helmchart",
        "HelmChart",
        true,
        &[],
        &["status"],
    ),
    r(
        ("helm.cattle.io", "v1"),
        "helmchartconfigs",
        "helmchartconfig",
        "HelmChartConfig",
        true,
        &[],
        &[],
    ),
    r(
        ("k3s.cattle.io", "v1"),
        "etcdsnapshotfiles",
        "etcdsnapshotfile",
        "ETCDSnapshotFile",
        false,
        &[],
        &["status"],
    ),
    r(
        ("k3s.cattle.io", "v1"),
        "addons",
        "addon",
        "Addon",
        true,
        &[],
        &[],
    ),
];

/// Group versions in discovery order; the first version listed for a group is preferred.
pub static GROUP_VERSIONS: &[(&str, &[&str])] = &[
    ("apps", &["v1"]),
    ("apiextensions.k8s.io", &["v1"]),
    ("coordination.k8s.io", &["v1"]),
    ("networking.k8s.io", &["v1"]),
    ("policy", &["v1", "v1beta1"]),
    ("helm.cattle.io", &["v1"]),
    ("k3s.cattle.io", &["v1"]),
];

/// Looks up a resource by group, version and plural.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The preferred version of the resource stored as `storage` (for objects created internally).
pub fn by_storage(storage: &str) -> Option<&'static ResourceType> {
    RESOURCES.iter().find(|r| r.storage() == storage)
}

/// Looks up a resource by `apiVersion` and `kind` (manifests).
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.api_version() == api_version && r.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_names_group_versions_together() {
        let v1 = find("policy", "v1", "poddisruptionbudgets").expect("v1");
        let b1 = find("policy", "v1beta1", "poddisruptionbudgets").expect("v1beta1");
        assert_eq!(v1.storage(), b1.storage());
        assert_eq!(find("", "v1", "nodes").expect("nodes").storage(), "nodes");
        assert_eq!(
            by_kind("apps/v1", "Deployment").expect("deploy").plural,
            "deployments"
        );
    }
}
