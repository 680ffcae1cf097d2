//! The command line: argument parsing, rendering, exit codes. Decides nothing itself; each
//! command lives in its own file and calls into the library.
//!
//! To add a command: write `cli/<name>.rs` with an `Args` struct (clap `Args`) and a
//! `run(&Global, Args) -> CommandResult`, add a variant to [`Command`] and a line to
//! [`Command::run`].

mod apply;
mod certs;
mod check;
mod completions;
mod confirm;
mod etcd;
mod global;
mod init;
mod init_from_hosts;
mod kubeconfig;
mod lifecycle;
mod man;
mod node;
mod output;
mod plan;
mod progress;
mod reset;
mod rotation;
mod runtime;
mod schema;
mod token;
mod upgrade;
mod validate;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

pub use global::{Global, OutputFormat};
pub use output::Style;

/// Exit status of a finished command: 0 success, 1 failure (2, usage errors, is clap's).
pub type CommandResult = anyhow::Result<ExitCode>;

/// Exit code for a command that ran and found problems (invalid spec, failed step).
pub const FAILURE: u8 = 1;
/// Exit code for a usage error (bad flags, missing arguments).
pub const USAGE: u8 = 2;

/// k3sctl: declarative lifecycle management for K3s clusters.
#[derive(Debug, Parser)]
#[command(name = "k3sctl", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Options every command accepts.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a spec file and print every problem with its location.
    Validate(validate::Args),
    /// Write a starter spec, or convert an Ansible inventory into one.
    Init(init::Args),
    /// Print the JSON schema of the spec (draft-07, for yaml-language-server).
    Schema(schema::Args),
    /// Print a shell completion script.
    Completions(completions::Args),
    /// Print the man page (roff).
    Man(man::Args),
    /// Show what `apply` would change, per host, with file diffs; changes nothing.
    Plan(plan::Args),
    /// Install, configure and join every host; export kubeconfigs. Re-running changes nothing.
    Apply(apply::Args),
    /// Write the spec's kubeconfig exports (only that step of apply).
    Kubeconfig(kubeconfig::Args),
    /// Upgrade K3s across the cluster: servers first, then agents, with drain, gates and resume.
    Upgrade(upgrade::Args),
    /// Embedded etcd: snapshots (save, list across servers, prune).
    Etcd(etcd::Args),
    /// Check the cluster's health: API, nodes, versions, pods, etcd, certificates; exit 1 with
    /// the failing checks named.
    Check(check::Args),
    /// K3s's certificates and the exports' client certificates: check, rotate.
    Certs(certs::Args),
    /// The cluster's server token: rotate.
    Token(token::Args),
    /// Node lifecycle: remove a node for good, or replace one by another (canary cutover).
    Node(node::Args),
    /// Uninstall K3s from the spec's hosts (or --host): agents first, servers last.
    Reset(reset::Args),
}

impl Command {
    /// Runs the command.
    pub fn run(self, global: &Global) -> CommandResult {
        match self {
            Self::Validate(args) => validate::run(global, args),
            Self::Init(args) => init::run(global, args),
            Self::Schema(args) => schema::run(global, args),
            Self::Completions(args) => completions::run(global, args),
            Self::Man(args) => man::run(global, args),
            Self::Plan(args) => plan::run(global, args),
            Self::Apply(args) => apply::run(global, args),
            Self::Kubeconfig(args) => kubeconfig::run(global, args),
            Self::Upgrade(args) => upgrade::run(global, args),
            Self::Etcd(args) => etcd::run(global, args),
            Self::Check(args) => check::run(global, args),
            Self::Certs(args) => certs::run(global, args),
            Self::Token(args) => token::run(global, args),
            Self::Node(args) => node::run(global, args),
            Self::Reset(args) => reset::run(global, args),
        }
    }
}

/// The clap command tree (for completions, the man page and the CLI reference).
pub fn command() -> clap::Command {
    Cli::command()
}

/// Parses the process arguments, runs the command and returns the exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    global::init_logging(&cli.global);
    let style = Style::for_stderr();
    match cli.command.run(&cli.global) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("{} {error:#}", style.error("error:"));
            ExitCode::from(FAILURE)
        }
    }
}
