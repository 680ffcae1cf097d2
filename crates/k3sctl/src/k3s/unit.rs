//! The systemd unit and its env file, shaped like the official installer's so that tools and
//! people who know K3s find what they expect. Configuration stays in config.yaml; the env file
//! (mode 0600) holds only the join secrets.

use super::config::NodeRole;
use crate::secret::Secret;

/// Where the binary is installed.
pub const BINARY_PATH: &str = "/usr/local/bin/k3s";
/// Mode for the env file (it holds the token).
pub const ENV_FILE_MODE: u32 = 0o600;
/// Mode for the unit file.
pub const UNIT_FILE_MODE: u32 = 0o644;

/// The systemd unit name for a role (`k3s` or `k3s-agent`).
pub fn unit_name(role: NodeRole) -> &'static str {
    match role {
        NodeRole::Server => "k3s",
        NodeRole::Agent => "k3s-agent",
    }
}

/// Path of the unit file.
pub fn unit_path(role: NodeRole) -> String {
    format!("/etc/systemd/system/{}.service", unit_name(role))
}

/// Path of the env file the unit reads.
pub fn env_path(role: NodeRole) -> String {
    format!("/etc/systemd/system/{}.service.env", unit_name(role))
}

/// Renders the unit file.
pub fn render_unit(role: NodeRole) -> String {
    let name = unit_name(role);
    let (description, after) = match role {
        NodeRole::Server => (
            "Lightweight Kubernetes (K3s server)",
            "network-online.target",
        ),
        NodeRole::Agent => (
            "Lightweight Kubernetes (K3s agent)",
            "network-online.target",
        ),
    };
    format!(
        "# Managed by k3sctl: edit the cluster spec, not this file.\n\
         [Unit]\n\
         Description={description}\n\
         Documentation=https://k3s.io\n\
         Wants=network-online.target\n\
         After={after}\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n\
         \n\
         [Service]\n\
         Type=notify\n\
         EnvironmentFile=-/etc/default/%N\n\
         EnvironmentFile=-/etc/sysconfig/%N\n\
         EnvironmentFile=-/etc/systemd/system/{name}.service.env\n\
         KillMode=process\n\
         Delegate=yes\n\
         User=root\n\
         LimitNOFILE=1048576\n\
         LimitNPROC=infinity\n\
         LimitCORE=infinity\n\
         TasksMax=infinity\n\
         TimeoutStartSec=0\n\
         Restart=always\n\
         RestartSec=5s\n\
         ExecStartPre=-/sbin/modprobe br_netfilter\n\
         ExecStartPre=-/sbin/modprobe overlay\n\
         ExecStart={BINARY_PATH} {subcommand}\n",
        subcommand = role.subcommand(),
    )
}

/// Quotes a value for a systemd EnvironmentFile (double quotes; `\` and `"` escaped).
fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if matches!(c, '\\' | '"') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Renders the env file. Servers that start a new cluster get no token (K3s generates one) and,
/// when it is the first of several servers, `K3S_CLUSTER_INIT=true` (embedded etcd); joiners get
/// `K3S_TOKEN` and `K3S_URL`. K3s ignores `K3S_CLUSTER_INIT` and `K3S_URL` on a server once
/// its datastore exists, so a server's env file may change from one to the other without a
/// restart.
pub fn render_env(token: Option<&Secret>, url: Option<&str>, cluster_init: bool) -> Secret {
    let mut text = String::from("# Managed by k3sctl. Holds the join secret: keep mode 0600.\n");
    if cluster_init {
        text.push_str("K3S_CLUSTER_INIT=\"true\"\n");
    }
    if let Some(token) = token {
        text.push_str(&format!("K3S_TOKEN={}\n", quote(token.expose())));
    }
    if let Some(url) = url {
        text.push_str(&format!("K3S_URL={}\n", quote(url)));
    }
    Secret::new(text)
}

/// The env file as shown in plans: the token replaced by the redaction marker.
pub fn masked_env(token_known: bool, url: Option<&str>, cluster_init: bool) -> String {
    let token = token_known.then(|| Secret::new(crate::secret::REDACTED));
    render_env(token.as_ref(), url, cluster_init)
        .expose()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_unit_snapshot() {
        insta::assert_snapshot!(render_unit(NodeRole::Server));
    }

    #[test]
    fn agent_unit_matches_the_installer_shape() {
        let unit = render_unit(NodeRole::Agent);
        for line in [
            "Type=notify",
            "EnvironmentFile=-/etc/default/%N",
            "EnvironmentFile=-/etc/sysconfig/%N",
            "EnvironmentFile=-/etc/systemd/system/k3s-agent.service.env",
            "KillMode=process",
            "Delegate=yes",
            "Restart=always",
            "RestartSec=5s",
            "LimitNOFILE=1048576",
            "ExecStartPre=-/sbin/modprobe br_netfilter",
            "ExecStart=/usr/local/bin/k3s agent",
        ] {
            assert!(unit.lines().any(|l| l == line), "missing {line}");
        }
        assert_eq!(
            unit_path(NodeRole::Agent),
            "/etc/systemd/system/k3s-agent.service"
        );
    }

    #[test]
    fn env_file_holds_token_and_url_quoted() {
        let token = Secret::new("K10abc::server:p\"w");
        let env = render_env(Some(&token), Some("https://10.0.0.1:6443"), false);
        assert_eq!(
            env.expose(),
            "# Managed by k3sctl. Holds the join secret: keep mode 0600.\n\
             K3S_TOKEN=\"K10abc::server:p\\\"w\"\nK3S_URL=\"https://10.0.0.1:6443\"\n"
        );
        let masked = masked_env(true, Some("https://10.0.0.1:6443"), false);
        assert!(!masked.contains("K10abc") && masked.contains("K3S_TOKEN=\"<redacted>\""));
        assert_eq!(render_env(None, None, false).expose().lines().count(), 1);
        assert_eq!(
            render_env(None, None, true).expose().lines().nth(1),
            Some("K3S_CLUSTER_INIT=\"true\"")
        );
    }
}
