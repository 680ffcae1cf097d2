//! What each `k3sctl-lab` subcommand does, on top of the `lab` library.

use std::io::Read;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use lab::registry;
use lab::{Lab, LabError, LabOptions, LoginUser, Readiness, SpecOptions, SudoMode, require_root};

use crate::bench;
use crate::cli::Cmd;

/// Runs one subcommand; returns the exit code for commands that pass one through.
pub fn run(cmd: Cmd) -> Result<ExitCode, LabError> {
    require_root()?;
    match cmd {
        Cmd::Up {
            name,
            hosts,
            dual_nic,
            login_user,
            sudo_asks_password,
            proxmox,
            spec_out,
            servers,
            k3s_binary,
            k3s_version,
            hold,
            timeout,
        } => {
            if spec_out.is_some() && (servers == 0 || servers > hosts) {
                return Err(LabError::Invalid {
                    what: format!("--servers {servers} with --hosts {hosts}"),
                    hint: "give between 1 and --hosts servers".into(),
                });
            }
            let opts = LabOptions {
                name,
                hosts,
                dual_nic,
                boot_timeout: Duration::from_secs(timeout),
                owned: hold,
                login_user: login_user
                    .map(|name| {
                        let mode = if sudo_asks_password {
                            SudoMode::Password
                        } else {
                            SudoMode::Passwordless
                        };
                        LoginUser::new(&name, mode)
                    })
                    .transpose()?,
                proxmox,
            };
            // Fail before booting anything when the spec could not be written.
            if spec_out.is_some() && k3s_binary.is_none() {
                lab::find_stand_in()?;
            }
            let start = Instant::now();
            let lab = Lab::up(&opts)?;
            let booted = start.elapsed();
            if let Some(path) = spec_out {
                lab.write_spec(
                    &path,
                    &SpecOptions {
                        k3s_binary,
                        k3s_version,
                        servers: Some(servers),
                    },
                )?;
                println!("spec written to {}", path.display());
            }
            print_ready(&lab, booted);
            if hold {
                println!("holding the lab; end input (Ctrl-D) to remove it");
                // Any outcome of reading (EOF, error) means: stop holding.
                let _ = std::io::stdin().read_to_end(&mut Vec::new());
                lab.down()?;
            }
        }
        Cmd::Down { name, all } => {
            if all {
                for name in registry::remove_all_labs()? {
                    println!("removed lab {name}");
                }
            } else if let Some(name) = name {
                Lab::open(&name)?.down()?;
                println!("removed lab {name}");
            }
        }
        Cmd::Cleanup => {
            for name in registry::sweep_orphans()? {
                println!("removed orphaned lab {name}");
            }
        }
        Cmd::Status { name } => status(name.as_deref())?,
        Cmd::PveAgent { lab } => lab::proxmox::agent::serve(&lab)?,
        Cmd::Stop { host } => lab_of(&host)?.stop(&host)?,
        Cmd::Start { host, ssh_only } => {
            let until = if ssh_only {
                Readiness::SshAnswers
            } else {
                Readiness::SystemRunning
            };
            lab_of(&host)?.start_until(&host, until)?;
        }
        Cmd::Crash { host } => lab_of(&host)?.crash(&host)?,
        Cmd::Lose { host } => lab_of(&host)?.lose(&host)?,
        Cmd::Cut { host } => lab_of(&host)?.cut(&host)?,
        Cmd::Uncut { host } => lab_of(&host)?.uncut(&host)?,
        Cmd::Partition { host, from } => {
            let peers: Vec<&str> = from.iter().map(String::as_str).collect();
            lab_of(&host)?.partition(&host, &peers)?;
        }
        Cmd::Heal { host, lab } => match (host, lab) {
            (Some(host), _) => lab_of(&host)?.heal(Some(&host))?,
            (None, Some(name)) => Lab::open(&name)?.heal(None)?,
            (None, None) => {}
        },
        Cmd::Exec { host, command } => {
            if let Some(mut attach) = lab_of(&host)?.attach_command(&host)? {
                attach.args(&command);
                return Ok(pass_through(&host, &mut attach));
            }
            let remote: Vec<String> = command.iter().map(|a| shell_quote(a)).collect();
            let mut ssh = lab_of(&host)?.ssh_command(&host)?;
            ssh.arg("--").arg(remote.join(" "));
            return Ok(pass_through(&host, &mut ssh));
        }
        Cmd::Ssh { host } => {
            if let Some(mut attach) = lab_of(&host)?.attach_command(&host)? {
                attach.args(["/bin/bash", "-l"]);
                return Ok(pass_through(&host, &mut attach));
            }
            let mut ssh = lab_of(&host)?.ssh_command(&host)?;
            return Ok(pass_through(&host, &mut ssh));
        }
        Cmd::Image => {
            let root = lab::image::ensure(&lab::image::RECIPE, &lab::paths::cache_root())?;
            println!("{}", root.display());
        }
        Cmd::Bench { sizes } => bench::run(&sizes)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The lab a host belongs to: hosts are named `<lab>-<n>`.
fn lab_of(host: &str) -> Result<Lab, LabError> {
    let Some((name, _)) = host.rsplit_once('-') else {
        return Err(LabError::Invalid {
            what: format!("{host:?} is not a lab host name"),
            hint: "lab hosts are called <lab>-<n>; see `k3sctl-lab status`".into(),
        });
    };
    Lab::open(name)
}

fn pass_through(host: &str, cmd: &mut std::process::Command) -> ExitCode {
    match cmd.status() {
        Ok(status) => ExitCode::from(u8::try_from(status.code().unwrap_or(255)).unwrap_or(255)),
        Err(e) => {
            eprintln!(
                "k3sctl-lab: host {host}: cannot run ssh: {e}\n  hint: install openssh-client"
            );
            ExitCode::FAILURE
        }
    }
}

fn shell_quote(arg: &str) -> String {
    let plain = arg
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
    if plain && !arg.is_empty() {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

fn print_ready(lab: &Lab, booted: Duration) {
    let naming = lab.state().naming();
    println!(
        "lab {} ready in {:.1}s (index {}, subnet {})",
        lab.name(),
        booted.as_secs_f64(),
        naming.index,
        naming.subnet(0)
    );
    for h in lab.hosts() {
        let private = h
            .private_address
            .map(|a| format!("  eth1 {a}"))
            .unwrap_or_default();
        println!("  {:<20} eth0 {}{private}", h.name, h.address);
    }
    println!("ssh: ssh -F {} <host>", lab.ssh_config().display());
}

fn status(only: Option<&str>) -> Result<(), LabError> {
    let labs = match only {
        Some(name) => vec![lab::state::LabState::load(name)?],
        None => registry::all_labs(),
    };
    if labs.is_empty() {
        println!("no labs");
    }
    for state in labs {
        let lab = Lab::open(&state.name)?;
        let owner = match state.owner {
            Some(o) if o.alive() => format!("held by process {}", o.pid),
            Some(o) => format!(
                "orphan of dead process {} (run `k3sctl-lab cleanup`)",
                o.pid
            ),
            None => "persistent".into(),
        };
        println!(
            "lab {} (index {}, {owner}) in {}",
            state.name,
            state.index,
            lab.dir().display()
        );
        for (h, host) in state.hosts.iter().zip(lab.hosts()) {
            let running = lab.is_running(&h.name)?;
            let mut flags = vec![if running { "running" } else { "stopped" }.to_owned()];
            if h.cut {
                flags.push("cut".into());
            }
            if h.lost {
                flags.push("lost".into());
            }
            if !h.partitioned_from.is_empty() {
                let peers: Vec<&str> = h.partitioned_from.iter().map(String::as_str).collect();
                flags.push(format!("partitioned from {}", peers.join(",")));
            }
            let mem = if running {
                format!("{} MiB", lab.memory_kib(&h.name)? / 1024)
            } else {
                "-".into()
            };
            println!(
                "  {:<20} {:<15} {:<8} {}",
                h.name,
                host.address,
                mem,
                flags.join(", ")
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn arguments_keep_their_boundaries() {
        assert_eq!(shell_quote("hostname"), "hostname");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
