//! SSH access exactly as k3sctl uses it in production: a lab key pair, a known_hosts file with
//! every host's real key, an ssh_config with strict host-key checking, and `ssh -F` to run
//! commands.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::command::{self, TimedOutput};
use crate::error::{LabError, Result, fs_step};

/// One host as ssh sees it.
#[derive(Debug, Clone)]
pub struct SshHost {
    /// Host name (the `Host` alias).
    pub name: String,
    /// Every address, the first one is what ssh connects to.
    pub addresses: Vec<Ipv4Addr>,
    /// Host public key (`ssh-ed25519 AAAA...`).
    pub host_key: String,
}

/// Creates the lab's login key pair unless present; returns the public key line.
pub fn ensure_key_pair(lab: &str, key: &Path) -> Result<String> {
    if !key.exists() {
        command::run(
            &format!("lab {lab}: generate ssh key pair"),
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C"])
                .arg(format!("k3sctl-lab@{lab}"))
                .arg("-f")
                .arg(key),
            "install openssh-client (ssh-keygen)",
        )?;
    }
    fs_err::read_to_string(key.with_extension("pub"))
        .map(|s| s.trim().to_owned())
        .map_err(fs_step(format!("lab {lab}: read public key")))
}

/// known_hosts text: each host's key under its name and all its addresses.
pub fn known_hosts(hosts: &[SshHost]) -> String {
    hosts
        .iter()
        .map(|h| {
            let mut names = vec![h.name.clone()];
            names.extend(h.addresses.iter().map(Ipv4Addr::to_string));
            format!("{} {}\n", names.join(","), h.host_key)
        })
        .collect()
}

/// ssh_config text: a block per host matching its name and its addresses.
pub fn ssh_config(hosts: &[SshHost], identity: &Path, known_hosts: &Path) -> String {
    let mut out = String::from("# Written by k3sctl-lab; regenerated on every `up`.\n");
    for h in hosts {
        let Some(first) = h.addresses.first() else {
            continue;
        };
        let addrs: Vec<String> = h.addresses.iter().map(Ipv4Addr::to_string).collect();
        out.push_str(&format!(
            "\nHost {name}\n  HostName {first}\n\nHost {name} {addrs}\n  User root\n  IdentityFile {id}\n  IdentitiesOnly yes\n  UserKnownHostsFile {kh}\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  BatchMode yes\n  ConnectTimeout 10\n  LogLevel ERROR\n",
            name = h.name,
            addrs = addrs.join(" "),
            id = identity.display(),
            kh = known_hosts.display(),
        ));
    }
    out
}

/// Runs `remote` (a shell command line) on `host` through the lab's ssh_config.
pub fn run(config: &Path, host: &str, remote: &str, limit: Duration) -> Result<TimedOutput> {
    let mut cmd = ssh_command(config, host);
    cmd.arg("--").arg(remote);
    command::run_with_deadline(&format!("host {host}: ssh {remote}"), &mut cmd, limit)
}

/// Like [`run`], but fails unless the command exits 0; returns its stdout.
pub fn run_ok(config: &Path, host: &str, remote: &str, limit: Duration) -> Result<String> {
    let out = run(config, host, remote, limit)?;
    if out.code == Some(0) {
        return Ok(out.stdout);
    }
    let detail = if out.timed_out {
        format!("no answer within {limit:?}")
    } else {
        format!("exit {:?}: {}", out.code, out.stderr.trim())
    };
    Err(LabError::Host {
        host: host.to_owned(),
        step: format!("ssh `{remote}`"),
        detail,
        hint: "check the host with `k3sctl-lab status` and its console.log in the lab dir".into(),
    })
}

/// `ssh -F config host` without the remote command.
pub fn ssh_command(config: &Path, host: &str) -> Command {
    let mut cmd = Command::new("ssh");
    cmd.arg("-F").arg(config).arg(host);
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Vec<SshHost> {
        vec![SshHost {
            name: "a-1".into(),
            addresses: vec![Ipv4Addr::new(10, 213, 0, 11), Ipv4Addr::new(10, 214, 0, 11)],
            host_key: "ssh-ed25519 AAAAkey".into(),
        }]
    }

    #[test]
    fn known_hosts_names_the_host_and_all_addresses() {
        assert_eq!(
            known_hosts(&hosts()),
            "a-1,10.213.0.11,10.214.0.11 ssh-ed25519 AAAAkey\n"
        );
    }

    #[test]
    fn config_is_strict_and_matches_name_and_addresses() {
        let text = ssh_config(
            &hosts(),
            Path::new("/l/id_ed25519"),
            Path::new("/l/known_hosts"),
        );
        assert!(text.contains("Host a-1\n  HostName 10.213.0.11\n"));
        assert!(text.contains("Host a-1 10.213.0.11 10.214.0.11\n  User root\n"));
        assert!(text.contains("StrictHostKeyChecking yes"));
        assert!(text.contains("UserKnownHostsFile /l/known_hosts"));
        assert!(text.contains("IdentityFile /l/id_ed25519"));
    }
}
