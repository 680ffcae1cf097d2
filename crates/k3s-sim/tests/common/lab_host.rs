//! Installing the stand-in on lab hosts the way the official installer does: the unit file
//! (Type=notify, env files), files written into a host's root file system, binary swaps.

use lab::Lab;

/// The unit the official installer writes, for `server` or `agent`.
pub fn unit(subcommand: &str, name: &str) -> String {
    format!(
        "[Unit]\n\
         Description=Lightweight Kubernetes\n\
         Documentation=https://k3s.io\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
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
         LimitNOFILE=1048576\n\
         LimitNPROC=infinity\n\
         LimitCORE=infinity\n\
         TasksMax=infinity\n\
         TimeoutStartSec=0\n\
         Restart=always\n\
         RestartSec=2s\n\
         ExecStartPre=-/sbin/modprobe br_netfilter\n\
         ExecStartPre=-/sbin/modprobe overlay\n\
         ExecStart=/usr/local/bin/k3s {subcommand}\n"
    )
}

/// Writes `content` at `abs` inside `host`'s root file system with `mode`.
pub fn put(lab: &Lab, host: &str, abs: &str, content: &[u8], mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let path = lab
        .root_dir(host)
        .expect("root dir")
        .join(abs.trim_start_matches('/'));
    fs_err::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs_err::write(&path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs_err::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Installs `binary` as /usr/local/bin/k3s the way an upgrade does: temp file, then rename.
pub fn swap_binary(lab: &Lab, host: &str, binary: &[u8]) {
    put(lab, host, "/usr/local/bin/.k3s.new", binary, 0o755);
    let dir = lab.root_dir(host).expect("root dir").join("usr/local/bin");
    fs_err::rename(dir.join(".k3s.new"), dir.join("k3s")).expect("rename");
}
