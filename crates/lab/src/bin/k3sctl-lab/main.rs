//! `k3sctl-lab`: create, inspect, break and remove lab hosts from the shell.

mod bench;
mod cli;
mod commands;

use clap::Parser;

fn main() -> std::process::ExitCode {
    // Installed as `pct` in the Proxmox stand-in's node host.
    let mut args = std::env::args();
    if args.next().is_some_and(|a| {
        std::path::Path::new(&a)
            .file_name()
            .is_some_and(|n| n == "pct")
    }) {
        let code = lab::proxmox::client::main(args.collect());
        return std::process::ExitCode::from(u8::try_from(code & 0xff).unwrap_or(u8::MAX));
    }
    let cli = cli::Cli::parse();
    match commands::run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("k3sctl-lab: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
