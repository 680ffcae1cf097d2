//! What a container's .conf changes in the container, where the lab can do it. The lab writes
//! the settings derived from the .conf into the container before each boot
//! (`/etc/lab-lxc/settings`); an early unit in the container (`lab-lxc.service`, before
//! `sysinit.target`) applies them, the way LXC sets a container up before its init runs:
//! - `/dev/kmsg` exists only with an `lxc.mount.entry` binding `/dev/kmsg` (it is the kernel's
//!   kmsg device node, char 1:11, as the bind gives); otherwise it is removed, as in an LXC
//!   container without it (a conf-kmsg unit may then create it later in the boot).
//! - `/proc/sys` is writable only with `lxc.mount.auto` giving `proc:rw` (nspawn, like LXC's
//!   default `proc:mixed`, mounts it read-only).
//!
//! The container also has sshd masked: only `pct` reaches it.

use std::path::Path;

use super::conf::Conf;
use crate::error::{Result, fs_step};

/// Settings file inside the container.
pub const SETTINGS: &str = "etc/lab-lxc/settings";

const SCRIPT_PATH: &str = "usr/local/libexec/lab-lxc";
const UNIT_PATH: &str = "etc/systemd/system/lab-lxc.service";
const UNIT_LINK: &str = "etc/systemd/system/sysinit.target.wants/lab-lxc.service";

const SCRIPT: &str = r#"#!/bin/sh
# Written by k3sctl-lab: applies this container's Proxmox LXC settings (see /etc/lab-lxc/settings).
KMSG=none
PROC_RW=0
[ -r /etc/lab-lxc/settings ] && . /etc/lab-lxc/settings
if [ "$KMSG" = mount ]; then
  [ -e /dev/kmsg ] || mknod -m 600 /dev/kmsg c 1 11
else
  rm -f /dev/kmsg
fi
if [ "$PROC_RW" = 1 ]; then
  mount -o remount,bind,rw /proc/sys 2>/dev/null || true
else
  mount -o remount,bind,ro /proc/sys 2>/dev/null || true
fi
"#;

const UNIT: &str = "[Unit]\nDescription=Lab: apply this container's Proxmox LXC settings\n\
DefaultDependencies=no\nBefore=sysinit.target\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\n\
ExecStart=/usr/local/libexec/lab-lxc\n\n[Install]\nWantedBy=sysinit.target\n";

/// The settings a container gets from its .conf (sourced by the unit's script).
pub fn settings(conf: &Conf) -> String {
    let live = &conf.current;
    let kmsg = live.lxc_values("lxc.mount.entry").any(|v| {
        let mut words = v.split_whitespace();
        words.next() == Some("/dev/kmsg") && words.next() == Some("dev/kmsg")
    });
    let proc_rw = live.lxc_values("lxc.mount.auto").any(|v| {
        v.trim_matches(|c| c == '"' || c == '\'')
            .split_whitespace()
            .any(|w| w == "proc:rw")
    });
    format!(
        "# From the container's Proxmox .conf, written by k3sctl-lab before boot.\nKMSG={}\nPROC_RW={}\n",
        if kmsg { "mount" } else { "none" },
        u8::from(proc_rw)
    )
}

/// Installs the unit and its script in a container's upper layer and masks sshd.
pub fn install(host: &str, upper: &Path) -> Result<()> {
    let step = |what: &str| format!("host {host}: {what}");
    let write = |rel: &str, text: &str, mode: u32| -> Result<()> {
        let path = upper.join(rel);
        if let Some(dir) = path.parent() {
            fs_err::create_dir_all(dir).map_err(fs_step(step("create dirs")))?;
        }
        fs_err::write(&path, text).map_err(fs_step(step(rel)))?;
        use std::os::unix::fs::PermissionsExt;
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(fs_step(step(rel)))
    };
    write(SCRIPT_PATH, SCRIPT, 0o755)?;
    write(UNIT_PATH, UNIT, 0o644)?;
    link(
        upper,
        UNIT_LINK,
        "/etc/systemd/system/lab-lxc.service",
        host,
    )?;
    for unit in ["ssh.service", "ssh.socket", "sshd.service"] {
        link(
            upper,
            &format!("etc/systemd/system/{unit}"),
            "/dev/null",
            host,
        )?;
    }
    Ok(())
}

fn link(upper: &Path, rel: &str, target: &str, host: &str) -> Result<()> {
    let path = upper.join(rel);
    let step = format!("host {host}: link {rel}");
    if let Some(dir) = path.parent() {
        fs_err::create_dir_all(dir).map_err(fs_step(step.clone()))?;
    }
    if path.symlink_metadata().is_ok() {
        fs_err::remove_file(&path).map_err(fs_step(step.clone()))?;
    }
    fs_err::os::unix::fs::symlink(target, &path).map_err(fs_step(step))
}

/// Writes the settings from `conf_text` into the container's (mounted) root.
pub fn write_settings(host: &str, root: &Path, conf_text: &str) -> Result<()> {
    let path = root.join(SETTINGS);
    let step = format!("host {host}: write {SETTINGS}");
    if let Some(dir) = path.parent() {
        fs_err::create_dir_all(dir).map_err(fs_step(step.clone()))?;
    }
    fs_err::write(&path, settings(&Conf::parse(conf_text))).map_err(fs_step(step))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kmsg_and_proc_follow_the_conf() {
        let good = Conf::parse(&super::super::default_conf("c", "10.0.0.2", "10.0.0.1"));
        assert!(settings(&good).contains("KMSG=mount\nPROC_RW=1\n"));
        let bare = Conf::parse("arch: amd64\nlxc.mount.auto: \"proc:mixed sys:ro\"\n");
        assert!(settings(&bare).contains("KMSG=none\nPROC_RW=0\n"));
        let quoted = Conf::parse(
            "lxc.mount.auto = \"proc:rw sys:rw\"\n[snap]\nlxc.mount.entry: /dev/kmsg dev/kmsg none bind\n",
        );
        assert!(
            settings(&quoted).contains("KMSG=none\nPROC_RW=1\n"),
            "entries in a snapshot section do not count"
        );
    }
}
