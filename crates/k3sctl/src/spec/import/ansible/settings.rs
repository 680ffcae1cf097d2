//! K3s and cluster settings carried by inventory vars (`k3s_version`, `api_endpoint`, CIDRs);
//! the rest becomes warnings.

use super::inventory::Vars;
use crate::k3s::ports::API_PORT;
use crate::spec::ChannelName;
use crate::spec::model::{ClusterConfig, K3sSpec};

pub(super) fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Some(true),
        "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

/// No release and no sources yet: the inventory's variables fill them in.
pub(super) fn unset_k3s() -> K3sSpec {
    K3sSpec {
        version: None,
        channel: None,
        channel_url: None,
        binary: None,
        airgap_images: None,
    }
}

pub(super) fn k3s_spec(vars: &Vars, warnings: &mut Vec<String>) -> K3sSpec {
    let mut spec = unset_k3s();
    let version = vars
        .get("k3s_version")
        .or_else(|| vars.get("k3s_target_version"));
    match version.map(|text| (text, text.parse())) {
        Some((_, Ok(version))) => spec.version = Some(version),
        Some((text, Err(_))) => {
            warnings.push(format!(
                "k3s_version `{text}` is not a K3s version; using channel stable"
            ));
        }
        None => {}
    }
    if spec.version.is_none() {
        spec.channel = Some(
            vars.get("k3s_channel")
                .and_then(|name| name.parse().ok())
                .unwrap_or(ChannelName::Stable),
        );
        if vars.get("k3s_channel").is_none() && version.is_none() {
            warnings.push("no k3s_version in the inventory; following channel stable".to_owned());
        }
    }
    spec
}

pub(super) fn cluster_config(vars: &Vars, warnings: &mut Vec<String>) -> ClusterConfig {
    let mut config = ClusterConfig::default();
    if vars.contains_key("token") || vars.contains_key("k3s_token") {
        warnings.push(
            "variable `token` ignored: k3sctl reads the join token from the first server"
                .to_owned(),
        );
    }
    if let Some(endpoint) = vars.get("api_endpoint") {
        let rest = endpoint.trim_start_matches("https://");
        let authority = rest.split('/').next().unwrap_or_default();
        let (address, written_port) = match authority.rsplit_once(':') {
            Some((address, port)) if !address.contains(':') => (address, Some(port)),
            _ => (authority, None),
        };
        let port = written_port.or(vars.get("api_port").map(String::as_str));
        if endpoint.contains("{{") {
            warnings.push(format!(
                "api_endpoint `{endpoint}` is a template; the default (first server) is used"
            ));
        } else if address.is_empty() {
            warnings.push(format!(
                "api_endpoint `{endpoint}` has no address; the default (first server) is used"
            ));
        } else {
            if port.is_some_and(|p| p.parse() != Ok(API_PORT)) {
                warnings.push(format!(
                    "api_endpoint `{endpoint}`: k3sctl joins on port {API_PORT} of the registration address `{address}`"
                ));
            }
            config.registration_address = Some(address.to_owned());
        }
    }
    let pick = |names: &[&str]| names.iter().find_map(|name| vars.get(*name));
    for (names, field) in [
        (&["cluster_cidr", "k3s_cluster_cidr"], "clusterCidr"),
        (&["service_cidr", "k3s_service_cidr"], "serviceCidr"),
    ] {
        let Some(text) = pick(names) else { continue };
        match text.parse() {
            Ok(cidr) if field == "clusterCidr" => config.cluster_cidr = Some(cidr),
            Ok(cidr) => config.service_cidr = Some(cidr),
            Err(_) => warnings.push(format!(
                "{} `{text}` is not a CIDR block and was ignored",
                names[0]
            )),
        }
    }
    if let Some(text) = pick(&["cluster_dns", "k3s_cluster_dns"]) {
        match text.parse() {
            Ok(ip) => config.cluster_dns = Some(ip),
            Err(_) => warnings.push(format!(
                "cluster_dns `{text}` is not an IP address and was ignored"
            )),
        }
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint_warnings(vars: &[(&str, &str)]) -> (Option<String>, Vec<String>) {
        let vars: Vars = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut warnings = Vec::new();
        let config = cluster_config(&vars, &mut warnings);
        (config.registration_address, warnings)
    }

    /// The endpoint's address becomes the registration address; a port other than K3s's is
    /// named in a warning (k3sctl always joins on the API port), written in the URL or in
    /// `api_port`.
    #[test]
    fn api_endpoint_on_another_port_is_warned_about() {
        for vars in [
            vec![("api_endpoint", "https://10.0.0.9:7443")],
            vec![("api_endpoint", "10.0.0.9"), ("api_port", "7443")],
        ] {
            let (address, warnings) = endpoint_warnings(&vars);
            assert_eq!(address.as_deref(), Some("10.0.0.9"), "{vars:?}");
            assert_eq!(warnings.len(), 1, "{vars:?}: {warnings:?}");
            assert!(
                warnings[0].contains(&format!("joins on port {API_PORT}")),
                "{warnings:?}"
            );
        }
        for vars in [
            vec![("api_endpoint", "https://10.0.0.9:6443")],
            vec![("api_endpoint", "10.0.0.9")],
            vec![("api_endpoint", "10.0.0.9"), ("api_port", "6443")],
        ] {
            let (address, warnings) = endpoint_warnings(&vars);
            assert_eq!(address.as_deref(), Some("10.0.0.9"), "{vars:?}");
            assert!(warnings.is_empty(), "{vars:?}: {warnings:?}");
        }
    }
}
