//! Starting and restarting the K3s unit and watching systemd until the new process is up, for
//! `apply` and `upgrade` alike: fails fast when the unit fails or systemd starts restarting it
//! (a release or a configuration that cannot start), with the journal tail.

use std::time::{Duration, Instant};

use k8s_openapi::jiff;

use crate::host::{ExecRequest, HostError, Transport};
use crate::kube::StartedAt;

/// Time limit of short systemctl/journalctl commands (a lost host fails in this time).
pub const QUICK: Duration = Duration::from_secs(30);
/// Polling interval of service and file waits.
pub const POLL: Duration = Duration::from_millis(250);
/// After this long in `activating` with a running main process, continue with the API wait
/// (a K3s that never sends READY=1 still registers its node).
const ACTIVATING_GRACE: Duration = Duration::from_secs(15);
/// How many journal lines a failure shows.
pub const JOURNAL_LINES: usize = 30;

/// Why the service did not come up.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The host could not be asked.
    #[error(transparent)]
    Host(#[from] HostError),
    /// systemd reports the unit failed, or is restarting its new process after an exit.
    #[error("{host}: {unit} failed to start: {why}; last journal lines:\n{journal}")]
    Failed {
        /// Host name.
        host: String,
        /// Unit.
        unit: String,
        /// What systemd reported.
        why: String,
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

impl ServiceError {
    /// What happened, without the journal.
    pub fn headline(&self) -> String {
        match self {
            Self::Host(e) => e.to_string(),
            Self::Failed { unit, why, .. } => format!("{unit} did not start: {why}"),
            Self::Timeout {
                unit, secs, state, ..
            } => format!("{unit} did not become active within {secs}s (state {state})"),
        }
    }

    /// The journal tail, when systemd was asked.
    pub fn journal(&self) -> Option<&str> {
        match self {
            Self::Host(_) => None,
            Self::Failed { journal, .. } | Self::Timeout { journal, .. } => Some(journal),
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct UnitState {
    active: String,
    sub: String,
    started: String,
    main_status: String,
    /// Start of the main process on the host's clock, to the microsecond (systemd >= 247).
    started_at: Option<StartedAt>,
    /// The host's clock when asked, Unix seconds.
    now: Option<i64>,
}

/// A systemd timestamp: `@<seconds>` (`--timestamp=unix`) or `Tue 2026-12-01 13:20:00.123456
/// UTC` (`--timestamp=us+utc`); other forms (local time zones) are not trusted.
fn parse_timestamp(v: &str) -> Option<StartedAt> {
    let v = v.trim();
    if let Some(seconds) = v.strip_prefix('@') {
        return seconds.parse().ok().map(StartedAt::from_second);
    }
    let mut words = v.split_whitespace();
    let (_weekday, date, time, zone) = (words.next()?, words.next()?, words.next()?, words.next()?);
    if zone != "UTC" || !time.contains('.') {
        return None;
    }
    let civil: jiff::civil::DateTime = format!("{date}T{time}").parse().ok()?;
    let stamp = civil.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
    Some(StartedAt::from_micros(stamp.as_microsecond()))
}

fn parse_show(text: &str) -> UnitState {
    let unix = |v: &str| v.trim().trim_start_matches('@').parse::<i64>().ok();
    let mut state = UnitState::default();
    for line in text.lines() {
        match line.split_once('=') {
            Some(("ActiveState", v)) => state.active = v.to_string(),
            Some(("SubState", v)) => state.sub = v.to_string(),
            Some(("ExecMainStatus", v)) => state.main_status = v.to_string(),
            Some(("ExecMainStartTimestampMonotonic", v)) => state.started = v.to_string(),
            Some(("ExecMainStartTimestamp", v)) => state.started_at = parse_timestamp(v),
            Some(("Now", v)) => state.now = unix(v),
            _ => {}
        }
    }
    state
}

async fn show(transport: &dyn Transport, unit: &str) -> Result<UnitState, HostError> {
    // `--timestamp=us+utc` (systemd >= 247) prints the start to the microsecond in UTC; older
    // systemd refuses the option and the plain form follows (its start time then comes from
    // `Now`, read before the start, to the second).
    let props = "-p ActiveState -p SubState -p ExecMainStatus -p ExecMainStartTimestampMonotonic \
                 -p ExecMainStartTimestamp";
    let req = ExecRequest::new(format!(
        "echo Now=$(date +%s); systemctl show --timestamp=us+utc {props} {unit} 2>/dev/null || systemctl show {props} {unit}"
    ))
    .sudo(true)
    .timeout(Some(QUICK))
    .describe(format!("reading the state of {unit}"));
    Ok(parse_show(
        &transport.exec_checked(req).await?.stdout_text(),
    ))
}

/// The last [`JOURNAL_LINES`] journal lines of the unit, with their times.
pub async fn journal_tail(transport: &dyn Transport, unit: &str) -> String {
    let req = ExecRequest::new(format!(
        "journalctl -u {unit} -n {JOURNAL_LINES} --no-pager -o short-iso 2>&1"
    ))
    .sudo(true)
    .timeout(Some(QUICK))
    .describe("reading the journal");
    match transport.exec(req).await {
        Ok(out) => out.stdout_text().trim_end().to_string(),
        Err(e) => format!("(journal unavailable: {e})"),
    }
}

/// Whether `unit` is active on the host (`systemctl is-active`); a host that cannot be asked
/// counts as not active.
pub async fn is_active(transport: &dyn Transport, unit: &str) -> bool {
    let req = ExecRequest::new(format!("systemctl is-active {unit}"))
        .sudo(true)
        .timeout(Some(QUICK))
        .describe(format!("checking {unit}"));
    transport
        .exec(req)
        .await
        .is_ok_and(|out| out.stdout_text().trim() == "active")
}

/// What a state seen after the (re)start means.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// The new process runs.
    Up,
    /// It failed: what systemd reported.
    Failed(String),
    /// Not yet.
    Wait,
}

/// Pure: judges `now` against the state `before` the (re)start. A restart needs a new main
/// process (another start timestamp); a first start does not. `activating_for` is how long the
/// new process has been `activating`.
fn judge(before: &UnitState, now: &UnitState, restart: bool, activating_for: Duration) -> Verdict {
    let new_process = !restart || (now.started != before.started && now.started != "0");
    match (now.active.as_str(), now.sub.as_str()) {
        ("failed", _) => {
            Verdict::Failed(format!("the unit failed (exit status {})", now.main_status))
        }
        (_, "auto-restart") => Verdict::Failed(format!(
            "the new process exited (status {}) and systemd is restarting it",
            now.main_status
        )),
        ("active", _) if new_process => Verdict::Up,
        ("activating", _) if new_process && activating_for >= ACTIVATING_GRACE => Verdict::Up,
        _ => Verdict::Wait,
    }
}

/// Starts (`enable` + `start`) or restarts the unit and waits until systemd runs the new
/// process. Returns when it started on the host's clock (systemd's ExecMainStartTimestamp to
/// the microsecond, else the host's clock just before the start, to the second), so that waits
/// for the node can tell its posts from the previous process's.
pub async fn start_and_wait(
    transport: &dyn Transport,
    unit: &str,
    restart: bool,
    timeout: Duration,
) -> Result<Option<StartedAt>, ServiceError> {
    let before = show(transport, unit).await?;
    let command = if restart {
        // reset-failed: a unit that hit its start limit earlier may start again.
        format!("systemctl reset-failed {unit} 2>/dev/null; systemctl restart --no-block {unit}")
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
        if state.active == "activating" {
            activating_since.get_or_insert_with(Instant::now);
        }
        let activating_for = activating_since.map(|s| s.elapsed()).unwrap_or_default();
        match judge(&before, &state, restart, activating_for) {
            Verdict::Up => {
                return Ok(state.started_at.or(before.now.map(StartedAt::from_second)));
            }
            Verdict::Failed(why) => {
                return Err(ServiceError::Failed {
                    host: transport.name().into(),
                    unit: unit.into(),
                    why,
                    journal: journal_tail(transport, unit).await,
                });
            }
            Verdict::Wait => {}
        }
        if began.elapsed() >= timeout {
            return Err(ServiceError::Timeout {
                host: transport.name().into(),
                unit: unit.into(),
                secs: timeout.as_secs(),
                state: format!("{}/{}", state.active, state.sub),
                journal: journal_tail(transport, unit).await,
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
             SubState=start\nExecMainStatus=0\nExecMainStartTimestamp=@1795251610\n",
        );
        assert_eq!(
            s,
            UnitState {
                active: "activating".into(),
                sub: "start".into(),
                started: "123".into(),
                main_status: "0".into(),
                started_at: Some(StartedAt::from_second(1_795_251_610)),
                now: Some(1_795_251_620),
            }
        );
    }

    #[test]
    fn reads_the_start_to_the_microsecond_in_utc() {
        let s = parse_show(
            "ExecMainStartTimestamp=Tue 2026-12-01 13:20:00.123456 UTC\nActiveState=active\n",
        );
        // 2026-12-01T13:20:00Z is 1796131200.
        assert_eq!(
            s.started_at,
            Some(StartedAt::from_micros(1_796_131_200_123_456))
        );
        // A local time zone is not guessed.
        let s = parse_show("ExecMainStartTimestamp=Tue 2026-12-01 14:20:00.123456 CET\n");
        assert_eq!(s.started_at, None);
        assert_eq!(parse_timestamp("n/a"), None);
    }

    #[test]
    fn the_human_timestamp_of_an_old_systemd_is_not_guessed() {
        let s =
            parse_show("ExecMainStartTimestamp=Sat 2026-11-21 09:00:10 UTC\nActiveState=active\n");
        assert_eq!(s.started_at, None);
        assert_eq!(s.active, "active");
    }

    fn state(active: &str, sub: &str, started: &str) -> UnitState {
        UnitState {
            active: active.into(),
            sub: sub.into(),
            started: started.into(),
            main_status: "1".into(),
            ..UnitState::default()
        }
    }

    #[test]
    fn judges_the_unit_after_a_start_or_restart() {
        let before = state("active", "running", "100");
        let zero = Duration::ZERO;
        // (case, now, restart, activating for, expected)
        let table = [
            (
                "restart: old process still shown",
                before.clone(),
                true,
                zero,
                Verdict::Wait,
            ),
            (
                "restart: new process active",
                state("active", "running", "200"),
                true,
                zero,
                Verdict::Up,
            ),
            (
                "first start: active",
                state("active", "running", "100"),
                false,
                zero,
                Verdict::Up,
            ),
            (
                "starting",
                state("activating", "start", "200"),
                true,
                zero,
                Verdict::Wait,
            ),
            (
                "no READY=1 after the grace",
                state("activating", "start", "200"),
                true,
                ACTIVATING_GRACE,
                Verdict::Up,
            ),
            (
                "no new process after the grace",
                state("activating", "start", "100"),
                true,
                ACTIVATING_GRACE,
                Verdict::Wait,
            ),
            (
                "exited, systemd restarts it",
                state("activating", "auto-restart", "200"),
                true,
                zero,
                Verdict::Failed(
                    "the new process exited (status 1) and systemd is restarting it".into(),
                ),
            ),
            (
                "failed",
                state("failed", "failed", "200"),
                false,
                zero,
                Verdict::Failed("the unit failed (exit status 1)".into()),
            ),
        ];
        for (case, now, restart, activating_for, want) in table {
            assert_eq!(
                judge(&before, &now, restart, activating_for),
                want,
                "{case}"
            );
        }
    }
}
