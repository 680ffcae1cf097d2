//! The ports and directories K3s uses by default: one home for each, so the rest of k3sctl names
//! them instead of spelling them.
//!
//! The directories are spelled once, in the macros below, because constants of files under them
//! (`concat!(server_dir!(), "/token")`) can be joined only from literals, not from constants.

/// `/var/lib/rancher`, the literal behind [`DATA_PARENT`], for `concat!` in constants.
macro_rules! data_parent {
    () => {
        "/var/lib/rancher"
    };
}
/// K3s's data directory, the literal behind [`DATA_DIR`], for `concat!` in constants.
macro_rules! data_dir {
    () => {
        concat!($crate::k3s::ports::data_parent!(), "/k3s")
    };
}
/// A server's directory, the literal behind [`SERVER_DIR`], for `concat!` in constants.
macro_rules! server_dir {
    () => {
        concat!($crate::k3s::ports::data_dir!(), "/server")
    };
}
/// A server's datastore directory, the literal behind [`DB_DIR`], for `concat!` in constants.
macro_rules! db_dir {
    () => {
        concat!($crate::k3s::ports::server_dir!(), "/db")
    };
}
/// The API port as text, the literal behind [`API_PORT`], for tables of K3s's flag defaults.
macro_rules! api_port {
    () => {
        "6443"
    };
}
pub(crate) use {api_port, data_dir, data_parent, db_dir, server_dir};

/// The supervisor and API server port (`--https-listen-port`), also the port agents and joining
/// servers register on.
pub const API_PORT: u16 = port(api_port!());

/// K3s's data directory (`--data-dir`).
pub const DATA_DIR: &str = data_dir!();

/// The directory preflight checks for free space: where K3s's data directory lives.
pub const DATA_PARENT: &str = data_parent!();

/// A server's directory (`<data-dir>/server`: token, TLS, manifests, datastore).
pub const SERVER_DIR: &str = server_dir!();

/// A server's datastore directory (`server/db`: etcd data, snapshots, the reset flag, SQLite).
pub const DB_DIR: &str = db_dir!();

/// Where K3s imports image tarballs from at start (`agent/images`, the airgap images).
pub const AGENT_IMAGES_DIR: &str = concat!(data_dir!(), "/agent/images");

/// A decimal port number at compile time (a non-digit or an overflow fails the build).
const fn port(text: &str) -> u16 {
    let digits = text.as_bytes();
    let mut value: u16 = 0;
    let mut i = 0;
    while i < digits.len() {
        assert!(digits[i].is_ascii_digit(), "a port is decimal digits");
        value = value * 10 + (digits[i] - b'0') as u16;
        i += 1;
    }
    value
}
