//! `cargo xtask bench ha-upgrade`: what k3sctl itself adds to each server's turn of a quorum-safe
//! HA upgrade (issue 9: under 0.5 s per server). A 3-host lab of three servers on the stand-in's
//! embedded etcd is applied, `check` is timed on it, then it is upgraded `--rounds` times (one
//! patch release after another, the spec's version and binary rewritten each time as a user
//! would). Each upgrade's JSON report splits every node's time into the waits on K3s (drain,
//! restart, Ready, voter and quorum) and k3sctl's own overhead; the bench prints that overhead per
//! server with its spread, the time of each non-waiting step, and the CPU time of each upgrade.
//! The fresh apply's events give each joining server's join time (start, Ready, voter).
//!
//! Needs root (the lab). Run by hand, not by CI: `cargo xtask bench ha-upgrade [--release]
//! [--rounds N] [--check-repeat M]`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

use super::args::{Number, Opt, RELEASE, Usage, Values};
use super::k3sctl_run::Event;
use super::measure::{self, Measured, Spread};
use super::{K3S_VERSION, build, stamp_as, tempdir_under};

/// Lab name of this bench.
const LAB: &str = "xhaup";
/// Servers (and hosts) of the lab.
const SERVERS: u8 = 3;
/// Issue 9's target: k3sctl's own time per server beyond the waits.
const OVERHEAD_TARGET: f64 = 0.5;
/// Issue 12's target for `check` on a healthy 3-5 host cluster.
const CHECK_TARGET: f64 = 1.0;

/// `--rounds`: upgrades one after another.
const ROUNDS: Number = Number::new("--rounds", "N", 3, 1, 20);
/// `--check-repeat`: timed `check` runs before the upgrades.
const CHECK_REPEAT: Number = Number::new("--check-repeat", "M", 5, 1, 100);

/// The options of `bench ha-upgrade`.
pub const USAGE: Usage = Usage {
    bench: "ha-upgrade",
    options: &[
        Opt::Flag(RELEASE),
        Opt::Number(ROUNDS),
        Opt::Number(CHECK_REPEAT),
    ],
};

/// What `bench ha-upgrade` runs with.
#[derive(Debug)]
struct Options {
    release: bool,
    rounds: usize,
    check_repeat: usize,
}

impl Options {
    fn of(values: &Values) -> Self {
        Options {
            release: values.flag(&RELEASE),
            rounds: values.number(&ROUNDS),
            check_repeat: values.number(&CHECK_REPEAT),
        }
    }
}

/// One node's record in the upgrade's JSON report (`run::record::NodeRecord`).
#[derive(Debug, Deserialize)]
struct NodeRecord {
    name: String,
    outcome: String,
    seconds: f64,
    waited_seconds: f64,
    overhead_seconds: f64,
}

/// Step kinds whose time is a wait on K3s (as `run::rollout::is_waiting` counts them).
const WAIT_STEPS: &[&str] = &["drain", "restart", "wait-ready", "wait-voter"];

/// The version of round `round` (0 = the one applied): patch releases after [`K3S_VERSION`].
fn version(round: usize) -> anyhow::Result<String> {
    let (head, tail) = K3S_VERSION
        .rsplit_once('+')
        .context("K3S_VERSION has +k3sN")?;
    let (minor, patch) = head.rsplit_once('.').context("K3S_VERSION has a patch")?;
    let patch: usize = patch.parse().context("patch number")?;
    Ok(format!("{minor}.{}+{tail}", patch + round))
}

/// The stand-in stamped with `version`, in `work`.
fn stamped(k3s_sim: &Path, work: &Path, version: &str) -> anyhow::Result<PathBuf> {
    stamp_as(k3s_sim, version, &work.join(format!("k3s-{version}")))
}

/// What one upgrade round measured.
struct Round {
    version: String,
    run: Measured,
    nodes: Vec<NodeRecord>,
    /// Per server, seconds of each non-waiting step (summed when a step repeats).
    steps: BTreeMap<String, BTreeMap<String, f64>>,
}

/// Runs `cargo xtask bench ha-upgrade ...`.
pub fn run(workspace: &Path, values: &Values) -> anyhow::Result<()> {
    let o = Options::of(values);
    lab::require_root().context("the bench boots a lab")?;
    let bins = build(workspace, o.release)?;
    let work = tempdir_under(&bins.dir)?;
    eprintln!("bench: booting a {SERVERS}-server lab");
    let lab = lab::Lab::boot(LAB, SERVERS).context("boot the HA lab")?;
    let spec = work.join("cluster.yaml");
    let write_spec = |version: &str| -> anyhow::Result<()> {
        let binary = stamped(&bins.k3s_sim, &work, version)?;
        lab.write_spec(
            &spec,
            &lab::SpecOptions {
                k3s_binary: Some(binary),
                k3s_version: Some(version.to_owned()),
                servers: Some(SERVERS),
            },
        )?;
        Ok(())
    };
    let spec_arg = spec.display().to_string();
    let k3sctl = |what: &str, cmd: &[&str]| {
        let mut args = cmd.to_vec();
        args.extend(["-o", "json", "-c", &spec_arg]);
        measure::run(&bins.k3sctl, what, &args, false)
    };
    let servers: Vec<String> = lab.hosts().into_iter().map(|h| h.name).collect();

    write_spec(&version(0)?)?;
    let fresh = k3sctl("fresh HA apply", &["apply", "--yes"])?;
    let joins = join_times(&fresh, &servers[1..]);
    let mut runs = vec![fresh];
    let mut rounds = Vec::new();
    let result = (|| -> anyhow::Result<()> {
        // `check --wait` first: right after the apply the cluster may still be settling.
        k3sctl("check --wait", &["check", "--wait", "60s"])?;
        for _ in 0..o.check_repeat {
            runs.push(k3sctl("check", &["check"])?);
        }
        for round in 1..=o.rounds {
            let v = version(round)?;
            write_spec(&v)?;
            let run = k3sctl("upgrade", &["upgrade", "--yes"])?;
            rounds.push(parse_round(&v, run, &servers)?);
        }
        Ok(())
    })();
    lab.down().context("tear down the HA lab")?;
    let _ = fs_err::remove_dir_all(&work);
    result?;
    runs.extend(rounds.iter().map(|r| r.run.clone()));
    println!(
        "{}",
        render(
            &o,
            &runs,
            &rounds,
            &joins,
            &servers,
            if o.release { "release" } else { "debug" }
        )
    );
    Ok(())
}

fn parse_round(version: &str, run: Measured, servers: &[String]) -> anyhow::Result<Round> {
    let report = measure::json_report(&run)?;
    let nodes: Vec<NodeRecord> =
        serde_json::from_value(report.get("nodes").cloned().unwrap_or_default())
            .context("the upgrade report's nodes")?;
    for server in servers {
        match nodes.iter().find(|n| &n.name == server) {
            Some(n) if n.outcome == "upgraded" => {}
            other => bail!("upgrade to {version}: {server} was not upgraded: {other:?}"),
        }
    }
    let mut steps: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    for line in &run.events {
        let Ok(e) = serde_json::from_str::<Event>(line) else {
            continue;
        };
        if let (Some(s), "done" | "skipped") = (e.seconds, e.kind.as_str())
            && servers.contains(&e.host)
            && !WAIT_STEPS.contains(&e.step.as_str())
        {
            *steps.entry(e.host).or_default().entry(e.step).or_default() += s;
        }
    }
    Ok(Round {
        version: version.to_owned(),
        run,
        nodes,
        steps,
    })
}

/// One joining server's time in the fresh apply: K3s started, the Node Ready, a voter.
#[derive(Debug, Clone, PartialEq)]
struct Join {
    server: String,
    start: f64,
    ready: f64,
    voter: f64,
}

impl Join {
    fn total(&self) -> f64 {
        self.start + self.ready + self.voter
    }
}

/// Each joining server's `start`, `wait-node-ready` and `wait-etcd-voter` times in the apply's
/// events (servers join one at a time, so these are each join's own time).
fn join_times(apply: &Measured, joining: &[String]) -> Vec<Join> {
    let mut joins: Vec<Join> = joining
        .iter()
        .map(|server| Join {
            server: server.clone(),
            start: 0.0,
            ready: 0.0,
            voter: 0.0,
        })
        .collect();
    for line in &apply.events {
        let Ok(e) = serde_json::from_str::<Event>(line) else {
            continue;
        };
        let (Some(seconds), "done") = (e.seconds, e.kind.as_str()) else {
            continue;
        };
        let Some(join) = joins.iter_mut().find(|j| j.server == e.host) else {
            continue;
        };
        match e.step.as_str() {
            "start" => join.start += seconds,
            "wait-node-ready" => join.ready += seconds,
            "wait-etcd-voter" => join.voter += seconds,
            _ => {}
        }
    }
    joins
}

fn render(
    o: &Options,
    runs: &[Measured],
    rounds: &[Round],
    joins: &[Join],
    servers: &[String],
    build: &str,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "k3sctl HA upgrade on a {SERVERS}-server lab (stand-in K3s on embedded etcd), {build} \
         build, {} round(s)\n",
        o.rounds
    );
    s.push_str(&measure::table(runs));
    let _ = writeln!(
        s,
        "\n| joining server (fresh apply) | start s | Ready s | voter s | join s |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|");
    for j in joins {
        let _ = writeln!(
            s,
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} |",
            j.server,
            j.start,
            j.ready,
            j.voter,
            j.total()
        );
    }
    let _ = writeln!(
        s,
        "\n| round | server | total s | waited s | k3sctl overhead s | non-waiting steps (s) |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    let mut overheads = Vec::new();
    for r in rounds {
        for n in r.nodes.iter().filter(|n| servers.contains(&n.name)) {
            overheads.push(n.overhead_seconds);
            let steps = r
                .steps
                .get(&n.name)
                .map(|m| {
                    m.iter()
                        .filter(|(_, v)| **v >= 0.005)
                        .map(|(k, v)| format!("{k} {v:.2}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "| {} | {} | {:.2} | {:.2} | {:.3} | {steps} |",
                r.version, n.name, n.seconds, n.waited_seconds, n.overhead_seconds
            );
        }
    }
    let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
    if let Some(x) = Spread::of(overheads.iter().copied()) {
        let _ = writeln!(
            s,
            "\nk3sctl overhead per server: min {:.3} / median {:.3} / max {:.3} s over {} turns \
             (target < {OVERHEAD_TARGET} s): median {}, max {}",
            x.min,
            x.median,
            x.max,
            overheads.len(),
            verdict(x.median < OVERHEAD_TARGET),
            verdict(x.max < OVERHEAD_TARGET)
        );
    }
    if let Some(x) = Spread::of(
        runs.iter()
            .filter(|r| r.what == "check")
            .map(|r| r.wall.as_secs_f64()),
    ) {
        let _ = writeln!(
            s,
            "check on {SERVERS} servers: median wall {:.3} s (target < {CHECK_TARGET} s): {}",
            x.median,
            verdict(x.median < CHECK_TARGET)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_are_patch_releases_after_the_applied_version() {
        assert_eq!(version(0).expect("v0"), K3S_VERSION);
        assert_eq!(version(2).expect("v2"), "v1.33.7+k3s1");
    }

    #[test]
    fn each_joining_server_s_join_is_its_start_ready_and_voter_times() {
        let events = [
            r#"{"host":"s0","step":"start","kind":"done","seconds":2.0}"#,
            r#"{"host":"s1","step":"start","kind":"start"}"#,
            r#"{"host":"s1","step":"start","kind":"done","seconds":1.5}"#,
            r#"{"host":"s1","step":"wait-node-ready","kind":"done","seconds":0.5}"#,
            r#"{"host":"s1","step":"wait-etcd-voter","kind":"done","seconds":3.0}"#,
            r#"{"host":"s1","step":"write-file","kind":"done","seconds":0.1}"#,
            r#"{"host":"s2","step":"start","kind":"done","seconds":1.0}"#,
        ];
        let apply = Measured {
            what: "fresh HA apply".into(),
            wall: std::time::Duration::from_secs(20),
            cpu: std::time::Duration::from_millis(600),
            peak_rss: 1,
            load: 0.0,
            report: "{}".into(),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            arrivals: Vec::new(),
        };
        let joins = join_times(&apply, &["s1".to_owned(), "s2".to_owned()]);
        assert_eq!(joins.len(), 2);
        assert_eq!(joins[0].server, "s1");
        assert!((joins[0].total() - 5.0).abs() < 1e-9, "{joins:?}");
        assert!((joins[1].total() - 1.0).abs() < 1e-9, "{joins:?}");
    }

    #[test]
    fn a_round_sums_the_non_waiting_steps_per_server() {
        let report = r#"{"nodes":[{"name":"s0","outcome":"upgraded","seconds":5.0,
            "waited_seconds":4.6,"overhead_seconds":0.4}]}"#;
        let events = [
            r#"{"host":"s0","step":"cordon","kind":"done","seconds":0.05}"#,
            r#"{"host":"s0","step":"restart","kind":"done","seconds":3.0}"#,
            r#"{"host":"s0","step":"deliver","kind":"done","seconds":0.1}"#,
            r#"{"host":"s0","step":"deliver","kind":"done","seconds":0.1}"#,
            r#"{"host":"a1","step":"cordon","kind":"done","seconds":0.05}"#,
        ];
        let run = Measured {
            what: "upgrade".into(),
            wall: std::time::Duration::from_secs(6),
            cpu: std::time::Duration::from_millis(300),
            peak_rss: 1,
            load: 0.0,
            report: report.into(),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            arrivals: Vec::new(),
        };
        let round = parse_round("v1", run, &["s0".to_owned()]).expect("parses");
        let steps = &round.steps["s0"];
        assert_eq!(steps.len(), 2, "{steps:?}");
        assert!((steps["deliver"] - 0.2).abs() < 1e-9);
        assert!(!round.steps.contains_key("a1"));
        let missing = Measured {
            report: r#"{"nodes":[]}"#.into(),
            ..round.run
        };
        assert!(parse_round("v1", missing, &["s0".to_owned()]).is_err());
    }
}
