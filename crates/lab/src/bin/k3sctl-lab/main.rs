//! `k3sctl-lab`: create, inspect, break and remove lab hosts from the shell.

mod bench;
mod cli;
mod commands;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("k3sctl-lab: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
