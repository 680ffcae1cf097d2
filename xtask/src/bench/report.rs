//! The bench's tables: both tools' wall times with the ratios against issue 5's targets, and
//! k3sctl's time per step (from its JSON events) to show where a run spends its time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::k3sctl_run::Run;
use super::secs;

/// No-op re-apply must be at least this many times faster than Ansible's no-op run.
pub const NOOP_TARGET: f64 = 20.0;
/// Fresh apply must be at least this many times faster than Ansible's fresh run.
pub const FRESH_TARGET: f64 = 5.0;

/// The four wall times.
#[derive(Debug)]
pub struct Figures {
    /// `k3sctl apply` on fresh hosts.
    pub k3sctl_fresh: Duration,
    /// `k3sctl apply` again, nothing to do.
    pub k3sctl_noop: Duration,
    /// The playbook on fresh hosts.
    pub ansible_fresh: Duration,
    /// The playbook again, nothing changed.
    pub ansible_noop: Duration,
    /// Whether k3sctl was a release build.
    pub release: bool,
}

fn ratio(ansible: Duration, k3sctl: Duration) -> f64 {
    ansible.as_secs_f64() / k3sctl.as_secs_f64().max(0.001)
}

/// The comparison table.
pub fn figures_table(f: &Figures) -> String {
    let mut out = String::new();
    let profile = if f.release { "release" } else { "debug" };
    let _ = writeln!(
        out,
        "\nk3sctl apply vs Ansible, {} hosts (1 server + {} agents), k3sctl {profile} build\n",
        super::apply::HOSTS,
        super::apply::HOSTS - 1
    );
    let _ = writeln!(
        out,
        "| run    | k3sctl (s) | Ansible (s) | Ansible / k3sctl | target | met |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for (name, k, a, target) in [
        ("fresh", f.k3sctl_fresh, f.ansible_fresh, FRESH_TARGET),
        ("no-op", f.k3sctl_noop, f.ansible_noop, NOOP_TARGET),
    ] {
        let r = ratio(a, k);
        let _ = writeln!(
            out,
            "| {name:<6} | {:>10} | {:>11} | {r:>15.1}x | {target:>5}x | {} |",
            secs(k),
            secs(a),
            if r >= target { "yes" } else { "NO" }
        );
    }
    out
}

#[derive(Default)]
struct StepTimes {
    first_seen: Option<Duration>,
    last_done: Duration,
    hosts: usize,
    sum: f64,
    max: f64,
    slowest: String,
}

/// Time per step kind: hosts, summed and longest duration, and when in the run it happened.
pub fn steps_table(title: &str, run: &Run) -> String {
    let mut steps: BTreeMap<String, StepTimes> = BTreeMap::new();
    for (at, event) in &run.events {
        let entry = steps.entry(event.step.clone()).or_default();
        let began = event
            .seconds
            .map(|s| at.saturating_sub(Duration::from_secs_f64(s.max(0.0))))
            .unwrap_or(*at);
        entry.first_seen = Some(entry.first_seen.map_or(began, |f| f.min(began)));
        if let (Some(seconds), "done" | "failed") = (event.seconds, event.kind.as_str()) {
            entry.hosts += 1;
            entry.sum += seconds;
            if seconds >= entry.max {
                entry.max = seconds;
                entry.slowest.clone_from(&event.host);
            }
            entry.last_done = entry.last_done.max(*at);
        }
    }
    let mut rows: Vec<(String, StepTimes)> = steps.into_iter().collect();
    rows.sort_by_key(|(_, t)| t.first_seen.unwrap_or_default());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{title}: {}s wall; steps in order of first appearance\n",
        secs(run.wall)
    );
    let _ = writeln!(
        out,
        "| step | from (s) | to (s) | hosts | sum (s) | longest (s) | on |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for (step, t) in rows {
        let from = t.first_seen.unwrap_or_default();
        let _ = writeln!(
            out,
            "| {step} | {} | {} | {} | {:.2} | {:.2} | {} |",
            secs(from),
            if t.hosts > 0 {
                secs(t.last_done)
            } else {
                "-".into()
            },
            t.hosts,
            t.sum,
            t.max,
            if t.slowest.is_empty() {
                "-"
            } else {
                &t.slowest
            }
        );
    }
    let first = run.events.first().map(|(at, _)| *at).unwrap_or(run.wall);
    let last = run.events.last().map(|(at, _)| *at).unwrap_or(run.wall);
    let _ = writeln!(
        out,
        "before the first event: {}s; after the last event: {}s",
        secs(first),
        secs(run.wall.saturating_sub(last))
    );
    out
}
