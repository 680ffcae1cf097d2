//! The effective settings of a `k3s server` / `k3s agent` run: command line over config files over
//! environment variables over defaults, plus the `k3s.io/node-args` list derived from them.

use std::collections::BTreeMap;

use crate::config::{ConfigError, FileConfig, load};
use crate::flags::{CliArgs, FLAGS, Role, SECRET_ARGS, Value, parse_bool};
use crate::paths::{DEFAULT_CONFIG, DEFAULT_DATA_DIR, host_path};

/// Effective settings for one run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Server or agent.
    pub role: Role,
    /// One value per flag that was set anywhere.
    pub values: BTreeMap<String, Value>,
    /// The `k3s.io/node-args` list (secrets redacted).
    pub node_args: Vec<String>,
    /// Config keys that were ignored (not flags of this subcommand).
    pub ignored_keys: Vec<String>,
}

/// K3s's `k3s.io/node-args`: the subcommand, each config value as `--key=value` (one per list
/// item, keys in first-seen order) before the command line as written, every `--flag=value` then
/// split in two and the value after a secret argument replaced by `********` (k3s
/// `pkg/configfilearg/parser.go` `readConfigFile`, `pkg/nodeconfig/nodeconfig.go`
/// `getNodeArgs`).
fn node_args(role: Role, file: &FileConfig, raw_cli: &[String]) -> Vec<String> {
    let mut args = vec![role.as_str().to_string()];
    for key in &file.order {
        let Some(v) = file.values.get(key) else {
            continue;
        };
        let prefix = if key.len() == 1 { "-" } else { "--" };
        match v {
            Value::Bool(b) => args.push(format!("{prefix}{key}={b}")),
            Value::Str(s) => args.push(format!("{prefix}{key}={s}")),
            Value::List(items) => {
                args.extend(items.iter().map(|s| format!("{prefix}{key}={s}")));
            }
        }
    }
    args.extend(raw_cli.iter().cloned());
    let mut out = Vec::new();
    for arg in args {
        match arg.split_once('=') {
            Some((flag, value)) if arg.starts_with("--") => {
                out.push(flag.to_string());
                out.push(value.to_string());
            }
            _ => out.push(arg),
        }
    }
    for i in 0..out.len() {
        if SECRET_ARGS.contains(&out[i].as_str()) && i + 1 < out.len() {
            out[i + 1] = "********".to_string();
        }
    }
    out
}

/// Combines the layers. `env` looks up environment variables.
pub fn combine(
    role: Role,
    cli: &CliArgs,
    file: &FileConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Settings {
    let cli_map = cli.merged();
    // k3s inserts the config file as arguments before the command line: a single value on the
    // command line wins, a repeatable flag on the command line adds to the config's values.
    let mut values = file.values.clone();
    for (k, v) in &cli_map {
        match (values.get_mut(k), v) {
            (Some(Value::List(acc)), Value::List(more)) => acc.extend(more.iter().cloned()),
            _ => {
                values.insert(k.clone(), v.clone());
            }
        }
    }
    for def in FLAGS {
        if values.contains_key(def.name) || crate::flags::lookup(role, def.name).is_none() {
            continue;
        }
        let Some(raw) = def.env.and_then(env).filter(|s| !s.is_empty()) else {
            continue;
        };
        let v = match def.kind {
            crate::flags::Kind::Bool => match parse_bool(&raw) {
                Some(b) => Value::Bool(b),
                None => continue,
            },
            crate::flags::Kind::Str => Value::Str(raw),
            crate::flags::Kind::List => Value::List(vec![raw]),
        };
        values.insert(def.name.to_string(), v);
    }
    // k3s splits `disable` items on commas (`--disable=traefik,servicelb`).
    if let Some(Value::List(items)) = values.get_mut("disable") {
        *items = items
            .iter()
            .flat_map(|s| s.split(','))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
    }
    let node_args = node_args(role, file, &cli.raw);
    Settings {
        role,
        values,
        node_args,
        ignored_keys: file.ignored.clone(),
    }
}

/// Parses flags, reads the config files they point to, and combines everything with the process
/// environment.
pub fn resolve(role: Role, args: &[String]) -> Result<Settings, ResolveError> {
    let cli = crate::flags::parse(role, args)?;
    let cli_map = cli.merged();
    let explicit = match cli_map.get("config") {
        Some(Value::Str(p)) => Some(p.clone()),
        _ => std::env::var("K3S_CONFIG_FILE")
            .ok()
            .filter(|s| !s.is_empty()),
    };
    let required = explicit.is_some();
    let main = host_path(explicit.unwrap_or_else(|| DEFAULT_CONFIG.to_string()));
    let file = load(role, &main, required)?;
    Ok(combine(role, &cli, &file, &|k| std::env::var(k).ok()))
}

/// Errors resolving settings.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// Bad command line.
    #[error(transparent)]
    Flags(#[from] crate::flags::FlagError),
    /// Bad config file.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl Settings {
    /// A single-valued flag.
    pub fn str(&self, name: &str) -> Option<&str> {
        match self.values.get(name) {
            Some(Value::Str(s)) => Some(s.as_str()),
            _ => None,
        }
    }

    /// A repeatable flag (empty when unset).
    pub fn list(&self, name: &str) -> &[String] {
        match self.values.get(name) {
            Some(Value::List(v)) => v.as_slice(),
            _ => &[],
        }
    }

    /// A boolean flag (false when unset).
    pub fn flag(&self, name: &str) -> bool {
        matches!(self.values.get(name), Some(Value::Bool(true)))
    }

    /// `--data-dir`, defaulting to /var/lib/rancher/k3s.
    pub fn data_dir(&self) -> &str {
        self.str("data-dir").unwrap_or(DEFAULT_DATA_DIR)
    }

    /// The node name: `--node-name`, else the host name.
    pub fn node_name(&self) -> String {
        self.str("node-name")
            .map(str::to_string)
            .unwrap_or_else(hostname)
    }

    /// `--https-listen-port` (default 6443); errors name the flag.
    pub fn https_port(&self) -> Result<u16, String> {
        match self.str("https-listen-port") {
            None => Ok(6443),
            Some(p) => p
                .parse()
                .map_err(|_| format!("invalid --https-listen-port {p:?}: expected a port number")),
        }
    }

    /// The components listed in `disable`.
    pub fn disabled(&self) -> &[String] {
        self.list("disable")
    }
}

/// This machine's host name, lowercased like k3s does for node names.
pub fn hostname() -> String {
    fs_err::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_lowercase())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::merge_text;

    #[test]
    fn cli_over_config_over_env_and_secrets_redacted() {
        let mut file = FileConfig::default();
        merge_text(
            Role::Server,
            &mut file,
            "f",
            "token: fromfile\ntls-san: [a.example]\nnode-name: cfg\n",
        )
        .expect("yaml");
        let args: Vec<String> = [
            "--node-name",
            "cli",
            "--disable=traefik,servicelb",
            "--tls-san",
            "b.example",
            "--debug",
            "-t",
            "fromcli",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let cli = crate::flags::parse(Role::Server, &args).expect("flags");
        let env = |k: &str| match k {
            "K3S_TOKEN" => Some("fromenv".to_string()),
            "K3S_URL" => Some("https://s:6443".to_string()),
            _ => None,
        };
        let s = combine(Role::Server, &cli, &file, &env);
        assert_eq!(s.str("token"), Some("fromcli"));
        assert_eq!(s.str("server"), Some("https://s:6443"));
        assert_eq!(
            s.node_name(),
            "cli",
            "a single value on the command line wins"
        );
        assert_eq!(
            s.list("tls-san"),
            ["a.example".to_string(), "b.example".to_string()],
            "lists add up"
        );
        assert_eq!(
            s.disabled(),
            ["traefik".to_string(), "servicelb".to_string()]
        );
        assert_eq!(
            s.node_args,
            [
                "server",
                "--token",
                "********",
                "--tls-san",
                "a.example",
                "--node-name",
                "cfg",
                "--node-name",
                "cli",
                "--disable",
                "traefik,servicelb",
                "--tls-san",
                "b.example",
                "--debug",
                "-t",
                "********"
            ]
        );
    }
}
