//! `k3sctl check`: the cluster's health in one command, for a person, cron and CI. A table,
//! problems first, each with a hint (or `-o json`); exit 0 healthy, 1 unhealthy with the failing
//! checks named.

use std::process::ExitCode;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use super::output::print_json;
use super::runtime::{block_on, connect_options};
use super::{CommandResult, FAILURE, Global, Style};
use crate::ops::check::{CheckOptions, CheckReport, Namespaces, check};
use crate::spec::Duration as SpecDuration;

/// Arguments of `check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also judge the pods of this namespace (kube-system always); repeatable.
    #[arg(long = "namespace", short = 'n', value_name = "NS")]
    pub namespaces: Vec<String>,
    /// Judge the pods of every namespace.
    #[arg(long, conflicts_with = "namespaces")]
    pub all_namespaces: bool,
    /// Wait up to this long (30s, 2m) while the cluster is still settling (pods Pending right
    /// after apply, a node just restarted) instead of failing at once; what waiting will not
    /// fix (CrashLoopBackOff, a node NotReady past its grace period) fails at once.
    #[arg(long, value_name = "DURATION")]
    pub wait: Option<SpecDuration>,
    /// Record unknown SSH host keys instead of refusing them.
    #[arg(long)]
    pub accept_new_host_keys: bool,
}

fn print_text(report: &CheckReport) {
    let style = Style::for_stdout();
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED);
    table.set_header(["status", "check", "subject", "detail", "hint"]);
    for r in &report.checks {
        table.add_row([
            r.status.label(),
            r.check.as_str(),
            r.subject.as_str(),
            r.detail.as_str(),
            r.hint.as_deref().unwrap_or(""),
        ]);
    }
    println!("{table}");
    if report.healthy {
        println!(
            "{} ({} checks, observed in {} ms)",
            style.ok("healthy"),
            report.checks.len(),
            report.observe_ms
        );
    } else {
        println!(
            "{} {} failing: {}",
            style.error("UNHEALTHY:"),
            report.failing.len(),
            report.failing.join(", ")
        );
    }
}

pub(super) fn run(global: &Global, args: Args) -> CommandResult {
    let options = CheckOptions {
        namespaces: if args.all_namespaces {
            Namespaces::All
        } else if args.namespaces.is_empty() {
            Namespaces::KubeSystem
        } else {
            Namespaces::These(args.namespaces)
        },
        wait: args.wait.map(|d| d.to_std()),
        connect: connect_options(args.accept_new_host_keys),
    };
    let report = block_on(check(&global.config, options))??;
    if global.json() {
        print_json(&report)?;
    } else {
        print_text(&report);
    }
    Ok(if report.healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FAILURE)
    })
}
