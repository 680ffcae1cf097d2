//! `k3sctl kubeconfig`: only the export step, for a new operator machine or after the
//! certificates were renewed.

use std::path::Path;

use super::connect::{ConnectOptions, connect};
use super::error::OpsError;
use super::export::{
    ExportResult, check_local_files, desired_exports, export_content, read_admin_kubeconfig,
    user_kubeconfig_path, write_export,
};
use super::prepare::load_spec;
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

/// The outcome: files written, or the content for stdout.
#[derive(Debug)]
pub enum KubeconfigOutcome {
    /// Files were written (or were up to date).
    Written(Vec<ExportResult>),
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
            return Err(OpsError::Spec(format!(
                "spec.kubeconfigs has no export named `{name}` (known: {})",
                known.join(", ")
            )));
        }
    }
    if exports.is_empty() {
        return Err(OpsError::Spec(
            "spec.kubeconfigs is empty: add an export".into(),
        ));
    }
    if options.stdout && exports.len() > 1 {
        return Err(OpsError::Spec(
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
                .unwrap_or_else(|| OpsError::Spec("spec.hosts has no server".into())));
        }
    };
    if options.stdout {
        return Ok(KubeconfigOutcome::Content(export_content(
            &admin,
            &exports[0],
        )?));
    }
    let mut results = Vec::new();
    for export in &exports {
        results.push(write_export(
            export,
            &export_content(&admin, export)?,
            &user,
        )?);
    }
    Ok(KubeconfigOutcome::Written(results))
}
