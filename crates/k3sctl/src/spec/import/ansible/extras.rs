//! Inventory vars beyond hosts and versions: `ansible_ssh_common_args` (and
//! `ansible_ssh_extra_args`) into ssh settings, `airgap_dir` into the binary and images files,
//! k3s-ansible's `extra_server_args` / `extra_agent_args` / `server_config_yaml` /
//! `agent_config_yaml` into the cluster config, its `extra_service_envs` / `extra_install_envs`
//! into settings (K3s's flag variables) and the version or channel, and its
//! `registries_config_yaml` into the registries. What cannot be carried is a warning.

use std::collections::BTreeMap;
use std::path::Path;

use super::inventory::Vars;
use crate::k3s::effective::{config_from_args, split_words};
use crate::spec::model::{BinarySource, ClusterConfig, K3sSpec, Registries, SshSettings};
use crate::spec::taint::Taint;

/// Adds the ssh options of `ansible_ssh_common_args` and `ansible_ssh_extra_args` to
/// `settings`.
pub(super) fn ssh_args(vars: &Vars, settings: &mut SshSettings, warnings: &mut Vec<String>) {
    for var in ["ansible_ssh_common_args", "ansible_ssh_extra_args"] {
        let Some(text) = vars.get(var) else { continue };
        let words = match split_words(text) {
            Ok(words) => words,
            Err(reason) => {
                warnings.push(format!("{var} `{text}` was not converted: {reason}"));
                continue;
            }
        };
        let mut rest = words.into_iter();
        while let Some(word) = rest.next() {
            // `-F path` and `-Fpath` alike.
            let (flag, attached) = match word.get(..2) {
                Some(f @ ("-F" | "-i" | "-o" | "-J" | "-p" | "-l")) if word.len() > 2 => {
                    (f.to_owned(), Some(word[2..].to_owned()))
                }
                _ => (word.clone(), None),
            };
            let needs_value = matches!(flag.as_str(), "-F" | "-i" | "-o" | "-J" | "-p" | "-l");
            let value = if needs_value {
                attached.or_else(|| rest.next())
            } else {
                None
            };
            match (flag.as_str(), value) {
                ("-F", Some(v)) => settings.config_file = Some(v),
                ("-i", Some(v)) => settings.identity_file = Some(v),
                ("-J", Some(v)) => {
                    settings.options.insert("ProxyJump".into(), v);
                }
                ("-p", Some(v)) => match v.parse() {
                    Ok(port) => settings.port = Some(port),
                    Err(_) => warnings.push(format!("{var}: port `{v}` is not a number")),
                },
                ("-l", Some(v)) => settings.user = Some(v),
                ("-o", Some(v)) => option(var, &v, settings, warnings),
                _ => warnings.push(format!(
                    "{var}: `{word}` has no ssh setting in the spec and was ignored"
                )),
            }
        }
    }
}

fn option(var: &str, text: &str, settings: &mut SshSettings, warnings: &mut Vec<String>) {
    let (key, value) = match text.split_once('=') {
        Some((k, v)) => (k.trim(), v.trim()),
        None => match text.split_once(' ') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => {
                warnings.push(format!("{var}: `-o {text}` has no value and was ignored"));
                return;
            }
        },
    };
    match key.to_ascii_lowercase().as_str() {
        "userknownhostsfile" => settings.known_hosts_file = Some(value.to_owned()),
        "identityfile" => settings.identity_file = Some(value.to_owned()),
        "user" => settings.user = Some(value.to_owned()),
        "port" => settings.port = value.parse().ok(),
        "stricthostkeychecking" if value.eq_ignore_ascii_case("accept-new") => {
            settings.accept_new_host_keys = Some(true);
        }
        "stricthostkeychecking" => warnings.push(format!(
            "{var}: StrictHostKeyChecking={value} was not carried over: k3sctl checks host keys \
             strictly (set hostDefaults.ssh.acceptNewHostKeys to record new ones)"
        )),
        _ => {
            settings.options.insert(key.to_owned(), value.to_owned());
        }
    }
}

/// `airgap_dir` (k3s-ansible): the binary and the images tarball the playbook copies from it.
pub(super) fn airgap(vars: &Vars, spec: &mut K3sSpec, warnings: &mut Vec<String>) {
    let Some(dir) = vars.get("airgap_dir") else {
        return;
    };
    let dir = dir.trim_end_matches('/');
    let exists = |name: &str| Path::new(dir).join(name).is_file();
    let binary = ["k3s", "k3s-amd64", "k3s-arm64", "k3s-armhf"]
        .into_iter()
        .find(|name| exists(name));
    let file = format!("{dir}/{}", binary.unwrap_or("k3s"));
    if binary.is_none() {
        warnings.push(format!(
            "airgap_dir {dir}: no k3s binary found there on this machine; the spec names {file}"
        ));
    }
    spec.binary = Some(BinarySource {
        file: Some(file),
        ..BinarySource::default()
    });
    if let Some(images) = [
        "k3s-airgap-images-amd64.tar.zst",
        "k3s-airgap-images-amd64.tar.gz",
        "k3s-airgap-images-amd64.tar",
        "k3s-airgap-images-arm64.tar.zst",
        "k3s-airgap-images-arm64.tar.gz",
        "k3s-airgap-images-arm64.tar",
    ]
    .into_iter()
    .find(|name| exists(name))
    {
        spec.airgap_images = Some(format!("{dir}/{images}"));
    }
}

/// Node labels and taints the inventory gives every host of a role (`--node-label` in
/// `extra_agent_args`, `node-taint` in `server_config_yaml`): they become each host's
/// `labels` and `taints`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct NodeMarks {
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Taints.
    pub taints: Vec<Taint>,
}

/// [`NodeMarks`] of the servers and of the agents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct RoleMarks {
    /// For every server.
    pub server: NodeMarks,
    /// For every agent.
    pub agent: NodeMarks,
}

/// Where a config key goes: a spec field, every host of the role, a warning, or the extra
/// config.
fn place(
    role: &str,
    key: &str,
    value: serde_json::Value,
    config: &mut ClusterConfig,
    marks: &mut RoleMarks,
    warnings: &mut Vec<String>,
) {
    let strings = |v: &serde_json::Value| -> Vec<String> {
        match v {
            serde_json::Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), ToOwned::to_owned))
                .collect(),
            serde_json::Value::String(s) => s.split(',').map(|p| p.trim().to_owned()).collect(),
            other => vec![other.to_string()],
        }
    };
    let one = |v: &serde_json::Value| strings(v).into_iter().next().unwrap_or_default();
    match key.trim_end_matches('+') {
        "tls-san" if role == "server" => config.tls_sans.extend(strings(&value)),
        "disable" if role == "server" => config.disable.extend(strings(&value)),
        "cluster-cidr" | "service-cidr" | "cluster-dns" if role == "server" => {
            let text = one(&value);
            let parsed = match key {
                "cluster-cidr" => text.parse().map(|c| config.cluster_cidr = Some(c)).is_ok(),
                "service-cidr" => text.parse().map(|c| config.service_cidr = Some(c)).is_ok(),
                _ => text.parse().map(|ip| config.cluster_dns = Some(ip)).is_ok(),
            };
            if !parsed {
                warnings.push(format!("{role} config `{key}: {text}` was not understood"));
            }
        }
        "cluster-domain" if role == "server" => config.cluster_domain = Some(one(&value)),
        "token" | "agent-token" | "token-file" | "agent-token-file" | "server" | "cluster-init" => {
            warnings.push(format!(
                "{role} config `{key}` was dropped: k3sctl reads the token from the first server \
                 and joins through spec.cluster.registrationAddress"
            ));
        }
        "node-label" | "node-taint" => {
            let marks = if role == "server" {
                &mut marks.server
            } else {
                &mut marks.agent
            };
            for item in strings(&value) {
                let placed = if key.starts_with("node-label") {
                    item.split_once('=')
                        .map(|(k, v)| marks.labels.insert(k.to_owned(), v.to_owned()))
                        .is_some()
                } else {
                    item.parse::<Taint>().map(|t| marks.taints.push(t)).is_ok()
                };
                if !placed {
                    warnings.push(format!("{role} config `{key}: {item}` was not understood"));
                }
            }
        }
        "node-name" | "node-ip" | "node-external-ip" => {
            warnings.push(format!(
                "{role} config `{key}` was dropped: it is per host (hosts[].name, address, \
                 publicAddress)"
            ));
        }
        _ => {
            let target = if role == "server" {
                &mut config.server_config
            } else {
                &mut config.agent_config
            };
            match (target.get_mut(key), value) {
                (Some(serde_json::Value::Array(old)), serde_json::Value::Array(more)) => {
                    old.extend(more);
                }
                (_, value) => {
                    target.insert(key.to_owned(), value);
                }
            }
        }
    }
}

/// `extra_server_args`, `extra_agent_args`, `server_config_yaml`, `agent_config_yaml`.
pub(super) fn k3s_config(
    vars: &Vars,
    config: &mut ClusterConfig,
    marks: &mut RoleMarks,
    warnings: &mut Vec<String>,
) {
    for (var, role, yaml) in [
        ("server_config_yaml", "server", true),
        ("extra_server_args", "server", false),
        ("agent_config_yaml", "agent", true),
        ("extra_agent_args", "agent", false),
    ] {
        let Some(text) = vars.get(var) else { continue };
        let parsed: Result<BTreeMap<String, serde_json::Value>, String> = if yaml {
            serde_saphyr::from_str::<Option<BTreeMap<String, serde_json::Value>>>(text)
                .map(Option::unwrap_or_default)
                .map_err(|e| e.to_string())
        } else {
            config_from_args(text).map_err(|e| e.to_string())
        };
        match parsed {
            Ok(map) => {
                for (key, value) in map {
                    place(role, &key, value, config, marks, warnings);
                }
            }
            Err(e) => warnings.push(format!("{var} was not converted: {e}")),
        }
    }
}

/// A list var: a YAML inventory's list (kept as JSON) or an INI one's `['A=1', 'B=2']`; any
/// other text is one item.
fn list_var(text: &str) -> Vec<String> {
    let text = text.trim();
    if text.starts_with('[')
        && let Ok(items) = serde_saphyr::from_str::<Vec<String>>(text)
    {
        return items;
    }
    if text.is_empty() {
        Vec::new()
    } else {
        vec![text.to_owned()]
    }
}

/// A map var: a YAML inventory's map (kept as JSON) or an INI one's `{'A': 'x'}`.
fn map_var(text: &str) -> Option<BTreeMap<String, String>> {
    let map: BTreeMap<String, serde_json::Value> = serde_saphyr::from_str(text.trim()).ok()?;
    Some(
        map.into_iter()
            .map(|(k, v)| {
                let v = v.as_str().map_or_else(|| v.to_string(), ToOwned::to_owned);
                (k, v)
            })
            .collect(),
    )
}

/// Flags K3s's agent also reads from its environment; the other flag variables
/// (`K3S_DATASTORE_ENDPOINT`, `K3S_KUBECONFIG_MODE`, ...) are the server's only.
const AGENT_ENV_FLAGS: &[&str] = &[
    "data-dir",
    "lb-server-port",
    "node-name",
    "resolv-conf",
    "selinux",
    "server",
    "token",
    "token-file",
    "vpn-auth",
    "vpn-auth-file",
];

/// One `NAME=value` K3s gets in its env file (k3s-ansible's `extra_service_envs`, the `K3S_*`
/// entries of `extra_install_envs`): a variable K3s reads as a flag becomes that setting of
/// the roles that read it; any other cannot be expressed, since k3sctl writes that env file
/// itself.
fn service_env(
    var: &str,
    name: &str,
    value: &str,
    config: &mut ClusterConfig,
    marks: &mut RoleMarks,
    warnings: &mut Vec<String>,
) {
    let Some(flag) = crate::k3s::effective::env_flag(name) else {
        warnings.push(format!(
            "{var}: `{name}` was not carried: the spec has no K3s environment variables and \
             k3sctl writes K3s's env file itself, so apply would drop it (and restart K3s); \
             keep it in /etc/default/k3s and /etc/default/k3s-agent, which K3s's unit also \
             reads and k3sctl leaves alone"
        ));
        return;
    };
    let value = serde_json::Value::String(value.to_owned());
    place("server", flag, value.clone(), config, marks, warnings);
    if AGENT_ENV_FLAGS.contains(&flag) {
        place("agent", flag, value, config, marks, warnings);
    }
}

/// `extra_service_envs` and `extra_install_envs` (the install script's `INSTALL_K3S_VERSION`
/// and `INSTALL_K3S_CHANNEL` become the spec's version or channel when the inventory gives
/// none, its `K3S_*` variables go to K3s's env file as `extra_service_envs` do; its other
/// options have no k3sctl equivalent and are warned about).
pub(super) fn env_vars(
    vars: &Vars,
    k3s: &mut K3sSpec,
    config: &mut ClusterConfig,
    marks: &mut RoleMarks,
    warnings: &mut Vec<String>,
) {
    if let Some(text) = vars.get("extra_service_envs") {
        for entry in list_var(text) {
            match entry.split_once('=') {
                Some((name, value)) => service_env(
                    "extra_service_envs",
                    name.trim(),
                    value.trim().trim_matches(['\'', '"']),
                    config,
                    marks,
                    warnings,
                ),
                None => warnings.push(format!(
                    "extra_service_envs: `{entry}` is not NAME=value and was not carried"
                )),
            }
        }
    }
    let Some(text) = vars.get("extra_install_envs") else {
        return;
    };
    let Some(envs) = map_var(text) else {
        warnings.push(format!(
            "extra_install_envs `{text}` is not a map of variables and was not carried"
        ));
        return;
    };
    let k3s_url_set = envs.contains_key("K3S_URL");
    for (name, value) in envs {
        match name.as_str() {
            "INSTALL_K3S_VERSION" if vars.get("k3s_version").is_none() => match value.parse() {
                Ok(version) => {
                    k3s.version = Some(version);
                    k3s.channel = None;
                }
                Err(_) => warnings.push(format!(
                    "extra_install_envs: INSTALL_K3S_VERSION `{value}` is not a K3s version"
                )),
            },
            "INSTALL_K3S_CHANNEL" if k3s.version.is_none() => match value.parse() {
                Ok(channel) => k3s.channel = Some(channel),
                Err(_) => warnings.push(format!(
                    "extra_install_envs: INSTALL_K3S_CHANNEL `{value}` is not a channel name"
                )),
            },
            "INSTALL_K3S_VERSION" | "INSTALL_K3S_CHANNEL" => {}
            "INSTALL_K3S_EXEC" => install_exec(vars, &value, k3s_url_set, warnings),
            k if k.starts_with("K3S_") => {
                service_env("extra_install_envs", k, &value, config, marks, warnings);
            }
            other => warnings.push(format!(
                "extra_install_envs: `{other}` was not carried: it is an option of the install \
                 script, and k3sctl installs K3s itself"
            )),
        }
    }
}

/// `INSTALL_K3S_EXEC` in `extra_install_envs`: the install script would turn it into the
/// unit's command and flags, but k3s-ansible's roles give the install script their own
/// `INSTALL_K3S_EXEC` over `extra_install_envs` (`extra_install_envs | combine(_base_envs)`,
/// whose `INSTALL_K3S_EXEC` is `extra_server_args` for servers and `agent --server <api> …
/// extra_agent_args` for agents: roles/k3s_server and roles/k3s_agent tasks/main.yml), so its
/// flags never reach K3s. They are not carried (the spec reproduces what runs); the flags it
/// gives beyond the role's own args are named in a warning.
fn install_exec(vars: &Vars, value: &str, k3s_url_set: bool, warnings: &mut Vec<String>) {
    let exec = match crate::k3s::install_exec::parse(value, k3s_url_set) {
        Ok(exec) => exec,
        Err(e) => {
            warnings.push(format!("extra_install_envs: {e}; it was not carried"));
            return;
        }
    };
    let (role, var) = match exec.role {
        crate::k3s::config::NodeRole::Server => ("server", "extra_server_args"),
        crate::k3s::config::NodeRole::Agent => ("agent", "extra_agent_args"),
    };
    let given = vars
        .get(var)
        .and_then(|args| config_from_args(args).ok())
        .unwrap_or_default();
    let lost: Vec<String> = exec
        .config
        .iter()
        // k3s-ansible gives agents their `--server` itself.
        .filter(|(key, value)| {
            given.get(*key) != Some(*value) && !(role == "agent" && *key == "server")
        })
        .map(|(key, value)| match value {
            serde_json::Value::Bool(true) => format!("--{key}"),
            serde_json::Value::Array(items) => items
                .iter()
                .map(|i| {
                    format!(
                        "--{key} {}",
                        i.as_str().map_or_else(|| i.to_string(), str::to_owned)
                    )
                })
                .collect::<Vec<_>>()
                .join(" "),
            other => format!(
                "--{key} {}",
                other
                    .as_str()
                    .map_or_else(|| other.to_string(), str::to_owned)
            ),
        })
        .collect();
    if lost.is_empty() {
        return;
    }
    warnings.push(format!(
        "extra_install_envs: INSTALL_K3S_EXEC gives `k3s {role}` {}, which K3s does not run \
         with: k3s-ansible passes the install script its own INSTALL_K3S_EXEC (from {var}), \
         which replaces this one; not carried, so the spec keeps what runs (to have them, add \
         them to the spec, or to {var} and import again)",
        lost.join(" ")
    ));
}

/// `registries_config_yaml` (k3s-ansible writes it as /etc/rancher/k3s/registries.yaml on
/// every node) → the spec's registries; credentials are named, never carried.
pub(super) fn registries(vars: &Vars, spec: &mut Registries, warnings: &mut Vec<String>) {
    let Some(text) = vars.get("registries_config_yaml") else {
        return;
    };
    match crate::spec::import::registries::from_registries_yaml(text) {
        Ok(imported) => {
            for name in &imported.with_credentials {
                warnings.push(crate::spec::import::registries::credentials_warning(
                    "registries_config_yaml",
                    name,
                ));
            }
            *spec = imported.registries;
        }
        Err(e) => warnings.push(format!(
            "registries_config_yaml was not carried: it is not valid YAML ({e})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::settings::unset_k3s;
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn ssh_common_args_become_ssh_settings() {
        let mut settings = SshSettings::default();
        let mut warnings = Vec::new();
        ssh_args(
            &vars(&[(
                "ansible_ssh_common_args",
                "-F /lab/ssh_config -o UserKnownHostsFile=/lab/known_hosts -o 'ProxyJump=bastion' -J jump2 -i/lab/id -o StrictHostKeyChecking=no -v",
            )]),
            &mut settings,
            &mut warnings,
        );
        assert_eq!(settings.config_file.as_deref(), Some("/lab/ssh_config"));
        assert_eq!(
            settings.known_hosts_file.as_deref(),
            Some("/lab/known_hosts")
        );
        assert_eq!(settings.identity_file.as_deref(), Some("/lab/id"));
        assert_eq!(settings.options["ProxyJump"], "jump2");
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("StrictHostKeyChecking=no"));
        assert!(warnings[1].contains("`-v`"));
    }

    #[test]
    fn service_and_install_envs_become_settings_version_or_warnings() {
        let mut k3s = K3sSpec {
            channel: Some(crate::spec::ChannelName::Stable),
            ..unset_k3s()
        };
        let mut config = ClusterConfig::default();
        let mut marks = RoleMarks::default();
        let mut warnings = Vec::new();
        env_vars(
            &vars(&[
                // As a YAML inventory's list reaches the vars (JSON), commas inside items.
                (
                    "extra_service_envs",
                    r#"["K3S_RESOLV_CONF=/etc/k3s-resolv.conf","NO_PROXY=localhost,127.0.0.1","bad"]"#,
                ),
                (
                    "extra_install_envs",
                    "{'INSTALL_K3S_VERSION': 'v1.33.5+k3s1', 'K3S_KUBECONFIG_MODE': '644', \
                     'INSTALL_K3S_SKIP_SELINUX_RPM': 'true'}",
                ),
            ]),
            &mut k3s,
            &mut config,
            &mut marks,
            &mut warnings,
        );
        assert_eq!(
            k3s.version.map(|v| v.to_string()).as_deref(),
            Some("v1.33.5+k3s1")
        );
        assert_eq!(k3s.channel, None);
        // resolv-conf is read by both roles, write-kubeconfig-mode by the server only.
        assert_eq!(config.server_config["resolv-conf"], "/etc/k3s-resolv.conf");
        assert_eq!(config.agent_config["resolv-conf"], "/etc/k3s-resolv.conf");
        assert_eq!(config.server_config["write-kubeconfig-mode"], "644");
        assert!(!config.agent_config.contains_key("write-kubeconfig-mode"));
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(
            warnings[0].contains("`NO_PROXY` was not carried"),
            "{warnings:?}"
        );
        assert!(warnings[0].contains("/etc/default/k3s"), "{warnings:?}");
        assert!(
            warnings[1].contains("`bad` is not NAME=value"),
            "{warnings:?}"
        );
        assert!(
            warnings[2].contains("INSTALL_K3S_SKIP_SELINUX_RPM"),
            "{warnings:?}"
        );

        // An INI inventory's list; the channel of the install envs when no version is given.
        let mut k3s = unset_k3s();
        let mut warnings = Vec::new();
        env_vars(
            &vars(&[
                (
                    "extra_service_envs",
                    "[ 'K3S_NODE_NAME=x', 'K3S_URL=https://a:6443' ]",
                ),
                ("extra_install_envs", r#"{"INSTALL_K3S_CHANNEL":"latest"}"#),
            ]),
            &mut k3s,
            &mut config,
            &mut marks,
            &mut warnings,
        );
        assert_eq!(k3s.channel, Some(crate::spec::ChannelName::Latest));
        // node-name is per host and the join URL k3sctl's own: both dropped with a word.
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("`node-name` was dropped")),
            "{warnings:?}"
        );
        assert!(
            warnings.iter().any(|w| w.contains("`server` was dropped")),
            "{warnings:?}"
        );
    }

    #[test]
    fn install_k3s_exec_is_read_and_what_k3s_ansible_replaces_is_named() {
        let run = |pairs: &[(&str, &str)]| {
            let mut k3s = K3sSpec {
                version: None,
                channel: None,
                channel_url: None,
                binary: None,
                airgap_images: None,
            };
            let mut config = ClusterConfig::default();
            let mut marks = RoleMarks::default();
            let mut warnings = Vec::new();
            env_vars(
                &vars(pairs),
                &mut k3s,
                &mut config,
                &mut marks,
                &mut warnings,
            );
            (config, warnings)
        };
        // The same flags as extra_server_args: nothing is lost, nothing to say.
        let (config, warnings) = run(&[
            (
                "extra_server_args",
                "--disable traefik --kubelet-arg=max-pods=150",
            ),
            (
                "extra_install_envs",
                r#"{"INSTALL_K3S_EXEC":"server --disable=traefik --kubelet-arg max-pods=150"}"#,
            ),
        ]);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(config.server_config.is_empty(), "{config:?}");
        // Flags only (the command from K3S_URL: agent), beyond extra_agent_args: named, not
        // carried; the agent's --server is k3s-ansible's own.
        let (config, warnings) = run(&[
            ("extra_agent_args", "--node-label zone=a"),
            (
                "extra_install_envs",
                "{'INSTALL_K3S_EXEC': '--node-label zone=a --node-taint gpu=true:NoSchedule \
                 --server https://x:6443', 'K3S_URL': 'https://x:6443'}",
            ),
        ]);
        assert!(config.agent_config.is_empty(), "{config:?}");
        let w = warnings
            .iter()
            .find(|w| w.contains("INSTALL_K3S_EXEC"))
            .expect("a warning");
        assert!(
            w.contains(
                "gives `k3s agent` --node-taint gpu=true:NoSchedule, which K3s does not run with"
            ),
            "{w}"
        );
        assert!(w.contains("from extra_agent_args"), "{w}");
        // Unreadable: said so.
        let (_, warnings) = run(&[(
            "extra_install_envs",
            r#"{"INSTALL_K3S_EXEC":"server --tls-san 'a"}"#,
        )]);
        assert!(
            warnings[0].contains("cannot be split into words")
                && warnings[0].contains("not carried"),
            "{warnings:?}"
        );
    }

    #[test]
    fn registries_config_yaml_becomes_the_registries() {
        let mut spec = Registries::default();
        let mut warnings = Vec::new();
        registries(
            &vars(&[(
                "registries_config_yaml",
                "mirrors:\n  docker.io:\n    endpoint:\n      - \"https://reg:5000\"\n\
                 configs:\n  \"reg:5000\":\n    auth: {username: u, password: p}\n",
            )]),
            &mut spec,
            &mut warnings,
        );
        assert_eq!(spec.mirrors["docker.io"].endpoints, ["https://reg:5000"]);
        assert!(spec.configs.contains_key("reg:5000"));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("registries_config_yaml: the credentials of registry reg:5000")
        );
        let mut warnings = Vec::new();
        registries(
            &vars(&[("registries_config_yaml", "mirrors: [\n")]),
            &mut Registries::default(),
            &mut warnings,
        );
        assert!(warnings[0].contains("not valid YAML"), "{warnings:?}");
    }

    #[test]
    fn airgap_dir_names_the_binary_and_images_found_there() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs_err::write(dir.path().join("k3s-arm64"), b"x").expect("write");
        fs_err::write(dir.path().join("k3s-airgap-images-arm64.tar.zst"), b"x").expect("write");
        let mut spec = unset_k3s();
        let mut warnings = Vec::new();
        let d = dir.path().to_string_lossy().into_owned();
        airgap(&vars(&[("airgap_dir", &d)]), &mut spec, &mut warnings);
        assert_eq!(
            spec.binary.and_then(|b| b.file),
            Some(format!("{d}/k3s-arm64"))
        );
        assert_eq!(
            spec.airgap_images,
            Some(format!("{d}/k3s-airgap-images-arm64.tar.zst"))
        );
        assert!(warnings.is_empty());
    }

    #[test]
    fn extra_args_and_config_yaml_go_to_fields_or_extra_config() {
        let mut config = ClusterConfig::default();
        let mut marks = RoleMarks::default();
        let mut warnings = Vec::new();
        k3s_config(
            &vars(&[
                (
                    "extra_server_args",
                    "--disable traefik --kubelet-arg max-pods=110 --node-ip 10.0.0.1",
                ),
                (
                    "server_config_yaml",
                    "flannel-backend: host-gw\ntls-san: [k3s.example.com]\nkubelet-arg: [eviction-hard=memory.available<5%]\ntoken: x\n",
                ),
                (
                    "extra_agent_args",
                    "--kubelet-arg=max-pods=50 --node-label zone=z1 --node-taint gpu=yes:NoSchedule",
                ),
            ]),
            &mut config,
            &mut marks,
            &mut warnings,
        );
        // Labels and taints of a role's args reach every host of that role.
        assert_eq!(
            marks.agent.labels,
            BTreeMap::from([("zone".to_owned(), "z1".to_owned())])
        );
        assert_eq!(marks.agent.taints.len(), 1);
        assert_eq!(marks.agent.taints[0].to_string(), "gpu=yes:NoSchedule");
        assert_eq!(marks.server, NodeMarks::default());
        assert_eq!(config.disable, ["traefik"]);
        assert_eq!(config.tls_sans, ["k3s.example.com"]);
        assert_eq!(config.server_config["flannel-backend"], "host-gw");
        assert_eq!(
            config.server_config["kubelet-arg"],
            serde_json::json!(["eviction-hard=memory.available<5%", "max-pods=110"])
        );
        assert_eq!(
            config.agent_config["kubelet-arg"],
            serde_json::json!(["max-pods=50"])
        );
        assert_eq!(warnings.len(), 2, "{warnings:?}");
    }
}
