//! Rotations: `certs rotate` (K3s's leaf certificates, one node at a time), `token rotate` (the
//! server token, then every node restarted with it) and the rotation behind
//! `kubeconfig --rotate-if-expired`. Nothing happens before the caller has shown the
//! [`Rotation::summary`] and had it confirmed.

pub mod certs;
pub mod roll;
pub mod token;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::connect::{ConnectOptions, connect_all};
use super::error::OpsError;
use super::prepare::load_spec;
use crate::host::Transport;
use crate::plan::rotate::RotateNode;
use crate::plan::upgrade::NodeKind;
use crate::spec::{LoadedSpec, Role};

pub use certs::{CertsRotateOptions, CertsRotateReport, prepare_certs_rotate};
pub use roll::{Roll, RollFailure, RolledNode};
pub use token::{TokenRotateReport, prepare_token_rotate};

/// How long one node may take to come back (K3s started, Ready, a voter again).
pub const NODE_TIMEOUT: Duration = Duration::from_secs(300);

/// A rotation ready to run: the spec, a transport to every host, the order, and what a person
/// is asked to confirm.
pub struct Rotation {
    /// The spec.
    pub spec: LoadedSpec,
    /// The spec file.
    pub path: std::path::PathBuf,
    /// How hosts are reached (again, for the kubeconfig exports).
    pub connect: ConnectOptions,
    /// Only this kubeconfig export is written afterwards (`None`: every export).
    pub export: Option<String>,
    /// Transports by host.
    pub transports: BTreeMap<String, Arc<dyn Transport>>,
    /// The nodes, in the order they are restarted.
    pub order: Vec<RotateNode>,
    /// What will happen, one line each.
    pub summary: Vec<String>,
}

impl Rotation {
    /// The spec's servers, in spec order.
    pub fn servers(&self) -> Vec<String> {
        self.spec
            .hosts()
            .into_iter()
            .filter(|h| h.role == Role::Server)
            .map(|h| h.name)
            .collect()
    }

    /// The roll over these hosts; `token` renders the env files (`token rotate`'s new one).
    pub fn roll(
        &self,
        reporter: Arc<dyn crate::run::Reporter>,
        token: Option<crate::secret::Secret>,
    ) -> Roll {
        Roll {
            servers: self.servers(),
            transports: self.transports.clone(),
            reporter,
            timeout: NODE_TIMEOUT,
            token,
        }
    }
}

/// Every spec host as (name, server or agent), in spec order.
pub fn spec_nodes(spec: &LoadedSpec) -> Vec<(String, NodeKind)> {
    spec.hosts()
        .into_iter()
        .map(|h| {
            let kind = match h.role {
                Role::Server => NodeKind::Server,
                Role::Agent => NodeKind::Agent,
            };
            (h.name, kind)
        })
        .collect()
}

/// Loads the spec and connects to every host: a rotation needs them all (a node it cannot
/// reach could not be restarted, and a server it cannot see could hide a quorum risk).
pub async fn open(
    path: &Path,
    connect: ConnectOptions,
) -> Result<(LoadedSpec, BTreeMap<String, Arc<dyn Transport>>), OpsError> {
    let spec = load_spec(path)?;
    let hosts = spec.hosts();
    let (transports, errors) = connect_all(&hosts, connect).await;
    if !errors.is_empty() {
        return Err(OpsError::Unreachable {
            errors,
            hint: "\n  hint: a rotation restarts nodes one at a time and needs every host of the \
                   spec; bring them back, then re-run"
                .into(),
        });
    }
    Ok((spec, transports))
}
