//! The k3s command-line flags the stand-in knows, and parsing them the way k3s (urfave/cli on Go's
//! `flag` package) does: `-flag`, `--flag`, `--flag=value`, `--flag value`; booleans take no
//! separate value; an unknown flag fails with `flag provided but not defined: -name`.

use std::collections::BTreeMap;

/// How a flag takes values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `--flag` or `--flag=false`.
    Bool,
    /// One value; the last one wins.
    Str,
    /// Repeatable; values accumulate.
    List,
}

/// Which subcommands accept a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `k3s server` only.
    Server,
    /// `k3s server` and `k3s agent`.
    Both,
}

/// One flag definition.
#[derive(Debug, Clone, Copy)]
pub struct FlagDef {
    /// Long name without dashes.
    pub name: &'static str,
    /// Short alias (`t` for `token`), if any.
    pub alias: Option<&'static str>,
    /// Value kind.
    pub kind: Kind,
    /// Subcommands.
    pub scope: Scope,
    /// Environment variable read when the flag is not given.
    pub env: Option<&'static str>,
}

const fn f(name: &'static str, kind: Kind, scope: Scope) -> FlagDef {
    FlagDef {
        name,
        alias: None,
        kind,
        scope,
        env: None,
    }
}

const fn fa(
    name: &'static str,
    alias: &'static str,
    kind: Kind,
    scope: Scope,
    env: Option<&'static str>,
) -> FlagDef {
    FlagDef {
        name,
        alias: Some(alias),
        kind,
        scope,
        env,
    }
}

const fn fe(name: &'static str, kind: Kind, scope: Scope, env: &'static str) -> FlagDef {
    FlagDef {
        name,
        alias: None,
        kind,
        scope,
        env: Some(env),
    }
}

use Kind::{Bool, List, Str};
use Scope::{Both, Server};

/// Flags of `k3s server` and `k3s agent` (from `k3s server --help` / `k3s agent --help`).
pub static FLAGS: &[FlagDef] = &[
    fa("config", "c", Str, Both, Some("K3S_CONFIG_FILE")),
    f("debug", Bool, Both),
    f("v", Str, Both),
    f("vmodule", Str, Both),
    fa("log", "l", Str, Both, None),
    f("alsologtostderr", Bool, Both),
    f("bind-address", Str, Both),
    f("advertise-address", Str, Server),
    f("advertise-port", Str, Server),
    f("https-listen-port", Str, Server),
    f("supervisor-port", Str, Server),
    f("apiserver-port", Str, Server),
    f("apiserver-bind-address", Str, Server),
    f("tls-san", List, Server),
    f("tls-san-security", Bool, Server),
    fa("data-dir", "d", Str, Both, Some("K3S_DATA_DIR")),
    f("cluster-cidr", List, Server),
    f("service-cidr", List, Server),
    f("service-node-port-range", Str, Server),
    f("cluster-dns", List, Server),
    f("cluster-domain", Str, Server),
    f("flannel-backend", Str, Server),
    f("flannel-ipv6-masq", Bool, Server),
    f("flannel-external-ip", Bool, Server),
    f("egress-selector-mode", Str, Server),
    f("servicelb-namespace", Str, Server),
    fa(
        "write-kubeconfig",
        "o",
        Str,
        Server,
        Some("K3S_KUBECONFIG_OUTPUT"),
    ),
    fe("write-kubeconfig-mode", Str, Server, "K3S_KUBECONFIG_MODE"),
    fe(
        "write-kubeconfig-group",
        Str,
        Server,
        "K3S_KUBECONFIG_GROUP",
    ),
    f("helm-job-image", Str, Server),
    fa("token", "t", Str, Both, Some("K3S_TOKEN")),
    fe("token-file", Str, Both, "K3S_TOKEN_FILE"),
    fe("agent-token", Str, Server, "K3S_AGENT_TOKEN"),
    fe("agent-token-file", Str, Server, "K3S_AGENT_TOKEN_FILE"),
    fa("server", "s", Str, Both, Some("K3S_URL")),
    fe("cluster-init", Bool, Server, "K3S_CLUSTER_INIT"),
    fe("cluster-reset", Bool, Server, "K3S_CLUSTER_RESET"),
    f("cluster-reset-restore-path", Str, Server),
    f("kube-apiserver-arg", List, Server),
    f("etcd-arg", List, Server),
    f("kube-controller-manager-arg", List, Server),
    f("kube-scheduler-arg", List, Server),
    f("kube-cloud-controller-manager-arg", List, Server),
    fe("datastore-endpoint", Str, Server, "K3S_DATASTORE_ENDPOINT"),
    fe("datastore-cafile", Str, Server, "K3S_DATASTORE_CAFILE"),
    fe("datastore-certfile", Str, Server, "K3S_DATASTORE_CERTFILE"),
    fe("datastore-keyfile", Str, Server, "K3S_DATASTORE_KEYFILE"),
    f("etcd-expose-metrics", Bool, Server),
    f("etcd-disable-snapshots", Bool, Server),
    f("etcd-snapshot-name", Str, Server),
    f("etcd-snapshot-schedule-cron", Str, Server),
    f("etcd-snapshot-retention", Str, Server),
    f("etcd-snapshot-dir", Str, Server),
    f("etcd-snapshot-compress", Bool, Server),
    f("etcd-s3", Bool, Server),
    f("etcd-s3-endpoint", Str, Server),
    f("etcd-s3-bucket", Str, Server),
    f("etcd-s3-access-key", Str, Server),
    f("etcd-s3-secret-key", Str, Server),
    f("default-local-storage-path", Str, Server),
    f("disable", List, Server),
    f("disable-scheduler", Bool, Server),
    f("disable-cloud-controller", Bool, Server),
    f("disable-kube-proxy", Bool, Server),
    f("disable-network-policy", Bool, Server),
    f("disable-helm-controller", Bool, Server),
    f("disable-apiserver", Bool, Server),
    f("disable-controller-manager", Bool, Server),
    f("disable-etcd", Bool, Server),
    f("disable-agent", Bool, Server),
    f("embedded-registry", Bool, Server),
    f("supervisor-metrics", Bool, Server),
    f("secrets-encryption", Bool, Server),
    f("enable-pprof", Bool, Both),
    fe("node-name", Str, Both, "K3S_NODE_NAME"),
    f("with-node-id", Bool, Both),
    f("node-label", List, Both),
    f("node-taint", List, Both),
    f("image-credential-provider-bin-dir", Str, Both),
    f("image-credential-provider-config", Str, Both),
    f("docker", Bool, Both),
    f("container-runtime-endpoint", Str, Both),
    f("default-runtime", Str, Both),
    f("image-service-endpoint", Str, Both),
    f("disable-default-registry-endpoint", Bool, Both),
    f("nonroot-devices", Bool, Both),
    f("pause-image", Str, Both),
    f("snapshotter", Str, Both),
    f("private-registry", Str, Both),
    f("system-default-registry", Str, Server),
    f("node-ip", List, Both),
    f("node-external-ip", List, Both),
    f("node-internal-dns", List, Both),
    f("node-external-dns", List, Both),
    fe("resolv-conf", Str, Both, "K3S_RESOLV_CONF"),
    f("flannel-iface", Str, Both),
    f("flannel-conf", Str, Both),
    f("flannel-cni-conf", Str, Both),
    f("vpn-auth", Str, Both),
    f("vpn-auth-file", Str, Both),
    f("kubelet-arg", List, Both),
    f("kube-proxy-arg", List, Both),
    f("protect-kernel-defaults", Bool, Both),
    fe("selinux", Bool, Both, "K3S_SELINUX"),
    f("lb-server-port", Str, Both),
    f("rootless", Bool, Both),
    f("prefer-bundled-bin", Bool, Both),
    f("airgap-extra-registry", List, Both),
    f("disable-apiserver-lb", Bool, Both),
];

/// The arguments whose following value K3s replaces with `********` in `k3s.io/node-args`
/// (k3s `pkg/nodeconfig/nodeconfig.go` `isSecret`): matched on the argument as written, after
/// `--flag=value` was split.
pub const SECRET_ARGS: &[&str] = &[
    "--token",
    "-t",
    "--agent-token",
    "--datastore-endpoint",
    "--etcd-s3-access-key",
    "--etcd-s3-secret-key",
    "--vpn-auth",
];

/// The subcommands that run a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `k3s server`.
    Server,
    /// `k3s agent`.
    Agent,
}

impl Role {
    /// The subcommand word.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Agent => "agent",
        }
    }
}

/// Looks up a flag by long name or alias for a subcommand.
pub fn lookup(role: Role, name: &str) -> Option<&'static FlagDef> {
    FLAGS
        .iter()
        .filter(|d| role == Role::Server || d.scope == Scope::Both)
        .find(|d| d.name == name || d.alias == Some(name))
}

/// A flag's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A boolean flag.
    Bool(bool),
    /// A single value.
    Str(String),
    /// A repeatable flag.
    List(Vec<String>),
}

/// Why a command line was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FlagError {
    /// A flag that does not exist for the subcommand (Go's `flag` wording).
    #[error("flag provided but not defined: -{0}")]
    Undefined(String),
    /// A non-boolean flag at the end of the line.
    #[error("flag needs an argument: -{0}")]
    MissingValue(String),
    /// A boolean flag with a value that is not a boolean.
    #[error("invalid boolean value {value:?} for -{name}: parse error")]
    BadBool {
        /// Flag.
        name: String,
        /// Value given.
        value: String,
    },
    /// A positional argument where k3s takes none.
    #[error("unexpected argument {0:?}: k3s {1} takes only flags")]
    Positional(String, &'static str),
}

/// Flags given on the command line, in order, with canonical names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CliArgs {
    /// `(name, value)` in the order given; lists hold one item per occurrence.
    pub items: Vec<(String, Value)>,
    /// The arguments as written (K3s records these, not canonical names, in node-args).
    pub raw: Vec<String>,
}

impl CliArgs {
    /// Folds the items into one value per flag (lists accumulate, the last single value wins).
    pub fn merged(&self) -> BTreeMap<String, Value> {
        let mut out: BTreeMap<String, Value> = BTreeMap::new();
        for (name, v) in &self.items {
            match (out.get_mut(name), v) {
                (Some(Value::List(acc)), Value::List(more)) => acc.extend(more.iter().cloned()),
                _ => {
                    out.insert(name.clone(), v.clone());
                }
            }
        }
        out
    }
}

/// Parses a boolean the way Go's strconv.ParseBool does.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Parses the arguments after `server` / `agent`.
pub fn parse(role: Role, args: &[String]) -> Result<CliArgs, FlagError> {
    let mut out = CliArgs {
        raw: args.to_vec(),
        ..CliArgs::default()
    };
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--" {
            if let Some(extra) = args.get(i) {
                return Err(FlagError::Positional(extra.clone(), role.as_str()));
            }
            break;
        }
        let Some(body) = arg
            .strip_prefix("--")
            .or_else(|| arg.strip_prefix('-'))
            .filter(|b| !b.is_empty())
        else {
            return Err(FlagError::Positional(arg.clone(), role.as_str()));
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let def = lookup(role, name).ok_or_else(|| FlagError::Undefined(name.to_string()))?;
        let value = match def.kind {
            Kind::Bool => match inline {
                None => Value::Bool(true),
                Some(v) => Value::Bool(parse_bool(&v).ok_or(FlagError::BadBool {
                    name: name.to_string(),
                    value: v,
                })?),
            },
            Kind::Str | Kind::List => {
                let v = match inline {
                    Some(v) => v,
                    None => {
                        let v = args
                            .get(i)
                            .cloned()
                            .ok_or_else(|| FlagError::MissingValue(name.to_string()))?;
                        i += 1;
                        v
                    }
                };
                if def.kind == Kind::List {
                    Value::List(vec![v])
                } else {
                    Value::Str(v)
                }
            }
        };
        out.items.push((def.name.to_string(), value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_go_flag_forms() {
        let got = parse(
            Role::Server,
            &strs(&[
                "--token",
                "abc",
                "-node-label=a=b",
                "--node-label",
                "c=d",
                "--cluster-init",
                "--debug=false",
                "-t",
                "x",
            ]),
        )
        .expect("parse");
        let m = got.merged();
        assert_eq!(m["token"], Value::Str("x".into()));
        assert_eq!(
            m["node-label"],
            Value::List(vec!["a=b".into(), "c=d".into()])
        );
        assert_eq!(m["cluster-init"], Value::Bool(true));
        assert_eq!(m["debug"], Value::Bool(false));
    }

    #[test]
    fn unknown_flags_fail_like_go() {
        let err = parse(Role::Server, &strs(&["--foo"])).expect_err("must fail");
        assert_eq!(err.to_string(), "flag provided but not defined: -foo");
        let err = parse(Role::Agent, &strs(&["--cluster-init"])).expect_err("server-only flag");
        assert_eq!(
            err.to_string(),
            "flag provided but not defined: -cluster-init"
        );
        assert_eq!(
            parse(Role::Agent, &strs(&["--token"])),
            Err(FlagError::MissingValue("token".into()))
        );
    }
}
