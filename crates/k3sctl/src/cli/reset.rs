//! `k3sctl reset`: uninstall K3s from the spec's hosts.

use super::lifecycle::drive;
use super::runtime::connect_options;
use super::{CommandResult, Global};
use crate::ops::kube_api::TunnelConnector;
use crate::ops::lifecycle::{ResetRequest, prepare_reset};

/// Arguments of `reset`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Reset only this host (repeatable); default: every host of the spec. When servers stay,
    /// each host's Node is drained and deleted and a server's etcd member removed (never
    /// breaking quorum).
    #[arg(long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Show the steps and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Record unknown ssh host keys instead of refusing them.
    #[arg(long)]
    pub accept_new_host_keys: bool,
}

pub(super) fn run(global: &Global, args: Args) -> CommandResult {
    let request = ResetRequest {
        hosts: args.hosts,
        connect: connect_options(args.accept_new_host_keys),
    };
    drive(
        global,
        args.dry_run,
        prepare_reset(&global.config, &request, TunnelConnector::shared),
    )
}
