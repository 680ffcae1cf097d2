//! Project chores: regenerate (or check) the files generated from code.
//!
//! - `cargo xtask schema [--check]`: schema/cluster.schema.json from the spec model
//! - `cargo xtask cli-ref [--check]`: docs/cli.md from the clap command tree
//! - `cargo xtask bench <apply|scale|ha-upgrade|adopt> [options]`: the lab benches
//!   (docs/bench.md); `cargo xtask bench <name> --help` prints a bench's options

mod bench;
mod cli_ref;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("xtask: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> anyhow::Result<ExitCode> {
    if args.first().map(String::as_str) == Some("bench") {
        bench::run(&workspace_root(), &args[1..])?;
        return Ok(ExitCode::SUCCESS);
    }
    let check = args.iter().any(|arg| arg == "--check");
    let task = args
        .iter()
        .find(|arg| !arg.starts_with("--"))
        .map(String::as_str);
    let (relative, content) = match task {
        Some("schema") => (
            "schema/cluster.schema.json",
            k3sctl::spec::json_schema_text(),
        ),
        Some("cli-ref") => ("docs/cli.md", cli_ref::render(k3sctl::cli::command())),
        _ => {
            eprintln!(
                "usage: cargo xtask <schema|cli-ref> [--check] | cargo xtask bench <name> [--help]"
            );
            return Ok(ExitCode::from(2));
        }
    };
    let path = workspace_root().join(relative);
    if check {
        let current = fs_err::read_to_string(&path).unwrap_or_default();
        if current != content {
            eprintln!(
                "{relative} is stale: run `cargo xtask {}` and commit the result",
                task.unwrap_or_default()
            );
            return Ok(ExitCode::FAILURE);
        }
        eprintln!("{relative} is up to date");
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(dir) = path.parent() {
        fs_err::create_dir_all(dir)?;
    }
    fs_err::write(&path, content).with_context(|| format!("writing {relative}"))?;
    eprintln!("wrote {relative}");
    Ok(ExitCode::SUCCESS)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}
