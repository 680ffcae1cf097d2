//! `k3sctl validate`: load the spec, print OK or every problem.

use std::process::ExitCode;

use serde::Serialize;

use super::output::{Style, print_json};
use super::{CommandResult, FAILURE, Global};
use crate::spec::{SpecError, load_file};

/// Arguments of `validate` (the spec file is the global `-c`).
#[derive(Debug, clap::Args)]
pub struct Args {}

#[derive(Serialize)]
struct Report<'a> {
    file: String,
    ok: bool,
    errors: &'a [SpecError],
}

pub(super) fn run(global: &Global, _args: Args) -> CommandResult {
    let file = global.config.display().to_string();
    let result = load_file(&global.config);
    let errors = match &result {
        Ok(_) => &[][..],
        Err(errors) => errors.errors(),
    };
    if global.json() {
        print_json(&Report {
            file,
            ok: errors.is_empty(),
            errors,
        })?;
    } else {
        match &result {
            Ok(_) => println!("{}: {}", file, Style::for_stdout().ok("OK")),
            Err(errors) => println!("{errors}"),
        }
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FAILURE)
    })
}
