//! Rules about what the cluster produces and consumes: kubeconfig exports, upgrade policy and
//! addons.

use std::collections::HashMap;

use super::{Issue, ValidationContext};
use crate::spec::model::Cluster;
use crate::spec::taint::is_dns_label;
use crate::spec_path;

/// Kubeconfig exports: names, paths and contexts are unique and well formed.
pub(super) fn check_exports(
    cluster: &Cluster,
    context: &ValidationContext,
    issues: &mut Vec<Issue>,
) {
    let mut names = HashMap::new();
    let mut paths = HashMap::new();
    let mut contexts = HashMap::new();
    for (i, export) in cluster.spec.kubeconfigs.iter().enumerate() {
        let at = |field: &str| spec_path!["spec", "kubeconfigs", i, field];
        if !is_dns_label(&export.name) {
            issues.push(
                Issue::new(
                    at("name"),
                    format!("export name `{}` is not a DNS-1123 label", export.name),
                )
                .hint("use lowercase letters, digits and `-`"),
            );
        }
        if let Some(first) = names.insert(export.name.clone(), i) {
            issues.push(
                Issue::new(
                    at("name"),
                    format!("export name `{}` is used twice", export.name),
                )
                .hint(format!("kubeconfigs[{first}] has the same name")),
            );
        }
        if let Some(first) = paths.insert(context.resolve(&export.path), i) {
            issues.push(
                Issue::new(
                    at("path"),
                    format!("export path `{}` is used twice", export.path),
                )
                .hint(format!(
                    "kubeconfigs[{first}] writes the same file; give each export its own path"
                )),
            );
        }
        let context_name = cluster.export_context(export);
        if let Some(first) = contexts.insert(context_name.clone(), i)
            && cluster.spec.kubeconfigs.iter().any(|e| e.merge)
        {
            issues.push(
                Issue::new(
                    at("context"),
                    format!("context `{context_name}` is used twice"),
                )
                .hint(format!(
                    "kubeconfigs[{first}] has the same context; merged contexts must differ"
                )),
            );
        }
        if let Some(server) = &export.server
            && !server.starts_with("https://")
        {
            issues.push(
                Issue::new(
                    at("server"),
                    format!("server `{server}` is not an https URL"),
                )
                .hint(format!(
                    "write it as https://ADDRESS:{}",
                    crate::k3s::ports::API_PORT
                )),
            );
        }
    }
}

/// The upgrade policy.
pub(super) fn check_upgrade(cluster: &Cluster, issues: &mut Vec<Issue>) {
    let upgrade = &cluster.spec.upgrade;
    if upgrade.agent_batch_size == 0 {
        issues.push(
            Issue::new(
                spec_path!["spec", "upgrade", "agentBatchSize"],
                "agentBatchSize is 0",
            )
            .hint("at least one agent must upgrade at a time"),
        );
    }
    for (field, value) in [
        ("drainTimeout", upgrade.drain_timeout),
        ("nodeReadyTimeout", upgrade.node_ready_timeout),
    ] {
        if value.as_secs() == 0 {
            issues.push(
                Issue::new(
                    spec_path!["spec", "upgrade", field],
                    format!("{field} is zero"),
                )
                .hint("give it time, for example 5m"),
            );
        }
    }
}

/// Addon manifests and Helm values.
pub(super) fn check_addons(cluster: &Cluster, issues: &mut Vec<Issue>) {
    let addons = &cluster.spec.addons;
    let mut names = HashMap::new();
    for (i, manifest) in addons.manifests.iter().enumerate() {
        let path = spec_path!["spec", "addons", "manifests", i, "name"];
        if !is_dns_label(&manifest.name) {
            issues.push(
                Issue::new(path.clone(), format!("manifest name `{}` is not a DNS-1123 label", manifest.name))
                    .hint("it becomes the file name k3sctl-<name>.yaml: use lowercase letters, digits and `-`"),
            );
        }
        if let Some(first) = names.insert(manifest.name.clone(), i) {
            issues.push(
                Issue::new(
                    path,
                    format!("manifest name `{}` is used twice", manifest.name),
                )
                .hint(format!("manifests[{first}] has the same name")),
            );
        }
    }
    for (chart, config) in &addons.helm_chart_configs {
        let path = spec_path!["spec", "addons", "helmChartConfigs", chart, "valuesContent"];
        if let Err(error) = serde_saphyr::from_str::<serde_json::Value>(&config.values_content) {
            let reason = error
                .without_snippet()
                .render_with_formatter(&serde_saphyr::UserMessageFormatter);
            issues.push(
                Issue::new(
                    path,
                    format!("valuesContent of `{chart}` is not valid YAML: {reason}"),
                )
                .hint("write the Helm values as a YAML block, e.g. `valuesContent: |`"),
            );
        }
    }
}
