//! `k3sctl kubeconfig`: only the export step, for a new operator machine or after the
//! certificates were renewed.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::connect::{ConnectOptions, connect};
use super::error::OpsError;
use super::export::{
    ExportResult, check_local_files, desired_exports, export_content, read_admin_kubeconfig,
    user_kubeconfig_path, write_export,
};
use super::prepare::load_spec;
use crate::k3s::certs::days_left;
use crate::plan::DesiredExport;
use crate::plan::rotate::EXPIRES_SOON_DAYS;
use crate::secret::Secret;

/// What to export.
#[derive(Debug, Clone, Default)]
pub struct KubeconfigOptions {
    /// Only this export (by name).
    pub export: Option<String>,
    /// Return the content instead of writing files.
    pub stdout: bool,
    /// How the first server is reached.
    pub connect: ConnectOptions,
}

/// An export's client certificate, before and after it was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportExpiry {
    /// Export name.
    pub export: String,
    /// Days left of the certificate in the local file before (`None`: no file, or unreadable).
    pub days_left_before: Option<i64>,
    /// Days left of the certificate written now.
    pub days_left: Option<i64>,
}

impl ExportExpiry {
    /// The written certificate has expired.
    pub fn expired(&self) -> bool {
        self.days_left.is_some_and(|d| d < 0)
    }

    /// The written certificate expires within [`EXPIRES_SOON_DAYS`] (or has expired).
    pub fn expiring(&self) -> bool {
        self.days_left.is_some_and(|d| d < EXPIRES_SOON_DAYS)
    }

    /// The local file held an expired or soon expiring certificate before.
    pub fn was_expiring(&self) -> bool {
        self.days_left_before.is_some_and(|d| d < EXPIRES_SOON_DAYS)
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Days left of the client certificate in an export's local file (`None` when there is no
/// file or it holds no readable client certificate).
pub fn export_days_left(export: &DesiredExport) -> Option<i64> {
    let text = fs_err::read_to_string(&export.path).ok()?;
    let cert = super::check::kubeconfig_client_cert(&text, Some(&export.context)).ok()?;
    Some(days_left(cert.not_after, unix_now()))
}

/// The outcome: files written, or the content for stdout.
#[derive(Debug)]
pub enum KubeconfigOutcome {
    /// Files were written (or were up to date), with their client certificates' days left.
    Written(Vec<ExportResult>, Vec<ExportExpiry>),
    /// The content of the one selected export.
    Content(Secret),
}

/// Runs the export.
pub async fn kubeconfig(
    path: &Path,
    options: KubeconfigOptions,
) -> Result<KubeconfigOutcome, OpsError> {
    let spec = load_spec(path)?;
    let mut exports = desired_exports(&spec);
    if let Some(name) = &options.export {
        exports.retain(|e| &e.name == name);
        if exports.is_empty() {
            let known: Vec<String> = desired_exports(&spec).into_iter().map(|e| e.name).collect();
            return Err(OpsError::SpecValue {
                field: "spec.kubeconfigs".into(),
                problem: format!("no export named `{name}` (known: {})", known.join(", ")),
            });
        }
    }
    if exports.is_empty() {
        return Err(OpsError::SpecValue {
            field: "spec.kubeconfigs".into(),
            problem: "empty: add an export".into(),
        });
    }
    if options.stdout && exports.len() > 1 {
        return Err(OpsError::Usage(
            "--stdout needs exactly one export: pick one with --export NAME".into(),
        ));
    }
    let user = user_kubeconfig_path();
    if !options.stdout {
        check_local_files(&exports, &user)?;
    }
    // Any server's admin kubeconfig will do: the first one that answers, in spec order (with
    // several servers the first one may be down).
    let mut failures = Vec::new();
    let mut admin = None;
    for server in spec.cluster.servers() {
        let host = spec.resolve_host(server);
        match connect(&host, options.connect).await {
            Ok(transport) => match read_admin_kubeconfig(transport.as_ref()).await {
                Ok(found) => {
                    admin = Some(found);
                    break;
                }
                Err(e) => failures.push(e),
            },
            Err(e) => failures.push(OpsError::from(e)),
        }
    }
    let admin = match admin {
        Some(admin) => admin,
        None => {
            return Err(failures
                .into_iter()
                .next()
                .unwrap_or_else(|| OpsError::NoServer {
                    file: path.display().to_string(),
                }));
        }
    };
    if options.stdout {
        return Ok(KubeconfigOutcome::Content(export_content(
            &admin,
            &exports[0],
        )?));
    }
    let mut results = Vec::new();
    let mut expiry = Vec::new();
    for export in &exports {
        let before = export_days_left(export);
        results.push(write_export(
            export,
            &export_content(&admin, export)?,
            &user,
        )?);
        expiry.push(ExportExpiry {
            export: export.name.clone(),
            days_left_before: before,
            days_left: export_days_left(export),
        });
    }
    Ok(KubeconfigOutcome::Written(results, expiry))
}

/// What `kubeconfig --rotate-if-expired` looks at first: the spec's servers holding an expired
/// or soon expiring certificate (those to rotate), read in one round trip per host as
/// `certs check` reads them.
pub async fn expiring_servers(
    path: &Path,
    connect: ConnectOptions,
) -> Result<Vec<String>, OpsError> {
    let spec = load_spec(path)?;
    let servers: Vec<String> = spec.cluster.servers().map(|h| h.name.clone()).collect();
    let report = super::check::certs_check(path, connect).await?;
    Ok(crate::plan::rotate::expiring_servers(
        &report.certificates,
        &servers,
    ))
}
