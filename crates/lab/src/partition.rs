//! Silent per-peer partitions: an nftables table inside a host's network namespace drops all
//! traffic from and to chosen peers, so connections hang instead of being refused. The kernel
//! has no netem here, and the rules vanish with the namespace.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

use crate::command;
use crate::error::{Result, fs_step};

/// Name of the lab's table inside a host namespace.
pub const TABLE: &str = "k3sctl_lab_partition";

/// nft script replacing the table: drop traffic from and to `peers` (empty: remove the table).
pub fn render(peers: &[Ipv4Addr]) -> String {
    // "add" then "delete" makes the delete succeed whether or not the table existed.
    let mut out = format!("table inet {TABLE}\ndelete table inet {TABLE}\n");
    if peers.is_empty() {
        return out;
    }
    let set = peers
        .iter()
        .map(Ipv4Addr::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    out.push_str(&format!(
        "table inet {TABLE} {{\n\
         \tchain input {{\n\t\ttype filter hook input priority -300; policy accept;\n\t\tip saddr {{ {set} }} drop\n\t}}\n\
         \tchain output {{\n\t\ttype filter hook output priority -300; policy accept;\n\t\tip daddr {{ {set} }} drop\n\t}}\n\
         }}\n"
    ));
    out
}

/// Installs the rules for `peers` in namespace `netns` (script kept in `script_path`).
pub fn apply(host: &str, netns: &str, peers: &[Ipv4Addr], script_path: &Path) -> Result<()> {
    let step = format!("host {host}: set partition rules");
    fs_err::write(script_path, render(peers)).map_err(fs_step(step.clone()))?;
    command::run(
        &step,
        Command::new("ip")
            .args(["netns", "exec", netns, "nft", "-f"])
            .arg(script_path),
        "install nftables on the machine (apt-get install nftables)",
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_drop_both_directions_for_each_peer() {
        let text = render(&[Ipv4Addr::new(10, 213, 0, 12), Ipv4Addr::new(10, 214, 0, 12)]);
        assert!(text.contains("ip saddr { 10.213.0.12, 10.214.0.12 } drop"));
        assert!(text.contains("ip daddr { 10.213.0.12, 10.214.0.12 } drop"));
        assert!(text.starts_with("table inet k3sctl_lab_partition\ndelete table"));
    }

    #[test]
    fn no_peers_only_removes_the_table() {
        assert_eq!(
            render(&[]),
            "table inet k3sctl_lab_partition\ndelete table inet k3sctl_lab_partition\n"
        );
    }
}
