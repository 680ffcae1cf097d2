//! `k3sctl plan`: show what `apply` would do; changes nothing anywhere.

use std::process::ExitCode;

use super::output::print_json;
use super::runtime::{block_on, connect_options};
use super::{CommandResult, FAILURE, Global};
use crate::ops::connect::ConnectOptions;
use crate::ops::kube_api::TunnelConnector;
use crate::ops::prepare;
use crate::plan::render_plan;

/// Arguments of `plan`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Exit 0 when there is nothing to do and no drift, 2 when apply would change something or
    /// the live cluster drifted from the spec (also drift apply leaves to a person), 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Record unknown ssh host keys instead of refusing them.
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Plan the reachable hosts even when some cannot be connected to (as `apply
    /// --skip-unreachable` would run); those are listed and plan exits 1.
    #[arg(long)]
    pub skip_unreachable: bool,
}

pub(super) fn run(global: &Global, args: Args) -> CommandResult {
    let options = ConnectOptions {
        skip_unreachable: args.skip_unreachable,
        start_containers: false,
        ..connect_options(args.accept_new_host_keys)
    };
    let prepared = block_on(prepare(&global.config, options, TunnelConnector::shared))??;
    if global.json() {
        print_json(&prepared.plan)?;
    } else {
        print!("{}", render_plan(&prepared.plan));
    }
    for skipped in &prepared.skipped {
        eprintln!(
            "skipped (unreachable, not planned): {}: {}",
            skipped.host, skipped.reason
        );
    }
    if !prepared.skipped.is_empty() {
        eprintln!(
            "repair: bring the skipped host(s) back (boot, network, ssh) and run apply: it plans \
             them again and waits for each to be Ready (and, for a server, a voting etcd member)"
        );
    }
    Ok(if !prepared.skipped.is_empty() {
        ExitCode::from(FAILURE)
    } else if args.detailed_exitcode
        && (prepared.plan.has_changes() || !prepared.plan.drift.is_empty())
    {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
