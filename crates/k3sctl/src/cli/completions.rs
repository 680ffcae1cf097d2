//! `k3sctl completions SHELL`: print a completion script.

use std::process::ExitCode;

use clap_complete::Shell;

use super::{CommandResult, Global};

/// Arguments of `completions`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

pub(super) fn run(_global: &Global, args: Args) -> CommandResult {
    let mut command = super::command();
    clap_complete::generate(args.shell, &mut command, "k3sctl", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
