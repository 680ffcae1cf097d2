//! K3s as other tools leave it on lab hosts, for the adoption tests and `cargo xtask bench
//! adopt`: the official install script's layout, built from its documented form
//! (../shared/notes/k3s-contracts.md): its unit with the flags in ExecStart (one quoted word a
//! line, as the script writes `INSTALL_K3S_EXEC`), its env file with `K3S_TOKEN` (and
//! `K3S_URL` on agents), and config.yaml as an Ansible role writes it, the flags split
//! between the unit and config.yaml. k3s-ansible's unit (its template: the words on
//! continuation lines, unquoted) is [`k3s_ansible_unit`].

use std::os::unix::fs::PermissionsExt;

use crate::error::{LabError, Result};
use crate::lab::Lab;

/// The install script's unit for `role` (`server` or `agent`) with `flags` in ExecStart.
pub fn installer_unit(role: &str, flags: &[&str]) -> String {
    let mut exec = format!("ExecStart=/usr/local/bin/k3s \\\n    {role} \\\n");
    for flag in flags {
        exec.push_str(&format!("\t'{flag}' \\\n"));
    }
    service_unit(role, &exec)
}

/// k3s-ansible's unit for `role`: `args` (its `--cluster-init` / `--server`, `--data-dir` and
/// `extra_server_args`) unquoted on continuation lines, as its template renders them.
pub fn k3s_ansible_unit(role: &str, args: &[&str]) -> String {
    let mut exec = format!("ExecStart=/usr/local/bin/k3s {role}");
    for arg in args {
        exec.push_str(&format!(" \\\n    {arg}"));
    }
    exec.push_str(" \n");
    service_unit(role, &exec)
}

fn service_unit(role: &str, exec: &str) -> String {
    let env_name = unit_of(role);
    format!(
        "[Unit]\nDescription=Lightweight Kubernetes\nDocumentation=https://k3s.io\n\
         Wants=network-online.target\nAfter=network-online.target\n\n[Install]\n\
         WantedBy=multi-user.target\n\n[Service]\nType=notify\n\
         EnvironmentFile=-/etc/default/%N\nEnvironmentFile=-/etc/sysconfig/%N\n\
         EnvironmentFile=-/etc/systemd/system/{env_name}.service.env\nKillMode=process\n\
         Delegate=yes\nLimitNOFILE=1048576\nLimitNPROC=infinity\nLimitCORE=infinity\n\
         TasksMax=infinity\nTimeoutStartSec=0\nRestart=always\nRestartSec=5s\n\
         ExecStartPre=-/sbin/modprobe br_netfilter\nExecStartPre=-/sbin/modprobe overlay\n{exec}\n"
    )
}

/// The unit K3s runs as for `role` (`server` or `agent`).
pub fn unit_of(role: &str) -> &'static str {
    if role == "server" { "k3s" } else { "k3s-agent" }
}

/// Writes `content` to `path` in `host`'s root file system (directories created) with `mode`.
pub fn write_root(lab: &Lab, host: &str, path: &str, content: &[u8], mode: u32) -> Result<()> {
    let full = lab.root_dir(host)?.join(path.trim_start_matches('/'));
    let fs = |source: std::io::Error| LabError::Fs {
        step: format!("host {host}: writing {path}"),
        source,
        hint: "check the lab host's root file system",
    };
    if let Some(parent) = full.parent() {
        fs_err::create_dir_all(parent).map_err(fs)?;
    }
    fs_err::write(&full, content).map_err(fs)?;
    fs_err::set_permissions(&full, std::fs::Permissions::from_mode(mode)).map_err(fs)
}

/// Removes what k3sctl and the installers leave of K3s's start files (units, their drop-ins
/// and env files, config.yaml and its drop-ins, registries.yaml, k3sctl's adoption record), so
/// that a layout can be written afresh. K3s keeps running.
pub fn clear_start_files(lab: &Lab, host: &str) -> Result<()> {
    lab.exec(
        host,
        "rm -rf /etc/rancher/k3s/registries.yaml /etc/rancher/k3s/config.yaml \
         /etc/rancher/k3s/config.yaml.d /var/lib/k3sctl/adopted /etc/systemd/system/k3s*.service*",
    )
    .map(drop)
}

/// The install script's layout of one cluster: the first host a server, the others agents
/// joining it.
#[derive(Debug, Clone)]
pub struct InstallScript<'a> {
    /// The join token (a bare password, as users give `K3S_TOKEN`).
    pub token: &'a str,
    /// The server's address the agents join through.
    pub server_ip: &'a str,
}

impl InstallScript<'_> {
    /// The server's files: `--disable traefik --kubelet-arg max-pods=150` in ExecStart, the
    /// token in the env file, and config.yaml (token, tls-san, kubeconfig mode) as an Ansible
    /// role writes it.
    pub fn server_files(&self) -> Vec<(String, String, u32)> {
        let (token, ip) = (self.token, self.server_ip);
        vec![
            (
                "/etc/systemd/system/k3s.service".into(),
                installer_unit(
                    "server",
                    &["--disable", "traefik", "--kubelet-arg", "max-pods=150"],
                ),
                0o644,
            ),
            (
                "/etc/systemd/system/k3s.service.env".into(),
                format!("K3S_TOKEN='{token}'\n"),
                0o600,
            ),
            (
                "/etc/rancher/k3s/config.yaml".into(),
                format!("token: {token}\ntls-san:\n  - {ip}\nwrite-kubeconfig-mode: \"0600\"\n"),
                0o600,
            ),
        ]
    }

    /// An agent's files: a node label in ExecStart, `K3S_TOKEN` and `K3S_URL` in the env file,
    /// a kubelet argument in config.yaml.
    pub fn agent_files(&self) -> Vec<(String, String, u32)> {
        let (token, ip) = (self.token, self.server_ip);
        vec![
            (
                "/etc/systemd/system/k3s-agent.service".into(),
                installer_unit("agent", &["--node-label", "zone=z1"]),
                0o644,
            ),
            (
                "/etc/systemd/system/k3s-agent.service.env".into(),
                format!("K3S_TOKEN='{token}'\nK3S_URL='https://{ip}:6443'\n"),
                0o600,
            ),
            (
                "/etc/rancher/k3s/config.yaml".into(),
                "kubelet-arg:\n  - max-pods=110\n".into(),
                0o600,
            ),
        ]
    }

    /// Writes the layout on `hosts` (the first the server), after clearing what was there;
    /// `binary` is installed as /usr/local/bin/k3s when given (never while K3s runs from it).
    /// Starts nothing: see [`start`].
    pub fn lay_out(&self, lab: &Lab, hosts: &[&str], binary: Option<&[u8]>) -> Result<()> {
        for (i, host) in hosts.iter().enumerate() {
            clear_start_files(lab, host)?;
            if let Some(binary) = binary {
                write_root(lab, host, "/usr/local/bin/k3s", binary, 0o755)?;
            }
            let files = if i == 0 {
                self.server_files()
            } else {
                self.agent_files()
            };
            for (path, content, mode) in files {
                write_root(lab, host, &path, content.as_bytes(), mode)?;
            }
        }
        Ok(())
    }
}

/// Starts (or restarts, when `restart`) each host's K3s unit after `daemon-reload`, one host
/// after another in the order given, as an installer does; `roles[i]` is `server` or `agent`.
pub fn start(lab: &Lab, hosts: &[&str], roles: &[&str], restart: bool) -> Result<()> {
    for (host, role) in hosts.iter().zip(roles) {
        let verb = if restart { "restart" } else { "enable --now" };
        lab.exec(
            host,
            &format!(
                "systemctl daemon-reload && systemctl {verb} {}",
                unit_of(role)
            ),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_install_scripts_unit_quotes_one_flag_a_line() {
        let unit = installer_unit("agent", &["--node-label", "zone=z1"]);
        assert!(
            unit.contains("ExecStart=/usr/local/bin/k3s \\\n    agent \\\n\t'--node-label' \\\n\t'zone=z1' \\\n"),
            "{unit}"
        );
        assert!(unit.contains("EnvironmentFile=-/etc/systemd/system/k3s-agent.service.env"));
    }

    #[test]
    fn k3s_ansibles_unit_continues_unquoted_words() {
        let unit = k3s_ansible_unit(
            "server",
            &["--data-dir /var/lib/rancher/k3s", "--disable traefik"],
        );
        assert!(
            unit.contains(
                "ExecStart=/usr/local/bin/k3s server \\\n    --data-dir /var/lib/rancher/k3s \\\n    --disable traefik \n"
            ),
            "{unit}"
        );
        assert!(unit.contains("EnvironmentFile=-/etc/systemd/system/k3s.service.env"));
    }
}
