//! `k3sctl node remove|replace`: take a node out of the cluster, or replace it by another one
//! (the canary cutover).

use super::lifecycle::drive;
use super::runtime::connect_options;
use super::{CommandResult, Global};
use crate::ops::kube_api::TunnelConnector;
use crate::ops::lifecycle::{RemoveRequest, ReplaceRequest, prepare_remove, prepare_replace};

/// Arguments of `node`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: NodeCommand,
}

/// `node` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum NodeCommand {
    /// Take a node out for good: cordon, drain (PodDisruptionBudgets respected), for a server
    /// remove its etcd member (never breaking quorum, never the last server), uninstall K3s
    /// from the host when it is reachable, delete the Node and its node-password secret. The
    /// node must already be gone from the spec (or --force). Asks for a confirmation.
    Remove {
        /// The node's name.
        name: String,
        /// Remove it although the spec still lists it (`apply` would install it again).
        #[arg(long)]
        force: bool,
        /// Reach the host at this address (default: the spec's, else its Node's InternalIP,
        /// with the spec's hostDefaults).
        #[arg(long, value_name = "ADDRESS")]
        address: Option<String>,
        /// Show the steps and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Record unknown ssh host keys instead of refusing them.
        #[arg(long)]
        accept_new_host_keys: bool,
    },
    /// Replace node OLD by NEW (in the spec): NEW joins and must be Ready (a server: a voting
    /// etcd member) first, then OLD is cordoned and drained. A server's etcd member is then
    /// removed (surge first, then remove: quorum is kept) and K3s on it stopped and its Node
    /// deleted. Asks for a confirmation.
    Replace {
        /// The node being replaced.
        old: String,
        /// Its replacement, a host of the spec with the same role.
        #[arg(long = "with", value_name = "NEW")]
        new: String,
        /// Once OLD is drained, stop and disable K3s on it (K3s stays installed). Servers
        /// always stop.
        #[arg(long)]
        stop_old: bool,
        /// Once OLD is drained, uninstall K3s from it and delete its Node (and node-password
        /// secret).
        #[arg(long)]
        delete_old: bool,
        /// Show the steps and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Record unknown ssh host keys instead of refusing them.
        #[arg(long)]
        accept_new_host_keys: bool,
    },
}

pub(super) fn run(global: &Global, args: Args) -> CommandResult {
    match args.command {
        NodeCommand::Remove {
            name,
            force,
            address,
            dry_run,
            accept_new_host_keys,
        } => {
            let request = RemoveRequest {
                name,
                force,
                address,
                connect: connect_options(accept_new_host_keys),
            };
            drive(
                global,
                dry_run,
                prepare_remove(&global.config, &request, TunnelConnector::shared),
            )
        }
        NodeCommand::Replace {
            old,
            new,
            stop_old,
            delete_old,
            dry_run,
            accept_new_host_keys,
        } => {
            let request = ReplaceRequest {
                old,
                new,
                stop_old,
                delete_old,
                connect: connect_options(accept_new_host_keys),
            };
            drive(
                global,
                dry_run,
                prepare_replace(&global.config, &request, TunnelConnector::shared),
            )
        }
    }
}
