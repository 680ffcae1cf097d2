//! The stand-in's `pct` contract (status lines, refusals, push exiting 0 on failure, root only)
//! and the transport suite over `pct exec`, with the hop's cost per command measured.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k3sctl::host::{
    ExecRequest, HostError, PctTransport, ProxmoxError, SshTarget, SshTransport, Transport,
};
use lab::Lab;

use super::transport_suite;

fn node_target(lab: &Lab, node: &str, address: &str) -> SshTarget {
    let mut t = SshTarget::new(node, address);
    t.user = Some("root".into());
    t.identity_file = Some(lab.identity());
    t.known_hosts_file = Some(lab.known_hosts());
    t.config_file = Some(lab.ssh_config());
    t
}

/// `pct` on the node keeps Proxmox's contract for container `vmid`.
pub fn pct_keeps_its_contract(lab: &Lab, vmid: u32) {
    let node = &lab.proxmox().expect("proxmox stand-in").node;
    let pct = |cmd: &str| {
        let out = lab
            .exec_output(node, cmd, Duration::from_secs(60))
            .expect("ssh to the node");
        (out.code, format!("{}{}", out.stdout, out.stderr))
    };
    assert_eq!(
        pct(&format!("pct status {vmid}")),
        (Some(0), "status: running\n".into())
    );
    assert_eq!(
        pct(&format!("pct start {vmid}")),
        (Some(255), format!("CT {vmid} already running\n"))
    );
    let (code, said) = pct(&format!("pct push {vmid} /etc/hostname /no/such/dir/x"));
    assert_eq!(code, Some(0), "push failure exits 0 like real pct: {said}");
    assert!(
        said.contains("failed to create file: /no/such/dir/x"),
        "{said}"
    );
    assert_eq!(
        pct(&format!(
            "pct push {vmid} /etc/hostname /root/pushed --perms 0600 && pct exec {vmid} -- stat -c %a /root/pushed"
        ))
        .1,
        "600\n"
    );
    assert_eq!(
        pct(&format!("su nobody -s /bin/sh -c 'pct status {vmid}'")),
        (Some(255), "please run as root\n".into())
    );
}

/// The transport suite through `pct exec` into `host` (container `vmid`), the ssh session's
/// environment kept out, an unknown vmid as a typed error; returns the mean time of one trivial
/// command over ssh to the node and through `pct exec`.
pub fn transport_over_pct(lab: &Lab, host: &str, vmid: u32) -> (Duration, Duration) {
    let px = lab.proxmox().expect("proxmox stand-in").clone();
    let hosts = lab.hosts();
    let node = hosts.iter().find(|h| h.name == px.node).expect("node host");
    let container = hosts.iter().find(|h| h.name == host).expect("container");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let ssh = Arc::new(
            SshTransport::connect(node_target(lab, &px.node, &node.address.to_string()))
                .await
                .expect("ssh to the node"),
        );
        let ct = PctTransport::new(
            host,
            &px.node,
            Arc::clone(&ssh),
            vmid,
            container.address.to_string(),
        );
        transport_suite::run_all(&ct, std::path::Path::new("/root")).await;
        let env = ct
            .exec(ExecRequest::new("env"))
            .await
            .expect("env")
            .stdout_text();
        assert!(!env.contains("SSH_CONNECTION"), "{env}");
        let missing = PctTransport::new("ghost", &px.node, Arc::clone(&ssh), 299, "10.0.0.1");
        match missing.status().await {
            Err(HostError::Proxmox(ProxmoxError::NotOnNode { vmid: 299, .. })) => {}
            other => panic!("expected NotOnNode, got {other:?}"),
        }
        let n = 20;
        let t = Instant::now();
        for _ in 0..n {
            ct.exec(ExecRequest::new("true")).await.expect("pct exec");
        }
        let through_pct = t.elapsed() / n;
        let t = Instant::now();
        for _ in 0..n {
            ssh.exec(ExecRequest::new("true")).await.expect("ssh exec");
        }
        (t.elapsed() / n, through_pct)
    })
}
