//! The host edge: reaching hosts ([`Transport`]: ssh, local, pct; lxd later), moving files
//! there, gathering facts. Knows nothing about K3s.

mod error;
mod facts;
mod facts_script;
mod feed;
pub mod hash;
mod local;
mod lxc_check;
mod pct;
mod pct_errors;
mod preflight;
mod probe;
pub mod shell;
mod ssh;
mod ssh_control;
mod ssh_errors;
mod ssh_target;
mod transport;
mod tunnel;

pub use error::HostError;
pub use facts::{
    BinaryFact, DiskFree, Facts, FactsParseError, FileFact, HostAddress, UnitFact, gather_facts,
    parse_facts,
};
pub use facts_script::{FactsRequest, facts_script, is_safe_pattern, is_safe_unit};
pub use local::LocalTransport;
pub use lxc_check::{
    APPARMOR_LINE, CAP_DROP_LINE, DEVICES_LINE, INSIDE_SCRIPT, InsideFacts, KMSG_LINE, LxcProblem,
    LxcSeverity, MOUNT_AUTO_LINE, check as check_lxc, insert_lines as insert_lxc_lines,
    parse_inside,
};
pub use pct::{CtStatus, PctTransport, parse_status, pct_exec_line};
pub use pct_errors::{CtRef, ProxmoxError, classify as classify_pct_failure};
pub use preflight::{PreflightLimits, Problem, Severity, check_hosts};
pub use probe::{ProbeOutcome, probe_script, probe_tcp};
pub use ssh::SshTransport;
pub use ssh_target::SshTarget;
pub use transport::{
    DEFAULT_EXEC_TIMEOUT, ExecOutput, ExecRequest, Stdin, Transport, UploadRequest, UploadSource,
};
pub use tunnel::Tunnel;
