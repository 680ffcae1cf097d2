//! Restarting K3s on a node and watching systemd until the new process is up, failing fast when
//! the unit fails or systemd starts restarting it (a release that cannot start).

use std::time::{Duration, Instant};

use crate::host::{ExecRequest, HostError, Transport};

/// How many journal lines a failure shows.
pub const JOURNAL_LINES: usize = 30;
const POLL: Duration = Duration::from_millis(250);
/// After this long in `activating` with the new process running, go on to the API wait (a K3s
/// that does not send READY=1 still registers its node).
const ACTIVATING_GRACE: Duration = Duration::from_secs(20);

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct UnitState {
    active: String,
    sub: String,
    started: String,
    main_status: String,
}

fn parse_show(text: &str) -> UnitState {
    let mut s = UnitState::default();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('=') {
            let v = v.to_string();
            match k {
                "ActiveState" => s.active = v,
                "SubState" => s.sub = v,
                "ExecMainStartTimestampMonotonic" => s.started = v,
                "ExecMainStatus" => s.main_status = v,
                _ => {}
            }
        }
    }
    s
}

async fn show(transport: &dyn Transport, unit: &str) -> Result<UnitState, HostError> {
    let req = ExecRequest::new(format!(
        "systemctl show -p ActiveState -p SubState -p ExecMainStartTimestampMonotonic -p ExecMainStatus {unit}"
    ))
    .sudo(true)
    .describe(format!("reading the state of {unit}"));
    Ok(parse_show(
        &transport.exec_checked(req).await?.stdout_text(),
    ))
}

/// `journalctl -u <unit> -n 30` on the node.
pub async fn journal(transport: &dyn Transport, unit: &str) -> String {
    let req = ExecRequest::new(format!(
        "journalctl -u {unit} -n {JOURNAL_LINES} --no-pager -o short-iso 2>&1"
    ))
    .sudo(true)
    .describe("reading the journal");
    match transport.exec(req).await {
        Ok(out) => out.stdout_text().trim_end().to_string(),
        Err(e) => format!("(journal unavailable: {e})"),
    }
}

/// Pure: what a state seen after the restart means. `Some(Ok)` up, `Some(Err)` failed, `None`
/// not yet.
fn judge(
    before: &UnitState,
    now: &UnitState,
    activating_for: Duration,
) -> Option<Result<(), String>> {
    let new_process = now.started != before.started && now.started != "0";
    match (now.active.as_str(), now.sub.as_str()) {
        ("failed", _) => Some(Err(format!(
            "the unit failed (exit status {})",
            now.main_status
        ))),
        (_, "auto-restart") => Some(Err(format!(
            "the new process exited (status {}) and systemd is restarting it",
            now.main_status
        ))),
        ("active", _) if new_process => Some(Ok(())),
        ("activating", _) if new_process && activating_for >= ACTIVATING_GRACE => Some(Ok(())),
        _ => None,
    }
}

/// Restarts `unit` and waits until systemd runs the new process (or it fails). The error text
/// says what systemd reported; the caller adds the journal.
pub async fn restart(
    transport: &dyn Transport,
    unit: &str,
    timeout: Duration,
) -> Result<(), String> {
    let before = show(transport, unit).await.map_err(|e| e.to_string())?;
    let req = ExecRequest::new(format!(
        "systemctl reset-failed {unit} 2>/dev/null; systemctl restart --no-block {unit}"
    ))
    .sudo(true)
    .describe(format!("restarting {unit}"));
    transport
        .exec_checked(req)
        .await
        .map_err(|e| e.to_string())?;
    let began = Instant::now();
    let mut activating_since: Option<Instant> = None;
    loop {
        let now = show(transport, unit).await.map_err(|e| e.to_string())?;
        if now.active == "activating" {
            activating_since.get_or_insert_with(Instant::now);
        }
        let activating_for = activating_since.map(|s| s.elapsed()).unwrap_or_default();
        if let Some(verdict) = judge(&before, &now, activating_for) {
            return verdict;
        }
        if began.elapsed() >= timeout {
            return Err(format!(
                "{unit} did not run the new process within {}s (state {}/{})",
                timeout.as_secs(),
                now.active,
                now.sub
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(active: &str, sub: &str, started: &str) -> UnitState {
        UnitState {
            active: active.into(),
            sub: sub.into(),
            started: started.into(),
            main_status: "1".into(),
        }
    }

    #[test]
    fn judges_the_unit_after_a_restart() {
        let before = state("active", "running", "100");
        let zero = Duration::ZERO;
        assert_eq!(
            judge(&before, &before, zero),
            None,
            "old process still shown"
        );
        assert_eq!(
            judge(&before, &state("active", "running", "200"), zero),
            Some(Ok(()))
        );
        assert!(matches!(
            judge(&before, &state("activating", "auto-restart", "200"), zero),
            Some(Err(m)) if m.contains("systemd is restarting it")
        ));
        assert!(matches!(
            judge(&before, &state("failed", "failed", "200"), zero),
            Some(Err(_))
        ));
        let starting = state("activating", "start", "200");
        assert_eq!(judge(&before, &starting, zero), None);
        assert_eq!(judge(&before, &starting, ACTIVATING_GRACE), Some(Ok(())));
    }
}
