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
    /// Start of the main process, Unix seconds on the host's clock (systemd >= 248).
    started_at: Option<i64>,
    /// The host's clock when asked, Unix seconds.
    now: Option<i64>,
}

fn parse_show(text: &str) -> UnitState {
    let unix = |v: &str| v.trim().trim_start_matches('@').parse::<i64>().ok();
    let mut state = UnitState::default();
    for line in text.lines() {
        match line.split_once('=') {
            Some(("ActiveState", v)) => state.active = v.to_string(),
            Some(("ExecMainStartTimestampMonotonic", v)) => state.started = v.to_string(),
            Some(("ExecMainStartTimestamp", v)) => state.started_at = unix(v),
            Some(("Now", v)) => state.now = unix(v),
            _ => {}
        }
    }
    state
}

async fn show(transport: &dyn Transport, unit: &str) -> Result<UnitState, HostError> {
    // `--timestamp=unix` (systemd >= 248) prints `@<seconds>`; older systemd refuses the option
    // and the plain form follows (its start time then comes from `Now` read before the start).
    let props = "-p ActiveState -p ExecMainStartTimestampMonotonic -p ExecMainStartTimestamp";
    let req = ExecRequest::new(format!(
        "echo Now=$(date +%s); systemctl show --timestamp=unix {props} {unit} 2>/dev/null || systemctl show {props} {unit}"
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
/// Returns when the new main process started, in Unix seconds on the host's clock (systemd's
/// ExecMainStartTimestamp, else the host's clock just before the start), so that waits for the
/// node can tell its posts from the previous process's.
pub async fn start_and_wait(
    transport: &dyn Transport,
    unit: &str,
    restart: bool,
    timeout: Duration,
) -> Result<Option<i64>, ServiceError> {
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
            "active" if new_process => return Ok(state.started_at.or(before.now)),
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
                    return Ok(state.started_at.or(before.now));
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
        let s = parse_show(
            "Now=1795251620\nExecMainStartTimestampMonotonic=123\nActiveState=activating\n\
             ExecMainStartTimestamp=@1795251610\n",
        );
        assert_eq!(
            s,
            UnitState {
                active: "activating".into(),
                started: "123".into(),
                started_at: Some(1_795_251_610),
                now: Some(1_795_251_620),
            }
        );
    }

    #[test]
    fn the_human_timestamp_of_an_old_systemd_is_not_guessed() {
        let s =
            parse_show("ExecMainStartTimestamp=Sat 2026-11-21 09:00:10 UTC\nActiveState=active\n");
        assert_eq!(s.started_at, None);
        assert_eq!(s.active, "active");
    }
}
