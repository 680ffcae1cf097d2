//! The example specs under examples/ load and validate, and say what the seeds describe.

use std::path::PathBuf;

use k3sctl::spec::{LoadedSpec, ResolvedTransport, Role, load_file};

fn example(name: &str) -> LoadedSpec {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name);
    load_file(&path).unwrap_or_else(|errors| panic!("{name} does not validate:\n{errors}"))
}

#[test]
fn oci_example_has_one_server_three_agents_in_two_groups() {
    let spec = example("oci.yaml");
    let cluster = &spec.cluster;
    assert_eq!(cluster.servers().count(), 1);
    assert_eq!(cluster.agents().count(), 3);
    let groups: Vec<(String, usize)> = cluster
        .agent_groups()
        .into_iter()
        .map(|(name, members)| (name, members.len()))
        .collect();
    assert_eq!(
        groups,
        [
            ("tenancy-0214".to_owned(), 1),
            ("tenancy-0213".to_owned(), 2)
        ]
    );
    assert_eq!(cluster.spec.kubeconfigs.len(), 2);
    assert_eq!(
        cluster.export_context(&cluster.spec.kubeconfigs[0]),
        "lumie-public"
    );
    assert_eq!(
        cluster.spec.cluster.tls_sans,
        ["140.238.0.10", "10.0.0.241"]
    );
    assert!(cluster.spec.registries.mirrors.contains_key("docker.io"));
    assert!(
        cluster
            .spec
            .addons
            .helm_chart_configs
            .contains_key("traefik")
    );
    assert_eq!(
        cluster.api_endpoint().as_deref(),
        Some("https://10.0.0.241:6443")
    );
}

#[test]
fn proxmox_example_reaches_three_servers_through_pct() {
    let spec = example("proxmox.yaml");
    assert_eq!(spec.cluster.servers().count(), 3);
    assert!(spec.cluster.spec.upgrade.disable_eviction);
    for host in spec.hosts() {
        match host.transport {
            ResolvedTransport::Pct {
                proxmox_address, ..
            } => assert_eq!(proxmox_address, "192.168.1.10"),
            other => panic!("{} is reached by {other:?}", host.name),
        }
    }
}

#[test]
fn lab_example_is_a_single_host_lxd_lab() {
    let spec = example("lab.yaml");
    let hosts = spec.hosts();
    assert_eq!(hosts.iter().filter(|h| h.role == Role::Server).count(), 1);
    assert!(
        hosts
            .iter()
            .all(|h| matches!(h.transport, ResolvedTransport::Lxd { .. }))
    );
    assert_eq!(
        spec.cluster.api_endpoint().as_deref(),
        Some("https://10.77.0.10:6443"),
        "default endpoint is the first server's address"
    );
}
