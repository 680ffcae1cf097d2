//! Pure naming rules: which kernel objects, addresses and paths belong to which lab and host.
//!
//! Interface and namespace names carry the lab's small index (`k3lab<index>`) because Linux
//! interface names are limited to 15 characters; cgroup and state paths carry the lab's name.

use std::net::Ipv4Addr;

use crate::error::{LabError, Result};

/// Prefix of every network object the lab creates.
pub const OBJECT_PREFIX: &str = "k3lab";
/// Highest lab index (one /24 per lab and NIC).
pub const MAX_INDEX: u8 = 199;
/// Most hosts one lab may have.
pub const MAX_HOSTS: u8 = 200;
/// Longest lab name (host names are `<lab>-<n>` and must stay short DNS labels).
pub const MAX_NAME_LEN: usize = 40;
/// Name of the cgroup directory (in every hierarchy) holding all labs.
pub const CGROUP_ROOT: &str = "k3sctl-lab";

/// Checks that `name` is a lowercase DNS-1123 label short enough for host names.
pub fn validate_lab_name(name: &str) -> Result<()> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let ok_ends = name.starts_with(|c: char| c.is_ascii_lowercase()) && !name.ends_with('-');
    if name.is_empty() || name.len() > MAX_NAME_LEN || !ok_chars || !ok_ends {
        return Err(LabError::Invalid {
            what: format!("invalid lab name {name:?}"),
            hint: format!(
                "use 1-{MAX_NAME_LEN} characters a-z, 0-9 and '-', starting with a letter, e.g. `dev` or `e2e-upgrade`"
            ),
        });
    }
    Ok(())
}

/// Names of one lab's network objects, derived from its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Naming {
    /// The lab's index, unique among labs on this machine.
    pub index: u8,
}

impl Naming {
    /// Prefix shared by every network object of this lab, e.g. `k3lab3`.
    pub fn prefix(&self) -> String {
        format!("{OBJECT_PREFIX}{}", self.index)
    }

    /// Bridge for NIC `nic` (0 = eth0, 1 = eth1), e.g. `k3lab3b0`.
    pub fn bridge(&self, nic: u8) -> String {
        format!("{}b{nic}", self.prefix())
    }

    /// Network namespace and nspawn machine name of host `n` (1-based), e.g. `k3lab3h2`.
    pub fn machine(&self, n: u8) -> String {
        format!("{}h{n}", self.prefix())
    }

    /// Outer (root namespace) end of host `n`'s veth for NIC `nic`, e.g. `k3lab3h2n0`.
    pub fn outer_veth(&self, n: u8, nic: u8) -> String {
        format!("{}h{n}n{nic}", self.prefix())
    }

    /// The bridge's own address (gateway) on NIC `nic`.
    pub fn gateway(&self, nic: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 213 + nic, self.index, 1)
    }

    /// The lab subnet of NIC `nic` in CIDR notation, e.g. `10.213.3.0/24`.
    pub fn subnet(&self, nic: u8) -> String {
        format!("10.{}.{}.0/{}", 213 + nic, self.index, Self::PREFIX_LEN)
    }

    /// Host `n`'s address on NIC `nic`: `10.213.<index>.<10+n>` (eth0) or `10.214...` (eth1).
    pub fn address(&self, n: u8, nic: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 213 + nic, self.index, 10 + n)
    }

    /// Prefix length of every lab subnet.
    pub const PREFIX_LEN: u8 = 24;

    /// Whether a network object name (link, namespace, machine) belongs to this lab.
    pub fn owns(&self, object: &str) -> bool {
        object_index(object) == Some(self.index)
    }
}

/// The lab index encoded in a network object name, if it is one of ours.
pub fn object_index(object: &str) -> Option<u8> {
    let rest = object.strip_prefix(OBJECT_PREFIX)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let after = &rest[digits.len()..];
    if digits.is_empty() || !(after.starts_with('b') || after.starts_with('h')) {
        return None;
    }
    digits.parse().ok()
}

/// Host name of host `n` (1-based) in lab `lab`, e.g. `dev-2`.
pub fn host_name(lab: &str, n: u8) -> String {
    format!("{lab}-{n}")
}

/// Checks a requested host count.
pub fn validate_host_count(count: u8) -> Result<()> {
    if count == 0 || count > MAX_HOSTS {
        return Err(LabError::Invalid {
            what: format!("cannot create a lab with {count} hosts"),
            hint: format!("ask for 1 to {MAX_HOSTS} hosts"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_linux_interface_limit() {
        let n = Naming { index: MAX_INDEX };
        for name in [
            n.bridge(1),
            n.machine(MAX_HOSTS),
            n.outer_veth(MAX_HOSTS, 1),
        ] {
            assert!(name.len() <= 15, "{name} is longer than 15 characters");
        }
    }

    #[test]
    fn ownership_does_not_confuse_index_prefixes() {
        let one = Naming { index: 1 };
        assert!(one.owns("k3lab1b0"));
        assert!(one.owns("k3lab1h12n1"));
        assert!(!one.owns("k3lab12b0"));
        assert!(!one.owns("k3lab12h1"));
        assert!(!one.owns("k3labxb0"));
        assert!(!one.owns("eth0"));
    }

    #[test]
    fn addresses_are_private_and_distinct_per_lab_and_nic() {
        let a = Naming { index: 0 };
        let b = Naming { index: 1 };
        assert_eq!(a.address(1, 0), Ipv4Addr::new(10, 213, 0, 11));
        assert_eq!(a.address(1, 1), Ipv4Addr::new(10, 214, 0, 11));
        assert_ne!(a.address(1, 0), b.address(1, 0));
        assert!(a.address(MAX_HOSTS, 1).is_private());
        assert_eq!(a.gateway(0), Ipv4Addr::new(10, 213, 0, 1));
    }

    #[test]
    fn lab_names_are_validated() {
        for good in ["dev", "e2e-upgrade", "a1"] {
            assert!(validate_lab_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Dev", "1lab", "lab-", "lab_x", &"x".repeat(41)] {
            assert!(validate_lab_name(bad).is_err(), "{bad}");
        }
    }
}
