//! `cargo xtask bench apply`: wall time of `k3sctl apply` (fresh and no-op) against the Ansible
//! playbook in bench/ansible doing the same work, each on a freshly booted 5-host lab (1 server,
//! 4 agents). Prints the figures, the ratios against issue 5's targets, and where k3sctl's time
//! went, step by step, from its JSON events.
//!
//! Needs root (the lab). Run by hand, not by CI: `cargo xtask bench apply [--release]`.
//!
//! `cargo xtask bench scale` (see `scale.rs`): fresh, no-op and plan on a 50-host lab with peak
//! RSS, and the pure planner on 1,000 synthetic hosts.
//!
//! `cargo xtask bench ha-upgrade` (see `ha_upgrade.rs`): k3sctl's own time per server in an HA
//! upgrade of 3 servers, beyond the waits on K3s, and `check` on that cluster.
//!
//! `cargo xtask bench adopt` (see `adopt.rs`): on hosts laid out as the install script leaves
//! them, the adopting apply against a no-op apply plus the writes.

mod adopt;
mod ansible;
mod files;
mod ha_upgrade;
mod k3sctl_run;
mod measure;
mod planner;
mod proc_stats;
mod report;
mod scale;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

use self::report::Figures;

/// Hosts per lab: one server and four agents.
const HOSTS: u8 = 5;
/// Lab name for both runs (the second lab is booted after the first is gone).
const LAB: &str = "xbench";
/// Version the stand-in is stamped with.
const K3S_VERSION: &str = "v1.33.5+k3s1";

/// Runs `cargo xtask bench <what> [--release]`.
pub fn run(workspace: &Path, args: &[String]) -> anyhow::Result<()> {
    match args.first().map(String::as_str) {
        Some("apply") => {}
        Some("scale") => return scale::run(workspace, &args[1..]),
        Some("ha-upgrade") => return ha_upgrade::run(workspace, &args[1..]),
        Some("adopt") => return adopt::run(workspace, &args[1..]),
        _ => bail!(
            "usage: cargo xtask bench apply [--release] | cargo xtask bench scale [--release] \
             [--hosts N] [--groups G] [--planner-hosts M] [--planner-only] [--repeat R] | \
             cargo xtask bench ha-upgrade [--release] [--rounds N] [--check-repeat M] | \
             cargo xtask bench adopt [--release] [--hosts N] [--rounds R]"
        ),
    }
    lab::require_root().context("the bench boots a lab")?;
    let release = args.iter().any(|a| a == "--release");
    let bins = build(workspace, release)?;
    let work = tempdir_under(&bins.dir)?;
    let k3s = stamp(&bins.k3s_sim, &work)?;
    let venv = ansible::ensure_venv()?;

    eprintln!("bench: k3sctl apply on a fresh {HOSTS}-host lab");
    let lab = lab::Lab::boot(LAB, HOSTS).context("boot the lab for k3sctl")?;
    let spec = work.join("cluster.yaml");
    lab.write_spec(
        &spec,
        &lab::SpecOptions {
            k3s_binary: Some(k3s.clone()),
            k3s_version: Some(K3S_VERSION.into()),
            servers: None,
        },
    )?;
    let fresh = k3sctl_run::apply(&bins.k3sctl, &spec, false)?;
    let noop = k3sctl_run::apply(&bins.k3sctl, &spec, true)?;
    let k3sctl_files = files::snapshot(&lab)?;
    lab.down().context("tear down the k3sctl lab")?;

    eprintln!("bench: the Ansible playbook on a fresh {HOSTS}-host lab");
    let lab = lab::Lab::boot(LAB, HOSTS).context("boot the lab for Ansible")?;
    let setup = ansible::Setup::write(&lab, workspace, &work, &k3s)?;
    let a_fresh = ansible::play(&venv, &setup, false)?;
    let a_noop = ansible::play(&venv, &setup, true)?;
    let ansible_files = files::snapshot(&lab)?;
    lab.down().context("tear down the Ansible lab")?;

    let figures = Figures {
        k3sctl_fresh: fresh.wall,
        k3sctl_noop: noop.wall,
        ansible_fresh: a_fresh.wall,
        ansible_noop: a_noop.wall,
        release,
    };
    println!("{}", report::figures_table(&figures));
    println!("{}", report::steps_table("k3sctl fresh apply", &fresh));
    println!("{}", report::steps_table("k3sctl no-op re-apply", &noop));
    println!("{}", files::compare(&k3sctl_files, &ansible_files));
    let _ = fs_err::remove_dir_all(&work);
    Ok(())
}

/// Built binaries.
struct Bins {
    dir: PathBuf,
    k3sctl: PathBuf,
    k3s_sim: PathBuf,
}

fn build(workspace: &Path, release: bool) -> anyhow::Result<Bins> {
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // The same packages as `cargo build [--release] -p k3sctl -p xtask -p k3s-sim`, so that
    // the features unify alike and the bench reuses that build instead of compiling k3sctl again.
    cargo.current_dir(workspace).args([
        "build", "--locked", "-p", "k3sctl", "-p", "xtask", "-p", "k3s-sim", "--bins",
    ]);
    if release {
        cargo.arg("--release");
    }
    let status = cargo.status().context("run cargo build")?;
    if !status.success() {
        bail!("cargo build of k3sctl and k3s-sim failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let dir = target.join(if release { "release" } else { "debug" });
    Ok(Bins {
        k3sctl: dir.join("k3sctl"),
        k3s_sim: dir.join("k3s-sim"),
        dir,
    })
}

/// A fresh work directory next to the binaries (kept out of the repository).
fn tempdir_under(dir: &Path) -> anyhow::Result<PathBuf> {
    let work = dir.join(format!("bench-{}", std::process::id()));
    if work.exists() {
        fs_err::remove_dir_all(&work)?;
    }
    fs_err::create_dir_all(&work)?;
    Ok(work)
}

/// The stand-in stamped with [`K3S_VERSION`]: the one binary both tools install.
fn stamp(k3s_sim: &Path, work: &Path) -> anyhow::Result<PathBuf> {
    let out = work.join("k3s");
    let done = Command::new(k3s_sim)
        .args(["stamp", "--version", K3S_VERSION, "-o"])
        .arg(&out)
        .output()
        .with_context(|| format!("run {} stamp", k3s_sim.display()))?;
    if !done.status.success() {
        bail!(
            "{} stamp failed: {}",
            k3s_sim.display(),
            String::from_utf8_lossy(&done.stderr)
        );
    }
    Ok(out)
}

/// Seconds with two decimals.
fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}
