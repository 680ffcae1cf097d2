//! `k3sctl token rotate`: a new server token (K3s picks it on a running server, k3sctl never
//! shows it), then every node restarted with it, one at a time (servers first, quorum kept).

use std::process::ExitCode;

use super::output::print_json;
use super::progress::line_reporter as reporter;
use super::rotation::{confirm, print_roll};
use super::runtime::{block_on, connect_options};
use super::{CommandResult, FAILURE, Global};
use crate::ops::rotate::prepare_token_rotate;

/// Arguments of `token`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do with the token.
    #[command(subcommand)]
    pub command: TokenCommand,
}

/// The `token` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Rotate the server token (`k3s token rotate` on a running server), then restart every
    /// node with the new token: servers one at a time (etcd quorum kept), then agents. Etcd
    /// snapshots taken before need the old token to be restored.
    Rotate {
        /// Record unknown SSH host keys instead of refusing them.
        #[arg(long)]
        accept_new_host_keys: bool,
    },
}

pub(super) fn run(global: &Global, args: Args) -> CommandResult {
    let TokenCommand::Rotate {
        accept_new_host_keys,
    } = args.command;
    let rotation = block_on(prepare_token_rotate(
        &global.config,
        connect_options(accept_new_host_keys),
    ))??;
    confirm(global, "token rotate", &rotation.summary)?;
    let report = block_on(rotation.rotate_token(reporter(global)))?;
    if global.json() {
        print_json(&report)?;
    } else {
        if let Some(server) = &report.rotated_on {
            println!("{server}: server token rotated (not shown)");
        }
        print_roll(
            "restarted with the new token",
            &report.restarted,
            report.failure.as_ref(),
        );
        println!("note: {}", report.caveat);
    }
    Ok(if report.failure.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FAILURE)
    })
}
