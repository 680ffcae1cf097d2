//! When the typed read of a spec stops at its first malformed value, this sweep still finds the
//! other malformed values of the same kinds (versions, channels, CIDRs, IPs, durations, taints),
//! so one run of `validate` shows them all.

use std::net::IpAddr;
use std::str::FromStr;

use super::duration::Duration;
use super::net::Cidr;
use super::spans::{Position, SpanTree};
use super::taint::Taint;
use super::version::ChannelName;
use crate::k3s::version::K3sVersion;

type Check = fn(&str) -> Result<(), String>;

fn parses<T: FromStr>(text: &str) -> Result<(), String>
where
    T::Err: std::fmt::Display,
{
    text.parse::<T>()
        .map(|_| ())
        .map_err(|error| error.to_string())
}

fn ip(text: &str) -> Result<(), String> {
    text.parse::<IpAddr>()
        .map(|_| ())
        .map_err(|_| format!("`{text}` is not an IP address"))
}

/// Where typed scalars live in the document and how each is checked.
const CHECKS: &[(&str, Check)] = &[
    ("spec.k3s.version", parses::<K3sVersion>),
    ("spec.k3s.channel", parses::<ChannelName>),
    ("spec.cluster.clusterCidr", parses::<Cidr>),
    ("spec.cluster.serviceCidr", parses::<Cidr>),
    ("spec.cluster.clusterDns", ip),
    ("spec.upgrade.drainTimeout", parses::<Duration>),
    ("spec.upgrade.nodeReadyTimeout", parses::<Duration>),
    ("spec.hosts[*].taints[*]", parses::<Taint>),
];

/// Every malformed typed scalar in `tree`, with its position and message.
pub(super) fn malformed_scalars(tree: &SpanTree) -> Vec<(Position, String)> {
    let mut found = Vec::new();
    for (pattern, check) in CHECKS {
        for (_, text, position) in tree.scalars(pattern) {
            if let Err(message) = check(&text) {
                found.push((position, message));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_malformed_value() {
        let text = "\
spec:
  hosts:
    - {taints: [\"a=b:NoSchedule\", bad]}
    - {taints: [\"c:Never\"]}
  k3s: {version: 1.2.3}
  cluster: {clusterCidr: 10.42.0.0/16, serviceCidr: 10.43.0.1/16, clusterDns: ten}
  upgrade: {drainTimeout: 5m, nodeReadyTimeout: soon}
";
        let tree = SpanTree::parse(text).expect("yaml");
        let lines: Vec<u64> = malformed_scalars(&tree)
            .iter()
            .map(|(p, _)| p.line)
            .collect();
        let mut sorted = lines.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [3, 4, 5, 6, 6, 7]);
    }
}
