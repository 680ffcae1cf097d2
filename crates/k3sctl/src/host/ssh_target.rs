//! [`SshTarget`]: how to reach one host with the system OpenSSH client, and the pure translation
//! into the arguments of the `ssh` master process.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Everything needed to reach a host over ssh. Independent of the cluster spec: callers map their
/// configuration onto it. Unset fields fall back to the user's ssh configuration (`~/.ssh/config`
/// or [`config_file`](Self::config_file)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    /// Name used in log lines and errors (the host's name in the spec).
    pub name: String,
    /// Host name or IP address given to ssh (may be an alias from the ssh config).
    pub address: String,
    /// Login user (`-l`).
    pub user: Option<String>,
    /// Port (`-p`).
    pub port: Option<u16>,
    /// Identity file (`-i`, with `IdentitiesOnly=yes`).
    pub identity_file: Option<PathBuf>,
    /// ssh config file (`-F`); replaces ~/.ssh/config and /etc/ssh/ssh_config.
    pub config_file: Option<PathBuf>,
    /// known_hosts file (`UserKnownHostsFile`).
    pub known_hosts_file: Option<PathBuf>,
    /// Extra `-o Key=Value` options, e.g. `ProxyJump`. They take precedence over k3sctl's
    /// defaults and over the config file.
    pub options: Vec<(String, String)>,
    /// Record unknown host keys (`StrictHostKeyChecking=accept-new`) instead of refusing them.
    /// A changed key is refused either way.
    pub accept_new_host_keys: bool,
    /// Use `sudo -n` for privileged commands when the user is not root.
    pub sudo: bool,
    /// TCP connect timeout of the master connection.
    pub connect_timeout: Duration,
    /// How long the master connection stays up after its last use (`ControlPersist`), so the
    /// next run reuses it; it also bounds how long a master outlives a killed k3sctl.
    pub persist: Duration,
}

impl SshTarget {
    /// A target for `address` named `name`, with everything else from the ssh configuration,
    /// strict host-key checking, sudo when not root, a 10 s connect timeout and a master kept
    /// 60 s after its last use.
    pub fn new(name: impl Into<String>, address: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            address: address.into(),
            user: None,
            port: None,
            identity_file: None,
            config_file: None,
            known_hosts_file: None,
            options: Vec::new(),
            accept_new_host_keys: false,
            sudo: true,
            connect_timeout: Duration::from_secs(10),
            persist: Duration::from_secs(60),
        }
    }

    /// The known_hosts file to name in messages: the configured one, else the user's default.
    pub fn known_hosts_display(&self) -> String {
        match (&self.known_hosts_file, self.option("UserKnownHostsFile")) {
            (_, Some(o)) => o.to_owned(),
            (Some(p), None) => p.display().to_string(),
            (None, None) => "~/.ssh/known_hosts".to_owned(),
        }
    }

    /// The value of an extra option, matched case-insensitively like ssh does.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// Arguments of the master process: `ssh <args> <address>` authenticates, then forks into the
    /// background (`-f`) serving channels on the control socket `control`, logging to `log`.
    pub fn master_args(&self, control: &Path, log: &Path) -> Vec<OsString> {
        let mut args = self.connection_args();
        // Before the trailing `-- <address>`.
        let at = args.len() - 2;
        args.splice(
            at..at,
            [
                "-S".into(),
                control.as_os_str().to_owned(),
                "-E".into(),
                log.as_os_str().to_owned(),
            ],
        );
        args
    }

    /// The master's arguments without its control and log paths: what decides where the master
    /// connects and how. Two targets with the same connection arguments can share a master.
    pub fn connection_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        let mut push = |a: &str| args.push(a.into());
        // ssh uses the first value it sees for an option: user options go first so they win.
        let mut opts: Vec<String> = self
            .options
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let strict = if self.accept_new_host_keys {
            "accept-new"
        } else {
            "yes"
        };
        opts.extend([
            "BatchMode=yes".to_owned(),
            format!("StrictHostKeyChecking={strict}"),
            format!("ControlPersist={}", self.persist.as_secs().max(1)),
            format!("ConnectTimeout={}", self.connect_timeout.as_secs().max(1)),
            "ServerAliveInterval=15".to_owned(),
            "ServerAliveCountMax=3".to_owned(),
        ]);
        if let Some(kh) = &self.known_hosts_file {
            opts.push(format!("UserKnownHostsFile={}", kh.display()));
        }
        if self.identity_file.is_some() {
            opts.push("IdentitiesOnly=yes".to_owned());
        }
        for a in ["-M", "-f", "-N", "-T"] {
            push(a);
        }
        for o in &opts {
            push("-o");
            push(o);
        }
        if let Some(config) = &self.config_file {
            args.push("-F".into());
            args.push(config.into());
        }
        if let Some(identity) = &self.identity_file {
            args.push("-i".into());
            args.push(identity.into());
        }
        if let Some(port) = self.port {
            args.push("-p".into());
            args.push(port.to_string().into());
        }
        if let Some(user) = &self.user {
            args.push("-l".into());
            args.push(user.into());
        }
        // `--` keeps an address starting with `-` from being read as an option.
        args.push("--".into());
        args.push(self.address.clone().into());
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[OsString]) -> Vec<String> {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn defaults_are_strict_batch_and_persist_for_a_minute() {
        let t = SshTarget::new("h1", "10.0.0.5");
        let args = strings(&t.master_args(Path::new("/c"), Path::new("/l")));
        assert_eq!(
            args,
            [
                "-M",
                "-f",
                "-N",
                "-T",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "ControlPersist=60",
                "-o",
                "ConnectTimeout=10",
                "-o",
                "ServerAliveInterval=15",
                "-o",
                "ServerAliveCountMax=3",
                "-S",
                "/c",
                "-E",
                "/l",
                "--",
                "10.0.0.5"
            ]
        );
    }

    #[test]
    fn every_setting_reaches_the_command_line_and_user_options_come_first() {
        let mut t = SshTarget::new("h1", "node-1");
        t.user = Some("debian".into());
        t.port = Some(2222);
        t.identity_file = Some("/keys/id".into());
        t.config_file = Some("/lab/ssh_config".into());
        t.known_hosts_file = Some("/lab/known_hosts".into());
        t.options = vec![("ProxyJump".into(), "bastion".into())];
        t.accept_new_host_keys = true;
        let args = strings(&t.master_args(Path::new("/c"), Path::new("/l")));
        let joined = args.join(" ");
        assert!(joined.starts_with("-M -f -N -T -o ProxyJump=bastion -o BatchMode=yes"));
        for part in [
            "-o StrictHostKeyChecking=accept-new",
            "-o UserKnownHostsFile=/lab/known_hosts",
            "-o IdentitiesOnly=yes",
            "-F /lab/ssh_config",
            "-i /keys/id",
            "-p 2222",
            "-l debian",
        ] {
            assert!(joined.contains(part), "{part} missing in {joined}");
        }
        assert!(joined.ends_with("-- node-1"));
    }

    #[test]
    fn known_hosts_display_prefers_the_explicit_option() {
        let mut t = SshTarget::new("h", "a");
        assert_eq!(t.known_hosts_display(), "~/.ssh/known_hosts");
        t.known_hosts_file = Some("/k".into());
        assert_eq!(t.known_hosts_display(), "/k");
        t.options = vec![("userknownhostsfile".into(), "/o".into())];
        assert_eq!(t.known_hosts_display(), "/o");
    }
}
