//! `cargo xtask bench scale`: k3sctl on a big lab (default 50 hosts: 1 server and 49 agents in 5
//! groups): fresh apply, no-op apply and plan, each with wall time and k3sctl's peak RSS; with
//! the ssh masters of an earlier run ended first ("cold") and reused ("warm"), and `plan`
//! followed by `apply` as a user runs them. Then the pure planner on 1,000 synthetic hosts.
//!
//! Needs root (the lab). Run by hand, not by CI (too heavy): `cargo xtask bench scale
//! [--release] [--hosts N] [--groups G] [--planner-hosts M] [--planner-only]`.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::proc_stats::wait_sampling;
use super::{K3S_VERSION, build, planner, stamp, tempdir_under};

/// Lab name of the scale bench.
const LAB: &str = "xscale";
/// Issue 13's targets.
const NOOP_TARGET: Duration = Duration::from_secs(2);
const RSS_TARGET: u64 = 100 << 20;

/// Options of `bench scale`.
#[derive(Debug)]
struct Options {
    release: bool,
    hosts: u8,
    groups: usize,
    planner_hosts: usize,
    planner_only: bool,
}

fn options(args: &[String]) -> anyhow::Result<Options> {
    let mut o = Options {
        release: false,
        hosts: 50,
        groups: 5,
        planner_hosts: 1000,
        planner_only: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .with_context(|| format!("{name} needs a value"))
                .cloned()
        };
        match arg.as_str() {
            "--release" => o.release = true,
            "--planner-only" => o.planner_only = true,
            "--hosts" => o.hosts = value("--hosts")?.parse().context("--hosts: 2..=250")?,
            "--groups" => o.groups = value("--groups")?.parse().context("--groups")?,
            "--planner-hosts" => {
                o.planner_hosts = value("--planner-hosts")?
                    .parse()
                    .context("--planner-hosts")?;
            }
            other => bail!(
                "unknown argument {other}; usage: cargo xtask bench scale [--release] [--hosts N] \
                 [--groups G] [--planner-hosts M] [--planner-only]"
            ),
        }
    }
    if o.hosts < 2 || o.groups == 0 {
        bail!("--hosts must be at least 2 and --groups at least 1");
    }
    Ok(o)
}

/// One timed k3sctl command.
#[derive(Debug)]
struct Measured {
    what: String,
    wall: Duration,
    peak_rss: u64,
}

/// Runs `cargo xtask bench scale ...`.
pub fn run(workspace: &Path, args: &[String]) -> anyhow::Result<()> {
    let o = options(args)?;
    // The planner first, before the build and the lab add to this process's peak RSS.
    let planner = planner::run(o.planner_hosts, 10)?;
    println!("{}", planner::render(&planner));
    if o.planner_only {
        return Ok(());
    }
    lab::require_root().context("the bench boots a lab")?;
    let bins = build(workspace, o.release)?;
    let work = tempdir_under(&bins.dir)?;
    let k3s = stamp(&bins.k3s_sim, &work)?;
    eprintln!("bench: booting a {}-host lab", o.hosts);
    let booted = Instant::now();
    let lab = lab::Lab::boot(LAB, o.hosts).context("boot the scale lab")?;
    let boot = booted.elapsed();
    let spec = work.join("cluster.yaml");
    lab.write_spec(
        &spec,
        &lab::SpecOptions {
            k3s_binary: Some(k3s),
            k3s_version: Some(K3S_VERSION.into()),
            servers: None,
        },
    )?;
    let text = fs_err::read_to_string(&spec)?;
    fs_err::write(&spec, with_groups(&text, o.groups))?;
    let addresses: Vec<Ipv4Addr> = lab.hosts().iter().map(|h| h.address).collect();
    let k3sctl = |what: &str, cmd: &[&str], noop: Option<bool>| {
        run_k3sctl(&bins.k3sctl, &spec, what, cmd, noop)
    };

    let mut runs = Vec::new();
    end_masters(&addresses)?;
    runs.push(k3sctl(
        "fresh apply (cold)",
        &["apply", "--yes"],
        Some(false),
    )?);
    runs.push(k3sctl(
        "no-op apply (warm)",
        &["apply", "--yes"],
        Some(true),
    )?);
    end_masters(&addresses)?;
    runs.push(k3sctl(
        "no-op apply (cold)",
        &["apply", "--yes"],
        Some(true),
    )?);
    end_masters(&addresses)?;
    let plan = k3sctl("plan (cold)", &["plan"], None)?;
    let then = k3sctl("then apply (warm)", &["apply", "--yes"], Some(true))?;
    let both = plan.wall + then.wall;
    runs.push(plan);
    runs.push(then);
    runs.push(k3sctl("plan (warm)", &["plan"], None)?);
    lab.down().context("tear down the scale lab")?;
    let _ = fs_err::remove_dir_all(&work);

    println!(
        "{}",
        render(
            &o,
            boot,
            &runs,
            both,
            if o.release { "release" } else { "debug" }
        )
    );
    Ok(())
}

/// The lab's spec with the agents spread over `groups` groups (`g0`, `g1`, ...).
fn with_groups(spec: &str, groups: usize) -> String {
    let mut out = String::new();
    let mut agent = 0;
    for line in spec.lines() {
        out.push_str(line);
        out.push('\n');
        if line.trim() == "role: agent" {
            let indent = &line[..line.len() - line.trim_start().len()];
            let _ = writeln!(out, "{indent}group: g{}", agent % groups);
            agent += 1;
        }
    }
    out
}

/// Runs `k3sctl <cmd> -o json -c <spec>`, sampling its memory; fails unless it succeeds and (for
/// an apply) unless it had something to do exactly when expected.
fn run_k3sctl(
    k3sctl: &Path,
    spec: &Path,
    what: &str,
    cmd: &[&str],
    noop: Option<bool>,
) -> anyhow::Result<Measured> {
    let started = Instant::now();
    let mut child = Command::new(k3sctl)
        .args(cmd)
        .args(["-o", "json", "-c"])
        .arg(spec)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("run {}", k3sctl.display()))?;
    let stdout = child.stdout.take().context("k3sctl stdout")?;
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter(|l| !is_event(l))
            .collect::<Vec<_>>()
            .join("\n")
    });
    let (status, peak_rss) = wait_sampling(&mut child)?;
    let wall = started.elapsed();
    let report = reader.join().unwrap_or_default();
    if !status.success() {
        bail!("k3sctl {what} failed ({status}):\n{report}");
    }
    if let Some(noop) = noop {
        let value: serde_json::Value = serde_json::from_str(report.trim())
            .with_context(|| format!("k3sctl {what} printed no JSON report:\n{report}"))?;
        let nothing = value
            .get("nothing_to_do")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        if nothing != noop {
            bail!("k3sctl {what}: nothing_to_do is {nothing}, expected {noop}:\n{report}");
        }
    }
    eprintln!(
        "bench: {what}: {:.2} s, peak RSS {:.1} MB",
        wall.as_secs_f64(),
        mb(peak_rss)
    );
    Ok(Measured {
        what: what.to_owned(),
        wall,
        peak_rss,
    })
}

/// A progress event line (`{"host":..,"step":..,"kind":..}`), as opposed to the report.
fn is_event(line: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(line)
        .is_ok_and(|v| v.get("step").is_some() && v.get("kind").is_some())
}

/// Ends the ssh masters k3sctl keeps for the lab's hosts (`ssh -O exit` on each), so the next
/// run starts cold. Masters of other hosts are left alone.
fn end_masters(addresses: &[Ipv4Addr]) -> anyhow::Result<()> {
    let wanted: Vec<String> = addresses.iter().map(ToString::to_string).collect();
    for control in master_sockets(&wanted)? {
        let _ = Command::new("ssh")
            .arg("-S")
            .arg(&control)
            .args(["-O", "exit", "bench"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    Ok(())
}

/// Control sockets of running `ssh -M` processes whose destination is one of `addresses`.
fn master_sockets(addresses: &[String]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in fs_err::read_dir("/proc")?.flatten() {
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let argv: Vec<String> = raw
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_master =
            argv.first().is_some_and(|a| a.ends_with("ssh")) && argv.iter().any(|a| a == "-M");
        let to_lab = argv.last().is_some_and(|a| addresses.contains(a))
            || argv
                .iter()
                .rev()
                .nth(1)
                .is_some_and(|a| addresses.contains(a));
        if is_master
            && to_lab
            && let Some(i) = argv.iter().position(|a| a == "-S")
            && let Some(path) = argv.get(i + 1)
        {
            out.push(PathBuf::from(path));
        }
    }
    Ok(out)
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

fn render(
    o: &Options,
    boot: Duration,
    runs: &[Measured],
    plan_then_apply: Duration,
    build: &str,
) -> String {
    let agents = usize::from(o.hosts) - 1;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "k3sctl on a {}-host lab (1 server, {agents} agents in {} groups), {build} build; lab boot {:.1} s",
        o.hosts,
        o.groups.min(agents),
        boot.as_secs_f64()
    );
    let _ = writeln!(s, "  {:<22} {:>9} {:>12}", "run", "wall", "peak RSS");
    for r in runs {
        let _ = writeln!(
            s,
            "  {:<22} {:>7.2} s {:>9.1} MB",
            r.what,
            r.wall.as_secs_f64(),
            mb(r.peak_rss)
        );
    }
    let _ = writeln!(
        s,
        "  plan then apply        {:>7.2} s",
        plan_then_apply.as_secs_f64()
    );
    let noop = runs
        .iter()
        .filter(|r| r.what.starts_with("no-op"))
        .map(|r| r.wall)
        .max()
        .unwrap_or_default();
    let rss = runs.iter().map(|r| r.peak_rss).max().unwrap_or_default();
    let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
    let _ = writeln!(
        s,
        "  slowest no-op apply {:.2} s (target < {} s): {}",
        noop.as_secs_f64(),
        NOOP_TARGET.as_secs(),
        verdict(noop < NOOP_TARGET)
    );
    let _ = writeln!(
        s,
        "  largest peak RSS {:.1} MB (target < 100 MB): {}",
        mb(rss),
        verdict(rss < RSS_TARGET)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_are_spread_over_the_groups_with_their_indentation() {
        let spec = "  hosts:\n  - name: a\n    role: server\n  - name: b\n    role: agent\n  \
                    - name: c\n    role: agent\n  - name: d\n    role: agent\n";
        let out = with_groups(spec, 2);
        assert_eq!(out.matches("    group: g0\n").count(), 2, "{out}");
        assert_eq!(out.matches("    group: g1\n").count(), 1, "{out}");
        assert!(out.contains("role: server\n  - name: b"), "{out}");
    }
}
