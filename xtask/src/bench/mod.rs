//! `cargo xtask bench <name> [options]`: the benches (each needs root for its lab and is run by
//! hand, not by CI; docs/bench.md says how). Every bench declares its options in one table
//! (`args.rs`), which parses them, answers `--help` and refuses an unknown option.
//!
//! - `apply` (see `apply.rs`): k3sctl apply (fresh and no-op) against the Ansible playbook in
//!   bench/ansible on a 5-host lab.
//! - `scale` (see `scale.rs`): fresh, no-op and plan on a 50-host lab with peak RSS, and the
//!   pure planner on 1,000 synthetic hosts.
//! - `ha-upgrade` (see `ha_upgrade.rs`): k3sctl's own time per server in an HA upgrade of 3
//!   servers, beyond the waits on K3s, and `check` on that cluster.
//! - `adopt` (see `adopt.rs`): on hosts laid out as the install script leaves them, the
//!   adopting apply against a no-op apply plus the writes.

mod adopt;
mod ansible;
mod apply;
mod args;
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

use self::args::{ArgsError, Parsed, Usage, Values};

/// Version the stand-in is stamped with.
const K3S_VERSION: &str = "v1.33.5+k3s1";

/// Every bench: its command line and what runs it.
const BENCHES: [(&Usage, BenchFn); 4] = [
    (&apply::USAGE, apply::run),
    (&scale::USAGE, scale::run),
    (&ha_upgrade::USAGE, ha_upgrade::run),
    (&adopt::USAGE, adopt::run),
];

/// A bench's entry point, given its parsed options.
type BenchFn = fn(&Path, &Values) -> anyhow::Result<()>;

/// Runs `cargo xtask bench <name> [options]`, or prints the bench's usage for `--help`.
pub fn run(workspace: &Path, args: &[String]) -> anyhow::Result<()> {
    let given = args.first().map(String::as_str).unwrap_or_default();
    let Some((usage, run)) = BENCHES.iter().find(|(u, _)| u.bench == given) else {
        let all: Vec<&Usage> = BENCHES.iter().map(|(u, _)| *u).collect();
        return Err(ArgsError::UnknownBench {
            given: given.to_owned(),
            usages: args::usages(&all),
        }
        .into());
    };
    match usage.parse(&args[1..])? {
        Parsed::Help => {
            println!("usage: {}", usage.line());
            Ok(())
        }
        Parsed::Run(values) => run(workspace, &values),
    }
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
    stamp_as(k3s_sim, K3S_VERSION, &work.join("k3s"))
}

/// The stand-in stamped with `version`, written to `out`.
fn stamp_as(k3s_sim: &Path, version: &str, out: &Path) -> anyhow::Result<PathBuf> {
    let done = Command::new(k3s_sim)
        .args(["stamp", "--version", version, "-o"])
        .arg(out)
        .output()
        .with_context(|| format!("run {} stamp", k3s_sim.display()))?;
    if !done.status.success() {
        bail!(
            "{} stamp --version {version} failed: {}",
            k3s_sim.display(),
            String::from_utf8_lossy(&done.stderr)
        );
    }
    Ok(out.to_path_buf())
}

/// Seconds with two decimals.
fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}
