//! The table of semantic rules and what each reads, so that on a spec with structural errors a
//! rule runs only when everything it reads is as the user wrote it.

use super::{Issue, ValidationContext, files, hosts, k3s, network, outputs, registries};
use crate::spec::model::Cluster;
use crate::spec::path::{Segment, SpecPath};
use crate::spec::taint::is_dns_label;
use crate::spec_path;

/// One semantic rule.
pub(super) struct Rule {
    /// Document paths the rule reads beyond the node it reports at, `[*]` for any index. Empty
    /// when every issue of the rule depends only on the node it is reported at (and below it):
    /// dropping issues at or around unreliable paths covers those.
    pub(super) reads: &'static [&'static str],
    /// Appends the rule's issues.
    pub(super) run: fn(&Cluster, &ValidationContext, &mut Vec<Issue>),
}

/// Every rule, in reporting order.
pub(super) const RULES: &[Rule] = &[
    Rule {
        reads: &[],
        run: |cluster, _, issues| check_cluster_name(cluster, issues),
    },
    Rule {
        reads: &["spec.hosts[*].role"],
        run: |cluster, _, issues| hosts::check_roles(&cluster.spec.hosts, issues),
    },
    Rule {
        reads: &[
            "spec.hosts[*].name",
            "spec.hosts[*].address",
            "spec.hosts[*].publicAddress",
            "spec.hosts[*].privateAddress",
        ],
        run: |cluster, _, issues| {
            hosts::check_unique_names_and_addresses(&cluster.spec.hosts, issues)
        },
    },
    Rule {
        reads: &[
            "spec.hosts[*].role",
            "spec.hosts[*].group",
            "spec.hosts[*].name",
        ],
        run: |cluster, _, issues| hosts::check_groups(cluster, issues),
    },
    Rule {
        reads: &["spec.hosts[*].role", "spec.hosts[*].group"],
        run: |cluster, _, issues| hosts::check_group_settings(cluster, issues),
    },
    Rule {
        reads: &[],
        run: |cluster, _, issues| hosts::check_all_labels(cluster, issues),
    },
    Rule {
        reads: &[
            "spec.hosts[*].name",
            "spec.hosts[*].ssh",
            "spec.hosts[*].pct",
            "spec.hosts[*].lxd",
            "spec.hosts[*].local",
            "spec.proxmoxHosts[*].name",
        ],
        run: |cluster, _, issues| hosts::check_transports(cluster, issues),
    },
    Rule {
        reads: &["spec.hosts[*].role", "spec.hosts[*].name"],
        run: |cluster, _, issues| hosts::check_host_configs(cluster, issues),
    },
    Rule {
        reads: &["spec.proxmoxHosts", "spec.hosts[*].pct"],
        run: |cluster, _, issues| hosts::check_proxmox_hosts(cluster, issues),
    },
    Rule {
        reads: &["spec.k3s"],
        run: |cluster, _, issues| k3s::check(cluster, issues),
    },
    Rule {
        reads: &[
            "spec.cluster.clusterCidr",
            "spec.cluster.serviceCidr",
            "spec.cluster.clusterDns",
        ],
        run: |cluster, _, issues| network::check_networks(cluster, issues),
    },
    Rule {
        reads: &[
            "spec.cluster.clusterCidr",
            "spec.cluster.serviceCidr",
            "spec.hosts[*].address",
            "spec.hosts[*].publicAddress",
            "spec.hosts[*].privateAddress",
        ],
        run: |cluster, _, issues| network::check_host_addresses(cluster, issues),
    },
    Rule {
        reads: &[],
        run: |cluster, _, issues| network::check_values(cluster, issues),
    },
    Rule {
        reads: &["spec.kubeconfigs", "metadata.name"],
        run: outputs::check_exports,
    },
    Rule {
        reads: &[],
        run: |cluster, _, issues| outputs::check_upgrade(cluster, issues),
    },
    Rule {
        reads: &["spec.addons.manifests[*].name"],
        run: |cluster, _, issues| outputs::check_addons(cluster, issues),
    },
    Rule {
        reads: &[],
        run: |cluster, _, issues| registries::check(cluster, issues),
    },
    Rule {
        reads: &[],
        run: files::check,
    },
];

fn check_cluster_name(cluster: &Cluster, issues: &mut Vec<Issue>) {
    let name = &cluster.metadata.name;
    if !is_dns_label(name) {
        issues.push(
            Issue::new(spec_path!["metadata", "name"], format!("cluster name `{name}` is not a DNS-1123 label"))
                .hint("use 1-63 lowercase letters, digits and `-`, starting and ending with a letter or digit"),
        );
    }
}

impl Rule {
    /// Whether the rule reads any of the `unreliable` paths.
    pub(super) fn reads_any(&self, unreliable: &[SpecPath]) -> bool {
        self.reads.iter().any(|pattern| {
            unreliable
                .iter()
                .any(|path| pattern_overlaps(pattern, path))
        })
    }
}

/// Whether one of `a` and `b` lies inside the other (or they are the same node).
pub(super) fn related(a: &SpecPath, b: &SpecPath) -> bool {
    a.segments().iter().zip(b.segments()).all(|(x, y)| x == y)
}

/// Like [`related`], for a dotted pattern where `[*]` matches any index.
fn pattern_overlaps(pattern: &str, path: &SpecPath) -> bool {
    let steps = pattern.split('.').flat_map(|part| {
        let (key, rest) = part.split_once('[').unwrap_or((part, ""));
        std::iter::once(Some(key)).chain((!rest.is_empty()).then_some(None))
    });
    steps
        .zip(path.segments())
        .all(|(step, segment)| match (step, segment) {
            (Some(key), Segment::Key(written)) => key == written,
            (None, Segment::Index(_)) => true,
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_overlap_ancestors_and_descendants() {
        let role = spec_path!["spec", "hosts", 3usize, "role"];
        assert!(pattern_overlaps("spec.hosts[*].role", &role));
        assert!(pattern_overlaps("spec.hosts", &role));
        assert!(pattern_overlaps(
            "spec.hosts[*].role",
            &spec_path!["spec", "hosts", 1usize]
        ));
        assert!(!pattern_overlaps("spec.hosts[*].name", &role));
        assert!(!pattern_overlaps("spec.k3s", &role));
        assert!(related(&spec_path!["spec", "hosts"], &role));
        assert!(!related(&spec_path!["spec", "hosts", 2usize], &role));
    }
}
