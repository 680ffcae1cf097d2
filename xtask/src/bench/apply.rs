//! `cargo xtask bench apply`: wall time of `k3sctl apply` (fresh and no-op) against the Ansible
//! playbook in bench/ansible doing the same work, each on a freshly booted 5-host lab (1 server,
//! 4 agents). Prints the figures, the ratios against issue 5's targets, and where k3sctl's time
//! went, step by step, from its JSON events.
//!
//! Needs root (the lab). Run by hand, not by CI: `cargo xtask bench apply [--release]`.

use std::path::Path;

use anyhow::Context;

use super::args::{Opt, RELEASE, Usage, Values};
use super::report::{self, Figures};
use super::{K3S_VERSION, ansible, build, files, k3sctl_run, stamp, tempdir_under};

/// Hosts per lab: one server and four agents.
pub const HOSTS: u8 = 5;
/// Lab name for both runs (the second lab is booted after the first is gone).
const LAB: &str = "xbench";

/// The options of `bench apply`.
pub const USAGE: Usage = Usage {
    bench: "apply",
    options: &[Opt::Flag(RELEASE)],
};

/// Runs `cargo xtask bench apply ...`.
pub fn run(workspace: &Path, values: &Values) -> anyhow::Result<()> {
    let release = values.flag(&RELEASE);
    lab::require_root().context("the bench boots a lab")?;
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
