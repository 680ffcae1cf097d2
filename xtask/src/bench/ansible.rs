//! The Ansible side of the bench: ansible-core in a venv (created when missing: CI-like machines
//! are fresh), an inventory and ansible.cfg generated from the lab, and timed playbook runs.
//! ansible.cfg turns on pipelining and ControlPersist so Ansible gets its best showing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Where ansible-core is installed: `<lab cache>/ansible-venv`.
fn venv_dir() -> PathBuf {
    std::env::var_os("K3SCTL_LAB_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/k3sctl-lab"))
        .join("ansible-venv")
}

fn run_checked(what: &str, cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("{what}: cannot start"))?;
    if !status.success() {
        bail!("{what}: failed ({status})");
    }
    Ok(())
}

/// The venv's bin directory, after creating the venv and installing ansible-core if needed.
pub fn ensure_venv() -> anyhow::Result<PathBuf> {
    let venv = venv_dir();
    let bin = venv.join("bin");
    if bin.join("ansible-playbook").is_file() {
        return Ok(bin);
    }
    eprintln!("bench: installing ansible-core into {}", venv.display());
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !made {
        // Debian ships the venv module separately.
        run_checked(
            "apt-get install python3-venv",
            Command::new("apt-get").args(["install", "-y", "-qq", "python3-venv"]),
        )?;
        let _ = fs_err::remove_dir_all(&venv);
        run_checked(
            "python3 -m venv",
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
        )?;
    }
    run_checked(
        "pip install ansible-core",
        Command::new(bin.join("pip")).args(["install", "--quiet", "ansible-core"]),
    )?;
    Ok(bin)
}

/// kubectl 1.20: `K3SCTL_KUBECTL`, else what scripts/ensure-kubectl.sh prints.
fn kubectl(workspace: &Path) -> anyhow::Result<String> {
    if let Some(path) = std::env::var_os("K3SCTL_KUBECTL").filter(|p| !p.is_empty()) {
        return Ok(path.to_string_lossy().into_owned());
    }
    let out = Command::new("bash")
        .arg(workspace.join("scripts/ensure-kubectl.sh"))
        .output()
        .context("run scripts/ensure-kubectl.sh")?;
    if !out.status.success() {
        bail!(
            "scripts/ensure-kubectl.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Inventory, config and playbook of one lab.
#[derive(Debug)]
pub struct Setup {
    inventory: PathBuf,
    config: PathBuf,
    playbook: PathBuf,
}

impl Setup {
    /// Writes the inventory (first host the server, the rest agents) and ansible.cfg into `work`.
    pub fn write(
        lab: &lab::Lab,
        workspace: &Path,
        work: &Path,
        k3s: &Path,
    ) -> anyhow::Result<Self> {
        let hosts = lab.hosts();
        let server = hosts.first().context("the lab has no hosts")?;
        let mut inventory = String::from("[server]\n");
        let line = |h: &lab::Host, role: &str, unit: &str| {
            format!(
                "{} ansible_host={} k3s_role={role} k3s_unit={unit}\n",
                h.name, h.address
            )
        };
        inventory.push_str(&line(server, "server", "k3s"));
        inventory.push_str("\n[agent]\n");
        for agent in &hosts[1..] {
            inventory.push_str(&line(agent, "agent", "k3s-agent"));
        }
        inventory.push_str(&format!(
            "\n[all:vars]\n\
             ansible_user=root\n\
             ansible_ssh_common_args='-F {ssh_config}'\n\
             ansible_python_interpreter=/usr/bin/python3\n\
             k3s_binary={k3s}\n\
             api_endpoint=https://{address}:6443\n\
             kubectl={kubectl}\n\
             kubeconfig_out={kubeconfig}\n\
             kubeconfig_context={lab}-lab\n",
            ssh_config = lab.ssh_config().display(),
            k3s = k3s.display(),
            address = server.address,
            kubectl = kubectl(workspace)?,
            kubeconfig = work.join("ansible-kubeconfig.yaml").display(),
            lab = lab.name(),
        ));
        let control = work.join("cp");
        fs_err::create_dir_all(&control)?;
        let config = format!(
            "[defaults]\n\
             forks = 10\n\
             gathering = explicit\n\
             host_key_checking = True\n\
             retry_files_enabled = False\n\
             interpreter_python = /usr/bin/python3\n\
             \n\
             [ssh_connection]\n\
             pipelining = True\n\
             ssh_args = -o ControlMaster=auto -o ControlPersist=120s\n\
             control_path_dir = {}\n",
            control.display()
        );
        let setup = Self {
            inventory: work.join("inventory.ini"),
            config: work.join("ansible.cfg"),
            playbook: workspace.join("bench/ansible/site.yml"),
        };
        fs_err::write(&setup.inventory, inventory)?;
        fs_err::write(&setup.config, config)?;
        Ok(setup)
    }
}

/// One timed playbook run.
#[derive(Debug)]
pub struct Play {
    /// Wall time of ansible-playbook.
    pub wall: Duration,
}

/// Runs the playbook; fails unless every host is ok, and for a re-run (`noop`) unless nothing
/// changed anywhere.
pub fn play(venv_bin: &Path, setup: &Setup, noop: bool) -> anyhow::Result<Play> {
    let started = Instant::now();
    let out = Command::new(venv_bin.join("ansible-playbook"))
        .arg("-i")
        .arg(&setup.inventory)
        .arg(&setup.playbook)
        .env("ANSIBLE_CONFIG", &setup.config)
        .env("ANSIBLE_NOCOLOR", "1")
        .output()
        .context("run ansible-playbook")?;
    let wall = started.elapsed();
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "ansible-playbook failed ({}):\n{text}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let changed = recap_changed(&text)?;
    if noop && changed > 0 {
        bail!("the playbook's re-run changed {changed} things; it must change nothing:\n{text}");
    }
    if !noop && changed == 0 {
        bail!("the playbook's fresh run changed nothing:\n{text}");
    }
    eprintln!(
        "bench: ansible-playbook ({}) took {:.2}s, {changed} changed",
        if noop { "no-op" } else { "fresh" },
        wall.as_secs_f64()
    );
    Ok(Play { wall })
}

/// Sum of `changed=N` over the PLAY RECAP lines.
fn recap_changed(text: &str) -> anyhow::Result<u64> {
    let recap = text
        .split("PLAY RECAP")
        .nth(1)
        .context("ansible-playbook printed no PLAY RECAP")?;
    Ok(recap
        .split_whitespace()
        .filter_map(|word| word.strip_prefix("changed="))
        .filter_map(|n| n.parse::<u64>().ok())
        .sum())
}

#[cfg(test)]
mod tests {
    use super::recap_changed;

    #[test]
    fn recap_sums_changed_over_hosts() {
        let text = "TASK [x]\nok: [a]\n\nPLAY RECAP ****\n\
                    a : ok=9 changed=4 unreachable=0 failed=0\n\
                    b : ok=7 changed=0 unreachable=0 failed=0\n";
        assert_eq!(recap_changed(text).expect("recap"), 4);
        assert!(recap_changed("no recap").is_err());
    }
}
