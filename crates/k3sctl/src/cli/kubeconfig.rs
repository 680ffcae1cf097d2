//! `k3sctl kubeconfig`: fetch and write the spec's kubeconfig exports (only that step of
//! apply), for a new operator machine or after certificate renewal. It says when an export's
//! client certificate has expired or is about to; `--rotate-if-expired` first rotates the
//! certificates of the servers whose certificates expire (as `certs rotate` does).

use std::io::Write;
use std::process::ExitCode;

use super::certs::rotate as rotate_certificates;
use super::output::print_json;
use super::runtime::{block_on, connect_options};
use super::{CommandResult, FAILURE, Global};
use crate::ops::kubeconfig::{ExportExpiry, expiring_servers};
use crate::ops::rotate::CertsRotateOptions;
use crate::ops::{KubeconfigOptions, KubeconfigOutcome, kubeconfig};
use crate::plan::rotate::EXPIRES_SOON_DAYS;

/// Arguments of `kubeconfig`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this export (by its name in spec.kubeconfigs).
    #[arg(long, value_name = "NAME")]
    pub export: Option<String>,
    /// Print the kubeconfig instead of writing files (needs exactly one export).
    #[arg(long)]
    pub stdout: bool,
    /// First rotate the certificates of the servers whose certificates have expired or expire
    /// within 14 days (one server at a time, etcd quorum kept; asks first), then write the
    /// exports from the new admin certificate.
    #[arg(long, conflicts_with = "stdout")]
    pub rotate_if_expired: bool,
    /// Record unknown ssh host keys instead of refusing them.
    #[arg(long)]
    pub accept_new_host_keys: bool,
}

/// Pure: what to say about one written export's client certificate, and whether it is
/// unusable (expired).
pub fn expiry_note(e: &ExportExpiry) -> Option<(String, bool)> {
    let days = e.days_left?;
    if e.expired() {
        return Some((
            format!(
                "export {}: its client certificate has EXPIRED (the server's own admin \
                 certificate has too): kubectl with it fails\n  hint: `k3sctl kubeconfig \
                 --rotate-if-expired` rotates the servers' certificates first",
                e.export
            ),
            true,
        ));
    }
    if e.expiring() {
        return Some((
            format!(
                "export {}: its client certificate expires in {days} day(s) (under \
                 {EXPIRES_SOON_DAYS})\n  hint: `k3sctl kubeconfig --rotate-if-expired` rotates \
                 the servers' certificates first",
                e.export
            ),
            false,
        ));
    }
    if e.was_expiring() {
        return Some((
            format!(
                "export {}: its client certificate had expired or was about to; written again, \
                 valid {days} more day(s)",
                e.export
            ),
            false,
        ));
    }
    None
}

pub(super) fn run(global: &Global, args: Args) -> CommandResult {
    let connect = connect_options(args.accept_new_host_keys);
    if args.rotate_if_expired {
        let servers = block_on(expiring_servers(&global.config, connect))??;
        if !servers.is_empty() {
            eprintln!(
                "the certificates of server(s) {} have expired or expire within {EXPIRES_SOON_DAYS} \
                 days: rotating them first",
                servers.join(", ")
            );
            return rotate_certificates(
                global,
                CertsRotateOptions {
                    node: None,
                    servers_only: servers,
                    services: Vec::new(),
                    connect,
                    export: args.export,
                },
            );
        }
    }
    let options = KubeconfigOptions {
        export: args.export,
        stdout: args.stdout,
        connect,
    };
    let mut unusable = false;
    match block_on(kubeconfig(&global.config, options))?? {
        KubeconfigOutcome::Content(content) => {
            std::io::stdout().write_all(content.expose().as_bytes())?;
        }
        KubeconfigOutcome::Written(results, expiry) => {
            for e in &expiry {
                if let Some((note, expired)) = expiry_note(e) {
                    eprintln!("{note}");
                    unusable |= expired;
                }
            }
            if global.json() {
                print_json(&serde_json::json!({ "exports": results, "certificates": expiry }))?;
            } else {
                for r in results {
                    let what = if r.changed { "written" } else { "up to date" };
                    println!("{}: {what} (context {})", r.path, r.context);
                    if let Some(merged) = r.merged {
                        for c in merged.changes {
                            println!(
                                "  merged into {}: {} {} {}",
                                merged.path, c.kind, c.name, c.change
                            );
                        }
                    }
                }
            }
        }
    }
    Ok(if unusable {
        ExitCode::from(FAILURE)
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(before: Option<i64>, after: Option<i64>) -> ExportExpiry {
        ExportExpiry {
            export: "admin".into(),
            days_left_before: before,
            days_left: after,
        }
    }

    #[test]
    fn says_when_an_export_expired_or_is_about_to() {
        assert_eq!(expiry_note(&e(Some(300), Some(364))), None);
        assert_eq!(expiry_note(&e(None, None)), None);
        let (text, unusable) = expiry_note(&e(Some(-1), Some(-1))).expect("note");
        assert!(unusable && text.contains("EXPIRED") && text.contains("--rotate-if-expired"));
        let (text, unusable) = expiry_note(&e(None, Some(0))).expect("note");
        assert!(!unusable && text.contains("expires in 0 day(s)"), "{text}");
        let (text, unusable) = expiry_note(&e(Some(-4), Some(364))).expect("note");
        assert!(
            !unusable && text.contains("written again, valid 364"),
            "{text}"
        );
    }
}
