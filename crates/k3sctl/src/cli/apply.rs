//! `k3sctl apply`: bring every host to the spec; a second run changes nothing.

use std::process::ExitCode;

use super::confirm::confirmer;
use super::progress::run_reporter;
use super::runtime::{block_on, connect_options};
use super::{CommandResult, FAILURE, Global};
use crate::ops::connect::ConnectOptions;
use crate::ops::kube_api::TunnelConnector;
use crate::ops::{ApplyOptions, apply};

/// Arguments of `apply`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Remove the lock left by another run before starting (check that it is really gone).
    /// Not needed for a run of this machine that was killed: its lock is taken over, with a
    /// notice, once its process is provably gone.
    #[arg(long)]
    pub force_unlock: bool,
    /// Record unknown ssh host keys instead of refusing them.
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Bring the reachable hosts to the spec even when some cannot be connected to; those are
    /// listed as skipped and apply exits 1. Without it, any unreachable host stops apply before
    /// any change. The first server is never skipped.
    #[arg(long)]
    pub skip_unreachable: bool,
    /// Proxmox containers: write the LXC settings K3s needs into /etc/pve/lxc/<vmid>.conf
    /// (before any snapshot section, after a backup), install conf-kmsg when /dev/kmsg is
    /// missing, and restart them (drained first when already nodes). Without it, missing
    /// settings stop the apply with the lines to add.
    #[arg(long)]
    pub fix_lxc: bool,
}

pub(super) fn run(global: &Global, args: Args) -> CommandResult {
    let (tty, reporter) = run_reporter(global);
    let options = ApplyOptions {
        connect: ConnectOptions {
            skip_unreachable: args.skip_unreachable,
            ..connect_options(args.accept_new_host_keys)
        },
        force_unlock: args.force_unlock,
        fix_lxc: args.fix_lxc,
        confirm: confirmer(global, tty.clone()),
        ..Default::default()
    };
    let result = block_on(apply(
        &global.config,
        options,
        TunnelConnector::shared,
        reporter,
    ));
    if let Some(tty) = &tty {
        tty.finish();
    }
    let report = result??;
    if global.json() {
        // One more JSON line after the progress events: the final report.
        println!("{}", serde_json::to_string(&report)?);
    } else if report.nothing_to_do && report.skipped.is_empty() && report.drift_left.is_empty() {
        println!("Nothing to do: the cluster matches the spec.");
    } else if report.nothing_to_do && report.skipped.is_empty() {
        println!("Nothing to do that apply can do.");
    } else if report.nothing_to_do {
        println!("Nothing to do on the hosts that were reached.");
    } else {
        println!("Summary:\n{}", report.summary.render());
        for export in &report.exports {
            let what = if export.changed {
                "written"
            } else {
                "up to date"
            };
            println!(
                "kubeconfig {}: {what} (context {})",
                export.path, export.context
            );
            if let Some(merged) = &export.merged {
                for change in &merged.changes {
                    println!(
                        "  merged into {}: {} {} {}",
                        merged.path, change.kind, change.name, change.change
                    );
                }
            }
        }
    }
    if !global.json() && !report.drift_left.is_empty() {
        println!(
            "The live cluster still differs from the spec in {} way(s) that apply leaves to a \
             person:",
            report.drift_left.len()
        );
        for item in &report.drift_left {
            println!("  {}", item.describe());
            if let Some(hint) = &item.hint {
                println!("    hint: {hint}");
            }
        }
    }
    if !global.json() && !report.skipped.is_empty() {
        println!(
            "Skipped {} unreachable host(s), not brought to the spec (re-run apply once they \
             are back):",
            report.skipped.len()
        );
        for skipped in &report.skipped {
            println!("  {}: {}", skipped.host, skipped.reason);
        }
    }
    Ok(if report.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FAILURE)
    })
}
