//! Starting and restarting the K3s unit and waiting for systemd to report it up, with the
//! journal tail when it fails.

use std::time::{Duration, Instant};

use crate::host::{ExecRequest, HostError, Transport};

/// Time limit of short systemctl/journalctl commands (a lost host fails in this time).
pub const QUICK: Duration = Duration::from_secs(30);
/// Polling interval of service and file waits.
pub const POLL: Duration = Duration::from_millis(300);
/// After this long in `activating` with a running main process, continue with the API wait
/// (a K3s that never sends READY=1 still registers its node).
const ACTIVATING_GRACE: Duration = Duration::from_secs(15);

/// Why the service did not come up.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The host could not be asked.
    #[error(transparent)]
    Host(#[from] HostError),
    /// systemd reports the unit failed.
    #[error("{host}: {unit} failed to start; last journal lines:\n{journal}")]
    Failed {
        /// Host name.
        host: String,
        /// Unit.
        unit: String,
        /// Journal tail.
        journal: String,
    },
    /// The unit did not become active in time.
    #[error(
        "{host}: {unit} did not become active within {secs}s (state {state}); last journal lines:\n{journal}"
    )]
    Timeout {
        /// Host name.
        host: String,
        /// Unit.
        unit: String,
        /// Timeout in seconds.
        secs: u64,
        /// Last state.
        state: String,
        /// Journal tail.
        journal: String,
    },
}

#[derive(Debug, Default, PartialEq, Eq)]
struct UnitState {
    active: String,
    started: String,
}

fn parse_show(text: &str) -> UnitState {
    let mut state = UnitState::default();
    for line in text.lines() {
        match line.split_once('=') {
            Some(("ActiveState", v)) => state.active = v.to_string(),
            Some(("ExecMainStartTimestampMonotonic", v)) => state.started = v.to_string(),
            _ => {}
        }
    }
    state
}

async fn show(transport: &dyn Transport, unit: &str) -> Result<UnitState, HostError> {
    let req = ExecRequest::new(format!(
        "systemctl show -p ActiveState -p ExecMainStartTimestampMonotonic {unit}"
    ))
    .sudo(true)
    .timeout(Some(QUICK))
    .describe(format!("reading the state of {unit}"));
    Ok(parse_show(
        &transport.exec_checked(req).await?.stdout_text(),
    ))
}

/// The last journal lines of the unit.
pub async fn journal_tail(transport: &dyn Transport, unit: &str, lines: usize) -> String {
    let req = ExecRequest::new(format!(
        "journalctl -u {unit} -n {lines} --no-pager -o cat 2>&1"
    ))
    .sudo(true)
    .timeout(Some(QUICK))
    .describe("reading the journal");
    match transport.exec(req).await {
        Ok(out) => out.stdout_text().trim_end().to_string(),
        Err(e) => format!("(journal unavailable: {e})"),
    }
}

/// Starts (`enable` + `start`) or restarts the unit and waits until systemd reports it active.
pub async fn start_and_wait(
    transport: &dyn Transport,
    unit: &str,
    restart: bool,
    timeout: Duration,
) -> Result<(), ServiceError> {
    let before = show(transport, unit).await?;
    let command = if restart {
        format!("systemctl restart --no-block {unit}")
    } else {
        format!("systemctl enable {unit} 2>/dev/null; systemctl start --no-block {unit}")
    };
    let req = ExecRequest::new(command)
        .sudo(true)
        .timeout(Some(QUICK))
        .describe(format!("starting {unit}"));
    transport.exec_checked(req).await?;
    let began = Instant::now();
    let mut activating_since: Option<Instant> = None;
    loop {
        let state = show(transport, unit).await?;
        let new_process = !restart || (state.started != before.started && state.started != "0");
        match state.active.as_str() {
            "active" if new_process => return Ok(()),
            "failed" => {
                return Err(ServiceError::Failed {
                    host: transport.name().into(),
                    unit: unit.into(),
                    journal: journal_tail(transport, unit, 15).await,
                });
            }
            "activating" if new_process => {
                let since = *activating_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= ACTIVATING_GRACE {
                    return Ok(());
                }
            }
            _ => {}
        }
        if began.elapsed() >= timeout {
            return Err(ServiceError::Timeout {
                host: transport.name().into(),
                unit: unit.into(),
                secs: timeout.as_secs(),
                state: state.active,
                journal: journal_tail(transport, unit, 15).await,
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_systemctl_show() {
        let s = parse_show("ExecMainStartTimestampMonotonic=123\nActiveState=activating\n");
        assert_eq!(
            s,
            UnitState {
                active: "activating".into(),
                started: "123".into()
            }
        );
    }
}
