//! A host's identity, written into its overlay upper layer before boot: host name,
//! machine-id, its own ed25519 SSH host key, root's authorized key and /etc/hosts entries for
//! every lab host.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

use crate::command;
use crate::error::{LabError, Result, fs_step};

/// What a host is, from the outside.
#[derive(Debug, Clone)]
pub struct HostIdentity<'a> {
    /// Host name.
    pub name: &'a str,
    /// Login key for root (`ssh-ed25519 AAAA... comment`).
    pub authorized_key: &'a str,
    /// Every lab host and its addresses, for /etc/hosts.
    pub peers: &'a [(String, Ipv4Addr)],
}

/// Writes the identity into `upper`; returns the host's public key (`ssh-ed25519 AAAA...`).
pub fn write(upper: &Path, id: &HostIdentity<'_>) -> Result<String> {
    let host = id.name;
    let step = |what: &str| format!("host {host}: write {what}");
    let etc = upper.join("etc");
    fs_err::create_dir_all(etc.join("ssh")).map_err(fs_step(step("/etc/ssh")))?;
    fs_err::write(etc.join("hostname"), format!("{host}\n")).map_err(fs_step(step("hostname")))?;
    fs_err::write(etc.join("machine-id"), format!("{}\n", machine_id()?))
        .map_err(fs_step(step("machine-id")))?;
    fs_err::write(etc.join("hosts"), hosts_file(host, id.peers)).map_err(fs_step(step("hosts")))?;
    let ssh_root = upper.join("root/.ssh");
    fs_err::create_dir_all(&ssh_root).map_err(fs_step(step("/root/.ssh")))?;
    set_mode(&upper.join("root"), 0o700).map_err(fs_step(step("/root")))?;
    set_mode(&ssh_root, 0o700).map_err(fs_step(step("/root/.ssh")))?;
    fs_err::write(
        ssh_root.join("authorized_keys"),
        format!("{}\n", id.authorized_key.trim()),
    )
    .map_err(fs_step(step("authorized_keys")))?;
    host_key(host, &etc.join("ssh/ssh_host_ed25519_key"))
}

/// Generates the host's ed25519 key unless present; returns the public key's type and data.
fn host_key(host: &str, key: &Path) -> Result<String> {
    if !key.exists() {
        command::run(
            &format!("host {host}: generate ssh host key"),
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C"])
                .arg(format!("root@{host}"))
                .arg("-f")
                .arg(key),
            "install openssh-client (ssh-keygen)",
        )?;
    }
    let pubkey = fs_err::read_to_string(key.with_extension("pub"))
        .map_err(fs_step(format!("host {host}: read ssh host key")))?;
    let mut words = pubkey.split_whitespace();
    match (words.next(), words.next()) {
        (Some(kind), Some(data)) => Ok(format!("{kind} {data}")),
        _ => Err(LabError::Invalid {
            what: format!("host {host}: malformed host public key {}", key.display()),
            hint: "remove the host with `k3sctl-lab down` and create it again".into(),
        }),
    }
}

/// 32 lowercase hex characters from the kernel's random UUID source.
fn machine_id() -> Result<String> {
    let uuid = fs_err::read_to_string("/proc/sys/kernel/random/uuid")
        .map_err(fs_step("generate machine-id"))?;
    Ok(uuid.trim().replace('-', ""))
}

/// /etc/hosts for `host`: loopback names plus every lab host.
pub fn hosts_file(host: &str, peers: &[(String, Ipv4Addr)]) -> String {
    let mut out = format!(
        "127.0.0.1\tlocalhost\n127.0.1.1\t{host}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    );
    for (name, addr) in peers {
        out.push_str(&format!("{addr}\t{name}\n"));
    }
    out
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_file_lists_every_peer() {
        let peers = vec![
            ("a-1".to_owned(), Ipv4Addr::new(10, 213, 0, 11)),
            ("a-2".to_owned(), Ipv4Addr::new(10, 213, 0, 12)),
        ];
        let text = hosts_file("a-1", &peers);
        assert!(text.contains("127.0.1.1\ta-1\n"));
        assert!(text.contains("10.213.0.12\ta-2\n"));
    }

    #[test]
    fn machine_ids_are_32_hex_and_unique() {
        let a = machine_id().expect("machine id");
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, machine_id().expect("machine id"));
    }
}
