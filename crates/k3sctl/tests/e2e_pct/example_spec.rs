//! `examples/proxmox.yaml` made to run on the lab: the homelab's Proxmox node, container
//! addresses and vmids, channel and kubeconfig path are swapped for the lab's, and the lab's ssh
//! files are added as `hostDefaults`. Everything else (3 servers on embedded etcd, 2 agents, the
//! controller taints, the upgrade settings) is the example's own text.

use std::path::Path;

use lab::Lab;

/// The example's hosts in order: name, address and vmid in the example.
pub const EXAMPLE_HOSTS: [(&str, &str, u32); 5] = [
    ("k3sc1", "192.168.1.21", 201),
    ("k3sc2", "192.168.1.22", 202),
    ("k3sc3", "192.168.1.23", 203),
    ("k3sw1", "192.168.1.31", 211),
    ("k3sw2", "192.168.1.32", 212),
];

/// A node of the example and the lab container that plays it.
#[derive(Debug, Clone)]
pub struct Node {
    /// Name in the spec (the Kubernetes node name).
    pub name: String,
    /// Lab host name (for `lab.exec`).
    pub host: String,
    /// Address in the lab.
    pub address: String,
    /// vmid in the lab.
    pub vmid: u32,
}

/// Replaces the only occurrence of `from` (panics when it is missing or repeated, so a change
/// of the example is seen here first).
fn swap_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "examples/proxmox.yaml should hold `{from}` once:\n{text}"
    );
    text.replacen(from, to, 1)
}

/// The example's text with the lab put in place of the homelab, and the nodes it names.
pub fn example_spec(
    lab: &Lab,
    binary: &Path,
    version: &str,
    kubeconfig: &Path,
) -> (String, Vec<Node>) {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/proxmox.yaml");
    let mut text = fs_err::read_to_string(&example).expect("examples/proxmox.yaml");
    let px = lab.proxmox().expect("proxmox stand-in");
    let hosts = lab.hosts();
    let pve = hosts.iter().find(|h| h.name == px.node).expect("pve host");
    let containers: Vec<_> = hosts.iter().filter(|h| h.name != px.node).collect();
    assert_eq!(
        containers.len(),
        EXAMPLE_HOSTS.len(),
        "one container a node"
    );

    text = swap_once(
        &text,
        "spec:\n",
        &format!(
            "spec:\n  hostDefaults:\n    ssh: {{user: root, identityFile: {}, configFile: {}, knownHostsFile: {}}}\n",
            lab.identity().display(),
            lab.ssh_config().display(),
            lab.known_hosts().display()
        ),
    );
    text = swap_once(&text, "name: pve1\n", &format!("name: {}\n", px.node));
    text = swap_once(
        &text,
        "address: 192.168.1.10\n",
        &format!("address: {}\n", pve.address),
    );
    assert_eq!(
        text.matches("proxmoxHost: pve1,").count(),
        EXAMPLE_HOSTS.len()
    );
    text = text.replace("proxmoxHost: pve1,", &format!("proxmoxHost: {},", px.node));
    let mut nodes = Vec::new();
    for ((name, address, vmid), host) in EXAMPLE_HOSTS.iter().zip(&containers) {
        let lab_vmid = px.by_host(&host.name).expect("container").vmid;
        text = swap_once(
            &text,
            &format!("name: {name}, address: {address},"),
            &format!("name: {name}, address: {},", host.address),
        );
        text = swap_once(
            &text,
            &format!("vmid: {vmid}}}"),
            &format!("vmid: {lab_vmid}}}"),
        );
        nodes.push(Node {
            name: (*name).to_owned(),
            host: host.name.clone(),
            address: host.address.to_string(),
            vmid: lab_vmid,
        });
    }
    text = swap_once(
        &text,
        "channel: stable\n",
        &format!(
            "version: {version}\n    binary: {{file: {}}}\n",
            binary.display()
        ),
    );
    text = swap_once(
        &text,
        "registrationAddress: k3s-api.home.arpa",
        &format!("registrationAddress: {}", nodes[0].address),
    );
    text = swap_once(
        &text,
        "path: ~/.kube/k3s-homelab.config",
        &format!("path: {}", kubeconfig.display()),
    );
    (text, nodes)
}
