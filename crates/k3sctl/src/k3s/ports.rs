//! The ports and directories K3s uses by default: one home for each, so the rest of k3sctl names
//! them instead of spelling them.

/// The supervisor and API server port (`--https-listen-port`), also the port agents and joining
/// servers register on.
pub const API_PORT: u16 = 6443;

/// K3s's data directory (`--data-dir`).
pub const DATA_DIR: &str = "/var/lib/rancher/k3s";

/// The directory preflight checks for free space: where K3s's data directory lives.
pub const DATA_PARENT: &str = "/var/lib/rancher";

/// A server's directory (`<data-dir>/server`: token, TLS, manifests, datastore).
pub const SERVER_DIR: &str = "/var/lib/rancher/k3s/server";

/// A server's datastore directory (`server/db`: etcd data, snapshots, the reset flag, SQLite).
pub const DB_DIR: &str = "/var/lib/rancher/k3s/server/db";

/// Where K3s imports image tarballs from at start (`agent/images`, the airgap images).
pub const AGENT_IMAGES_DIR: &str = "/var/lib/rancher/k3s/agent/images";

#[cfg(test)]
mod tests {
    use super::*;

    /// The directories are spelled out (constants cannot be joined) but sit where K3s puts them:
    /// under its data directory, itself under [`DATA_PARENT`].
    #[test]
    fn directories_sit_under_the_data_dir() {
        assert_eq!(DATA_DIR.rsplit_once('/').map(|(p, _)| p), Some(DATA_PARENT));
        assert_eq!(SERVER_DIR, format!("{DATA_DIR}/server"));
        assert_eq!(DB_DIR, format!("{SERVER_DIR}/db"));
        assert_eq!(AGENT_IMAGES_DIR, format!("{DATA_DIR}/agent/images"));
        assert!(crate::k3s::manifests::MANIFESTS_DIR.starts_with(SERVER_DIR));
    }
}
