//! The host edge: reaching hosts ([`Transport`]: ssh, local; pct and lxd later), moving files
//! there, gathering facts. Knows nothing about K3s.

mod error;
mod feed;
pub mod hash;
mod local;
pub mod shell;
mod transport;

pub use error::HostError;
pub use local::LocalTransport;
pub use transport::{
    DEFAULT_EXEC_TIMEOUT, ExecOutput, ExecRequest, Stdin, Transport, UploadRequest, UploadSource,
};
