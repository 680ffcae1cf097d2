//! The desired state of each host, from the spec plus what ops resolved outside it (registry
//! credentials, manifest file contents). Pure.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::k3s::config::{
    CONFIG_PATH, ClusterSettings, ConfigError, NodeConfig, NodeRole, render_config,
};
use crate::k3s::manifests::{helm_chart_config_path, manifest_path, render_helm_chart_config};
use crate::k3s::registries as reg;
use crate::k3s::registries::{REGISTRIES_PATH, Registries};
use crate::k3s::unit::{ENV_FILE_MODE, UNIT_FILE_MODE, env_path, render_unit, unit_path};
use crate::k3s::yaml::YamlError;
use crate::plan::{DesiredFile, DesiredHost, FileContent};
use crate::secret::Secret;
use crate::spec::{Cluster, Host, Role, ValueRef, https_url};

/// Inputs resolved outside the spec.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    /// Registries with credentials read from their references.
    pub registries: Registries,
    /// Spec manifests: (name, file content).
    pub manifests: Vec<(String, String)>,
    /// The airgap images tarball on the operator's machine, with its sha256.
    pub airgap_images: Option<(std::path::PathBuf, String)>,
}

pub use crate::k3s::ports::AGENT_IMAGES_DIR;

/// Why a host's files could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum DesiredError {
    /// config.yaml.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Another YAML file.
    #[error(transparent)]
    Yaml(#[from] YamlError),
}

/// A registry credential reference could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("spec.registries.configs.{registry}.auth.{field}: {reason}")]
pub struct CredentialError {
    /// Registry host.
    pub registry: String,
    /// `username`, `password` or `token`.
    pub field: &'static str,
    /// What went wrong (names the variable or file, never the value).
    pub reason: String,
}

/// Maps the spec's registries to the renderer's input, reading every credential reference with
/// `read` (environment variable or file on the operator's machine).
pub fn resolve_registries(
    spec: &crate::spec::Registries,
    read: &dyn Fn(&ValueRef) -> Result<Secret, String>,
) -> Result<Registries, CredentialError> {
    let mut out = Registries::default();
    for (name, mirror) in &spec.mirrors {
        out.mirrors.insert(
            name.clone(),
            reg::Mirror {
                endpoints: mirror.endpoints.clone(),
                rewrite: mirror.rewrite.clone(),
            },
        );
    }
    for (host, config) in &spec.configs {
        let auth = match &config.auth {
            Some(auth) => {
                let mut resolved = reg::RegistryAuth::default();
                for (field, value) in auth.refs() {
                    let secret = read(value).map_err(|reason| CredentialError {
                        registry: host.clone(),
                        field,
                        reason,
                    })?;
                    match field {
                        "username" => resolved.username = Some(secret),
                        "password" => resolved.password = Some(secret),
                        _ => resolved.token = Some(secret),
                    }
                }
                Some(resolved)
            }
            None => None,
        };
        let tls = config.tls.as_ref().map(|t| reg::RegistryTls {
            ca_file: t.ca_file.clone(),
            cert_file: t.cert_file.clone(),
            key_file: t.key_file.clone(),
            insecure_skip_verify: t.insecure_skip_verify.unwrap_or(false),
        });
        out.configs
            .insert(host.clone(), reg::RegistryConfig { auth, tls });
    }
    Ok(out)
}

fn role(role: Role) -> NodeRole {
    match role {
        Role::Server => NodeRole::Server,
        Role::Agent => NodeRole::Agent,
    }
}

/// K3s's `node-ip`: the private address, else the address, when it is an IP. K3s refuses a name
/// there (`invalid node-ip: invalid ip format`), so a host reached by DNS name (as Ansible
/// inventories with only `node_name` give) leaves it out and K3s uses the address of its
/// default-route interface.
fn node_ip(host: &Host) -> Option<String> {
    Some(
        host.private_address
            .clone()
            .unwrap_or_else(|| host.address.clone()),
    )
    .filter(|a| a.parse::<IpAddr>().is_ok())
}

fn node_config(cluster: &Cluster, host: &Host) -> NodeConfig {
    let c = &cluster.spec.cluster;
    let node_role = role(host.role);
    NodeConfig {
        role: node_role,
        node_name: host.name.clone(),
        node_ip: node_ip(host),
        node_external_ip: host
            .public_address
            .clone()
            .filter(|a| a.parse::<IpAddr>().is_ok()),
        labels: host.labels.clone(),
        taints: host.taints.iter().map(ToString::to_string).collect(),
        cluster: ClusterSettings {
            tls_sans: server_tls_sans(cluster),
            cluster_cidr: c.cluster_cidr.map(|x| x.to_string()),
            service_cidr: c.service_cidr.map(|x| x.to_string()),
            cluster_dns: c.cluster_dns.map(|x| x.to_string()),
            cluster_domain: c.cluster_domain.clone(),
            disable: c.disable.clone(),
            write_kubeconfig_mode: Some("0600".into()),
        },
        extra: {
            let mut extra = match node_role {
                NodeRole::Server => c.server_config.clone(),
                NodeRole::Agent => c.agent_config.clone(),
            };
            extra.extend(host.config.clone());
            extra
        },
    }
}

/// `cluster.tlsSans` plus the registration address (joining servers and agents verify the
/// serving certificate against it), once.
fn server_tls_sans(cluster: &Cluster) -> Vec<String> {
    let mut sans = cluster.spec.cluster.tls_sans.clone();
    if let Some(address) = cluster.registration_address()
        && !sans.iter().any(|san| san == address)
    {
        sans.push(address.to_owned());
    }
    sans
}

/// The env file of a node in its lasting form: agents and the servers of a multi-server
/// cluster join through the registration address; a single server starts its own cluster.
/// The bootstrap form (`K3S_CLUSTER_INIT`) is chosen by the planner, only while it is needed.
/// `token rotate` rewrites it with the new token.
pub fn lasting_env(cluster: &Cluster, host: &Host) -> FileContent {
    let joins = host.role == Role::Agent || cluster.is_ha();
    FileContent::Env {
        url: joins.then(|| join_url(cluster, host)).flatten(),
        with_token: joins,
        cluster_init: false,
    }
}

/// The URL a host joins through: the registration address, except for the server that is
/// itself the registration address (the default: the first server), which joins through the
/// next server when it is rebuilt (joining through itself cannot work).
fn join_url(cluster: &Cluster, host: &Host) -> Option<String> {
    let address = cluster.registration_address()?;
    let own = [Some(&host.address), host.private_address.as_ref()]
        .into_iter()
        .flatten()
        .any(|a| a == address);
    if host.role == Role::Server && own {
        return cluster
            .servers()
            .find(|other| other.name != host.name)
            .map(|other| https_url(&other.address, crate::k3s::ports::API_PORT));
    }
    cluster.api_endpoint()
}

/// The critical configuration values every server gets (the first server's rendering; they
/// come only from cluster-wide fields, validation refuses them per host), with K3s's defaults
/// for the networks and domain when the spec leaves them out.
pub fn critical_values(cluster: &Cluster, hosts: &[DesiredHost]) -> BTreeMap<String, String> {
    let mut values = hosts
        .iter()
        .find(|h| h.role == NodeRole::Server)
        .and_then(|h| h.files.iter().find(|f| f.path == CONFIG_PATH))
        .and_then(|f| match &f.content {
            FileContent::Plain(text) => Some(crate::k3s::critical::critical_values(text)),
            _ => None,
        })
        .unwrap_or_default();
    let c = &cluster.spec.cluster;
    for (key, value) in [
        ("cluster-cidr", c.cluster_cidr().to_string()),
        ("service-cidr", c.service_cidr().to_string()),
        ("cluster-dns", c.cluster_dns().to_string()),
        ("cluster-domain", c.cluster_domain().to_owned()),
    ] {
        values.entry(key.to_owned()).or_insert(value);
    }
    values
}

/// The desired hosts: the first server first, then the other servers, then the agents, each in
/// spec order.
pub fn desired_hosts(
    cluster: &Cluster,
    resolved: &Resolved,
) -> Result<Vec<DesiredHost>, DesiredError> {
    let first_name = cluster.first_server().map(|h| h.name.clone());
    let registries = resolved.registries.render()?;
    let mut hosts = Vec::new();
    let is_first = |h: &&Host| Some(&h.name) == first_name.as_ref();
    let ordered = cluster
        .spec
        .hosts
        .iter()
        .filter(is_first)
        .chain(cluster.servers().filter(|h| !is_first(h)))
        .chain(cluster.agents());
    for host in ordered {
        let first = Some(&host.name) == first_name.as_ref();
        let node_role = role(host.role);
        let mut files = Vec::new();
        if let Some(reg) = &registries {
            files.push(DesiredFile {
                path: REGISTRIES_PATH.into(),
                mode: if reg.has_credentials { 0o600 } else { 0o644 },
                content: if reg.has_credentials {
                    FileContent::Secret {
                        content: reg.content.clone(),
                        masked: reg.masked.clone(),
                    }
                } else {
                    FileContent::Plain(reg.masked.clone())
                },
                restarts: true,
            });
        }
        if let Some((local, sha256)) = &resolved.airgap_images {
            let name = local
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            files.push(DesiredFile {
                path: format!("{AGENT_IMAGES_DIR}/{name}"),
                mode: 0o644,
                content: FileContent::LocalFile {
                    local: local.clone(),
                    sha256: sha256.clone(),
                },
                restarts: true,
            });
        }
        files.push(DesiredFile {
            path: CONFIG_PATH.into(),
            mode: 0o600,
            content: FileContent::Plain(render_config(&node_config(cluster, host))?),
            restarts: true,
        });
        if node_role == NodeRole::Server {
            for (chart, config) in &cluster.spec.addons.helm_chart_configs {
                files.push(DesiredFile {
                    path: helm_chart_config_path(chart),
                    mode: 0o600,
                    content: FileContent::Plain(render_helm_chart_config(
                        chart,
                        &config.values_content,
                    )?),
                    restarts: false,
                });
            }
            for (name, content) in &resolved.manifests {
                files.push(DesiredFile {
                    path: manifest_path(name),
                    mode: 0o600,
                    content: FileContent::Plain(content.clone()),
                    restarts: false,
                });
            }
        }
        files.push(DesiredFile {
            path: env_path(node_role),
            mode: ENV_FILE_MODE,
            content: lasting_env(cluster, host),
            // A server reads K3S_URL and K3S_TOKEN only to join (K3s ignores them once its
            // datastore exists): a change alone needs no restart. Agents use them always.
            restarts: !(node_role == NodeRole::Server && cluster.is_ha()),
        });
        files.push(DesiredFile {
            path: unit_path(node_role),
            mode: UNIT_FILE_MODE,
            content: FileContent::Plain(render_unit(node_role)),
            restarts: true,
        });
        hosts.push(DesiredHost {
            name: host.name.clone(),
            role: node_role,
            group: (node_role == NodeRole::Agent)
                .then(|| host.group.clone())
                .flatten(),
            first_server: first,
            files,
            taints: host.taints.iter().map(ToString::to_string).collect(),
            labels: host.labels.clone(),
        });
    }
    Ok(hosts)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"
apiVersion: k3sctl.io/v1alpha1
kind: Cluster
metadata: {name: lab}
spec:
  hosts:
    - {name: a1, address: 10.0.0.3, role: agent, group: g1, labels: {zone: a}, taints: ["dedicated=infra:NoSchedule"]}
    - {name: s1, address: 10.0.0.2, publicAddress: 1.2.3.4, role: server}
  k3s: {version: v1.33.5+k3s1}
  cluster:
    tlsSans: [1.2.3.4]
    disable: [servicelb]
    agentConfig: {kubelet-arg: [max-pods=150]}
  registries:
    mirrors:
      docker.io: {endpoints: ["http://mirror:5000"]}
  addons:
    helmChartConfigs:
      traefik: {valuesContent: "a: 1\n"}
"#;

    #[test]
    fn first_server_first_and_files_in_write_order() {
        let cluster = crate::spec::parse_str(SPEC, "spec.yaml").expect("parses");
        let registries = resolve_registries(&cluster.spec.registries, &|_| Err("unused".into()))
            .expect("no credentials");
        let resolved = Resolved {
            registries,
            manifests: vec![],
            airgap_images: Some((
                "/tmp/k3s-airgap-images-amd64.tar.zst".into(),
                "e".repeat(64),
            )),
        };
        let hosts = desired_hosts(&cluster, &resolved).expect("renders");
        assert_eq!(
            hosts.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(),
            ["s1", "a1"]
        );
        assert!(hosts[0].first_server && !hosts[1].first_server);
        assert_eq!(hosts[1].group.as_deref(), Some("g1"));
        let paths: Vec<&str> = hosts[0].files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                REGISTRIES_PATH,
                "/var/lib/rancher/k3s/agent/images/k3s-airgap-images-amd64.tar.zst",
                CONFIG_PATH,
                "/var/lib/rancher/k3s/server/manifests/k3sctl-traefik-config.yaml",
                "/etc/systemd/system/k3s.service.env",
                "/etc/systemd/system/k3s.service"
            ]
        );
        let FileContent::Plain(agent_config) = &hosts[1].files[2].content else {
            panic!("plain")
        };
        insta::assert_snapshot!(agent_config);
        // The join URL is given once, as K3S_URL in the env file (as the official installer
        // does), never also as `server:` in config.yaml where the two could disagree.
        assert!(!agent_config.contains("server:"), "{agent_config}");
        assert_eq!(
            hosts[1].files[1].content,
            FileContent::LocalFile {
                local: "/tmp/k3s-airgap-images-amd64.tar.zst".into(),
                sha256: "e".repeat(64)
            }
        );
        assert_eq!(
            hosts[1].files[3].content,
            FileContent::Env {
                url: Some("https://10.0.0.2:6443".into()),
                with_token: true,
                cluster_init: false,
            }
        );
    }

    #[test]
    fn node_ip_only_from_an_ip_address() {
        let spec = r#"
apiVersion: k3sctl.io/v1alpha1
kind: Cluster
metadata: {name: lab}
spec:
  hosts:
    - {name: k3sc1, address: k3sc1, role: server, publicAddress: k3s.example.com}
    - {name: k3sw1, address: k3sw1.home.arpa, privateAddress: 10.0.1.31, role: agent}
    - {name: k3sw2, address: 192.168.1.32, publicAddress: 1.2.3.4, role: agent}
  k3s: {version: v1.33.5+k3s1}
"#;
        let cluster = crate::spec::parse_str(spec, "spec.yaml").expect("parses");
        let configs: Vec<NodeConfig> = cluster
            .spec
            .hosts
            .iter()
            .map(|h| node_config(&cluster, h))
            .collect();
        // K3s refuses a name as node-ip / node-external-ip; it then picks its own address.
        assert_eq!(configs[0].node_ip, None);
        assert_eq!(configs[0].node_external_ip, None);
        assert_eq!(configs[1].node_ip.as_deref(), Some("10.0.1.31"));
        assert_eq!(configs[2].node_ip.as_deref(), Some("192.168.1.32"));
        assert_eq!(configs[2].node_external_ip.as_deref(), Some("1.2.3.4"));
        let rendered = render_config(&configs[0]).expect("renders");
        assert!(!rendered.contains("node-ip"), "{rendered}");
    }
}

#[cfg(test)]
mod ha_tests {
    use super::*;

    const HA: &str = r#"
apiVersion: k3sctl.io/v1alpha1
kind: Cluster
metadata: {name: ha}
spec:
  hosts:
    - {name: s1, address: 10.0.0.1, role: server}
    - {name: s2, address: 10.0.0.2, role: server, config: {kubelet-arg: [max-pods=50]}}
    - {name: s3, address: 10.0.0.3, role: server}
    - {name: a1, address: 10.0.0.4, role: agent}
  k3s: {version: v1.33.5+k3s1}
  cluster:
    tlsSans: [k3s.example.com]
    disable: [servicelb]
    serverConfig: {flannel-backend: wireguard-native}
"#;

    fn env(hosts: &[DesiredHost], name: &str) -> (FileContent, bool) {
        let host = hosts.iter().find(|h| h.name == name).expect("host");
        let file = host
            .files
            .iter()
            .find(|f| matches!(f.content, FileContent::Env { .. }))
            .expect("env file");
        (file.content.clone(), file.restarts)
    }

    fn config(hosts: &[DesiredHost], name: &str) -> String {
        let host = hosts.iter().find(|h| h.name == name).expect("host");
        match &host
            .files
            .iter()
            .find(|f| f.path == CONFIG_PATH)
            .expect("config")
            .content
        {
            FileContent::Plain(text) => text.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn servers_share_critical_values_and_join_through_the_registration_address() {
        let cluster = crate::spec::parse_str(HA, "ha.yaml").expect("parses");
        let hosts = desired_hosts(&cluster, &Resolved::default()).expect("renders");
        let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["s1", "s2", "s3", "a1"], "servers before agents");
        let critical = critical_values(&cluster, &hosts);
        assert_eq!(critical["flannel-backend"], "wireguard-native");
        assert_eq!(critical["disable"], "[\"servicelb\"]");
        assert_eq!(
            critical["cluster-cidr"], "10.42.0.0/16",
            "K3s's default shown"
        );
        assert_eq!(critical["cluster-dns"], "10.43.0.10");
        for server in ["s1", "s2", "s3"] {
            let text = config(&hosts, server);
            let rendered = crate::k3s::critical::critical_values(&text);
            assert!(
                rendered.iter().all(|(k, v)| critical.get(k) == Some(v)),
                "{server}: {rendered:?}"
            );
            // The registration address (default: the first server) is always a SAN.
            assert!(
                text.contains("- k3s.example.com\n- \"10.0.0.1\"\n"),
                "{text}"
            );
            assert!(!text.contains("cluster-init"), "{text}");
        }
        assert!(config(&hosts, "s2").contains("max-pods=50"));
        // s1 is the registration address: rebuilt, it joins through s2, not through itself.
        let url = |content: FileContent| match content {
            FileContent::Env { url, .. } => url,
            _ => None,
        };
        assert_eq!(
            url(env(&hosts, "s1").0).as_deref(),
            Some("https://10.0.0.2:6443")
        );
        assert_eq!(
            url(env(&hosts, "s3").0).as_deref(),
            Some("https://10.0.0.1:6443")
        );
        assert_eq!(
            url(env(&hosts, "a1").0).as_deref(),
            Some("https://10.0.0.1:6443")
        );
        // K3s reads a server's join settings only without data: no restart for them alone.
        assert!(!env(&hosts, "s2").1 && env(&hosts, "a1").1);
    }

    #[test]
    fn a_registration_address_is_used_by_every_host() {
        let text = HA.replace(
            "    tlsSans: [k3s.example.com]",
            "    registrationAddress: 10.0.0.100\n    tlsSans: [k3s.example.com]",
        );
        let cluster = crate::spec::parse_str(&text, "ha.yaml").expect("parses");
        let hosts = desired_hosts(&cluster, &Resolved::default()).expect("renders");
        for name in ["s1", "s2", "a1"] {
            let FileContent::Env { url, .. } = env(&hosts, name).0 else {
                panic!("env")
            };
            assert_eq!(url.as_deref(), Some("https://10.0.0.100:6443"), "{name}");
        }
        assert!(config(&hosts, "s1").contains("- \"10.0.0.100\"\n"));
    }
}

#[cfg(test)]
mod credential_tests {
    use super::*;

    #[test]
    fn credentials_are_read_and_errors_name_the_field_not_the_value() {
        let spec: crate::spec::Registries = serde_saphyr::from_str(
            "configs:\n  r.example:\n    auth:\n      username: {env: R_USER}\n      password: {file: ./pw}\n",
        )
        .expect("parses");
        let ok = resolve_registries(&spec, &|r| match r {
            ValueRef::Env(name) => Ok(Secret::new(format!("user-from-{name}"))),
            ValueRef::File(_) => Ok(Secret::new("pw-from-file")),
        })
        .expect("resolves");
        let auth = ok.configs["r.example"].auth.clone().expect("auth");
        assert_eq!(
            auth.password.map(|p| p.expose().to_string()).as_deref(),
            Some("pw-from-file")
        );
        let err = resolve_registries(&spec, &|_| {
            Err("environment variable R_USER is not set".into())
        })
        .expect_err("missing");
        assert_eq!(
            err.to_string(),
            "spec.registries.configs.r.example.auth.username: environment variable R_USER is not set"
        );
    }
}
