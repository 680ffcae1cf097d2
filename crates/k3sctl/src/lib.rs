//! k3sctl: declarative lifecycle management for K3s clusters.
//!
//! Layers (each uses only the layers below it; see ARCHITECTURE.md):
//! `cli` → `ops` → `run` → `plan` → `k3s` / `kube` / `host` / `spec`.

pub mod cli;
pub mod host;
pub mod k3s;
pub mod kube;
pub mod ops;
pub mod plan;
pub mod run;
pub mod secret;
pub mod spec;
