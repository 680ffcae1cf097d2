//! The effective K3s configuration of a node: what K3s really runs with, whatever the form it
//! was written in. The unit's `ExecStart` flags, the env files (`K3S_URL`, `K3S_TOKEN`, ...),
//! config.yaml and config.yaml.d are merged as K3s merges them (env < config files < command
//! line; later drop-ins win; `key+:` appends; lists accumulate), then normalised: `--flag=value`
//! and `--flag value` alike, repeated flags and YAML lists alike, comma lists split, sets
//! sorted, values equal to K3s's defaults dropped, `tls-san` entries K3s puts on the certificate
//! anyway dropped. Two configurations are the same when K3s would run the same way with them:
//! `apply` then takes over the files without restarting K3s. Pure.

mod flags;
pub mod node_args;
mod sources;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

pub use flags::{Kind, env_flag};
pub use sources::{
    UnitStart, env_files_of_unit, parse_env_file, parse_unit, split_words, unit_env_files,
    unit_with_dropins,
};

use super::config::NodeRole;
use crate::secret::{REDACTED, Secret};

/// Why the configuration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EffectiveError {
    /// The unit could not be understood.
    #[error("the K3s unit cannot be read: {reason}")]
    Unit {
        /// What is wrong.
        reason: String,
    },
    /// A config file is not valid YAML or not a map.
    #[error("{file}: {reason}")]
    Config {
        /// The file.
        file: String,
        /// What is wrong.
        reason: String,
    },
}

/// One setting's value after normalisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    /// A switch that is on (switches that are off are not kept).
    On,
    /// A value.
    Value(String),
    /// A repeatable flag's values.
    List(Vec<String>),
    /// A credential.
    Secret(Secret),
}

impl Setting {
    /// The value as shown (credentials masked).
    pub fn shown(&self) -> String {
        match self {
            Self::On => "true".into(),
            Self::Value(v) => v.clone(),
            Self::List(items) => format!("[{}]", items.join(", ")),
            Self::Secret(_) => REDACTED.into(),
        }
    }
}

/// Everything K3s is started with, as written in the files.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The unit's text as systemd reads it: the unit file with its drop-ins appended
    /// ([`unit_with_dropins`]).
    pub unit: String,
    /// Env files the unit reads, in its order, as `(path, text)`; missing files left out
    /// (`env_files_of_unit` picks them from what a host has).
    pub env_files: Vec<(String, Secret)>,
    /// /etc/rancher/k3s/config.yaml, when it exists.
    pub config: Option<String>,
    /// config.yaml.d entries as `(file name, text)`, in any order.
    pub dropins: Vec<(String, String)>,
}

/// What K3s fills in itself, needed to recognise a written value as K3s's own choice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeDefaults {
    /// The host name (K3s's default node name, lowercased).
    pub hostname: Option<String>,
    /// The address K3s chose as the node's internal IP when none was set.
    pub internal_ip: Option<String>,
}

/// A node's effective configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effective {
    /// `k3s server` or `k3s agent`.
    pub subcommand: String,
    /// Flag name → value, normalised.
    pub settings: BTreeMap<String, Setting>,
    /// Environment variables K3s gets that are not flags (proxies, `CONTAINERD_*`), by name;
    /// values kept as secrets (a proxy URL may hold a password).
    pub environment: BTreeMap<String, Secret>,
    /// Where each setting was last written (`ExecStart`, `config.yaml`,
    /// `config.yaml.d/10-x.yaml`, `K3S_URL`), for the comments of an imported spec.
    pub origins: BTreeMap<String, String>,
}

/// One difference between two effective configurations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The setting (`node-ip`, `env HTTP_PROXY`).
    pub key: String,
    /// Before, as shown (`None`: not set).
    pub before: Option<String>,
    /// After, as shown.
    pub after: Option<String>,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(not set)".into());
        write!(
            f,
            "{}: {} -> {}",
            self.key,
            show(&self.before),
            show(&self.after)
        )
    }
}

/// Computes a node's effective configuration.
pub fn effective(sources: &Sources, defaults: &NodeDefaults) -> Result<Effective, EffectiveError> {
    let unit = parse_unit(&sources.unit)?;
    let (subcommand, cli) = sources::exec_flags(&unit.exec_start)?;
    let mut environment: Vec<(String, String)> = unit.environment.clone();
    for (_, text) in &sources.env_files {
        environment.extend(parse_env_file(text.expose()));
    }
    let mut env_vars: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in environment {
        env_vars.insert(k, v);
    }
    let mut files = Vec::new();
    if let Some(text) = &sources.config {
        files.push((super::config::CONFIG_PATH.to_owned(), text.clone()));
    }
    let mut names: Vec<String> = sources.dropins.iter().map(|(n, _)| n.clone()).collect();
    sources::dropin_order(&mut names);
    for name in names {
        if let Some((_, text)) = sources.dropins.iter().find(|(n, _)| *n == name) {
            files.push((format!("config.yaml.d/{name}"), text.clone()));
        }
    }
    let mut from_files = Vec::new();
    for file in &files {
        for (name, _) in sources::config_flags(std::slice::from_ref(file))? {
            let origin = file.0.trim_start_matches("/etc/rancher/k3s/").to_owned();
            from_files.push((name, origin));
        }
    }
    let origin_of = |name: &str| {
        from_files
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map_or_else(|| "config.yaml".to_owned(), |(_, o)| o.clone())
    };
    let mut args: Vec<(sources::FlagArg, String)> = sources::config_flags(&files)?
        .into_iter()
        .map(|arg| {
            let origin = origin_of(&arg.0);
            (arg, origin)
        })
        .collect();
    args.extend(cli.into_iter().map(|arg| (arg, "ExecStart".to_owned())));
    Ok(merge(
        subcommand.unwrap_or_default(),
        env_vars,
        args,
        defaults,
    ))
}

/// The flags K3s gets from environment variables (`K3S_RESOLV_CONF` → `resolv-conf`) in the
/// unit's `Environment=` lines and its env files (these win), by flag name. K3s leaves them
/// out of its `k3s.io/node-args` annotation, which lists only the command line and config
/// files. A unit that cannot be read gives none.
pub fn flags_from_environment(sources: &Sources) -> BTreeMap<String, String> {
    let Ok(unit) = parse_unit(&sources.unit) else {
        return BTreeMap::new();
    };
    let mut vars: BTreeMap<String, String> = unit.environment.into_iter().collect();
    for (_, text) in &sources.env_files {
        vars.extend(parse_env_file(text.expose()));
    }
    vars.into_iter()
        .filter(|(_, value)| !value.is_empty())
        .filter_map(|(variable, value)| Some((env_flag(&variable)?.to_owned(), value)))
        .collect()
}

/// The effective configuration K3s reports in a Node's `k3s.io/node-args` annotation (a JSON
/// list: the subcommand, then flags as K3s parsed them, secrets replaced by `********`).
pub fn from_node_args(json: &str, defaults: &NodeDefaults) -> Result<Effective, EffectiveError> {
    let args: Vec<String> = serde_json::from_str(json).map_err(|e| EffectiveError::Config {
        file: "k3s.io/node-args".into(),
        reason: e.to_string(),
    })?;
    // K3s writes a switch with its value as the next word (`--cluster-init`, `true`).
    let mut words = vec!["k3s".to_owned()];
    let mut rest = args.into_iter().peekable();
    while let Some(word) = rest.next() {
        let name = flags::canonical(word.trim_start_matches('-'));
        let bool_next = rest
            .peek()
            .is_some_and(|next| matches!(next.as_str(), "true" | "false"));
        if word.starts_with('-') && flags::kind(name) == Some(Kind::Switch) && bool_next {
            let value = rest.next().unwrap_or_default();
            words.push(format!("{word}={value}"));
        } else {
            words.push(word);
        }
    }
    let (subcommand, cli) = sources::exec_flags(&words)?;
    let args = cli
        .into_iter()
        .map(|arg| (arg, "k3s.io/node-args".to_owned()))
        .collect();
    Ok(merge(
        subcommand.unwrap_or_default(),
        BTreeMap::new(),
        args,
        defaults,
    ))
}

fn merge(
    subcommand: String,
    env_vars: BTreeMap<String, String>,
    args: Vec<(sources::FlagArg, String)>,
    defaults: &NodeDefaults,
) -> Effective {
    let mut raw: BTreeMap<String, Raw> = BTreeMap::new();
    let mut other_env = BTreeMap::new();
    let mut origins = BTreeMap::new();
    for (variable, value) in env_vars {
        match flags::env_flag(&variable) {
            Some(flag) if !value.is_empty() => {
                let entry = raw.entry(flag.to_owned()).or_default();
                entry.set(flag, Some(value), true);
                origins.insert(flag.to_owned(), variable);
            }
            Some(_) => {}
            // The install script's own options (`INSTALL_K3S_EXEC`, ...): it writes only
            // `K3S_*`, `CONTAINERD_*` and proxy variables to K3s's env file, and K3s reads
            // none of them, so one left in an env file changes nothing K3s does.
            None if variable.starts_with("INSTALL_K3S_") => {}
            None => {
                other_env.insert(variable, Secret::new(value));
            }
        }
    }
    for ((name, value), origin) in args {
        raw.entry(name.clone())
            .or_default()
            .set(&name, value, false);
        origins.insert(name, origin);
    }
    let mut settings = BTreeMap::new();
    for (name, value) in raw {
        if let Some(setting) = value.finish(&name) {
            settings.insert(name, setting);
        }
    }
    let mut out = Effective {
        subcommand,
        settings,
        environment: other_env,
        origins,
    };
    normalise(&mut out, defaults);
    let kept: Vec<String> = out.settings.keys().cloned().collect();
    out.origins.retain(|k, _| kept.contains(k));
    out
}

/// A flag's values while merging.
#[derive(Debug, Default)]
struct Raw {
    values: Vec<String>,
    switch: Option<bool>,
    from_env: bool,
}

impl Raw {
    fn set(&mut self, name: &str, value: Option<String>, env: bool) {
        match flags::kind(name) {
            Some(Kind::Switch) => {
                let on = value
                    .as_deref()
                    .map_or(Some(true), parse_bool)
                    .unwrap_or(true);
                self.switch = Some(on);
            }
            Some(Kind::List) => {
                if self.from_env && !env {
                    self.values.clear();
                }
                self.values.extend(value);
            }
            Some(Kind::Value | Kind::Secret) => self.values = value.into_iter().collect(),
            None => self.values.extend(value),
        }
        self.from_env = env;
    }

    fn finish(self, name: &str) -> Option<Setting> {
        match flags::kind(name) {
            Some(Kind::Switch) => self.switch.filter(|on| *on).map(|_| Setting::On),
            Some(Kind::List) => Some(Setting::List(self.values)),
            Some(Kind::Secret) => self
                .values
                .last()
                .map(|v| Setting::Secret(Secret::new(v.clone()))),
            Some(Kind::Value) => self.values.last().map(|v| Setting::Value(v.clone())),
            None => match self.values.len() {
                0 => Some(Setting::On),
                1 => Some(Setting::Value(self.values[0].clone())),
                _ => Some(Setting::List(self.values)),
            },
        }
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "t" | "yes" => Some(true),
        "false" | "0" | "f" | "no" | "" => Some(false),
        _ => None,
    }
}

/// Addresses and names K3s puts on its serving certificate whatever `tls-san` says.
fn automatic_sans(effective: &Effective, defaults: &NodeDefaults) -> Vec<String> {
    let mut sans: Vec<String> = [
        "127.0.0.1",
        "::1",
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let domain = match effective.settings.get("cluster-domain") {
        Some(Setting::Value(d)) => d.clone(),
        _ => "cluster.local".into(),
    };
    sans.push(format!("kubernetes.default.svc.{domain}"));
    for key in ["node-ip", "node-external-ip"] {
        if let Some(Setting::List(ips)) = effective.settings.get(key) {
            sans.extend(ips.iter().cloned());
        }
    }
    sans.extend(defaults.internal_ip.iter().cloned());
    sans
}

fn normalise(effective: &mut Effective, defaults: &NodeDefaults) {
    let settings = &mut effective.settings;
    for (name, setting) in settings.iter_mut() {
        match setting {
            Setting::List(items) => {
                let mut list: Vec<String> = if flags::COMMA_LISTS.contains(&name.as_str()) {
                    items
                        .iter()
                        .flat_map(|i| i.split(','))
                        .map(|s| s.trim().to_owned())
                        .collect()
                } else {
                    items.iter().map(|s| s.trim().to_owned()).collect()
                };
                list.retain(|s| !s.is_empty());
                if flags::UNORDERED_LISTS.contains(&name.as_str()) {
                    list.sort();
                    list.dedup();
                }
                *items = list;
            }
            Setting::Value(v) => {
                *v = v.trim().to_owned();
                if name == "write-kubeconfig-mode"
                    && let Ok(mode) = u32::from_str_radix(v, 8)
                {
                    *v = format!("{mode:04o}");
                }
                if name == "server" {
                    *v = v.trim_end_matches('/').to_owned();
                }
            }
            Setting::On | Setting::Secret(_) => {}
        }
    }
    // Defaults: a value K3s would choose itself is no setting.
    if let Some(Setting::Value(name)) = settings.get("node-name")
        && defaults
            .hostname
            .as_deref()
            .is_some_and(|h| h.to_ascii_lowercase() == *name)
    {
        settings.remove("node-name");
    }
    if let (Some(Setting::List(ips)), Some(ip)) = (settings.get("node-ip"), &defaults.internal_ip)
        && ips.len() == 1
        && ips[0] == *ip
    {
        settings.remove("node-ip");
    }
    let sans = automatic_sans(effective, defaults);
    let settings = &mut effective.settings;
    if let Some(Setting::List(list)) = settings.get_mut("tls-san") {
        list.retain(|s| !sans.contains(s));
    }
    settings.retain(|name, setting| match setting {
        Setting::List(list) => !list.is_empty() && *list != flags::default_list(name),
        Setting::Value(v) => !v.is_empty() && flags::default_value(name) != Some(v.as_str()),
        Setting::Secret(s) => !s.is_empty(),
        Setting::On => true,
    });
}

/// The password part of a join token (`K10<hash>::<user>:<password>` or a bare password).
fn token_password(token: &Secret) -> &str {
    let text = token.expose().trim();
    match text.strip_prefix("K10").and_then(|r| r.split_once("::")) {
        Some((_, credentials)) => credentials
            .split_once(':')
            .map_or(credentials, |(_, pw)| pw),
        None => text,
    }
}

/// How two configurations of one node are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compare {
    /// Server or agent.
    pub role: NodeRole,
    /// A server that already has its datastore: K3s then ignores `server`, `cluster-init` and
    /// an absent token (it keeps the one it has), which only matter for joining.
    pub server_with_data: bool,
}

/// Settings only a server's first start (or join) reads.
const JOIN_ONLY: &[&str] = &["server", "cluster-init"];

/// The differences that change what K3s runs with, in key order; empty when only the form
/// differs.
pub fn changes(before: &Effective, after: &Effective, how: Compare) -> Vec<Change> {
    let mut out = Vec::new();
    if before.subcommand != after.subcommand {
        out.push(Change {
            key: "subcommand".into(),
            before: Some(before.subcommand.clone()),
            after: Some(after.subcommand.clone()),
        });
    }
    let keys: std::collections::BTreeSet<&String> = before
        .settings
        .keys()
        .chain(after.settings.keys())
        .collect();
    for key in keys {
        let (b, a) = (before.settings.get(key), after.settings.get(key));
        let join_only = how.server_with_data && JOIN_ONLY.contains(&key.as_str());
        let same = match (b, a) {
            _ if join_only => true,
            (Some(Setting::Secret(x)), Some(Setting::Secret(y))) if key == "token" => {
                token_password(x) == token_password(y)
            }
            (None, Some(Setting::Secret(_))) | (Some(Setting::Secret(_)), None)
                if key == "token" && how.server_with_data =>
            {
                true
            }
            (x, y) => x == y,
        };
        if !same {
            out.push(Change {
                key: key.clone(),
                before: b.map(Setting::shown),
                after: a.map(Setting::shown),
            });
        }
    }
    let names: std::collections::BTreeSet<&String> = before
        .environment
        .keys()
        .chain(after.environment.keys())
        .collect();
    for name in names {
        let (b, a) = (before.environment.get(name), after.environment.get(name));
        if b != a {
            out.push(Change {
                key: format!("env {name}"),
                before: b.map(|_| REDACTED.to_owned()),
                after: a.map(|_| REDACTED.to_owned()),
            });
        }
    }
    out
}

/// Flags written as a command line (`--disable traefik --kubelet-arg=max-pods=110`, as
/// k3s-ansible's `extra_server_args`) → config.yaml keys and values: repeatable flags become
/// lists, switches `true`, the rest strings, in K3s's own merge order.
pub fn config_from_args(args: &str) -> Result<BTreeMap<String, serde_json::Value>, EffectiveError> {
    let mut words = vec!["k3s".to_owned(), "server".to_owned()];
    words.extend(split_words(args).map_err(|reason| EffectiveError::Unit { reason })?);
    let (_, flags) = sources::exec_flags(&words).map_err(|e| match e {
        EffectiveError::Unit { reason } => EffectiveError::Unit {
            reason: reason.replace("ExecStart has", "the arguments have"),
        },
        other => other,
    })?;
    let mut out: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for (name, value) in flags {
        let kind = flags::kind(&name);
        match (kind, value) {
            (Some(Kind::Switch), value) => {
                let on = value
                    .as_deref()
                    .map_or(Some(true), parse_bool)
                    .unwrap_or(true);
                out.insert(name, serde_json::Value::Bool(on));
            }
            (Some(Kind::List), Some(value)) => {
                let entry = out
                    .entry(name)
                    .or_insert_with(|| serde_json::Value::Array(Vec::new()));
                if let serde_json::Value::Array(items) = entry {
                    items.push(value.into());
                }
            }
            (_, Some(value)) => {
                out.insert(name, value.into());
            }
            (_, None) => {
                out.insert(name, serde_json::Value::Bool(true));
            }
        }
    }
    Ok(out)
}
