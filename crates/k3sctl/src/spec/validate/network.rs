//! Rules about networks: CIDR overlaps, cluster DNS, the registration address, SANs and extra config.

use std::net::IpAddr;

use super::Issue;
use crate::spec::model::{Cluster, MANAGED_CONFIG_KEYS};
use crate::spec::taint::is_dns_subdomain;
use crate::spec_path;

/// Cluster and service networks and the cluster DNS address.
pub(super) fn check_networks(cluster: &Cluster, issues: &mut Vec<Issue>) {
    let config = &cluster.spec.cluster;
    let cluster_cidr = config.cluster_cidr();
    let service_cidr = config.service_cidr();
    if cluster_cidr.overlaps(&service_cidr) {
        issues.push(
            Issue::new(
                spec_path!["spec", "cluster", "serviceCidr"],
                format!("serviceCidr {service_cidr} overlaps clusterCidr {cluster_cidr}"),
            )
            .hint("pods and services need separate networks, for example 10.42.0.0/16 and 10.43.0.0/16"),
        );
    }
    if let Some(dns) = config.cluster_dns
        && !service_cidr.contains(&dns)
    {
        issues.push(
            Issue::new(
                spec_path!["spec", "cluster", "clusterDns"],
                format!("clusterDns {dns} is outside serviceCidr {service_cidr}"),
            )
            .hint(format!(
                "pick an address inside {service_cidr}, such as {}",
                config.cluster_dns_default()
            )),
        );
    }
}

/// Host addresses must lie outside the cluster and service networks.
pub(super) fn check_host_addresses(cluster: &Cluster, issues: &mut Vec<Issue>) {
    let config = &cluster.spec.cluster;
    let cluster_cidr = config.cluster_cidr();
    let service_cidr = config.service_cidr();
    for (i, host) in cluster.spec.hosts.iter().enumerate() {
        let fields = [
            ("address", Some(&host.address)),
            ("publicAddress", host.public_address.as_ref()),
            ("privateAddress", host.private_address.as_ref()),
        ];
        for (field, value) in fields {
            let Some(ip) = value.and_then(|value| value.parse::<IpAddr>().ok()) else {
                continue;
            };
            for (name, cidr) in [("clusterCidr", cluster_cidr), ("serviceCidr", service_cidr)] {
                if cidr.contains(&ip) {
                    issues.push(
                        Issue::new(
                            spec_path!["spec", "hosts", i, field],
                            format!("host address {ip} is inside {name} {cidr}"),
                        )
                        .hint(format!(
                            "choose a {name} that does not contain the hosts' network"
                        )),
                    );
                }
            }
        }
    }
}

/// The registration address, cluster domain, TLS SANs and extra config keys, each on its own.
pub(super) fn check_values(cluster: &Cluster, issues: &mut Vec<Issue>) {
    let config = &cluster.spec.cluster;
    if let Some(address) = &config.registration_address
        && !super::hosts::is_address(address)
    {
        issues.push(
            Issue::new(
                spec_path!["spec", "cluster", "registrationAddress"],
                format!("registrationAddress `{address}` is neither an IP address nor a DNS name"),
            )
            .hint(format!("write only the address (a VIP, DNS name or load balancer), such as 192.0.2.10 or k3s-api.example.com: port {} is implied", crate::k3s::ports::API_PORT)),
        );
    }
    if let Some(domain) = &config.cluster_domain
        && !is_dns_subdomain(domain)
    {
        issues.push(Issue::new(
            spec_path!["spec", "cluster", "clusterDomain"],
            format!("clusterDomain `{domain}` is not a DNS name"),
        ));
    }
    for (i, san) in config.tls_sans.iter().enumerate() {
        if san.parse::<IpAddr>().is_err()
            && !is_dns_subdomain(&san.to_ascii_lowercase().replace("*.", ""))
        {
            issues.push(Issue::new(
                spec_path!["spec", "cluster", "tlsSans", i],
                format!("TLS SAN `{san}` is neither an IP address nor a DNS name"),
            ));
        }
    }
    for (field, map) in [
        ("serverConfig", &config.server_config),
        ("agentConfig", &config.agent_config),
    ] {
        for key in map.keys() {
            if let Some((_, instead)) = MANAGED_CONFIG_KEYS
                .iter()
                .find(|(managed, _)| managed == key)
            {
                issues.push(
                    Issue::new(
                        spec_path!["spec", "cluster", field, key],
                        format!("`{key}` is managed by k3sctl and cannot be set in {field}"),
                    )
                    .at_key()
                    .hint(*instead),
                );
            }
        }
    }
}
