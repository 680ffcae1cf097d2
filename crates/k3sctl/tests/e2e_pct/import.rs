//! The seeds' Proxmox inventory shape (`[k3s_controllers]`/`[k3s_workers]` with `pct_id` and
//! `node_name`, a `[proxmox]` group) pointing at the lab's Proxmox node and containers:
//! `init --from-ansible` gives a spec that `apply` runs on the running cluster.
//!
//! Node names are the containers' addresses, as in the seeds (their DNS, here /etc/hosts on the
//! node and in the containers), so K3s gets no `node-ip` (it refuses a name there).
//!
//! `ansible_ssh_common_args` gives the node's known_hosts file and `airgap_dir` the K3s binary,
//! so the spec is applied exactly as imported.

use std::path::Path;

use lab::Lab;

use super::example_spec::Node;

/// The inventory: the lab's node as the `[proxmox]` host (key, known_hosts, root), the
/// containers by `pct_id`/`node_name`, the version and airgap directory as `[k3s:vars]`.
pub fn inventory(lab: &Lab, nodes: &[Node], version: &str, airgap_dir: &Path) -> String {
    let px = lab.proxmox().expect("proxmox stand-in");
    let pve = lab
        .hosts()
        .into_iter()
        .find(|h| h.name == px.node)
        .expect("node host");
    let line = |n: &Node| format!("{} pct_id={} node_name={}\n", n.name, n.vmid, n.name);
    let (servers, agents) = nodes.split_at(3);
    format!(
        "[proxmox]\n{node} ansible_host={address} ansible_user=root ansible_ssh_private_key_file={key} ansible_ssh_common_args='-o UserKnownHostsFile={kh}'\n\n\
         [k3s_controllers]\n{servers}\n[k3s_workers]\n{agents}\n\
         [k3s:children]\nk3s_controllers\nk3s_workers\n\n\
         [k3s:vars]\nk3s_target_version={version}\nairgap_dir={airgap}\n",
        node = px.node,
        address = pve.address,
        key = lab.identity().display(),
        kh = lab.known_hosts().display(),
        servers = servers.iter().map(line).collect::<String>(),
        agents = agents.iter().map(line).collect::<String>(),
        airgap = airgap_dir.display(),
    )
}

/// Gives the node and every container the node names in /etc/hosts (the homelab's DNS).
pub fn names_resolve(lab: &Lab, nodes: &[Node]) {
    let entries: String = nodes
        .iter()
        .map(|n| format!("{} {}\\n", n.address, n.name))
        .collect();
    let node = &lab.proxmox().expect("proxmox stand-in").node;
    for host in std::iter::once(node.as_str()).chain(nodes.iter().map(|n| n.host.as_str())) {
        lab.exec(host, &format!("printf '{entries}' >> /etc/hosts"))
            .expect("/etc/hosts");
    }
}
