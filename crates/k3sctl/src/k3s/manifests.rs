//! Manifests k3sctl places in `/var/lib/rancher/k3s/server/manifests` (applied by K3s's deploy
//! controller): HelmChartConfig overrides of packaged charts and files from the spec.

use serde_json::json;

use super::config::MANAGED_HEADER;
use super::yaml::{YamlError, to_yaml_blocks};

/// The auto-deploy directory on servers.
pub const MANIFESTS_DIR: &str = concat!(super::ports::server_dir!(), "/manifests");

/// Path of a spec manifest named `name`.
pub fn manifest_path(name: &str) -> String {
    format!("{MANIFESTS_DIR}/k3sctl-{name}.yaml")
}

/// Path of the HelmChartConfig override for a packaged chart.
pub fn helm_chart_config_path(chart: &str) -> String {
    format!("{MANIFESTS_DIR}/k3sctl-{chart}-config.yaml")
}

/// Renders a HelmChartConfig adding `values_content` to the packaged chart `chart`.
pub fn render_helm_chart_config(chart: &str, values_content: &str) -> Result<String, YamlError> {
    let doc = json!({
        "apiVersion": "helm.cattle.io/v1",
        "kind": "HelmChartConfig",
        "metadata": {"name": chart, "namespace": "kube-system"},
        "spec": {"valuesContent": values_content},
    });
    Ok(format!("{MANAGED_HEADER}{}", to_yaml_blocks(&doc)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helm_chart_config_snapshot_and_round_trip() {
        let values = "ports:\n  web:\n    expose: true\n";
        let text = render_helm_chart_config("traefik", values).expect("renders");
        let back: serde_json::Value = serde_saphyr::from_str(&text).expect("valid YAML");
        assert_eq!(back["spec"]["valuesContent"], values);
        assert_eq!(back["metadata"]["namespace"], "kube-system");
        insta::assert_snapshot!(text);
        assert_eq!(
            helm_chart_config_path("traefik"),
            "/var/lib/rancher/k3s/server/manifests/k3sctl-traefik-config.yaml"
        );
    }
}
