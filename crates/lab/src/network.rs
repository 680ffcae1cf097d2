//! Lab networking: one bridge per NIC in the root namespace (its address is the gateway), one
//! network namespace per host, and a veth pair per host NIC whose inner end is the host's
//! `eth<nic>`. No default route and no forwarding: nothing leaves the machine.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

use crate::command;
use crate::error::Result;
use crate::naming::Naming;

const IP_HINT: &str = "install iproute2 and run as root";

fn ip(step: &str, args: &[&str]) -> Result<()> {
    command::run(step, Command::new("ip").args(args), IP_HINT).map(drop)
}

/// Whether a link named `name` exists in the root namespace.
pub fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Whether network namespace `name` exists.
pub fn netns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

/// Creates bridge `nic` of the lab with its gateway address, if missing.
pub fn ensure_bridge(naming: Naming, nic: u8) -> Result<()> {
    let br = naming.bridge(nic);
    if link_exists(&br) {
        return Ok(());
    }
    let step = format!("bridge {br}: create");
    ip(&step, &["link", "add", &br, "type", "bridge"])?;
    let cidr = format!("{}/{}", naming.gateway(nic), Naming::PREFIX_LEN);
    ip(&step, &["addr", "add", &cidr, "dev", &br])?;
    ip(&step, &["link", "set", &br, "up"])
}

/// Creates host `n`'s namespace with loopback up, if missing.
pub fn ensure_netns(host: &str, naming: Naming, n: u8) -> Result<()> {
    let ns = naming.machine(n);
    if netns_exists(&ns) {
        return Ok(());
    }
    let step = format!("host {host}: create network namespace {ns}");
    ip(&step, &["netns", "add", &ns])?;
    ip(&step, &["-n", &ns, "link", "set", "lo", "up"])
}

/// Creates host `n`'s NIC `nic`: veth pair, inner end `eth<nic>` with `addr`, outer end on the
/// bridge. Outer end is left down when `connected` is false (a pulled cable).
pub fn ensure_nic(
    host: &str,
    naming: Naming,
    n: u8,
    nic: u8,
    addr: Ipv4Addr,
    connected: bool,
) -> Result<()> {
    let outer = naming.outer_veth(n, nic);
    let ns = naming.machine(n);
    let inner = format!("eth{nic}");
    let step = format!("host {host}: create {inner} ({outer})");
    if !link_exists(&outer) {
        ip(
            &step,
            &[
                "link", "add", &outer, "type", "veth", "peer", "name", &inner, "netns", &ns,
            ],
        )?;
        let cidr = format!("{addr}/{}", Naming::PREFIX_LEN);
        ip(&step, &["-n", &ns, "addr", "add", &cidr, "dev", &inner])?;
        ip(&step, &["-n", &ns, "link", "set", &inner, "up"])?;
        ip(
            &step,
            &["link", "set", &outer, "master", &naming.bridge(nic)],
        )?;
    }
    set_outer(host, &outer, connected)
}

/// Sets an outer veth up (cable in) or down (cable pulled: the host sees NO-CARRIER).
pub fn set_outer(host: &str, outer: &str, up: bool) -> Result<()> {
    let state = if up { "up" } else { "down" };
    ip(
        &format!("host {host}: set {outer} {state}"),
        &["link", "set", outer, state],
    )
}

/// Links in the root namespace owned by the lab.
pub fn own_links(naming: Naming) -> Vec<String> {
    list_dir("/sys/class/net", |n| naming.owns(n))
}

/// Network namespaces owned by the lab.
pub fn own_netns(naming: Naming) -> Vec<String> {
    list_dir("/run/netns", |n| naming.owns(n))
}

pub(crate) fn list_dir(dir: &str, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let mut names: Vec<String> = fs_err::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .filter(|n| keep(n))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Deletes the lab's namespaces (their veth pairs go with them) and remaining links.
pub fn remove_all(naming: Naming) -> Result<()> {
    for ns in own_netns(naming) {
        ip(
            &format!("delete network namespace {ns}"),
            &["netns", "del", &ns],
        )?;
    }
    for link in own_links(naming) {
        if link_exists(&link) {
            // A veth may vanish together with its peer between listing and deleting.
            let out = command::output(
                "delete link",
                Command::new("ip").args(["link", "del", &link]),
                IP_HINT,
            )?;
            if !out.status.success() && link_exists(&link) {
                return Err(command::failed(
                    &format!("delete link {link}"),
                    Command::new("ip").args(["link", "del", &link]),
                    &out,
                    IP_HINT,
                ));
            }
        }
    }
    Ok(())
}
