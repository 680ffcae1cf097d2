//! `k3sctl schema`: print the spec's JSON schema.

use std::io::Write;
use std::process::ExitCode;

use super::{CommandResult, Global};
use crate::spec::json_schema_text;

/// Arguments of `schema`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub(super) fn run(_global: &Global, _args: Args) -> CommandResult {
    std::io::stdout()
        .lock()
        .write_all(json_schema_text().as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
