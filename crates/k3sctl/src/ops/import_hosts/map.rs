//! What was read from running hosts → a spec that reproduces their effective configuration,
//! with the origin of every value (for comments) and a warning for everything the spec cannot
//! express (apply would change it). Pure.

use std::collections::{BTreeMap, BTreeSet};

use crate::k3s::effective::{Compare, Effective, Setting, changes, env_flag};
use crate::k3s::ports::API_PORT;
use crate::k3s::version::K3sVersion;
use crate::spec::model::{Cluster, Host, Role};
use crate::spec::{SpecPath, Taint};

/// One host as read.
#[derive(Debug, Clone)]
pub struct HostSeen {
    /// The host as given (name, address, how to reach it).
    pub base: Host,
    /// Server or agent (from the unit found).
    pub role: Role,
    /// `k3s --version`.
    pub version: Option<K3sVersion>,
    /// The host name.
    pub hostname: Option<String>,
    /// The effective configuration of its files.
    pub files: Effective,
    /// What K3s reports it runs with (`k3s.io/node-args`), when the API answered.
    pub running: Option<Effective>,
    /// /etc/rancher/k3s/registries.yaml.
    pub registries: Option<String>,
    /// The Node as the API shows it.
    pub node: Option<NodeSeen>,
    /// Files in the server's manifests directory that K3s did not write itself.
    pub manifests: Vec<String>,
    /// Unit drop-ins that set `ExecStart`, which apply takes over.
    pub takeovers: Vec<crate::k3s::unit_dropins::Takeover>,
    /// Environment variables the unit drop-ins set, which stay after apply.
    pub kept_environment: Vec<String>,
}

/// A Node's labels, taints and addresses from the API.
#[derive(Debug, Clone, Default)]
pub struct NodeSeen {
    /// metadata.labels.
    pub labels: BTreeMap<String, String>,
    /// spec.taints, `key[=value]:Effect`.
    pub taints: Vec<String>,
    /// `k3s.io/internal-ip` (first address).
    pub internal_ip: Option<String>,
}

/// The spec made from the hosts.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The spec.
    pub cluster: Cluster,
    /// What the spec cannot express, one sentence each.
    pub warnings: Vec<String>,
    /// Where each value came from, by spec path.
    pub comments: Vec<(SpecPath, String)>,
}

/// Settings k3sctl derives from the spec's own fields (or never writes), not carried as extra
/// config keys.
const NOT_EXTRA: &[&str] = &[
    "server",
    "token",
    "token-file",
    "agent-token",
    "agent-token-file",
    "cluster-init",
    "node-name",
    "node-ip",
    "node-external-ip",
    "node-label",
    "node-taint",
    "tls-san",
    "cluster-cidr",
    "service-cidr",
    "cluster-dns",
    "cluster-domain",
    "disable",
    "write-kubeconfig-mode",
];

/// Labels K3s and Kubernetes set themselves.
fn own_label(key: &str) -> bool {
    let prefix = key.split('/').next().unwrap_or_default();
    key.contains('/')
        && (prefix.ends_with("kubernetes.io")
            || prefix.ends_with("k8s.io")
            || prefix.ends_with("k3s.io")
            || prefix.ends_with("cattle.io"))
}

fn json(setting: &Setting) -> Option<serde_json::Value> {
    match setting {
        Setting::On => Some(serde_json::Value::Bool(true)),
        Setting::Value(v) => Some(serde_json::Value::String(v.clone())),
        Setting::List(items) => Some(serde_json::Value::from(items.clone())),
        Setting::Secret(_) => None,
    }
}

fn single(setting: Option<&Setting>) -> Option<String> {
    match setting? {
        Setting::Value(v) => Some(v.clone()),
        Setting::List(items) if items.len() == 1 => Some(items[0].clone()),
        _ => None,
    }
}

/// The host part of `https://host:port`, and the port when written.
fn url_host(url: &str) -> (String, Option<String>) {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or_default();
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, port) = v6.split_once(']').unwrap_or((v6, ""));
        return (
            host.to_owned(),
            port.strip_prefix(':').map(ToOwned::to_owned),
        );
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => (host.to_owned(), Some(port.to_owned())),
        None => (authority.to_owned(), None),
    }
}

struct Builder {
    warnings: Vec<String>,
    comments: Vec<(SpecPath, String)>,
}

impl Builder {
    fn warn(&mut self, text: String) {
        if !self.warnings.contains(&text) {
            self.warnings.push(text);
        }
    }

    fn note(&mut self, path: &str, text: String) {
        self.comments.push((SpecPath::parse(path), text));
    }
}

/// Builds the spec: `base` keeps what the user gave (ssh settings, proxmox hosts, the binary
/// source); hosts, K3s version, cluster settings and registries come from what was read.
pub fn build(base: &Cluster, mut seen: Vec<HostSeen>) -> Result<Imported, String> {
    let mut b = Builder {
        warnings: Vec::new(),
        comments: Vec::new(),
    };
    if seen.is_empty() {
        return Err("no hosts to import".into());
    }
    // Node names first (node-name, else the host name K3s uses), so every note names the node.
    let mut renamed = Vec::new();
    for h in &mut seen {
        let name = single(h.files.settings.get("node-name"))
            .or_else(|| h.hostname.as_ref().map(|n| n.to_ascii_lowercase()))
            .unwrap_or_else(|| h.base.name.clone());
        if name != h.base.name {
            let how = match h.files.origins.get("node-name") {
                Some(origin) => format!("from {name}: {origin}"),
                None => format!("from {name}: hostname"),
            };
            renamed.push((name.clone(), how));
            h.base.name = name;
        }
    }
    // The server that started the cluster (no `server` to join) first, then the other servers,
    // then the agents, each in the order given.
    seen.sort_by_key(|h| match h.role {
        Role::Server if !h.files.settings.contains_key("server") => 0,
        Role::Server => 1,
        Role::Agent => 2,
    });
    let Some(first) = seen.iter().find(|h| h.role == Role::Server).cloned() else {
        return Err(
            "none of the hosts runs a K3s server (no k3s.service found); include at \
                    least one server"
                .into(),
        );
    };
    let mut cluster = base.clone();
    cluster.spec.hosts.clear();

    // Version.
    let versions: BTreeSet<String> = seen
        .iter()
        .filter_map(|h| h.version.map(|v| v.to_string()))
        .collect();
    if let Some(version) = first
        .version
        .or_else(|| seen.iter().find_map(|h| h.version))
    {
        cluster.spec.k3s.version = Some(version);
        cluster.spec.k3s.channel = None;
        b.note(
            "spec.k3s.version",
            format!("from {}: k3s --version", first.base.name),
        );
    }
    if versions.len() > 1 {
        b.warn(format!(
            "the hosts run different K3s versions ({}): the spec says {}; run `k3sctl upgrade` to \
             bring the others to it (apply refuses a version change on a running node)",
            versions.iter().cloned().collect::<Vec<_>>().join(", "),
            cluster
                .spec
                .k3s
                .version
                .map(|v| v.to_string())
                .unwrap_or_default()
        ));
    }

    // Cluster-wide server settings from the first server.
    let fs = &first.files.settings;
    let origin = |h: &HostSeen, key: &str| {
        format!(
            "from {}: {}",
            h.base.name,
            h.files.origins.get(key).map_or("K3s", String::as_str)
        )
    };
    let c = &mut cluster.spec.cluster;
    *c = Default::default();
    for (key, field) in [
        ("cluster-cidr", "clusterCidr"),
        ("service-cidr", "serviceCidr"),
    ] {
        let Some(setting) = fs.get(key) else { continue };
        match single(Some(setting)).map(|t| t.parse()) {
            Some(Ok(cidr)) => {
                if key == "cluster-cidr" {
                    c.cluster_cidr = Some(cidr);
                } else {
                    c.service_cidr = Some(cidr);
                }
                b.note(&format!("spec.cluster.{field}"), origin(&first, key));
            }
            _ => b.warn(format!(
                "{}: {key} {} cannot be expressed (spec.cluster.{field} holds one IPv4 network)",
                first.base.name,
                setting.shown()
            )),
        }
    }
    let c = &mut cluster.spec.cluster;
    if let Some(dns) = single(fs.get("cluster-dns")) {
        match dns.parse() {
            Ok(ip) => {
                c.cluster_dns = Some(ip);
                b.note("spec.cluster.clusterDns", origin(&first, "cluster-dns"));
            }
            Err(_) => b.warn(format!(
                "{}: cluster-dns {dns} is not one address",
                first.base.name
            )),
        }
    }
    let c = &mut cluster.spec.cluster;
    if let Some(Setting::Value(domain)) = fs.get("cluster-domain") {
        c.cluster_domain = Some(domain.clone());
        b.note(
            "spec.cluster.clusterDomain",
            origin(&first, "cluster-domain"),
        );
    }
    let c = &mut cluster.spec.cluster;
    if let Some(Setting::List(items)) = fs.get("disable") {
        c.disable = items.clone();
        b.note("spec.cluster.disable", origin(&first, "disable"));
    }

    // Registration address: what the joiners use.
    let joiners = seen
        .iter()
        .filter(|h| h.base.name != first.base.name || h.role == Role::Agent);
    let mut urls = BTreeSet::new();
    let mut url_origin = None;
    for h in joiners {
        if let Some(Setting::Value(url)) = h.files.settings.get("server") {
            urls.insert(url.clone());
            url_origin.get_or_insert_with(|| origin(h, "server"));
        }
    }
    let first_addresses = [
        Some(first.base.address.clone()),
        single(first.files.settings.get("node-ip")),
        first.node.as_ref().and_then(|n| n.internal_ip.clone()),
    ];
    if let Some(url) = urls.iter().next() {
        let (host, port) = url_host(url);
        if port.as_deref().is_some_and(|p| p.parse() != Ok(API_PORT)) {
            b.warn(format!(
                "joiners use {url}: k3sctl joins on port {API_PORT} of the registration address"
            ));
        }
        if !first_addresses.iter().flatten().any(|a| *a == host) {
            cluster.spec.cluster.registration_address = Some(host.clone());
            b.note(
                "spec.cluster.registrationAddress",
                url_origin.clone().unwrap_or_default(),
            );
        }
    }
    if urls.len() > 1 {
        b.warn(format!(
            "the hosts join through different addresses ({}): the spec uses one",
            urls.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    let registration = cluster
        .spec
        .cluster
        .registration_address
        .clone()
        .or_else(|| Some(first.base.address.clone()));
    if let Some(Setting::List(sans)) = fs.get("tls-san") {
        let sans: Vec<String> = sans
            .iter()
            .filter(|s| Some(*s) != registration.as_ref())
            .cloned()
            .collect();
        if !sans.is_empty() {
            cluster.spec.cluster.tls_sans = sans;
            b.note("spec.cluster.tlsSans", origin(&first, "tls-san"));
        }
    }

    // Cluster-wide values every server must share.
    for h in seen.iter().filter(|h| h.role == Role::Server) {
        for key in [
            "cluster-cidr",
            "service-cidr",
            "cluster-dns",
            "cluster-domain",
            "disable",
        ] {
            if h.files.settings.get(key) != fs.get(key) {
                b.warn(format!(
                    "{}: {key} differs from {}'s; the spec keeps {}'s (K3s refuses servers that \
                     disagree on it)",
                    h.base.name, first.base.name, first.base.name
                ));
            }
        }
    }

    // Extra config keys: shared by every node of a role → serverConfig/agentConfig, else per
    // host.
    for role in [Role::Server, Role::Agent] {
        let members: Vec<&HostSeen> = seen.iter().filter(|h| h.role == role).collect();
        let keys: BTreeSet<&String> = members
            .iter()
            .flat_map(|h| h.files.settings.keys())
            .filter(|k| !NOT_EXTRA.contains(&k.as_str()))
            .collect();
        for key in keys {
            let values: Vec<Option<&Setting>> =
                members.iter().map(|h| h.files.settings.get(key)).collect();
            if let Some(Some(Setting::Secret(_))) = values.iter().find(|v| v.is_some()) {
                b.warn(format!(
                    "`{key}` holds a credential and is not written to the spec: k3sctl would \
                     drop it from the config (set it by hand)"
                ));
                continue;
            }
            let shared = values.iter().all(|v| *v == values[0]);
            if shared && let Some(Some(value)) = values.first() {
                let Some(value) = json(value) else { continue };
                let (field, path) = match role {
                    Role::Server => (&mut cluster.spec.cluster.server_config, "serverConfig"),
                    Role::Agent => (&mut cluster.spec.cluster.agent_config, "agentConfig"),
                };
                field.insert(key.clone(), value);
                let mut spec_path = SpecPath::parse(&format!("spec.cluster.{path}"));
                spec_path = spec_path.key(key.clone());
                b.comments.push((spec_path, origin(members[0], key)));
            }
        }
    }

    // Hosts.
    for (index, h) in seen.iter().enumerate() {
        let s = &h.files.settings;
        let mut host = h.base.clone();
        host.role = h.role;
        if let Some((_, how)) = renamed.iter().find(|(n, _)| *n == host.name) {
            b.note(&format!("spec.hosts[{index}].name"), how.clone());
        }
        let node_ip = match s.get("node-ip") {
            Some(Setting::List(ips)) if ips.len() > 1 => {
                b.warn(format!(
                    "{}: node-ip {} (dual stack) cannot be expressed: the spec holds one address",
                    host.name,
                    ips.join(",")
                ));
                ips.first().cloned()
            }
            Some(setting) => single(Some(setting)),
            None => h.node.as_ref().and_then(|n| n.internal_ip.clone()),
        };
        if let Some(ip) = node_ip
            && ip != host.address
        {
            host.private_address = Some(ip);
            b.note(
                &format!("spec.hosts[{index}].privateAddress"),
                match s.get("node-ip") {
                    Some(_) => origin(h, "node-ip"),
                    None => format!("from {}: the Node's k3s.io/internal-ip", host.name),
                },
            );
        }
        if let Some(ip) = single(s.get("node-external-ip")) {
            host.public_address = Some(ip);
            b.note(
                &format!("spec.hosts[{index}].publicAddress"),
                origin(h, "node-external-ip"),
            );
        }
        host.labels.clear();
        if let Some(Setting::List(labels)) = s.get("node-label") {
            for label in labels {
                let (k, v) = label.split_once('=').unwrap_or((label, ""));
                host.labels.insert(k.to_owned(), v.to_owned());
            }
            b.note(
                &format!("spec.hosts[{index}].labels"),
                origin(h, "node-label"),
            );
        }
        host.taints.clear();
        if let Some(Setting::List(taints)) = s.get("node-taint") {
            for taint in taints {
                match taint.parse::<Taint>() {
                    Ok(t) => host.taints.push(t),
                    Err(e) => b.warn(format!("{}: node-taint {taint}: {e}", host.name)),
                }
            }
            b.note(
                &format!("spec.hosts[{index}].taints"),
                origin(h, "node-taint"),
            );
        }
        if let Some(node) = &h.node {
            let extra: Vec<String> = node
                .labels
                .iter()
                .filter(|(k, v)| !own_label(k) && host.labels.get(*k) != Some(*v))
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            if !extra.is_empty() {
                b.warn(format!(
                    "{}: labels set through the API ({}) stay on the Node but are not in the \
                     spec (add them to hosts[].labels to have them at registration)",
                    host.name,
                    extra.join(", ")
                ));
            }
            let wanted: Vec<String> = host.taints.iter().map(ToString::to_string).collect();
            let extra: Vec<&String> = node.taints.iter().filter(|t| !wanted.contains(t)).collect();
            if !extra.is_empty() {
                b.warn(format!(
                    "{}: taints set through the API ({}) stay on the Node but are not in the \
                     spec",
                    host.name,
                    extra
                        .iter()
                        .map(|t| t.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        if let Some(Setting::Value(mode)) = s.get("write-kubeconfig-mode") {
            b.warn(format!(
                "{}: write-kubeconfig-mode {mode}: k3sctl keeps the admin kubeconfig at 0600 \
                 (apply changes it and restarts K3s)",
                host.name
            ));
        }
        // Per-host extra keys (those not shared by every node of the role).
        let shared = match h.role {
            Role::Server => &cluster.spec.cluster.server_config,
            Role::Agent => &cluster.spec.cluster.agent_config,
        };
        host.config.clear();
        for (key, setting) in s {
            if NOT_EXTRA.contains(&key.as_str()) || shared.contains_key(key) {
                continue;
            }
            if let Some(value) = json(setting) {
                host.config.insert(key.clone(), value);
                let path = SpecPath::parse(&format!("spec.hosts[{index}].config")).key(key.clone());
                b.comments.push((path, origin(h, key)));
            }
        }
        for name in h.files.environment.keys() {
            if h.kept_environment.contains(name) {
                continue;
            }
            b.warn(format!(
                "{}: the environment variable {name} of K3s cannot be expressed in the spec: \
                 apply would drop it (and restart K3s)",
                host.name
            ));
        }
        if let Some(running) = &h.running {
            let how = Compare {
                role: crate::k3s::config::NodeRole::Server,
                server_with_data: true,
            };
            let mut running = running.clone();
            running
                .settings
                .retain(|_, v| !matches!(v, Setting::Secret(_)));
            let mut files = h.files.clone();
            // Flags given as environment variables (`K3S_RESOLV_CONF`) are not in the
            // annotation K3s writes, whatever it runs with.
            let origins = &h.files.origins;
            files.settings.retain(|k, v| {
                !matches!(v, Setting::Secret(_))
                    && origins.get(k).is_none_or(|o| env_flag(o).is_none())
            });
            files.environment.clear();
            let differ = changes(&running, &files, how);
            if !differ.is_empty() {
                b.warn(format!(
                    "{}: K3s runs with other settings than its files say ({}): it was not \
                     restarted after they changed; the spec follows the files",
                    host.name,
                    differ
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
            }
        }
        for t in &h.takeovers {
            b.warn(format!(
                "{}: {} replaces the unit's ExecStart; its flags are in the spec and apply takes \
                 it over: its ExecStart lines go (k3sctl's unit holds the command, config.yaml \
                 the flags), the original is kept as {}, and K3s is not restarted when what it \
                 runs with stays the same",
                host.name, t.path, t.backup
            ));
        }
        for manifest in &h.manifests {
            b.warn(format!(
                "{}: manifest {manifest} is not carried into the spec (add it under \
                 spec.addons.manifests to have k3sctl manage it)",
                host.name
            ));
        }
        cluster.spec.hosts.push(host);
    }

    // Registries from the first server (every node must read the same).
    if let Some(text) = &first.registries {
        registries(&mut cluster, text, &first.base.name, &mut b);
    }
    for h in &seen {
        if h.registries != first.registries {
            b.warn(format!(
                "{}: registries.yaml differs from {}'s; the spec keeps {}'s",
                h.base.name, first.base.name, first.base.name
            ));
        }
    }
    Ok(Imported {
        cluster,
        warnings: b.warnings,
        comments: b.comments,
    })
}

fn registries(cluster: &mut Cluster, text: &str, host: &str, b: &mut Builder) {
    let Ok(imported) = crate::spec::import::registries::from_registries_yaml(text) else {
        b.warn(format!(
            "{host}: registries.yaml is not valid YAML and was not carried over"
        ));
        return;
    };
    for name in &imported.with_credentials {
        b.warn(crate::spec::import::registries::credentials_warning(
            host, name,
        ));
    }
    let spec = &mut cluster.spec.registries;
    if !imported.registries.mirrors.is_empty() {
        spec.mirrors.extend(imported.registries.mirrors);
        b.note(
            "spec.registries.mirrors",
            format!("from {host}: registries.yaml"),
        );
    }
    if !imported.registries.configs.is_empty() {
        spec.configs.extend(imported.registries.configs);
        b.note(
            "spec.registries.configs",
            format!("from {host}: registries.yaml"),
        );
    }
}

/// Puts each comment at the end of the line its path is on in `text` (the rendered spec).
pub fn annotate(text: &str, comments: &[(SpecPath, String)]) -> String {
    let Some(tree) = crate::spec::SpanTree::parse(text) else {
        return text.to_owned();
    };
    let mut by_line: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
    for (path, note) in comments {
        let position = tree.locate(path, crate::spec::Target::Key);
        if position != crate::spec::Position::START {
            let notes = by_line.entry(position.line).or_default();
            if !notes.contains(&note.as_str()) {
                notes.push(note);
            }
        }
    }
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        out.push_str(line);
        if let Some(notes) = by_line.get(&(i as u64 + 1))
            && !line.contains(" #")
        {
            out.push_str("  # ");
            out.push_str(&notes.join("; "));
        }
        out.push('\n');
    }
    out
}
