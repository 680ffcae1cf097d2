//! The async runtime for commands that reach hosts, and flags shared by them.

use crate::ops::connect::ConnectOptions;

/// Runs a future on a fresh multi-threaded runtime.
pub fn block_on<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(future))
}

/// Connection options from the command's flags; stopped pct containers are started (per
/// `pct.autostart`) by every command but `plan`, which changes nothing.
pub fn connect_options(accept_new_host_keys: bool) -> ConnectOptions {
    ConnectOptions {
        accept_new_host_keys,
        skip_unreachable: false,
        start_containers: true,
        first_command_checks_reuse: false,
    }
}
