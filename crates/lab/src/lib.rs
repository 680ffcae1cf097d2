//! Lab: Debian system containers booted with systemd-nspawn, for end-to-end tests.
//!
//! Each host has its own overlay root on a cached base image, its own identity (host name,
//! machine-id, ed25519 host key), network namespace and cgroups, and runs real systemd and
//! OpenSSH. [`Lab`] boots hosts, runs commands over real ssh with strict host keys, injects
//! faults and tears everything down on drop. The `k3sctl-lab` binary exposes the same for
//! humans. Only private addresses inside the lab's own namespaces are used.

mod boot;
mod cgroup;
mod cleanup;
mod command;
mod context;
mod create;
mod error;
mod faults;
mod footprint;
pub mod foreign;
mod identity;
pub mod image;
pub mod inherit;
mod lab;
pub mod limits;
mod lock;
pub mod login_user;
pub mod mirror;
pub mod naming;
mod network;
mod overlay;
mod partition;
pub mod paths;
mod process;
pub mod proxmox;
mod readiness;
pub mod registry;
mod spec_out;
mod ssh;
pub mod state;

pub use command::TimedOutput;
pub use context::BootTimings;
pub use create::{LabOptions, require_root};
pub use error::{LabError, Result};
pub use footprint::Footprint;
pub use lab::{EXEC_TIMEOUT, Host, Lab};
pub use login_user::{LoginUser, SudoMode};
pub use readiness::Readiness;
pub use spec_out::{DEFAULT_K3S_VERSION, SpecOptions, find_lab_binary, find_stand_in};
