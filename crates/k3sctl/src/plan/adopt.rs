//! Taking over K3s's files without a restart: when the files k3sctl would write differ from
//! what a host has (another tool's unit with flags in ExecStart, its env file, its config.yaml
//! and drop-ins), the planner compares the effective configuration K3s runs with now and the
//! one it would run with after the writes. Only a difference there needs a restart, and the
//! plan names it. Pure.

use super::desired::{DesiredHost, FileContent};
use super::observed::{ObservedHost, ObservedNode, StartFiles};
use crate::k3s::config::{CONFIG_PATH, NodeRole};
use crate::k3s::effective::{Change, Compare, NodeDefaults, Sources, effective};
use crate::k3s::unit::{env_path, unit_name, unit_path};
use crate::secret::Secret;

/// Where K3s reads config drop-ins.
pub const DROPIN_DIR: &str = "/etc/rancher/k3s/config.yaml.d";

/// The verdict on a host whose start files change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adoption {
    /// What K3s would run with differently (empty: only the form changes).
    pub changes: Vec<Change>,
}

/// The paths of the files K3s is started from that k3sctl writes.
pub fn start_paths(role: NodeRole) -> [String; 3] {
    [CONFIG_PATH.to_owned(), env_path(role), unit_path(role)]
}

/// Compares the effective configuration of the files found with that of the files k3sctl
/// would leave (its own unit, env file and config.yaml, the host's other env files, no
/// drop-ins). `None` when it cannot be judged (the files were not read, the env file needs a
/// token nobody has, a file cannot be understood): the planner then restarts as for any
/// changed file.
pub fn judge(
    host: &DesiredHost,
    found: &ObservedHost,
    node: Option<&ObservedNode>,
    token: Option<&Secret>,
) -> Option<Adoption> {
    let start = found.start.as_ref()?;
    let defaults = NodeDefaults {
        hostname: start.hostname.clone(),
        internal_ip: node.and_then(|n| n.internal_ip.clone()),
    };
    let before = effective(&observed_sources(start), &defaults).ok()?;
    let after = effective(&desired_sources(host, start, token)?, &defaults).ok()?;
    let how = Compare {
        role: host.role,
        server_with_data: host.role == NodeRole::Server && (found.etcd_data || found.has_token),
    };
    Some(Adoption {
        changes: crate::k3s::effective::changes(&before, &after, how),
    })
}

fn observed_sources(start: &StartFiles) -> Sources {
    Sources {
        unit: start.unit.clone(),
        env_files: start.env_files.clone(),
        config: start.config.clone(),
        dropins: start.dropins.clone(),
    }
}

fn desired_sources(
    host: &DesiredHost,
    start: &StartFiles,
    token: Option<&Secret>,
) -> Option<Sources> {
    let file = |path: &str| host.files.iter().find(|f| f.path == path);
    let plain = |path: &str| match file(path).map(|f| &f.content) {
        Some(FileContent::Plain(text)) => Some(text.clone()),
        _ => None,
    };
    let unit = plain(&unit_path(host.role))?;
    let config = plain(CONFIG_PATH)?;
    let env = env_path(host.role);
    let (env_text, _) = file(&env)?.content.resolve(token)?;
    let unit_name = unit_name(host.role);
    let mut env_files = Vec::new();
    for path in [
        format!("/etc/default/{unit_name}"),
        format!("/etc/sysconfig/{unit_name}"),
    ] {
        if let Some(found) = start.env_files.iter().find(|(p, _)| *p == path) {
            env_files.push(found.clone());
        }
    }
    env_files.push((env, env_text));
    Some(Sources {
        unit,
        env_files,
        config: Some(config),
        dropins: Vec::new(),
    })
}

/// Whether two registries.yaml texts say the same (comments, key order and quoting aside).
pub fn same_yaml(a: &str, b: &str) -> bool {
    let parse = |t: &str| serde_saphyr::from_str::<serde_json::Value>(t).ok();
    matches!((parse(a), parse(b)), (Some(x), Some(y)) if x == y)
}
