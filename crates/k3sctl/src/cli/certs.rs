//! `k3sctl certs check`: every server's and agent's K3s certificates and every kubeconfig
//! export's client certificate: subject, expiry, days left, and whether K3s renews it at its
//! next start. Exit 1 when one has expired or cannot be read, or a host cannot be reached.

use std::process::ExitCode;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use super::output::print_json;
use super::runtime::{block_on, connect_options};
use super::{CommandResult, FAILURE, Global};
use crate::ops::check::{CertsReport, certs_check};
use crate::plan::check::CertOwner;

/// Arguments of `certs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do with the certificates.
    #[command(subcommand)]
    pub command: CertsCommand,
}

/// The `certs` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum CertsCommand {
    /// Show each certificate's subject, expiry, days left and whether K3s renews it at its
    /// next start (expired or within 120 days; 90 before v1.33.1/v1.32.5/v1.31.9/v1.30.13).
    Check {
        /// Record unknown SSH host keys instead of refusing them.
        #[arg(long)]
        accept_new_host_keys: bool,
    },
}

fn print_text(report: &CertsReport) {
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED);
    table.set_header([
        "host / export",
        "file",
        "subject",
        "expires",
        "days left",
        "renewed at next start",
    ]);
    for row in &report.certificates {
        let owner = match &row.owner {
            CertOwner::Host { host } => host.clone(),
            CertOwner::Export { export } => format!("export {export}"),
        };
        let renew = match (&row.owner, row.renews_at_start) {
            (CertOwner::Export { .. }, _) => "no (k3sctl kubeconfig)".to_string(),
            (_, Some(true)) => format!("yes ({}-day window)", row.renewal_window_days.unwrap_or(0)),
            (_, Some(false)) => "no".to_string(),
            (_, None) => "unknown version".to_string(),
        };
        table.add_row([
            owner,
            row.file.clone(),
            row.error
                .clone()
                .map(|e| format!("UNREADABLE: {e}"))
                .unwrap_or_else(|| row.subject.clone()),
            row.expires.clone(),
            row.days_left.map(|d| d.to_string()).unwrap_or_default(),
            renew,
        ]);
    }
    println!("{table}");
    for (host, why) in &report.unreachable {
        println!("{host}: not read: {why}");
    }
}

fn healthy(report: &CertsReport) -> bool {
    report.unreachable.is_empty()
        && report
            .certificates
            .iter()
            .all(|r| r.error.is_none() && r.days_left.is_some_and(|d| d >= 0))
}

pub(super) fn run(global: &Global, args: Args) -> CommandResult {
    let CertsCommand::Check {
        accept_new_host_keys,
    } = args.command;
    let report = block_on(certs_check(
        &global.config,
        connect_options(accept_new_host_keys),
    ))??;
    if global.json() {
        print_json(&report)?;
    } else {
        print_text(&report);
    }
    Ok(if healthy(&report) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FAILURE)
    })
}
