//! `k3sctl kubeconfig`: fetch and write the spec's kubeconfig exports (only that step of
//! apply), for a new operator machine or after certificate renewal.

use std::io::Write;
use std::process::ExitCode;

use super::output::print_json;
use super::runtime::{block_on, connect_options};
use super::{CommandResult, Global};
use crate::ops::{KubeconfigOptions, KubeconfigOutcome, kubeconfig};

/// Arguments of `kubeconfig`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this export (by its name in spec.kubeconfigs).
    #[arg(long, value_name = "NAME")]
    pub export: Option<String>,
    /// Print the kubeconfig instead of writing files (needs exactly one export).
    #[arg(long)]
    pub stdout: bool,
    /// Record unknown ssh host keys instead of refusing them.
    #[arg(long)]
    pub accept_new_host_keys: bool,
}

pub(super) fn run(global: &Global, args: Args) -> CommandResult {
    let options = KubeconfigOptions {
        export: args.export,
        stdout: args.stdout,
        connect: connect_options(args.accept_new_host_keys),
    };
    match block_on(kubeconfig(&global.config, options))?? {
        KubeconfigOutcome::Content(content) => {
            std::io::stdout().write_all(content.expose().as_bytes())?;
        }
        KubeconfigOutcome::Written(results) if global.json() => print_json(&results)?,
        KubeconfigOutcome::Written(results) => {
            for r in results {
                let what = if r.changed { "written" } else { "up to date" };
                println!("{}: {what} (context {})", r.path, r.context);
                if let Some(merged) = r.merged {
                    for c in merged.changes {
                        println!(
                            "  merged into {}: {} {} {}",
                            merged.path, c.kind, c.name, c.change
                        );
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
