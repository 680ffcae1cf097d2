//! The `pct` command line of the Proxmox stand-in: arguments → [`PctCommand`], and the exact
//! messages real `pct` prints (pve-container `src/PVE/CLI/pct.pm`, `PVE/API2/LXC*.pm`,
//! pve-guest-common `AbstractConfig.pm`). Pure.

/// Exit code of a Perl `die` in the CLI (no errno set).
pub const DIE_EXIT: i32 = 255;

/// One parsed `pct` invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PctCommand {
    /// `pct exec <vmid> [--keep-env 0|1] [-- cmd...]`.
    Exec {
        /// Container id.
        vmid: u32,
        /// The command and its arguments (may be empty: "missing command").
        argv: Vec<String>,
    },
    /// `pct status <vmid>`.
    Status {
        /// Container id.
        vmid: u32,
    },
    /// `pct start <vmid>`.
    Start {
        /// Container id.
        vmid: u32,
    },
    /// `pct stop <vmid>`.
    Stop {
        /// Container id.
        vmid: u32,
    },
    /// `pct reboot <vmid>`.
    Reboot {
        /// Container id.
        vmid: u32,
    },
    /// `pct config <vmid> [--current 1]`.
    Config {
        /// Container id.
        vmid: u32,
        /// Applied values instead of pending ones.
        current: bool,
    },
    /// `pct set <vmid> --onboot 0|1`.
    Set {
        /// Container id.
        vmid: u32,
        /// New `onboot` value.
        onboot: bool,
    },
    /// `pct push <vmid> <file> <destination> [--perms MODE]`.
    Push {
        /// Container id.
        vmid: u32,
        /// Path on the Proxmox host.
        file: String,
        /// Path in the container.
        destination: String,
        /// Octal permission bits (default 0644).
        perms: u32,
    },
    /// `pct pull <vmid> <path> <destination>`.
    Pull {
        /// Container id.
        vmid: u32,
        /// Path in the container.
        path: String,
        /// Path on the Proxmox host.
        destination: String,
    },
    /// `pct list`.
    List,
}

/// Messages of real `pct`, each ending in a newline as printed on stderr.
pub mod msg {
    /// The container's configuration is not on this node.
    pub fn not_on_node(node: &str, vmid: u32) -> String {
        format!("Configuration file 'nodes/{node}/lxc/{vmid}.conf' does not exist\n")
    }
    /// `pct exec` on a stopped container.
    pub fn exec_not_running(vmid: u32) -> String {
        format!("container '{vmid}' not running!\n")
    }
    /// `pct start` on a running container.
    pub fn already_running(vmid: u32) -> String {
        format!("CT {vmid} already running\n")
    }
    /// `pct stop`/`reboot` on a stopped container.
    pub fn not_running(vmid: u32) -> String {
        format!("CT {vmid} not running\n")
    }
    /// Any state-changing command on a container with `lock:` set.
    pub fn locked(lock: &str) -> String {
        format!("CT is locked ({lock})\n")
    }
    /// `pct push` to a stopped container.
    pub const PUSH_NOT_RUNNING: &str = "can only push files to a running CT\n";
    /// `pct pull` from a stopped container.
    pub const PULL_NOT_RUNNING: &str = "can only pull files from a running CT\n";
    /// A push/pull whose target directory is missing (printed, yet `pct` exits 0).
    pub fn failed_to_create(path: &str) -> String {
        format!("failed to create file: {path}: No such file or directory\n")
    }
    /// `pct` run by a user other than root.
    pub const NOT_ROOT: &str = "please run as root\n";
    /// `pct exec <vmid>` without a command.
    pub const MISSING_COMMAND: &str = "missing command\n";
}

/// Parses `pct`'s arguments (without the program name). Errors are the message to print on
/// stderr (exit [`DIE_EXIT`]).
pub fn parse(args: &[String]) -> Result<PctCommand, String> {
    let Some((sub, rest)) = args.split_first() else {
        return Err(usage());
    };
    let (positional, options, trailing) = split_args(rest)?;
    let vmid = || -> Result<u32, String> {
        let raw = positional
            .first()
            .ok_or_else(|| "400 not enough arguments\n".to_owned())?;
        parse_vmid(raw)
    };
    let arg = |i: usize, name: &str| -> Result<String, String> {
        positional
            .get(i)
            .cloned()
            .ok_or_else(|| format!("400 not enough arguments\n{name}: property is missing\n"))
    };
    let flag = |name: &str| -> Result<Option<String>, String> {
        Ok(options
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone()))
    };
    let known = |allowed: &[&str]| -> Result<(), String> {
        match options.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
            Some((k, _)) => Err(format!("Unknown option: {k}\n400 unable to parse option\n")),
            None => Ok(()),
        }
    };
    match sub.as_str() {
        "exec" => {
            known(&["keep-env"])?;
            Ok(PctCommand::Exec {
                vmid: vmid()?,
                argv: trailing,
            })
        }
        "status" => {
            known(&["verbose"])?;
            Ok(PctCommand::Status { vmid: vmid()? })
        }
        "start" => {
            known(&[])?;
            Ok(PctCommand::Start { vmid: vmid()? })
        }
        "stop" => {
            known(&[])?;
            Ok(PctCommand::Stop { vmid: vmid()? })
        }
        "reboot" => {
            known(&[])?;
            Ok(PctCommand::Reboot { vmid: vmid()? })
        }
        "config" => {
            known(&["current"])?;
            Ok(PctCommand::Config {
                vmid: vmid()?,
                current: flag("current")?.is_some_and(|v| is_true(&v)),
            })
        }
        "set" => {
            known(&["onboot"])?;
            let onboot = flag("onboot")?.ok_or_else(|| {
                "the lab's pct stand-in only sets --onboot (edit the file for other keys)\n"
                    .to_owned()
            })?;
            Ok(PctCommand::Set {
                vmid: vmid()?,
                onboot: is_true(&onboot),
            })
        }
        "push" => {
            known(&["perms", "user", "group"])?;
            let perms = match flag("perms")? {
                Some(p) => u32::from_str_radix(&p, 8).map_err(|_| {
                    format!("400 Parameter verification failed.\nperms: invalid format - {p}\n")
                })?,
                None => 0o644,
            };
            Ok(PctCommand::Push {
                vmid: vmid()?,
                file: arg(1, "file")?,
                destination: arg(2, "destination")?,
                perms,
            })
        }
        "pull" => {
            known(&["perms", "user", "group"])?;
            Ok(PctCommand::Pull {
                vmid: vmid()?,
                path: arg(1, "path")?,
                destination: arg(2, "destination")?,
            })
        }
        "list" => Ok(PctCommand::List),
        other => Err(format!("unknown command 'pct {other}'\n{}", usage())),
    }
}

fn usage() -> String {
    "USAGE: pct <COMMAND> [ARGS] [OPTIONS]\n  (the lab's stand-in knows: exec status start stop reboot config set push pull list)\n"
        .to_owned()
}

fn is_true(v: &str) -> bool {
    matches!(v, "1" | "true" | "yes" | "on")
}

/// A vmid as Proxmox validates it: an integer from 100 to 999999999.
fn parse_vmid(raw: &str) -> Result<u32, String> {
    let bad = || {
        format!(
            "400 Parameter verification failed.\nvmid: type check ('integer') failed - got '{raw}'\n"
        )
    };
    let n: u64 = raw.parse().map_err(|_| bad())?;
    if !(100..=999_999_999).contains(&n) {
        return Err("400 Parameter verification failed.\nvmid: invalid format - value must be at least 100 and at most 999999999\n".to_owned());
    }
    u32::try_from(n).map_err(|_| bad())
}

type Split = (Vec<String>, Vec<(String, String)>, Vec<String>);

/// Positional arguments, `--name value` options (a boolean option may stand alone) and what
/// follows `--`.
fn split_args(args: &[String]) -> Result<Split, String> {
    let mut positional = Vec::new();
    let mut options = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            return Ok((positional, options, args[i + 1..].to_vec()));
        }
        if let Some(name) = a.strip_prefix("--") {
            if let Some((k, v)) = name.split_once('=') {
                options.push((k.to_owned(), v.to_owned()));
            } else if let Some(v) = args.get(i + 1).filter(|v| !v.starts_with("--")) {
                options.push((name.to_owned(), v.clone()));
                i += 1;
            } else {
                options.push((name.to_owned(), "1".to_owned()));
            }
        } else {
            positional.push(a.clone());
        }
        i += 1;
    }
    Ok((positional, options, Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<PctCommand, String> {
        parse(&args.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn exec_takes_everything_after_the_dashes() {
        assert_eq!(
            p(&["exec", "201", "--", "sh", "-c", "echo --x"]),
            Ok(PctCommand::Exec {
                vmid: 201,
                argv: vec!["sh".into(), "-c".into(), "echo --x".into()]
            })
        );
        assert!(matches!(
            p(&["exec", "201", "--keep-env", "0", "--", "true"]),
            Ok(PctCommand::Exec { vmid: 201, .. })
        ));
        assert_eq!(
            p(&["exec", "201"]),
            Ok(PctCommand::Exec {
                vmid: 201,
                argv: vec![]
            })
        );
    }

    #[test]
    fn vmids_are_validated_like_proxmox() {
        let err = p(&["status", "abc"]).expect_err("not a number");
        assert!(
            err.contains("type check ('integer') failed - got 'abc'"),
            "{err}"
        );
        assert!(p(&["status", "99"]).is_err());
        assert!(p(&["status"]).is_err());
    }

    #[test]
    fn config_current_and_set_onboot() {
        assert_eq!(
            p(&["config", "202", "--current", "1"]),
            Ok(PctCommand::Config {
                vmid: 202,
                current: true
            })
        );
        assert_eq!(
            p(&["config", "202"]),
            Ok(PctCommand::Config {
                vmid: 202,
                current: false
            })
        );
        assert_eq!(
            p(&["set", "202", "--onboot", "0"]),
            Ok(PctCommand::Set {
                vmid: 202,
                onboot: false
            })
        );
        assert!(p(&["set", "202", "--memory", "512"]).is_err());
    }

    #[test]
    fn push_defaults_perms_and_reads_octal() {
        assert_eq!(
            p(&["push", "201", "/tmp/a", "/etc/a", "--perms", "0600"]),
            Ok(PctCommand::Push {
                vmid: 201,
                file: "/tmp/a".into(),
                destination: "/etc/a".into(),
                perms: 0o600
            })
        );
        assert!(matches!(
            p(&["push", "201", "/tmp/a", "/etc/a"]),
            Ok(PctCommand::Push { perms: 0o644, .. })
        ));
        assert!(p(&["push", "201", "/tmp/a"]).is_err());
    }

    #[test]
    fn messages_match_real_pct() {
        assert_eq!(
            msg::not_on_node("pve", 209),
            "Configuration file 'nodes/pve/lxc/209.conf' does not exist\n"
        );
        assert_eq!(msg::exec_not_running(201), "container '201' not running!\n");
        assert_eq!(msg::already_running(201), "CT 201 already running\n");
    }
}
