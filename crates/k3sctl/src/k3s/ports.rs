//! The ports and directories K3s uses by default: one home for each, so the rest of k3sctl names
//! them instead of spelling them.

/// The supervisor and API server port (`--https-listen-port`), also the port agents and joining
/// servers register on.
pub const API_PORT: u16 = 6443;

/// K3s's data directory (`--data-dir`).
pub const DATA_DIR: &str = "/var/lib/rancher/k3s";

/// The directory preflight checks for free space: where K3s's data directory lives.
pub const DATA_PARENT: &str = "/var/lib/rancher";
