//! Hosts an inventory names by their address (k3s-ansible's sample lists `192.16.35.11`
//! under `server`). The spec's host name is the Node's name and is rendered as `node-name`,
//! but K3s on such a host runs the node under its host name: taking the address as the name
//! would rename (and restart) every node. The names K3s really uses are read from the hosts
//! (`ops::import_hosts::read::running_node_names`); this module puts them in the spec. Pure.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::spec::model::Cluster;
use crate::spec::taint::is_dns_subdomain;

/// The hosts whose name is an IP address.
pub fn hosts_named_by_address(cluster: &Cluster) -> Vec<String> {
    cluster
        .spec
        .hosts
        .iter()
        .filter(|h| h.name.parse::<IpAddr>().is_ok())
        .map(|h| h.name.clone())
        .collect()
}

/// Renames each host named by its address to the Node name its K3s runs with (`found`, by
/// current host name: `Ok(Some(name))`; `Ok(None)` when K3s is not installed there, the
/// address then stays the name; `Err(why)` when the host could not be read). Returns one
/// sentence per host for the user: what was renamed, and what could not be found out (then
/// the address stays, and the sentence says what to check before `plan`).
pub fn name_hosts_as_running(
    cluster: &mut Cluster,
    found: &BTreeMap<String, Result<Option<String>, String>>,
) -> Vec<String> {
    let mut notes = Vec::new();
    let taken = |cluster: &Cluster, name: &str| cluster.spec.hosts.iter().any(|h| h.name == name);
    for address in hosts_named_by_address(cluster) {
        let keep = |why: String| {
            format!(
                "host `{address}` is named by its address and {why}: its name stays `{address}`; \
                 if K3s already runs there, set hosts[].name to its Node's name before `plan`, \
                 or apply renames the node"
            )
        };
        let name = match found.get(&address) {
            Some(Ok(Some(name))) => name.clone(),
            Some(Ok(None)) => continue,
            Some(Err(why)) => {
                // ssh's own words can span lines; a note is one sentence.
                let why: Vec<&str> = why
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect();
                let why = why.join("; ");
                notes.push(keep(format!("its K3s could not be read ({why})")));
                continue;
            }
            None => {
                notes.push(keep("was not read".into()));
                continue;
            }
        };
        if name == address {
            continue;
        }
        if !is_dns_subdomain(&name) {
            notes.push(keep(format!(
                "K3s runs it as `{name}`, which is not a valid Node name"
            )));
            continue;
        }
        if taken(cluster, &name) {
            notes.push(keep(format!(
                "K3s runs it as `{name}`, a name another host of the inventory has"
            )));
            continue;
        }
        if let Some(host) = cluster.spec.hosts.iter_mut().find(|h| h.name == address) {
            host.name = name.clone();
        }
        notes.push(format!(
            "host `{address}` is named `{name}`, the Node name its K3s runs with (the inventory \
             names it by its address)"
        ));
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::import::ansible::{ConvertOptions, convert, parse_inventory};

    /// k3s-ansible's sample layout: hosts named by address.
    fn sample() -> Cluster {
        let inventory = parse_inventory(
            "k3s_cluster:\n  children:\n    server:\n      hosts:\n        192.168.1.11:\n\
             \x20   agent:\n      hosts:\n        192.168.1.12:\n        192.168.1.13:\n        \
             192.168.1.14:\n        worker-9:\n          ansible_host: 192.168.1.19\n",
            true,
        )
        .expect("inventory");
        let options = ConvertOptions {
            name: "k3s".into(),
            proxmox_host: None,
        };
        convert(&inventory, &options).expect("convert").cluster
    }

    fn names(cluster: &Cluster) -> Vec<(&str, &str)> {
        cluster
            .spec
            .hosts
            .iter()
            .map(|h| (h.name.as_str(), h.address.as_str()))
            .collect()
    }

    #[test]
    fn hosts_named_by_address_take_the_node_name_k3s_runs_with() {
        let mut cluster = sample();
        assert_eq!(
            hosts_named_by_address(&cluster),
            [
                "192.168.1.11",
                "192.168.1.12",
                "192.168.1.13",
                "192.168.1.14"
            ]
        );
        let found = BTreeMap::from([
            ("192.168.1.11".to_owned(), Ok(Some("k3s-server".to_owned()))),
            ("192.168.1.12".to_owned(), Ok(None)),
            (
                "192.168.1.13".to_owned(),
                Err("ssh: exit 255\nconnection refused\r\n".to_owned()),
            ),
            // Another host already has that name: two Nodes cannot share it.
            ("192.168.1.14".to_owned(), Ok(Some("worker-9".to_owned()))),
        ]);
        let notes = name_hosts_as_running(&mut cluster, &found);
        assert_eq!(
            names(&cluster),
            [
                ("k3s-server", "192.168.1.11"),
                ("192.168.1.12", "192.168.1.12"),
                ("192.168.1.13", "192.168.1.13"),
                ("192.168.1.14", "192.168.1.14"),
                ("worker-9", "192.168.1.19"),
            ]
        );
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(notes[0].contains("named `k3s-server`"), "{notes:?}");
        assert!(
            notes[1].contains("(ssh: exit 255; connection refused)"),
            "ssh's lines joined into one sentence: {notes:?}"
        );
        assert!(notes.iter().all(|n| !n.contains('\n')), "{notes:?}");
        assert!(notes[1].contains("set hosts[].name"), "{notes:?}");
        assert!(notes[2].contains("another host"), "{notes:?}");
    }

    #[test]
    fn an_invalid_or_unchanged_name_keeps_the_address() {
        let mut cluster = sample();
        let found = BTreeMap::from([
            ("192.168.1.11".to_owned(), Ok(Some("Bad_Name".to_owned()))),
            (
                "192.168.1.12".to_owned(),
                Ok(Some("192.168.1.12".to_owned())),
            ),
        ]);
        let notes = name_hosts_as_running(&mut cluster, &found);
        assert_eq!(cluster.spec.hosts[0].name, "192.168.1.11");
        assert_eq!(cluster.spec.hosts[1].name, "192.168.1.12");
        assert!(notes[0].contains("not a valid Node name"), "{notes:?}");
        // .13 and .14 were not read.
        assert_eq!(notes.len(), 3, "{notes:?}");
    }
}
