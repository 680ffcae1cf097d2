//! `--spec-out`: a k3sctl cluster spec for the lab's hosts (the first `servers` hosts servers,
//! default one, the rest agents) using the lab's ssh files, a K3s binary file and one kubeconfig
//! export.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use crate::command;
use crate::error::{LabError, Result, fs_step};
use crate::paths::LabPaths;
use crate::state::LabState;

/// Version the stand-in is stamped with when none is given.
pub const DEFAULT_K3S_VERSION: &str = "v1.33.5+k3s1";

/// How the spec gets its K3s binary.
#[derive(Debug, Clone, Default)]
pub struct SpecOptions {
    /// Use this file as `k3s.binary.file`; default: the k3s-sim stand-in stamped into the lab dir.
    pub k3s_binary: Option<PathBuf>,
    /// `k3s.version`; default [`DEFAULT_K3S_VERSION`].
    pub k3s_version: Option<String>,
    /// How many of the first hosts are servers; default 1.
    pub servers: Option<u8>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Spec<'a> {
    api_version: &'a str,
    kind: &'a str,
    metadata: Metadata<'a>,
    spec: Body<'a>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    name: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    host_defaults: HostDefaults,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    proxmox_hosts: Vec<ProxmoxHost>,
    hosts: Vec<Host>,
    k3s: K3s<'a>,
    kubeconfigs: Vec<Kubeconfig>,
}

#[derive(Serialize)]
struct HostDefaults {
    ssh: Ssh,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Ssh {
    user: String,
    identity_file: String,
    config_file: String,
    known_hosts_file: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Host {
    name: String,
    address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    private_address: Option<String>,
    role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pct: Option<Pct>,
}

#[derive(Serialize)]
struct ProxmoxHost {
    name: String,
    address: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Pct {
    proxmox_host: String,
    vmid: u32,
}

#[derive(Serialize)]
struct K3s<'a> {
    version: &'a str,
    binary: Binary,
}

#[derive(Serialize)]
struct Binary {
    file: String,
}

#[derive(Serialize)]
struct Kubeconfig {
    name: &'static str,
    path: String,
}

/// Renders the spec for `state`, with `binary` as the K3s binary of version `version` and the
/// first `servers` hosts as servers.
pub fn render(state: &LabState, binary: &Path, version: &str, servers: usize) -> Result<String> {
    if servers == 0 || servers > state.hosts.len().max(1) {
        return Err(LabError::Invalid {
            what: format!(
                "lab {}: --servers {servers} with {} host(s)",
                state.name,
                state.hosts.len()
            ),
            hint: "give between 1 and --hosts servers".into(),
        });
    }
    let p = state.paths();
    let text = |path: PathBuf| path.display().to_string();
    let spec = Spec {
        api_version: "k3sctl.io/v1alpha1",
        kind: "Cluster",
        metadata: Metadata { name: &state.name },
        spec: Body {
            host_defaults: HostDefaults {
                ssh: Ssh {
                    user: state
                        .login_user
                        .as_ref()
                        .map_or_else(|| "root".to_owned(), |u| u.name.clone()),
                    identity_file: text(p.identity()),
                    config_file: text(p.ssh_config()),
                    known_hosts_file: text(p.known_hosts()),
                },
            },
            proxmox_hosts: state
                .proxmox
                .iter()
                .filter_map(|px| {
                    let node = state.host(&px.node).ok()?;
                    Some(ProxmoxHost {
                        name: px.node.clone(),
                        address: state.address(node).to_string(),
                    })
                })
                .collect(),
            hosts: state
                .hosts
                .iter()
                .filter(|h| state.proxmox.as_ref().is_none_or(|px| px.node != h.name))
                .enumerate()
                .map(|(i, h)| Host {
                    name: h.name.clone(),
                    address: state.address(h).to_string(),
                    private_address: state.private_address(h).map(|a| a.to_string()),
                    role: if i < servers { "server" } else { "agent" },
                    pct: state
                        .proxmox
                        .as_ref()
                        .and_then(|px| px.by_host(&h.name))
                        .map(|c| Pct {
                            proxmox_host: state
                                .proxmox
                                .as_ref()
                                .map(|px| px.node.clone())
                                .unwrap_or_default(),
                            vmid: c.vmid,
                        }),
                })
                .collect(),
            k3s: K3s {
                version,
                binary: Binary {
                    file: text(binary.to_owned()),
                },
            },
            kubeconfigs: vec![Kubeconfig {
                name: "lab",
                path: text(p.kubeconfig()),
            }],
        },
    };
    serde_saphyr::to_string(&spec).map_err(|e| LabError::Invalid {
        what: format!("lab {}: cannot render the spec: {e}", state.name),
        hint: "report this as a bug in crates/lab".into(),
    })
}

/// Resolves the K3s binary (stamping the stand-in into the lab dir if needed) and writes the spec.
pub fn write(state: &LabState, out: &Path, opts: &SpecOptions) -> Result<()> {
    let version = opts.k3s_version.as_deref().unwrap_or(DEFAULT_K3S_VERSION);
    let binary = match &opts.k3s_binary {
        Some(path) => fs_err::canonicalize(path).map_err(|e| LabError::NoK3sBinary {
            detail: format!("--k3s-binary: {e}"),
        })?,
        None => stamp_stand_in(&state.paths(), version)?,
    };
    let text = render(
        state,
        &binary,
        version,
        usize::from(opts.servers.unwrap_or(1)),
    )?;
    fs_err::write(out, text).map_err(fs_step(format!("lab {}: write spec", state.name)))
}

/// Where the k3s-sim binary is looked for: next to the current executable, and one level up
/// (test binaries live in `target/<profile>/deps`).
pub fn stand_in_candidates() -> Vec<PathBuf> {
    let Ok(exe) = std::env::current_exe() else {
        return Vec::new();
    };
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join("k3s-sim"))
        .collect()
}

/// The `k3sctl-lab` binary: the current executable when it is one, else next to it (tests).
pub fn find_lab_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(|e| LabError::NoK3sBinary {
        detail: format!("cannot find the current executable: {e}"),
    })?;
    if exe.file_name().is_some_and(|n| n == "k3sctl-lab") {
        return Ok(exe);
    }
    let candidates: Vec<PathBuf> = exe
        .ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join("k3sctl-lab"))
        .collect();
    candidates
        .iter()
        .find(|c| c.is_file())
        .cloned()
        .ok_or_else(|| LabError::Invalid {
            what: format!(
                "the Proxmox stand-in needs the k3sctl-lab binary (its `pct`), not found at {}",
                candidates
                    .iter()
                    .map(|c| c.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
            hint: "build it first: `cargo build -p lab --bin k3sctl-lab`".into(),
        })
}

/// The k3s-sim binary next to the current executable, or an error naming where it looked.
pub fn find_stand_in() -> Result<PathBuf> {
    let candidates = stand_in_candidates();
    candidates
        .iter()
        .find(|c| c.is_file())
        .cloned()
        .ok_or_else(|| LabError::NoK3sBinary {
            detail: format!(
                "k3s-sim not found at {}",
                candidates
                    .iter()
                    .map(|c| c.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        })
}

fn stamp_stand_in(paths: &LabPaths, version: &str) -> Result<PathBuf> {
    let sim = find_stand_in()?;
    let out = paths.k3s_binary();
    command::run(
        "stamp the k3s-sim stand-in",
        Command::new(&sim)
            .args(["stamp", "--version", version, "-o"])
            .arg(&out),
        "rebuild k3s-sim (`cargo build -p k3s-sim`) or pass --k3s-binary PATH",
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::login_user::{LoginUser, SudoMode};

    /// Lab `name` (number `index`) with `hosts` hosts named `<name>-<n>`.
    fn lab(name: &str, index: u8, hosts: u8) -> LabState {
        LabState {
            name: name.into(),
            id: "id".into(),
            index,
            dual_nic: false,
            image: PathBuf::from("/img"),
            owner: None,
            hosts: (1..=hosts)
                .map(|n| crate::state::HostState {
                    name: format!("{name}-{n}"),
                    number: n,
                    cut: false,
                    lost: false,
                    partitioned_from: Default::default(),
                })
                .collect(),
            login_user: None,
            proxmox: None,
        }
    }

    #[test]
    fn the_spec_logs_in_as_the_lab_login_user() {
        let mut state = lab("nr", 3, 0);
        let root = render(&state, Path::new("/k3s"), "v1.33.5+k3s1", 1).expect("render");
        assert!(root.contains("user: root"), "{root}");
        state.login_user = Some(LoginUser::new("debian", SudoMode::Passwordless).expect("user"));
        let text = render(&state, Path::new("/k3s"), "v1.33.5+k3s1", 1).expect("render");
        assert!(text.contains("user: debian"), "{text}");
    }

    #[test]
    fn a_proxmox_lab_spec_reaches_containers_through_pct() {
        let mut state = lab("px", 4, 2);
        crate::proxmox::setup::add_node(&mut state);
        let text = render(&state, Path::new("/k3s"), "v1.33.5+k3s1", 1).expect("render");
        assert!(
            text.contains("proxmoxHosts:\n  - name: px-pve\n    address: \"10.213.4.13\"\n"),
            "{text}"
        );
        assert!(
            text.contains("proxmoxHost: px-pve\n      vmid: 201\n"),
            "{text}"
        );
        assert!(text.contains("vmid: 202"), "{text}");
        assert_eq!(
            text.matches("name: px-pve").count(),
            1,
            "the node is no cluster host: {text}"
        );
    }

    #[test]
    fn the_first_n_hosts_are_servers_and_more_than_the_hosts_is_refused() {
        let state = lab("ha", 5, 5);
        let text = render(&state, Path::new("/k3s"), "v1.33.5+k3s1", 3).expect("render");
        let spec: serde_json::Value = serde_saphyr::from_str(&text).expect("yaml");
        let roles: Vec<&str> = (0..5)
            .map(|i| {
                spec["spec"]["hosts"][i]["role"]
                    .as_str()
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(roles, ["server", "server", "server", "agent", "agent"]);
        for bad in [0, 6] {
            let err = render(&state, Path::new("/k3s"), "v1.33.5+k3s1", bad).expect_err("refused");
            assert!(
                err.to_string().contains(&format!("--servers {bad}")),
                "{err}"
            );
        }
    }
}
