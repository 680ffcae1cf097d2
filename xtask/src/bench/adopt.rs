//! `cargo xtask bench adopt`: issue 14's figure, "the first apply on an adopted cluster is as
//! fast as a no-op apply plus the writes". A lab of `--hosts` hosts (default 3: one server, the
//! rest agents) gets K3s laid out as the official install script leaves it
//! (`lab::foreign::InstallScript`: flags in ExecStart, token and URL in the env file,
//! config.yaml as an Ansible role writes it). Each of `--rounds` rounds (default 3) lays the
//! files out again (K3s restarted, as the installer restarts it), then times `init
//! --from-hosts`, the adopting apply (which must restart nothing: every InvocationID is
//! compared) and a no-op apply. From the adopting apply's events: the files written and, for
//! the host that spent longest on them, their time and that of its other steps; the difference
//! between the adopting apply and the no-op apply plus the writes is what adopting costs beyond
//! writing.
//!
//! Needs root (the lab). Run by hand, not by CI: `cargo xtask bench adopt [--release]
//! [--hosts N] [--rounds R]`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use lab::foreign::{self, InstallScript};

use super::args::{Number, Opt, RELEASE, Usage, Values};
use super::k3sctl_run::Event;
use super::measure::{self, Measured, Spread};
use super::{build, stamp, tempdir_under};

/// Lab name of this bench.
const LAB: &str = "xadopt";
/// The join token of the laid-out cluster.
const TOKEN: &str = "bench-adopt-token";

/// `--hosts`: one server, the rest agents.
const HOSTS: Number = Number::new("--hosts", "N", 3, 1, 50);
/// `--rounds`: layouts adopted one after another.
const ROUNDS: Number = Number::new("--rounds", "R", 3, 1, 20);

/// The options of `bench adopt`.
pub const USAGE: Usage = Usage {
    bench: "adopt",
    options: &[Opt::Flag(RELEASE), Opt::Number(HOSTS), Opt::Number(ROUNDS)],
};

/// What `bench adopt` runs with.
#[derive(Debug)]
struct Options {
    release: bool,
    hosts: u8,
    rounds: usize,
}

impl Options {
    fn of(values: &Values) -> anyhow::Result<Self> {
        Ok(Options {
            release: values.flag(&RELEASE),
            hosts: u8::try_from(values.number(&HOSTS)).context("--hosts")?,
            rounds: values.number(&ROUNDS),
        })
    }
}

/// What one round measured.
struct Round {
    init: Measured,
    adopting: Measured,
    noop: Measured,
    /// Files written (and removed) by the adopting apply, all hosts.
    files: usize,
    /// The host whose steps took longest (the run's critical path): its name and the time of
    /// its file writes.
    slowest: String,
    writes: f64,
    /// The slowest host's steps (kind → seconds, summed), the writes included.
    steps: BTreeMap<String, f64>,
    /// `systemctl daemon-reload` on the server by hand right after the round (an ssh command
    /// with it less one without), for comparison with the apply's reload.
    reload_by_hand: f64,
    /// The adopting apply's timeline: until its first step started, from there until its last
    /// step ended, and from there until it exited.
    timeline: [f64; 3],
}

impl Round {
    /// The adopting apply beyond a no-op apply plus the writes.
    fn beyond(&self) -> f64 {
        self.adopting.wall.as_secs_f64() - self.noop.wall.as_secs_f64() - self.writes
    }

    /// The adopting apply beyond a no-op apply plus all of the slowest host's steps (writes,
    /// the adoption record, daemon-reload, links): what the run itself adds.
    fn beyond_steps(&self) -> f64 {
        self.adopting.wall.as_secs_f64()
            - self.noop.wall.as_secs_f64()
            - self.steps.values().sum::<f64>()
    }
}

/// Runs `cargo xtask bench adopt ...`.
pub fn run(workspace: &Path, values: &Values) -> anyhow::Result<()> {
    let o = Options::of(values)?;
    lab::require_root().context("the bench boots a lab")?;
    let bins = build(workspace, o.release)?;
    let work = tempdir_under(&bins.dir)?;
    let k3s = stamp(&bins.k3s_sim, &work)?;
    eprintln!("bench: booting a {}-host lab", o.hosts);
    let lab = lab::Lab::boot(LAB, o.hosts).context("boot the adopt lab")?;
    let result = rounds(&o, &lab, &bins.k3sctl, &k3s, &work);
    lab.down().context("tear down the adopt lab")?;
    let _ = fs_err::remove_dir_all(&work);
    let rounds = result?;
    println!(
        "{}",
        render(&o, &rounds, if o.release { "release" } else { "debug" })
    );
    Ok(())
}

fn rounds(
    o: &Options,
    lab: &lab::Lab,
    k3sctl: &Path,
    k3s: &Path,
    work: &Path,
) -> anyhow::Result<Vec<Round>> {
    let hosts = lab.hosts();
    let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    let roles: Vec<&str> = (0..names.len())
        .map(|i| if i == 0 { "server" } else { "agent" })
        .collect();
    let server_ip = hosts[0].address.to_string();
    let layout = InstallScript {
        token: TOKEN,
        server_ip: &server_ip,
    };
    let skeleton = skeleton(lab, &hosts, k3s, work)?;
    let spec = work.join("cluster.yaml");
    let spec_arg = spec.display().to_string();
    let binary = fs_err::read(k3s)?;
    let mut out = Vec::new();
    for round in 0..o.rounds {
        eprintln!("bench: round {}: the install script's layout", round + 1);
        layout.lay_out(lab, &names, (round == 0).then_some(binary.as_slice()))?;
        foreign::start(lab, &names, &roles, round > 0)?;
        wait_ready(lab, names[0], names.len())?;
        if spec.exists() {
            fs_err::remove_file(&spec)?;
        }
        let init = measure::run(
            k3sctl,
            "init --from-hosts",
            &[
                "init",
                "-c",
                &spec_arg,
                "--from-hosts",
                &skeleton.display().to_string(),
            ],
            false,
        )?;
        let before = invocations(lab, &names, &roles)?;
        let apply = ["apply", "--yes", "-o", "json", "-c", &spec_arg];
        let adopting = measure::run(k3sctl, "adopting apply", &apply, false)?;
        measure::expect_noop(&adopting, false)?;
        if invocations(lab, &names, &roles)? != before {
            bail!(
                "the adopting apply restarted K3s:\n{}",
                adopting.events.join("\n")
            );
        }
        let noop = measure::run(k3sctl, "no-op apply", &apply, false)?;
        measure::expect_noop(&noop, true)?;
        let mut round = round_of(init, adopting, noop);
        round.reload_by_hand = reload_by_hand(lab, names[0])?;
        out.push(round);
    }
    Ok(out)
}

/// The spec skeleton `init --from-hosts` reads: the hosts' addresses, the lab's ssh settings and
/// the binary the hosts run.
fn skeleton(
    lab: &lab::Lab,
    hosts: &[lab::Host],
    k3s: &Path,
    work: &Path,
) -> anyhow::Result<PathBuf> {
    let mut text = format!(
        "kind: Cluster\nmetadata: {{name: adopted}}\nspec:\n  hostDefaults:\n    ssh:\n      \
         user: root\n      identityFile: {}\n      configFile: {}\n      knownHostsFile: {}\n  \
         hosts:\n",
        lab.identity().display(),
        lab.ssh_config().display(),
        lab.known_hosts().display()
    );
    for h in hosts {
        let _ = writeln!(text, "    - address: \"{}\"", h.address);
    }
    let _ = writeln!(text, "  k3s:\n    binary: {{file: \"{}\"}}", k3s.display());
    let path = work.join("skeleton.yaml");
    fs_err::write(&path, text)?;
    Ok(path)
}

/// Waits (60 s at most) until `count` Nodes are Ready, asking the server's API.
fn wait_ready(lab: &lab::Lab, server: &str, count: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = lab
            .exec(
                server,
                "k3s kubectl get nodes --no-headers 2>/dev/null || true",
            )
            .unwrap_or_default();
        if out.lines().filter(|l| l.contains(" Ready ")).count() == count {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{count} nodes not Ready within 60 s:\n{out}");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Seconds of `systemctl daemon-reload` on `host`: an ssh command with it less one without.
fn reload_by_hand(lab: &lab::Lab, host: &str) -> anyhow::Result<f64> {
    let timed = |cmd: &str| -> anyhow::Result<f64> {
        let began = Instant::now();
        lab.exec(host, cmd)?;
        Ok(began.elapsed().as_secs_f64())
    };
    let bare = timed("true")?;
    Ok((timed("systemctl daemon-reload")? - bare).max(0.0))
}

/// Each host's K3s InvocationID and MainPID.
fn invocations(lab: &lab::Lab, hosts: &[&str], roles: &[&str]) -> anyhow::Result<Vec<String>> {
    hosts
        .iter()
        .zip(roles)
        .map(|(h, role)| {
            let unit = foreign::unit_of(role);
            let out = lab.exec(
                h,
                &format!("systemctl show -p InvocationID -p MainPID --value {unit}"),
            )?;
            Ok(out.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .collect()
}

/// Steps that write a file on the host.
const FILE_STEPS: &[&str] = &["write-file", "remove-file"];

fn round_of(init: Measured, adopting: Measured, noop: Measured) -> Round {
    let mut per_host: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    let mut files = 0;
    let (mut first_start, mut last_end) = (None, 0.0_f64);
    for (i, line) in adopting.events.iter().enumerate() {
        let Ok(e) = serde_json::from_str::<Event>(line) else {
            continue;
        };
        let at = adopting.arrivals.get(i).map_or(0.0, Duration::as_secs_f64);
        match e.kind.as_str() {
            "start" => {
                first_start.get_or_insert(at);
            }
            "done" | "failed" => last_end = last_end.max(at),
            _ => {}
        }
        let (Some(seconds), "done") = (e.seconds, e.kind.as_str()) else {
            continue;
        };
        if FILE_STEPS.contains(&e.step.as_str()) {
            files += 1;
        }
        *per_host
            .entry(e.host)
            .or_default()
            .entry(e.step)
            .or_default() += seconds;
    }
    let writes = |steps: &BTreeMap<String, f64>| {
        FILE_STEPS.iter().filter_map(|s| steps.get(*s)).sum::<f64>()
    };
    let total = |steps: &BTreeMap<String, f64>| steps.values().sum::<f64>();
    let (slowest, steps) = per_host
        .into_iter()
        .max_by(|a, b| total(&a.1).total_cmp(&total(&b.1)))
        .unwrap_or_default();
    let wall = adopting.wall.as_secs_f64();
    let first_start = first_start.unwrap_or(wall);
    Round {
        timeline: [
            first_start,
            (last_end - first_start).max(0.0),
            (wall - last_end.max(first_start)).max(0.0),
        ],
        writes: writes(&steps),
        init,
        adopting,
        noop,
        files,
        slowest,
        steps,
        reload_by_hand: 0.0,
    }
}

fn render(o: &Options, rounds: &[Round], build: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## bench adopt: {} hosts (1 server, {} agents), {} rounds, {build} build\n",
        o.hosts,
        o.hosts - 1,
        rounds.len()
    );
    let mut runs = Vec::new();
    for r in rounds {
        runs.extend([r.init.clone(), r.adopting.clone(), r.noop.clone()]);
    }
    s.push_str(&measure::table(&runs));
    let _ = writeln!(
        s,
        "\n| round | adopting apply s | no-op apply s | files written | writes s (slowest host) | adopting − (no-op + writes) s | slowest host's steps s | adopting − (no-op + those steps) s | adopting: before its first step / steps / after its last step s | daemon-reload by hand s |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    for (i, r) in rounds.iter().enumerate() {
        let steps: Vec<String> = r.steps.iter().map(|(k, v)| format!("{k} {v:.3}")).collect();
        let _ = writeln!(
            s,
            "| {} | {:.3} | {:.3} | {} | {:.3} ({}) | {:.3} | {} | {:.3} | {:.3} / {:.3} / {:.3} | {:.3} |",
            i + 1,
            r.adopting.wall.as_secs_f64(),
            r.noop.wall.as_secs_f64(),
            r.files,
            r.writes,
            r.slowest,
            r.beyond(),
            steps.join(", "),
            r.beyond_steps(),
            r.timeline[0],
            r.timeline[1],
            r.timeline[2],
            r.reload_by_hand
        );
    }
    let med =
        |f: &dyn Fn(&Round) -> f64| Spread::of(rounds.iter().map(f)).map_or(0.0, |x| x.median);
    let _ = writeln!(
        s,
        "\nMedians: adopting apply {:.3} s, no-op apply {:.3} s, writes {:.3} s; the adopting \
         apply costs {:.3} s beyond a no-op apply plus the writes, of which the slowest host's \
         daemon-reload {:.3} s (by hand {:.3} s) and adoption record {:.3} s; {:.3} s beyond a \
         no-op apply plus all of that host's steps.",
        med(&|r| r.adopting.wall.as_secs_f64()),
        med(&|r| r.noop.wall.as_secs_f64()),
        med(&|r| r.writes),
        med(&Round::beyond),
        med(&|r| r.steps.get("daemon-reload").copied().unwrap_or_default()),
        med(&|r| r.reload_by_hand),
        med(&|r| r.steps.get("adopt").copied().unwrap_or_default()),
        med(&Round::beyond_steps)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(what: &str, wall_ms: u64, events: &[&str]) -> Measured {
        Measured {
            what: what.into(),
            wall: Duration::from_millis(wall_ms),
            cpu: Duration::ZERO,
            peak_rss: 0,
            load: 0.0,
            report: String::new(),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            arrivals: (1..=events.len() as u64)
                .map(|i| Duration::from_millis(100 * i))
                .collect(),
        }
    }

    #[test]
    fn the_figures_are_those_of_the_host_whose_steps_took_longest() {
        let adopting = measured(
            "adopting apply",
            1500,
            &[
                r#"{"host":"a","step":"write-file","kind":"start"}"#,
                r#"{"host":"a","step":"write-file","kind":"done","seconds":0.1}"#,
                r#"{"host":"a","step":"write-file","kind":"done","seconds":0.2}"#,
                r#"{"host":"b","step":"write-file","kind":"done","seconds":0.25}"#,
                r#"{"host":"b","step":"daemon-reload","kind":"done","seconds":0.2}"#,
                r#"{"host":"a","step":"adopt","kind":"done","seconds":0.04}"#,
            ],
        );
        let r = round_of(
            measured("init", 900, &[]),
            adopting,
            measured("no-op", 1000, &[]),
        );
        assert_eq!(r.files, 3);
        // b: 0.25 s of writes and 0.2 s of reload; a: 0.3 s of writes and 0.04 s of record.
        assert_eq!(r.slowest, "b");
        assert!((r.writes - 0.25).abs() < 1e-9);
        assert!((r.steps["daemon-reload"] - 0.2).abs() < 1e-9);
        assert!((r.beyond() - 0.25).abs() < 1e-9);
        assert!((r.beyond_steps() - 0.05).abs() < 1e-9);
        // First start at 0.1 s, last end at 0.6 s, exit at 1.5 s.
        let [before, steps, after] = r.timeline;
        assert!(
            (before - 0.1).abs() < 1e-9 && (steps - 0.5).abs() < 1e-9,
            "{:?}",
            r.timeline
        );
        assert!((after - 0.9).abs() < 1e-9, "{:?}", r.timeline);
    }

    #[test]
    fn options_default_to_three_hosts_and_refuse_nonsense() {
        let of = |args: &[&str]| {
            let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
            match USAGE.parse(&args)? {
                super::super::args::Parsed::Run(v) => Ok(Options::of(&v).expect("fits")),
                other => anyhow::bail!("{other:?}"),
            }
        };
        let o = of(&[]).expect("defaults");
        assert_eq!((o.hosts, o.rounds, o.release), (3, 3, false));
        let o = of(&["--release", "--hosts", "5"]).expect("ok");
        assert_eq!((o.hosts, o.release), (5, true));
        assert!(of(&["--hosts", "0"]).is_err());
        assert!(of(&["--hosts", "51"]).is_err());
        assert!(of(&["--rounds", "21"]).is_err());
        assert!(of(&["--repeat", "2"]).is_err());
    }
}
