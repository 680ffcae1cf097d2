//! `k3sctl man`: print the man page.

use std::process::ExitCode;

use super::{CommandResult, Global};

/// Arguments of `man`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub(super) fn run(_global: &Global, _args: Args) -> CommandResult {
    clap_mangen::Man::new(super::command()).render(&mut std::io::stdout())?;
    Ok(ExitCode::SUCCESS)
}
