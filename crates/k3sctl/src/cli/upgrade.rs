//! `k3sctl upgrade`: roll K3s to a new version across the cluster (servers first, then agents),
//! or show the rollout with `--dry-run`. Ends with the smoke table; exit 1 when a node failed or
//! the smoke check did not pass.

use std::path::PathBuf;
use std::process::ExitCode;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use super::confirm::confirmer;
use super::progress::line_reporter;
use super::runtime::{block_on, connect_options};
use super::{CommandResult, FAILURE, Global};
use crate::k3s::version::K3sVersion;
use crate::ops::upgrade::{Smoke, TargetRequest, UpgradeOptions, UpgradeReport, upgrade};

/// Arguments of `upgrade`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Upgrade to this exact version (vX.Y.Z+k3sN).
    #[arg(long, value_name = "VERSION", conflicts_with = "channel")]
    pub to: Option<K3sVersion>,
    /// Upgrade to what this channel points at (stable, latest, v1.34, ...), asked from the
    /// channel server (spec.k3s.channelUrl).
    #[arg(long, value_name = "NAME")]
    pub channel: Option<String>,
    /// Airgap: deliver this k3s binary; its version is checked on the first server before any
    /// node changes, and is the target unless --to/--channel say otherwise.
    #[arg(long, value_name = "FILE")]
    pub binary: Option<PathBuf>,
    /// Show the per-node transitions and what each drain moves; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Start even when the cluster fails the initial health gate.
    #[arg(long)]
    pub skip_initial_gate: bool,
    /// Remove an existing k3sctl lock on the first server first (a killed run of this machine
    /// is taken over without it).
    #[arg(long)]
    pub force_unlock: bool,
    /// After a successful upgrade, rewrite k3s.version in the spec file to the new version (only
    /// that value; comments and layout kept). Without it, the final message names the line to
    /// change. A spec that follows k3s.channel is not rewritten.
    #[arg(long, conflicts_with = "dry_run")]
    pub update_spec: bool,
    /// Do not take the etcd snapshot before the first server (multi-server clusters take one by
    /// default; upgrade.snapshot in the spec).
    #[arg(long)]
    pub no_snapshot: bool,
    /// Record unknown SSH host keys instead of refusing them.
    #[arg(long)]
    pub accept_new_host_keys: bool,
}

fn smoke_table(smoke: &Smoke) -> Table {
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED);
    table.set_header(["node", "version", "ready", "schedulable", "at target"]);
    for n in &smoke.nodes {
        let yes_no = |b: bool| if b { "yes" } else { "NO" };
        table.add_row([
            n.name.as_str(),
            n.version.as_str(),
            yes_no(n.ready),
            if n.cordoned { "cordoned" } else { "yes" },
            yes_no(n.at_target),
        ]);
    }
    table
}

fn nodes_table(report: &UpgradeReport) -> Table {
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED);
    table.set_header([
        "node",
        "outcome",
        "seconds",
        "waited",
        "k3sctl overhead",
        "notes",
    ]);
    for r in &report.nodes {
        table.add_row([
            r.name.clone(),
            format!("{:?}", r.outcome).to_lowercase(),
            format!("{:.2}", r.seconds),
            format!("{:.2}", r.waited_seconds),
            format!("{:.3}", r.overhead_seconds),
            r.notes.join("; "),
        ]);
    }
    table
}

fn print_text(report: &UpgradeReport) {
    if report.dry_run {
        print!("{}", report.plan_text);
        println!("(dry run: nothing was changed)");
        return;
    }
    if let Some(saved) = &report.snapshot {
        println!(
            "etcd snapshot taken before the upgrade: {} on {} at {}",
            saved.name, saved.node, saved.location
        );
    }
    if !report.nodes.is_empty() {
        println!("{}", nodes_table(report));
    }
    for failure in &report.failures {
        println!("FAILED {failure}");
        println!(
            "  the node stays cordoned; nodes after it were not touched. Fix the cause and \
             re-run `k3sctl upgrade`: finished nodes are skipped."
        );
    }
    if let Some(smoke) = &report.smoke {
        println!("post-upgrade smoke check ({}):", report.target);
        println!("{}", smoke_table(smoke));
        if smoke.pod_problems.is_empty() {
            println!("pods: all Running or Succeeded");
        } else {
            println!("pods not Running/Succeeded:");
            for p in &smoke.pod_problems {
                println!("  - {p}");
            }
        }
        println!(
            "{}",
            if smoke.passed() {
                "smoke check passed"
            } else {
                "smoke check FAILED"
            }
        );
    }
    if let Some(spec) = &report.spec {
        println!("{spec}");
    }
}

pub(super) fn run(global: &Global, args: Args) -> CommandResult {
    let options = UpgradeOptions {
        connect: connect_options(args.accept_new_host_keys),
        target: TargetRequest {
            to: args.to,
            channel: args.channel,
            binary: args.binary,
        },
        dry_run: args.dry_run,
        skip_initial_gate: args.skip_initial_gate,
        force_unlock: args.force_unlock,
        update_spec: args.update_spec,
        no_snapshot: args.no_snapshot,
        confirm: confirmer(global, None),
    };
    let reporter = line_reporter(global);
    let report = block_on(upgrade(&global.config, options, reporter))??;
    if global.json() {
        // One line, after the progress events' JSON lines.
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_text(&report);
    }
    Ok(if report.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FAILURE)
    })
}
