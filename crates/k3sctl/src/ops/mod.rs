//! One module per user operation (`apply`, `kubeconfig`, and the `plan` preparation they
//! share). Operations reach hosts and the API only through the `host`, `run` and `kube` edges.

pub mod apply;
pub mod binary;
pub mod channel_lookup;
pub mod check;
pub mod confirm;
pub mod connect;
pub mod download;
pub mod error;
pub mod etcd_restore;
pub mod etcd_snapshot;
pub mod export;
pub mod import_hosts;
pub mod inputs;
pub mod kube_api;
pub mod kubeconfig;
pub mod lifecycle;
pub mod local_file;
pub mod lxc;
pub mod preflight;
pub mod prepare;
pub mod release_cache;
pub mod rotate;
pub mod unreachable;
pub mod upgrade;

pub use apply::{ApplyOptions, ApplyReport, apply};
pub use error::OpsError;
pub use kubeconfig::{KubeconfigOptions, KubeconfigOutcome, kubeconfig};
pub use prepare::{Prepared, prepare};
