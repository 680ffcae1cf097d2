//! Options shared by every command, and logging setup.

use std::path::PathBuf;

use clap::{ArgAction, Args, ValueEnum};

use super::output::color_allowed;

/// Options every command accepts.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// The cluster spec file.
    #[arg(
        short,
        long,
        global = true,
        default_value = "cluster.yaml",
        value_name = "FILE"
    )]
    pub config: PathBuf,
    /// Output format of the command's data (stdout); `json` also makes logs JSON lines.
    #[arg(short, long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// More log detail on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Answer yes to every confirmation: restarts of running nodes, drains, removals, resets,
    /// restores, rotations (required to do any of them without a terminal).
    #[arg(
        long,
        global = true,
        env = "K3SCTL_YES",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub yes: bool,
}

/// How a command prints its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// For people.
    Text,
    /// For programs: one JSON document on stdout.
    Json,
}

impl Global {
    /// Whether data should be printed as JSON.
    pub fn json(&self) -> bool {
        self.output == OutputFormat::Json
    }
}

/// Sends `tracing` events to stderr at the level chosen by `-v`/`-q` (`RUST_LOG` overrides).
pub(super) fn init_logging(global: &Global) {
    let level = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time();
    // A second initialisation (tests calling `main` twice) is harmless: keep the first.
    let _ = if global.json() {
        builder.json().try_init()
    } else {
        builder
            .with_ansi(color_allowed(&std::io::stderr()))
            .try_init()
    };
}
