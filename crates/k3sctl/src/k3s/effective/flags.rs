//! The K3s flags the effective configuration knows: their kind (switch, value, repeatable
//! list, secret), short aliases, the `K3S_*` variable that sets them and K3s's default.
//! Sources: `k3s server --help` / `k3s agent --help` (docs.k3s.io/cli/server, /cli/agent) and
//! K3s's flag definitions (pkg/cli/cmds). Flags not listed are kept as written (a value, or a
//! list when given more than once or as a YAML list).

/// How K3s parses a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A boolean switch (`--cluster-init`, `--cluster-init=false`).
    Switch,
    /// One value; the last one given wins.
    Value,
    /// Repeatable: every value given is kept, in order.
    List,
    /// One secret value (never shown).
    Secret,
}

/// Switches (default false).
const SWITCHES: &[&str] = &[
    "cluster-init",
    "cluster-reset",
    "debug",
    "disable-agent",
    "disable-apiserver",
    "disable-cloud-controller",
    "disable-controller-manager",
    "disable-default-registry-endpoint",
    "disable-etcd",
    "disable-helm-controller",
    "disable-kube-proxy",
    "disable-network-policy",
    "disable-scheduler",
    "docker",
    "embedded-registry",
    "enable-pprof",
    "etcd-disable-snapshots",
    "etcd-expose-metrics",
    "etcd-s3",
    "etcd-s3-insecure",
    "etcd-s3-skip-ssl-verify",
    "etcd-snapshot-compress",
    "flannel-external-ip",
    "flannel-ipv6-masq",
    "no-flannel",
    "prefer-bundled-bin",
    "protect-kernel-defaults",
    "rootless",
    "secrets-encryption",
    "selinux",
    "supervisor-metrics",
    "with-node-id",
];

/// Repeatable flags.
const LISTS: &[&str] = &[
    "airgap-extra-registry",
    "cluster-cidr",
    "cluster-dns",
    "disable",
    "etcd-arg",
    "kube-apiserver-arg",
    "kube-cloud-controller-manager-arg",
    "kube-controller-manager-arg",
    "kube-proxy-arg",
    "kube-scheduler-arg",
    "kubelet-arg",
    "node-external-dns",
    "node-external-ip",
    "node-internal-dns",
    "node-ip",
    "node-label",
    "node-taint",
    "service-cidr",
    "tls-san",
];

/// Lists whose values K3s also splits at commas (`--disable=traefik,servicelb`).
pub const COMMA_LISTS: &[&str] = &[
    "cluster-cidr",
    "cluster-dns",
    "disable",
    "node-external-dns",
    "node-external-ip",
    "node-internal-dns",
    "node-ip",
    "service-cidr",
    "tls-san",
];

/// Lists whose order does not matter (compared as sets).
pub const UNORDERED_LISTS: &[&str] = &["disable", "node-label", "node-taint", "tls-san"];

/// Values that hold credentials.
const SECRETS: &[&str] = &[
    "agent-token",
    "cluster-secret",
    "datastore-endpoint",
    "etcd-s3-access-key",
    "etcd-s3-secret-key",
    "token",
    "vpn-auth",
];

/// Short aliases.
const ALIASES: &[(&str, &str)] = &[
    ("c", "config"),
    ("d", "data-dir"),
    ("i", "node-ip"),
    ("o", "write-kubeconfig"),
    ("s", "server"),
    ("t", "token"),
];

/// Environment variables K3s reads as flags (`EnvVar` of the flag).
pub const ENV_FLAGS: &[(&str, &str)] = &[
    ("K3S_AGENT_TOKEN", "agent-token"),
    ("K3S_AGENT_TOKEN_FILE", "agent-token-file"),
    ("K3S_CLUSTER_INIT", "cluster-init"),
    ("K3S_CLUSTER_RESET", "cluster-reset"),
    ("K3S_CLUSTER_SECRET", "cluster-secret"),
    ("K3S_CONFIG_FILE", "config"),
    ("K3S_DATASTORE_ENDPOINT", "datastore-endpoint"),
    ("K3S_DATA_DIR", "data-dir"),
    ("K3S_KUBECONFIG_GROUP", "write-kubeconfig-group"),
    ("K3S_KUBECONFIG_MODE", "write-kubeconfig-mode"),
    ("K3S_KUBECONFIG_OUTPUT", "write-kubeconfig"),
    ("K3S_LB_SERVER_PORT", "lb-server-port"),
    ("K3S_NODE_NAME", "node-name"),
    ("K3S_RESOLV_CONF", "resolv-conf"),
    ("K3S_SELINUX", "selinux"),
    ("K3S_TOKEN", "token"),
    ("K3S_TOKEN_FILE", "token-file"),
    ("K3S_URL", "server"),
    ("K3S_VPN_AUTH", "vpn-auth"),
    ("K3S_VPN_AUTH_FILE", "vpn-auth-file"),
];

/// K3s's defaults for value flags (a setting equal to its default is the same as no setting).
const DEFAULTS: &[(&str, &str)] = &[
    ("cluster-domain", "cluster.local"),
    ("data-dir", crate::k3s::ports::DATA_DIR),
    ("egress-selector-mode", "agent"),
    (
        "etcd-snapshot-dir",
        concat!(crate::k3s::ports::db_dir!(), "/snapshots"),
    ),
    ("etcd-snapshot-retention", "5"),
    ("etcd-snapshot-schedule-cron", "0 */12 * * *"),
    ("flannel-backend", "vxlan"),
    ("https-listen-port", crate::k3s::ports::api_port!()),
    ("lb-server-port", "6444"),
    ("private-registry", "/etc/rancher/k3s/registries.yaml"),
    ("snapshotter", "overlayfs"),
    ("write-kubeconfig", "/etc/rancher/k3s/k3s.yaml"),
    ("write-kubeconfig-mode", "0600"),
];

/// K3s's defaults for list flags.
const LIST_DEFAULTS: &[(&str, &str)] = &[
    ("cluster-cidr", "10.42.0.0/16"),
    ("cluster-dns", "10.43.0.10"),
    ("service-cidr", "10.43.0.0/16"),
];

/// The long name of a flag given as `name` (short aliases resolved).
pub fn canonical(name: &str) -> &str {
    ALIASES
        .iter()
        .find(|(short, _)| *short == name)
        .map_or(name, |(_, long)| long)
}

/// How K3s parses flag `name` (long form); `None` for flags this table does not know.
pub fn kind(name: &str) -> Option<Kind> {
    if SWITCHES.contains(&name) {
        Some(Kind::Switch)
    } else if LISTS.contains(&name) {
        Some(Kind::List)
    } else if SECRETS.contains(&name) {
        Some(Kind::Secret)
    } else if DEFAULTS.iter().any(|(k, _)| *k == name)
        || ENV_FLAGS.iter().any(|(_, k)| *k == name)
        || KNOWN_VALUES.contains(&name)
    {
        Some(Kind::Value)
    } else {
        None
    }
}

/// Value flags without a default that the table knows by name.
const KNOWN_VALUES: &[&str] = &[
    "advertise-address",
    "advertise-port",
    "bind-address",
    "container-runtime-endpoint",
    "default-local-storage-path",
    "flannel-conf",
    "flannel-iface",
    "kube-proxy-arg-file",
    "node-name",
    "pause-image",
    "resolv-conf",
    "server",
    "system-default-registry",
];

/// K3s's default for a value flag.
pub fn default_value(name: &str) -> Option<&'static str> {
    DEFAULTS.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
}

/// K3s's default for a list flag (empty when it has none).
pub fn default_list(name: &str) -> Vec<String> {
    LIST_DEFAULTS
        .iter()
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| (*v).to_owned())
        .collect()
}

/// The flag an environment variable sets.
pub fn env_flag(variable: &str) -> Option<&'static str> {
    ENV_FLAGS
        .iter()
        .find(|(v, _)| *v == variable)
        .map(|(_, f)| *f)
}
