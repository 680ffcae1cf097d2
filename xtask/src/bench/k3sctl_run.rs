//! One timed `k3sctl apply --yes -o json` run: wall time, and each progress event with the time it
//! arrived (the events carry per-step durations; arrival times give the timeline).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Deserialize;

/// A progress event of k3sctl's JSON output (`run::events::Event`).
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    /// Host name, or `cluster` / `kubeconfig`.
    pub host: String,
    /// Step kind.
    pub step: String,
    /// start, done, failed, skipped, info.
    pub kind: String,
    /// Duration of the step (done and failed events).
    #[serde(default)]
    pub seconds: Option<f64>,
}

/// What one run measured.
#[derive(Debug)]
pub struct Run {
    /// Wall time of the whole command.
    pub wall: Duration,
    /// Events with their arrival time since the command started.
    pub events: Vec<(Duration, Event)>,
}

/// Runs `k3sctl apply` on `spec`; fails unless it succeeds, and, for a re-apply (`noop`),
/// unless it reported nothing to do.
pub fn apply(k3sctl: &Path, spec: &Path, noop: bool) -> anyhow::Result<Run> {
    let started = Instant::now();
    let mut child = Command::new(k3sctl)
        .args(["apply", "--yes", "-o", "json", "-c"])
        .arg(spec)
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("run {}", k3sctl.display()))?;
    let stdout = child.stdout.take().context("k3sctl stdout")?;
    let mut events = Vec::new();
    let mut rest = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("read k3sctl output")?;
        match serde_json::from_str::<Event>(&line) {
            Ok(event) => events.push((started.elapsed(), event)),
            Err(_) => {
                rest.push_str(&line);
                rest.push('\n');
            }
        }
    }
    let status = child.wait().context("wait for k3sctl")?;
    let wall = started.elapsed();
    if !status.success() {
        bail!("k3sctl apply failed ({status}); its report:\n{rest}");
    }
    let report: serde_json::Value = serde_json::from_str(rest.trim())
        .with_context(|| format!("k3sctl apply printed no JSON report:\n{rest}"))?;
    let nothing_to_do = report
        .get("nothing_to_do")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    if noop && !nothing_to_do {
        bail!("the re-apply was expected to have nothing to do; its report:\n{rest}");
    }
    if !noop && nothing_to_do {
        bail!("the fresh apply reported nothing to do on a fresh lab");
    }
    eprintln!(
        "bench: k3sctl apply ({}) took {:.2}s",
        if noop { "no-op" } else { "fresh" },
        wall.as_secs_f64()
    );
    Ok(Run { wall, events })
}
