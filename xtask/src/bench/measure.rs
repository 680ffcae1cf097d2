//! One timed k3sctl command and the summary of repeated ones: wall time, the CPU time (user +
//! sys) k3sctl and the children it waited for used, its peak RSS, and the load average when it
//! started. On a shared machine the wall clock mostly measures waiting for a core; the CPU time
//! and the RSS say how much work k3sctl did whatever the load.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::proc_stats::{children_cpu_time, load_average, wait_sampling};

/// One run of a command.
#[derive(Debug, Clone)]
pub struct Measured {
    /// What was run (`no-op apply (warm)`).
    pub what: String,
    /// Wall time.
    pub wall: Duration,
    /// User + system CPU time of k3sctl and the children it waited for.
    pub cpu: Duration,
    /// Peak RSS of k3sctl, bytes.
    pub peak_rss: u64,
    /// 1-minute load average when it started.
    pub load: f64,
    /// What k3sctl printed on stdout, progress events left out.
    pub report: String,
    /// The progress events (`-o json`), one JSON line each.
    pub events: Vec<String>,
    /// When each event arrived, since the command started.
    pub arrivals: Vec<Duration>,
}

/// Runs `k3sctl <args>`, sampling its memory; fails unless it exits 0 (or, with
/// `allow_failure`, whatever its exit code).
pub fn run(
    k3sctl: &Path,
    what: &str,
    args: &[&str],
    allow_failure: bool,
) -> anyhow::Result<Measured> {
    let load = load_average()?;
    let cpu_before = children_cpu_time()?;
    let started = Instant::now();
    let mut child = Command::new(k3sctl)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("run {}", k3sctl.display()))?;
    let stdout = child.stdout.take().context("k3sctl stdout")?;
    let reader = std::thread::spawn(move || {
        let (mut events, mut arrivals, mut report) = (Vec::new(), Vec::new(), Vec::new());
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if is_event(&line) {
                events.push(line);
                arrivals.push(started.elapsed());
            } else {
                report.push(line);
            }
        }
        (events, arrivals, report.join("\n"))
    });
    let (status, peak_rss) = wait_sampling(&mut child)?;
    let wall = started.elapsed();
    let cpu = children_cpu_time()?.saturating_sub(cpu_before);
    let (events, arrivals, report) = reader.join().unwrap_or_default();
    if !status.success() && !allow_failure {
        bail!("k3sctl {what} failed ({status}):\n{report}");
    }
    eprintln!(
        "bench: {what}: {:.3} s wall, {:.3} s CPU, peak RSS {:.1} MB, load {load:.2}",
        wall.as_secs_f64(),
        cpu.as_secs_f64(),
        mb(peak_rss)
    );
    Ok(Measured {
        what: what.to_owned(),
        wall,
        cpu,
        peak_rss,
        load,
        report,
        events,
        arrivals,
    })
}

/// A progress event line (`{"host":..,"step":..,"kind":..}`), as opposed to the report.
pub fn is_event(line: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(line)
        .is_ok_and(|v| v.get("step").is_some() && v.get("kind").is_some())
}

/// The report printed by a `-o json` command, as JSON.
pub fn json_report(m: &Measured) -> anyhow::Result<serde_json::Value> {
    serde_json::from_str(m.report.trim())
        .with_context(|| format!("k3sctl {} printed no JSON report:\n{}", m.what, m.report))
}

/// Fails unless an apply's report says it had nothing to do exactly when `noop`.
pub fn expect_noop(m: &Measured, noop: bool) -> anyhow::Result<()> {
    let nothing = json_report(m)?
        .get("nothing_to_do")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    if nothing != noop {
        bail!(
            "k3sctl {}: nothing_to_do is {nothing}, expected {noop}:\n{}",
            m.what,
            m.report
        );
    }
    Ok(())
}

/// Minimum, median and maximum of some values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// Smallest.
    pub min: f64,
    /// Median (the lower middle value of an even count).
    pub median: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`; `None` when there are none.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Self> {
        let mut v: Vec<f64> = values.into_iter().collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(Self {
            min: v[0],
            median: v[(v.len() - 1) / 2],
            max: v[v.len() - 1],
        })
    }
}

/// Rows `what | n | wall min/median/max | CPU min/median/max | peak RSS max | load range` for the
/// runs grouped by their `what`, in first-seen order.
pub fn table(runs: &[Measured]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for r in runs {
        if !names.contains(&r.what.as_str()) {
            names.push(&r.what);
        }
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| run | n | wall s (min / median / max) | CPU s (min / median / max) | peak RSS MB (max) | load |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for name in names {
        let group: Vec<&Measured> = runs.iter().filter(|r| r.what == name).collect();
        let spread = |f: &dyn Fn(&Measured) -> f64| {
            Spread::of(group.iter().map(|r| f(r))).map_or_else(String::new, |x| {
                format!("{:.3} / {:.3} / {:.3}", x.min, x.median, x.max)
            })
        };
        let rss = group.iter().map(|r| r.peak_rss).max().unwrap_or_default();
        let loads = Spread::of(group.iter().map(|r| r.load));
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {} | {:.1} | {} |",
            group.len(),
            spread(&|r| r.wall.as_secs_f64()),
            spread(&|r| r.cpu.as_secs_f64()),
            mb(rss),
            loads.map_or_else(String::new, |l| format!("{:.1}–{:.1}", l.min, l.max))
        );
    }
    s
}

/// Bytes as MB (MiB).
pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_takes_the_lower_middle_and_the_ends() {
        assert_eq!(Spread::of([]), None);
        let s = Spread::of([3.0, 1.0, 2.0]).expect("values");
        assert_eq!((s.min, s.median, s.max), (1.0, 2.0, 3.0));
        let s = Spread::of([4.0, 1.0, 3.0, 2.0]).expect("values");
        assert_eq!((s.min, s.median, s.max), (1.0, 2.0, 4.0));
    }

    #[test]
    fn the_table_groups_runs_by_name() {
        let m = |what: &str, wall: u64| Measured {
            what: what.into(),
            wall: Duration::from_millis(wall),
            cpu: Duration::from_millis(wall / 2),
            peak_rss: 20 << 20,
            load: 1.5,
            report: String::new(),
            events: Vec::new(),
            arrivals: Vec::new(),
        };
        let t = table(&[
            m("plan", 300),
            m("check", 100),
            m("plan", 200),
            m("plan", 400),
        ]);
        assert!(
            t.contains("| plan | 3 | 0.200 / 0.300 / 0.400 | 0.100 / 0.150 / 0.200 | 20.0 |"),
            "{t}"
        );
        assert!(t.find("| plan |") < t.find("| check |"), "{t}");
    }
}
