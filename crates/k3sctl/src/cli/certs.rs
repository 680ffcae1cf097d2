//! `k3sctl certs check`: every server's and agent's K3s certificates and every kubeconfig
//! export's client certificate: subject, expiry, days left, and whether K3s renews it at its
//! next start. Exit 1 when one has expired or cannot be read, or a host cannot be reached.
//! `k3sctl certs rotate`: K3s's `k3s certificate rotate` node by node, then the exports.

use std::process::ExitCode;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use super::output::print_json;
use super::progress::line_reporter as reporter;
use super::rotation::{confirm, print_roll};
use super::runtime::{block_on, connect_options};
use super::{CommandResult, FAILURE, Global};
use crate::ops::check::{CertsReport, certs_check};
use crate::ops::rotate::{CertsRotateOptions, CertsRotateReport, prepare_certs_rotate};
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
    /// Rotate K3s's certificates (`k3s certificate rotate`), one node at a time: stop K3s,
    /// rotate, start, wait until Ready (servers: and a voting etcd member again, with every
    /// member healthy, before the next goes down); servers first, then agents; then write the
    /// kubeconfig exports again. The CAs are kept.
    Rotate {
        /// Only this node (a host name of the spec).
        #[arg(long, value_name = "NODE")]
        node: Option<String>,
        /// Only these K3s services' certificates (comma-separated: admin, api-server, etcd,
        /// kubelet, kube-proxy, ...); agents are rotated only when one of kubelet, kube-proxy,
        /// k3s-controller is named.
        #[arg(long, value_name = "SERVICE,...", value_delimiter = ',')]
        services: Vec<String>,
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
    match args.command {
        CertsCommand::Check {
            accept_new_host_keys,
        } => check(global, accept_new_host_keys),
        CertsCommand::Rotate {
            node,
            services,
            accept_new_host_keys,
        } => rotate(
            global,
            CertsRotateOptions {
                node,
                servers_only: Vec::new(),
                services,
                connect: connect_options(accept_new_host_keys),
                export: None,
            },
        ),
    }
}

/// Prints what a certificate rotation did (text).
pub(super) fn print_rotation(report: &CertsRotateReport) {
    print_roll(
        "certificates rotated",
        &report.rotated,
        report.failure.as_ref(),
    );
    for e in &report.exports {
        let days = report
            .export_days_left
            .iter()
            .find(|x| x.export == e.name)
            .and_then(|x| x.days_left)
            .map(|d| format!(", client certificate valid {d} more day(s)"))
            .unwrap_or_default();
        println!("export {}: written to {}{days}", e.name, e.path);
    }
    if let Some(err) = &report.exports_error {
        println!(
            "exports not written: {err}
  hint: `k3sctl kubeconfig` writes them"
        );
    }
}

/// Runs a certificate rotation after confirmation; exit 1 when it stopped.
pub(super) fn rotate(global: &Global, options: CertsRotateOptions) -> CommandResult {
    let services = options.services.clone();
    let rotation = block_on(prepare_certs_rotate(&global.config, &options))??;
    confirm(global, "certs rotate", &rotation.summary)?;
    let report = block_on(rotation.rotate_certificates(&services, reporter(global)))?;
    if global.json() {
        print_json(&report)?;
    } else {
        print_rotation(&report);
    }
    Ok(
        if report.failure.is_none() && report.exports_error.is_none() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(FAILURE)
        },
    )
}

fn check(global: &Global, accept_new_host_keys: bool) -> CommandResult {
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
