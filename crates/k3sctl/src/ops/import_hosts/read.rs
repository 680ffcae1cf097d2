//! Reading K3s from running hosts in one round trip each (unit, env files, config.yaml and its
//! drop-ins, registries.yaml, version, host name, the server's manifests), then the Nodes from
//! the API of the first server that answers. Env files hold the token: they are read into
//! [`Secret`]s and only their settings' presence leaves this module.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;

use super::map::{HostSeen, NodeSeen};
use crate::host::ExecRequest;
use crate::k3s::config::{CONFIG_PATH, NodeRole};
use crate::k3s::effective::{
    NodeDefaults, Sources, effective, env_files_of_unit, from_node_args, unit_with_dropins,
};
use crate::k3s::manifests::MANIFESTS_DIR;
use crate::k3s::registries::REGISTRIES_PATH;
use crate::k3s::unit::{BINARY_PATH, unit_name, unit_path};
use crate::k3s::unit_dropins::{UnitDropin, applied, exec_start_source, takeovers};
use crate::k3s::version::K3sVersion;
use crate::ops::connect::{ConnectOptions, connect_all};
use crate::ops::error::OpsError;
use crate::ops::kube_api::failover_through;
use crate::run::observe::{read_start_files, start_file_paths};
use crate::secret::Secret;
use crate::spec::{Host, LoadedSpec, Role};

/// Manifests K3s writes itself (its packaged components).
const PACKAGED: &[&str] = &[
    "ccm.yaml",
    "coredns.yaml",
    "local-storage.yaml",
    "rolebindings.yaml",
    "runtimes.yaml",
    "traefik.yaml",
    "metrics-server",
];

/// What one host said.
#[derive(Debug, Default)]
struct Report {
    role: Option<NodeRole>,
    version: Option<K3sVersion>,
    hostname: Option<String>,
    start: BTreeMap<String, Secret>,
    dropins: Vec<(String, String)>,
    /// Unit drop-ins found by unit name (`k3s`, `k3s-agent`), `(path, text)`, wherever systemd
    /// looks for them.
    unit_dropins: BTreeMap<String, Vec<(String, String)>>,
    registries: Option<String>,
    manifests: Vec<String>,
}

fn script() -> String {
    let mut paths: Vec<String> = start_file_paths(NodeRole::Server);
    for p in start_file_paths(NodeRole::Agent) {
        if !paths.contains(&p) {
            paths.push(p);
        }
    }
    let read = read_start_files(
        &paths,
        &[
            (unit_path(NodeRole::Server), unit_name(NodeRole::Server)),
            (unit_path(NodeRole::Agent), unit_name(NodeRole::Agent)),
        ],
    );
    format!(
        "set -u\n\
         if [ -f {server_unit} ]; then echo role=server; elif [ -f {agent_unit} ]; then echo role=agent; fi\n\
         if [ -x {BINARY_PATH} ]; then echo \"version=$({BINARY_PATH} --version 2>/dev/null | head -n1)\"; fi\n\
         echo \"hostname=$(hostname)\"\n\
         {read}\
         for f in {CONFIG_PATH}.d/*; do if [ -f \"$f\" ]; then echo \"dropin=${{f##*/}} $(base64 -w0 \"$f\")\"; fi; done\n\
         if [ -f {REGISTRIES_PATH} ]; then echo \"registries=$(base64 -w0 {REGISTRIES_PATH})\"; fi\n\
         for f in {MANIFESTS_DIR}/*; do if [ -e \"$f\" ]; then echo \"manifest=${{f##*/}}\"; fi; done\n",
        server_unit = unit_path(NodeRole::Server),
        agent_unit = unit_path(NodeRole::Agent),
    )
}

fn decode(data: &str) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn parse(text: &str) -> Report {
    let mut r = Report::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        match key {
            "role" if value == "server" => r.role = Some(NodeRole::Server),
            "role" if value == "agent" => r.role = Some(NodeRole::Agent),
            "version" => r.version = K3sVersion::from_version_output(value).ok(),
            "hostname" => r.hostname = Some(value.trim().to_owned()),
            "src" => {
                let (path, data) = value.split_once(' ').unwrap_or((value, ""));
                r.start.insert(path.to_owned(), Secret::new(decode(data)));
            }
            "dropin" => {
                let (name, data) = value.split_once(' ').unwrap_or((value, ""));
                r.dropins.push((name.to_owned(), decode(data)));
            }
            "unitdropin" => {
                let mut parts = value.splitn(3, ' ');
                if let (Some(unit), Some(name), Some(data)) =
                    (parts.next(), parts.next(), parts.next())
                {
                    r.unit_dropins
                        .entry(unit.to_owned())
                        .or_default()
                        .push((name.to_owned(), decode(data)));
                }
            }
            "registries" => r.registries = Some(decode(value)),
            "manifest" if !PACKAGED.contains(&value) => r.manifests.push(value.to_owned()),
            _ => {}
        }
    }
    r
}

/// The unit drop-ins systemd applies to a role's unit, in its order.
fn unit_dropins(report: &Report, role: NodeRole) -> Vec<UnitDropin> {
    applied(
        unit_name(role),
        report
            .unit_dropins
            .get(unit_name(role))
            .map_or(&[][..], Vec::as_slice),
    )
}

/// The files a role's K3s starts from, from the report.
fn sources(report: &Report, role: NodeRole) -> Option<Sources> {
    let unit = unit_with_dropins(
        report.start.get(&unit_path(role))?.expose(),
        &unit_dropins(report, role),
    );
    let found: Vec<(String, Secret)> = report
        .start
        .iter()
        .map(|(p, s)| (p.clone(), s.clone()))
        .collect();
    Some(Sources {
        env_files: env_files_of_unit(&unit, unit_name(role), &found),
        unit,
        config: report.start.get(CONFIG_PATH).map(|s| s.expose().to_owned()),
        dropins: report.dropins.clone(),
    })
}

/// The name K3s runs a node under, from what its host said: the `node-name` its start files
/// set (unit, env files, config.yaml and drop-ins), else its host name lowercased, as K3s
/// names a node by default. `None` when no K3s unit is installed.
fn running_name(report: &Report) -> Result<Option<String>, String> {
    let Some(role) = report.role else {
        return Ok(None);
    };
    let sources = sources(report, role).ok_or("the K3s unit could not be read")?;
    let defaults = NodeDefaults {
        hostname: report.hostname.clone(),
        internal_ip: None,
    };
    let files = effective(&sources, &defaults).map_err(|e| e.to_string())?;
    match files.settings.get("node-name") {
        Some(crate::k3s::effective::Setting::Value(name)) => Ok(Some(name.clone())),
        _ => report
            .hostname
            .as_ref()
            .map(|h| Some(h.to_ascii_lowercase()))
            .ok_or_else(|| "its host name could not be read".to_owned()),
    }
}

/// For each host of `spec` named in `names`: the name its K3s runs the node under (`None`:
/// K3s is not installed there), or why it could not be read (unreachable, unreadable unit).
/// One round trip per host; hosts are read side by side.
pub async fn running_node_names(
    spec: &LoadedSpec,
    names: &[String],
    options: ConnectOptions,
) -> BTreeMap<String, Result<Option<String>, String>> {
    let hosts: Vec<_> = spec
        .hosts()
        .into_iter()
        .filter(|h| names.contains(&h.name))
        .collect();
    let (transports, errors) = connect_all(&hosts, options).await;
    let mut out: BTreeMap<String, Result<Option<String>, String>> = errors
        .iter()
        .map(|e| (e.host().to_owned(), Err(e.to_string())))
        .collect();
    let script = script();
    let reads = transports.iter().map(|(name, transport)| {
        let req = ExecRequest::new(script.clone())
            .sudo(true)
            .describe("reading K3s's node name");
        async move {
            let answer = match transport.exec_checked(req).await {
                Ok(out) => running_name(&parse(&out.stdout_text())),
                Err(e) => Err(e.to_string()),
            };
            (name.clone(), answer)
        }
    });
    out.extend(futures_util::future::join_all(reads).await);
    out
}

/// Reads every host of `skeleton` and the Nodes from the API.
pub async fn read_hosts(
    skeleton: &LoadedSpec,
    options: ConnectOptions,
) -> Result<Vec<HostSeen>, OpsError> {
    let hosts = skeleton.hosts();
    let (transports, errors) = connect_all(&hosts, options).await;
    if !errors.is_empty() {
        return Err(OpsError::Unreachable {
            errors,
            hint: String::new(),
        });
    }
    let script = script();
    let mut reports = Vec::new();
    for host in &hosts {
        let transport = Arc::clone(&transports[&host.name]);
        let req = ExecRequest::new(script.clone())
            .sudo(true)
            .describe("reading K3s's files");
        let out = transport.exec_checked(req).await?;
        reports.push(parse(&out.stdout_text()));
    }
    // The API, through the first server (as the hosts report their roles) whose API answers,
    // as everywhere else; without one, the Nodes are not read.
    let servers = hosts
        .iter()
        .zip(&reports)
        .filter(|(_, report)| report.role == Some(NodeRole::Server))
        .map(|(host, _)| host.name.as_str());
    let nodes: BTreeMap<String, crate::kube::NodeInfo> =
        match failover_through(servers, &transports).connect_named().await {
            Ok((_, api)) => api
                .node_infos()
                .await
                .unwrap_or_default()
                .into_iter()
                .map(|n| (n.name.clone(), n))
                .collect(),
            Err(_) => BTreeMap::new(),
        };
    let mut seen = Vec::new();
    for ((host, report), base) in hosts.iter().zip(&reports).zip(&skeleton.cluster.spec.hosts) {
        let role = report.role.ok_or_else(|| OpsError::ImportHost {
            host: host.name.clone(),
            problem: "no K3s unit found (/etc/systemd/system/k3s.service or \
                          k3s-agent.service): is K3s installed there?"
                .into(),
        })?;
        let sources = sources(report, role).ok_or_else(|| OpsError::ImportHost {
            host: host.name.clone(),
            problem: "the K3s unit could not be read".into(),
        })?;
        let mut defaults = NodeDefaults {
            hostname: report.hostname.clone(),
            internal_ip: None,
        };
        let files = effective(&sources, &defaults).map_err(|e| OpsError::ImportHost {
            host: host.name.clone(),
            problem: e.to_string(),
        })?;
        let node_name = match files.settings.get("node-name") {
            Some(crate::k3s::effective::Setting::Value(n)) => Some(n.clone()),
            _ => report.hostname.as_ref().map(|h| h.to_ascii_lowercase()),
        };
        let node = node_name.as_ref().and_then(|n| nodes.get(n));
        defaults.internal_ip = node
            .and_then(|n| n.annotations.get("k3s.io/internal-ip"))
            .and_then(|ips| ips.split(',').next())
            .map(|ip| ip.trim().to_owned());
        // Again with K3s's own choice of node IP known, so that a written one equal to it
        // is recognised as no setting.
        let files = effective(&sources, &defaults).map_err(|e| OpsError::ImportHost {
            host: host.name.clone(),
            problem: e.to_string(),
        })?;
        // Flags a drop-in's ExecStart gives: commented with the drop-in, which apply takes
        // over (its ExecStart lines go, the flags are in the spec).
        let dropins = unit_dropins(report, role);
        let mut files = files;
        let exec_start_dropin = exec_start_source(&dropins).map(|d| d.path.clone());
        if let Some(path) = &exec_start_dropin {
            for origin in files.origins.values_mut() {
                if origin == "ExecStart" {
                    *origin = format!("ExecStart in {path}");
                }
            }
        }
        let takeovers = takeovers(&dropins);
        // Environment= lines of the unit drop-ins stay after apply (k3sctl leaves the
        // drop-ins, all but their ExecStart lines).
        let kept_environment = crate::k3s::unit_dropins::environment_names(
            &crate::k3s::unit_dropins::after_takeover(&dropins),
        );
        let running = node
            .and_then(|n| n.annotations.get("k3s.io/node-args"))
            .and_then(|args| from_node_args(args, &defaults).ok());
        seen.push(HostSeen {
            base: Host {
                role: match role {
                    NodeRole::Server => Role::Server,
                    NodeRole::Agent => Role::Agent,
                },
                ..base.clone()
            },
            role: match role {
                NodeRole::Server => Role::Server,
                NodeRole::Agent => Role::Agent,
            },
            version: report.version,
            hostname: report.hostname.clone(),
            files,
            running,
            registries: report.registries.clone(),
            node: node.map(|n| NodeSeen {
                labels: n.labels.clone(),
                taints: n.taints.clone(),
                internal_ip: defaults.internal_ip.clone(),
            }),
            manifests: if role == NodeRole::Server {
                report.manifests.clone()
            } else {
                Vec::new()
            },
            takeovers,
            kept_environment,
        });
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lines_become_files_and_packaged_manifests_are_skipped() {
        let b64 = |t: &str| base64::engine::general_purpose::STANDARD.encode(t);
        let text = format!(
            "role=agent\nversion=k3s version v1.33.5+k3s1 (abc)\nhostname=Node-1\n\
             src=/etc/systemd/system/k3s-agent.service {}\n\
             src=/etc/systemd/system/k3s-agent.service.env {}\n\
             src=/etc/default/k3s-agent {}\n\
             dropin=10-a.yaml {}\nregistries={}\nmanifest=coredns.yaml\nmanifest=app.yaml\n",
            b64(
                "[Service]\nEnvironmentFile=-/etc/systemd/system/%N.service.env\n\
                 ExecStart=/usr/local/bin/k3s agent\n"
            ),
            b64("K3S_TOKEN=pw\n"),
            b64("HTTP_PROXY=http://not-read\n"),
            b64("snapshotter: native\n"),
            b64("mirrors: {}\n"),
        );
        let r = parse(&text);
        assert_eq!(r.role, Some(NodeRole::Agent));
        assert_eq!(
            r.version.map(|v| v.to_string()).as_deref(),
            Some("v1.33.5+k3s1")
        );
        assert_eq!(r.manifests, ["app.yaml"]);
        let s = sources(&r, NodeRole::Agent).expect("unit read");
        assert!(s.unit.contains("k3s agent"));
        // Only the env file the unit names: /etc/default/k3s-agent exists but is not read.
        assert_eq!(s.env_files.len(), 1);
        assert_eq!(
            s.env_files[0].0,
            "/etc/systemd/system/k3s-agent.service.env"
        );
        assert_eq!(s.dropins[0].0, "10-a.yaml");
        assert!(sources(&r, NodeRole::Server).is_none());
    }

    #[tokio::test]
    async fn script_runs_under_sh() {
        let out = tokio::process::Command::new("sh")
            .args(["-c", &script()])
            .output()
            .await
            .expect("sh runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("hostname="), "{text}");
    }
}
