//! `init --from-ansible` round trips: both inventory layouts (k3s-ansible and the Proxmox pct
//! layout), in INI and YAML, become specs that validate and keep hosts, roles and groups.

use std::path::Path;

use k3sctl::spec::import::ansible::{ConvertOptions, convert, parse_inventory};
use k3sctl::spec::{Cluster, ResolvedTransport, Role, ValidationContext, load_str, render_spec};

fn round_trip(
    inventory: &str,
    yaml: bool,
    proxmox_host: Option<&str>,
) -> (Cluster, Vec<String>, String) {
    let parsed = parse_inventory(inventory, yaml).expect("inventory parses");
    let options = ConvertOptions {
        name: "imported".to_owned(),
        proxmox_host: proxmox_host.map(str::to_owned),
    };
    let conversion = convert(&parsed, &options).expect("inventory converts");
    let text = render_spec(&conversion.cluster, &["converted".to_owned()]).expect("renders");
    let context = ValidationContext::from_env(Path::new(".").to_path_buf());
    let cluster = load_str(&text, "converted.yaml", &context).unwrap_or_else(|errors| {
        panic!("converted spec does not validate:\n{errors}\n---\n{text}")
    });
    assert_eq!(
        cluster, conversion.cluster,
        "what is written is what was converted"
    );
    (cluster, conversion.warnings, text)
}

fn summary(cluster: &Cluster) -> Vec<(String, String, Role, Option<String>)> {
    cluster
        .spec
        .hosts
        .iter()
        .map(|h| (h.name.clone(), h.address.clone(), h.role, h.group.clone()))
        .collect()
}

const K3S_ANSIBLE_INI: &str = "\
[server]
10.0.0.11

[agent]
10.0.0.12
10.0.0.13

[k3s_cluster:children]
server
agent

[k3s_cluster:vars]
ansible_port=22
ansible_user=debian
k3s_version=v1.30.2+k3s1
extra_server_args=\"--disable traefik\"
token=\"changeme!\"
api_endpoint=\"{{ hostvars[groups['server'][0]]['ansible_host'] | default(groups['server'][0]) }}\"
";

const K3S_ANSIBLE_YAML: &str = "\
k3s_cluster:
  children:
    server:
      hosts:
        10.0.0.11:
    agent:
      children:
        tenancy_0214:
          hosts:
            10.0.0.12:
        tenancy_0213:
          hosts:
            10.1.0.148:
            10.1.0.9:
  vars:
    ansible_port: 22
    ansible_user: ubuntu
    k3s_version: v1.34.3+k3s1
    token: changeme
    api_endpoint: 10.0.0.241
";

#[test]
fn k3s_ansible_ini_layout() {
    let (cluster, warnings, _) = round_trip(K3S_ANSIBLE_INI, false, None);
    let agent = |name: &str| (name.to_owned(), name.to_owned(), Role::Agent, None);
    assert_eq!(
        summary(&cluster),
        [
            (
                "10.0.0.11".to_owned(),
                "10.0.0.11".to_owned(),
                Role::Server,
                None
            ),
            agent("10.0.0.12"),
            agent("10.0.0.13")
        ]
    );
    assert_eq!(
        cluster.spec.k3s.version.map(|v| v.to_string()).as_deref(),
        Some("v1.30.2+k3s1")
    );
    let ssh = cluster
        .spec
        .host_defaults
        .and_then(|d| d.ssh)
        .expect("shared ssh settings hoisted");
    assert_eq!((ssh.user.as_deref(), ssh.port), (Some("debian"), Some(22)));
    assert!(
        warnings.iter().any(|w| w.contains("`token` ignored")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("is a template")),
        "{warnings:?}"
    );
    assert_eq!(
        cluster.spec.cluster.registration_address, None,
        "templated endpoint falls back to the default"
    );
}

#[test]
fn k3s_ansible_yaml_layout_with_agent_subgroups() {
    let (cluster, warnings, text) = round_trip(K3S_ANSIBLE_YAML, true, None);
    let roles: Vec<(&str, Role, Option<&str>)> = cluster
        .spec
        .hosts
        .iter()
        .map(|h| (h.name.as_str(), h.role, h.group.as_deref()))
        .collect();
    assert_eq!(
        roles,
        [
            ("10.0.0.11", Role::Server, None),
            ("10.0.0.12", Role::Agent, Some("tenancy_0214")),
            ("10.1.0.148", Role::Agent, Some("tenancy_0213")),
            ("10.1.0.9", Role::Agent, Some("tenancy_0213")),
        ]
    );
    assert_eq!(
        cluster.spec.cluster.registration_address.as_deref(),
        Some("10.0.0.241")
    );
    assert!(warnings.iter().any(|w| w.contains("`token` ignored")));
    assert!(
        !text.contains("changeme"),
        "the token never reaches the spec"
    );
}

const PROXMOX_INI: &str = "\
[proxmox]
pve1 ansible_host=192.168.1.10 ansible_user=root ansible_ssh_common_args='-o UserKnownHostsFile=/etc/homelab/known_hosts'

[k3s_controllers]
k3sc1 pct_id=201 node_name=k3sc1
k3sc2 pct_id=202 node_name=k3sc2
k3sc3 pct_id=203 node_name=k3sc3

[k3s_workers]
k3sw1 pct_id=211 node_name=k3sw1
k3sw2 pct_id=212 node_name=k3sw2 ansible_host=192.168.1.32

[k3s:children]
k3s_controllers
k3s_workers

[k3s:vars]
k3s_target_version=v1.33.5+k3s1
";

#[test]
fn proxmox_pct_ini_layout() {
    let (cluster, _, _) = round_trip(PROXMOX_INI, false, None);
    let names: Vec<(&str, Role)> = cluster
        .spec
        .hosts
        .iter()
        .map(|h| (h.name.as_str(), h.role))
        .collect();
    assert_eq!(
        names,
        [
            ("k3sc1", Role::Server),
            ("k3sc2", Role::Server),
            ("k3sc3", Role::Server),
            ("k3sw1", Role::Agent),
            ("k3sw2", Role::Agent),
        ]
    );
    assert_eq!(cluster.spec.proxmox_hosts.len(), 1);
    assert_eq!(cluster.spec.proxmox_hosts[0].address, "192.168.1.10");
    assert_eq!(
        cluster.spec.proxmox_hosts[0]
            .ssh
            .as_ref()
            .and_then(|s| s.known_hosts_file.as_deref()),
        Some("/etc/homelab/known_hosts"),
        "the Proxmox host's ansible_ssh_common_args are carried like the K3s hosts'"
    );
    let vmids: Vec<u32> = cluster
        .spec
        .hosts
        .iter()
        .filter_map(|h| h.pct.as_ref().map(|p| p.vmid))
        .collect();
    assert_eq!(vmids, [201, 202, 203, 211, 212]);
    assert!(
        cluster
            .spec
            .hosts
            .iter()
            .all(|h| h.pct.as_ref().is_some_and(|p| p.proxmox_host == "pve1"))
    );
    assert_eq!(
        cluster.spec.hosts[4].address, "192.168.1.32",
        "ansible_host wins as address"
    );
    assert_eq!(
        cluster.spec.hosts[0].address, "k3sc1",
        "node_name is the address otherwise"
    );
    assert_eq!(
        cluster.spec.k3s.version.map(|v| v.to_string()).as_deref(),
        Some("v1.33.5+k3s1")
    );
}

#[test]
fn proxmox_pct_yaml_layout_with_flag_for_the_proxmox_host() {
    let inventory = "\
all:
  children:
    k3s_controllers:
      hosts:
        ctl-a: {pct_id: 301, node_name: k3s-ctl-a, ansible_host: 10.10.0.1}
    k3s_workers:
      hosts:
        wrk-a: {pct_id: 311, node_name: k3s-wrk-a, ansible_host: 10.10.0.11}
        wrk-b: {pct_id: 312, node_name: k3s-wrk-b, ansible_host: 10.10.0.12}
";
    let parsed = parse_inventory(inventory, true).expect("parses");
    let options = ConvertOptions {
        name: "imported".to_owned(),
        proxmox_host: None,
    };
    let error = convert(&parsed, &options).expect_err("no proxmox host named anywhere");
    assert!(
        error.message.contains("--proxmox-host"),
        "{}",
        error.message
    );

    let (cluster, warnings, _) = round_trip(inventory, true, Some("pve.example.com"));
    assert_eq!(cluster.spec.proxmox_hosts[0].name, "pve");
    assert_eq!(cluster.spec.proxmox_hosts[0].address, "pve.example.com");
    let names: Vec<&str> = cluster.spec.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["k3s-ctl-a", "k3s-wrk-a", "k3s-wrk-b"]);
    assert_eq!(
        cluster.spec.k3s.channel.map(|c| c.to_string()).as_deref(),
        Some("stable")
    );
    assert!(
        warnings.iter().any(|w| w.contains("no k3s_version")),
        "{warnings:?}"
    );
}

#[test]
fn resolved_pct_hosts_carry_the_proxmox_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let parsed = parse_inventory(PROXMOX_INI, false).expect("parses");
    let options = ConvertOptions {
        name: "imported".to_owned(),
        proxmox_host: None,
    };
    let conversion = convert(&parsed, &options).expect("converts");
    let path = dir.path().join("cluster.yaml");
    fs_err::write(
        &path,
        render_spec(&conversion.cluster, &[]).expect("renders"),
    )
    .expect("write");
    let spec = k3sctl::spec::load_file(&path).expect("validates");
    match &spec.hosts()[0].transport {
        ResolvedTransport::Pct {
            proxmox_address,
            ssh,
            vmid,
            ..
        } => {
            assert_eq!((proxmox_address.as_str(), *vmid), ("192.168.1.10", 201));
            assert_eq!(ssh.user.as_deref(), Some("root"));
        }
        other => panic!("expected pct, got {other:?}"),
    }
}

#[test]
fn a_host_in_both_roles_is_refused() {
    let parsed = parse_inventory("[server]\na\n[agent]\na\n", false).expect("parses");
    let options = ConvertOptions {
        name: "x".to_owned(),
        proxmox_host: None,
    };
    let error = convert(&parsed, &options).expect_err("ambiguous role");
    assert!(
        error
            .message
            .contains("both a server group and an agent group")
    );
}
