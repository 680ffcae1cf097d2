//! The host edge: reaching hosts ([`Transport`]: ssh, local; pct and lxd later), moving files
//! there, gathering facts. Knows nothing about K3s.

mod error;
mod feed;
pub mod hash;
mod local;
pub mod shell;
mod ssh;
mod ssh_errors;
mod ssh_target;
mod transport;
mod tunnel;

pub use error::HostError;
pub use local::LocalTransport;
pub use ssh::SshTransport;
pub use ssh_target::SshTarget;
pub use transport::{
    DEFAULT_EXEC_TIMEOUT, ExecOutput, ExecRequest, Stdin, Transport, UploadRequest, UploadSource,
};
pub use tunnel::Tunnel;
