//! Waiting for SIGTERM (systemd stop) or SIGINT.

/// Returns when the process is asked to stop.
pub async fn wait_for_shutdown() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            // Without signal handlers, Ctrl-C handling is the best left.
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
