//! Taking over K3s's files without a restart: when the files k3sctl would write differ from
//! what a host has (another tool's unit with flags in ExecStart, its env file, its config.yaml
//! and drop-ins, a unit drop-in replacing ExecStart), the planner compares the effective configuration K3s runs with now and the
//! one it would run with after the writes. Only a difference there needs a restart, and the
//! plan names it. Pure.

use super::desired::{DesiredHost, FileContent};
use super::observed::{ObservedHost, ObservedNode, StartFiles};
use crate::k3s::config::{CONFIG_PATH, NodeRole};
use crate::k3s::effective::{
    Change, Compare, NodeDefaults, Sources, effective, env_files_of_unit, unit_with_dropins,
};
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
    let before = effective(&observed_sources(host.role, start), &defaults).ok()?;
    let after = effective(&desired_sources(host, start, token)?, &defaults).ok()?;
    let how = Compare {
        role: host.role,
        server_with_data: host.role == NodeRole::Server && (found.etcd_data || found.has_token),
    };
    Some(Adoption {
        changes: crate::k3s::effective::changes(&before, &after, how),
    })
}

/// The start files (path → sha256) k3sctl would leave on the host, when all are known (the
/// env file needs the token).
pub fn desired_set(
    host: &DesiredHost,
    token: Option<&Secret>,
) -> Option<std::collections::BTreeMap<String, String>> {
    start_paths(host.role)
        .into_iter()
        .map(|path| {
            let file = host.files.iter().find(|f| f.path == path)?;
            Some((path, file.content.wanted_sha256(token)?))
        })
        .collect()
}

/// [`judge`], after an adoption record on the host (`found.adopted`, for K3s's current start)
/// has had its say. The files the record vouches for are the set k3sctl judged before it
/// began writing; when the spec still renders exactly that set, the adoption was interrupted
/// and resumes: no restart. When it renders something else and the host holds that set only
/// in part, the files are a mix that is not what K3s runs with, and nothing can be judged
/// (`None`: the planner restarts). Otherwise the files on the host are what K3s runs with as
/// far as its configuration goes, and they are judged.
pub fn judge_after_record(
    host: &DesiredHost,
    found: &ObservedHost,
    node: Option<&ObservedNode>,
    token: Option<&Secret>,
) -> Option<Adoption> {
    if !found.adopted.is_empty() {
        if desired_set(host, token).as_ref() == Some(&found.adopted) {
            return Some(Adoption {
                changes: Vec::new(),
            });
        }
        let complete = found
            .adopted
            .iter()
            .all(|(path, sha)| found.file(path).sha256.as_deref() == Some(sha.as_str()));
        if !complete {
            return None;
        }
    }
    judge(host, found, node, token)
}

/// What the host's files say K3s starts with: the unit with its drop-ins, and the env files
/// they name (`EnvironmentFile=`), wherever they are.
pub(crate) fn observed_sources(role: NodeRole, start: &StartFiles) -> Sources {
    let unit = unit_with_dropins(&start.unit, &start.unit_dropins);
    Sources {
        env_files: env_files_of_unit(&unit, unit_name(role), &start.env_files),
        unit,
        config: start.config.clone(),
        dropins: start.dropins.clone(),
    }
}

/// What K3s would start with after the writes: k3sctl's unit with the host's unit drop-ins
/// (k3sctl leaves them, except the `ExecStart=` lines it takes over:
/// [`crate::k3s::unit_dropins::after_takeover`]), config.yaml and env file, and the other env
/// files the unit names as the host has them; no config.yaml.d drop-ins.
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
    let unit = unit_with_dropins(
        &plain(&unit_path(host.role))?,
        &crate::k3s::unit_dropins::after_takeover(&start.unit_dropins),
    );
    let config = plain(CONFIG_PATH)?;
    let env = env_path(host.role);
    let (env_text, _) = file(&env)?.content.resolve(token)?;
    let mut found: Vec<(String, Secret)> = start
        .env_files
        .iter()
        .filter(|(path, _)| *path != env)
        .cloned()
        .collect();
    found.push((env, env_text));
    Some(Sources {
        env_files: env_files_of_unit(&unit, unit_name(host.role), &found),
        unit,
        config: Some(config),
        dropins: Vec::new(),
    })
}

/// Whether two registries.yaml texts say the same (comments, key order and quoting aside).
pub fn same_yaml(a: &str, b: &str) -> bool {
    let parse = |t: &str| serde_saphyr::from_str::<serde_json::Value>(t).ok();
    matches!((parse(a), parse(b)), (Some(x), Some(y)) if x == y)
}
