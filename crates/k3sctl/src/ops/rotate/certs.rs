//! `k3sctl certs rotate`: K3s's `k3s certificate rotate` on each node, one at a time (stop,
//! rotate, start, wait Ready and, with several servers, a voter again), servers first, then the
//! agents when the rotated services concern them; then the kubeconfig exports are written from
//! a server's new admin certificate.

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use super::roll::{RollFailure, RolledNode};
use super::{Rotation, open, spec_nodes};
use crate::ops::connect::ConnectOptions;
use crate::ops::error::OpsError;
use crate::ops::export::{ExportResult, desired_exports};
use crate::ops::kubeconfig::{ExportExpiry, KubeconfigOptions, KubeconfigOutcome, kubeconfig};
use crate::plan::rotate::{RotateAction, describe, rotation_order};
use crate::plan::upgrade::NodeKind;
use crate::run::Reporter;

/// What to rotate.
#[derive(Debug, Clone, Default)]
pub struct CertsRotateOptions {
    /// Only this node.
    pub node: Option<String>,
    /// Only these servers (`kubeconfig --rotate-if-expired`: those whose certificates expire);
    /// ignored when empty.
    pub servers_only: Vec<String>,
    /// K3s services (`k3s certificate rotate --service`); empty: all of the node's.
    pub services: Vec<String>,
    /// How hosts are reached.
    pub connect: ConnectOptions,
    /// Only this kubeconfig export is written afterwards (`None`: every export).
    pub export: Option<String>,
}

/// What `certs rotate` did.
#[derive(Debug, Clone, Serialize)]
pub struct CertsRotateReport {
    /// The nodes rotated, in order.
    pub rotated: Vec<RolledNode>,
    /// Where it stopped, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<RollFailure>,
    /// The kubeconfig exports written afterwards.
    pub exports: Vec<ExportResult>,
    /// The written exports' client certificates.
    pub export_days_left: Vec<ExportExpiry>,
    /// Why the exports were not written, when they were not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exports_error: Option<String>,
}

/// Connects and decides the order; changes nothing.
pub async fn prepare_certs_rotate(
    path: &Path,
    options: &CertsRotateOptions,
) -> Result<Rotation, OpsError> {
    let (spec, transports) = open(path, options.connect).await?;
    let mut order = rotation_order(
        &spec_nodes(&spec),
        options.node.as_deref(),
        &options.services,
    )?;
    if !options.servers_only.is_empty() {
        order.retain(|n| n.kind == NodeKind::Server && options.servers_only.contains(&n.name));
    }
    let services = if options.services.is_empty() {
        "every certificate K3s renews".to_string()
    } else {
        format!("the certificates of {}", options.services.join(", "))
    };
    let mut summary = describe(
        &format!("rotate {services} (stop K3s, `k3s certificate rotate`, start)"),
        &order,
    );
    if !desired_exports(&spec).is_empty() && order.iter().any(|n| n.kind == NodeKind::Server) {
        summary.push("then write the kubeconfig exports again".into());
    }
    Ok(Rotation {
        spec,
        path: path.to_path_buf(),
        connect: options.connect,
        export: options.export.clone(),
        transports,
        order,
        summary,
    })
}

impl Rotation {
    /// Runs the certificate rotation, then writes the exports again when a server was rotated.
    pub async fn rotate_certificates(
        &self,
        services: &[String],
        reporter: Arc<dyn Reporter>,
    ) -> CertsRotateReport {
        let roll = self.roll(reporter, None);
        let action = RotateAction::Certificates {
            services: services.to_vec(),
        };
        let turns: Vec<_> = self
            .order
            .iter()
            .map(|n| (n.clone(), action.clone()))
            .collect();
        let (rotated, failure) = match roll.run(&turns, "rotating certificates").await {
            Ok(done) => (done, None),
            Err((done, failure)) => (done, Some(failure)),
        };
        let servers_rotated = rotated.iter().any(|r| {
            self.order
                .iter()
                .any(|n| n.name == r.name && n.kind == NodeKind::Server)
        });
        let mut report = CertsRotateReport {
            rotated,
            failure,
            exports: Vec::new(),
            export_days_left: Vec::new(),
            exports_error: None,
        };
        if servers_rotated && !desired_exports(&self.spec).is_empty() {
            let options = KubeconfigOptions {
                connect: self.connect,
                export: self.export.clone(),
                ..KubeconfigOptions::default()
            };
            match kubeconfig(&self.path, options).await {
                Ok(KubeconfigOutcome::Written(results, expiry)) => {
                    report.exports = results;
                    report.export_days_left = expiry;
                }
                Ok(_) => {}
                Err(e) => report.exports_error = Some(e.to_string()),
            }
        }
        report
    }
}
