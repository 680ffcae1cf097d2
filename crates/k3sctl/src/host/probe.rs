//! TCP reachability probed from a host (is the join endpoint reachable from where the agent
//! runs?), with bash's /dev/tcp, which minimal Debian has.

use std::time::Duration;

use super::error::HostError;
use super::shell::quote;
use super::transport::{ExecRequest, Transport};

/// What a probe saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// A TCP connection was established.
    Open,
    /// It was not; the detail says how it failed (refused, timed out, no route).
    Closed(String),
}

/// Exit code of the probe script when it has no tool to probe with.
const NO_TOOL_EXIT: i32 = 90;

/// True for names the probe may splice into its script: host names and IP addresses.
fn is_safe_address(address: &str) -> bool {
    !address.is_empty()
        && address
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
}

/// The probe script: connect to `address:port` within `timeout` using bash's /dev/tcp.
pub fn probe_script(address: &str, port: u16, timeout: Duration) -> String {
    let secs = timeout.as_secs().max(1);
    let inner = format!("exec 3<>/dev/tcp/{address}/{port}");
    format!(
        "if ! command -v bash >/dev/null 2>&1; then echo 'no bash to probe with' >&2; exit \
         {NO_TOOL_EXIT}; fi\ntimeout {secs} bash -c {} 2>&1\nrc=$?\n[ $rc = 124 ] && echo \
         'timed out after {secs}s'\nexit $rc\n",
        quote(&inner)
    )
}

/// Whether `transport`'s host can open a TCP connection to `address:port`.
pub async fn probe_tcp(
    transport: &dyn Transport,
    address: &str,
    port: u16,
    timeout: Duration,
) -> Result<ProbeOutcome, HostError> {
    let what = format!("probing TCP {address}:{port}");
    if !is_safe_address(address) {
        return Err(HostError::Protocol {
            host: transport.name().to_owned(),
            what,
            detail: format!("{address:?} is not a host name or IP address"),
        });
    }
    let req = ExecRequest::new(probe_script(address, port, timeout))
        .timeout(Some(timeout + Duration::from_secs(10)))
        .describe(what.clone());
    let out = transport.exec(req).await?;
    if out.success() {
        return Ok(ProbeOutcome::Open);
    }
    if out.status == Some(NO_TOOL_EXIT) {
        return Err(HostError::CommandFailed {
            host: transport.name().to_owned(),
            what,
            status: out.status_text(),
            stderr: out.stderr_text().trim().to_owned(),
        });
    }
    let text = format!("{}{}", out.stdout_text(), out.stderr_text());
    let detail = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.rsplit(": ").next().unwrap_or(l).trim().to_owned())
        .unwrap_or_else(|| out.status_text());
    Ok(ProbeOutcome::Closed(detail))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::LocalTransport;

    #[test]
    fn addresses_are_restricted() {
        assert!(is_safe_address("10.0.0.241"));
        assert!(is_safe_address("k3s-master.lan"));
        assert!(!is_safe_address("x; reboot"));
        assert!(!is_safe_address(""));
    }

    #[tokio::test]
    async fn open_and_closed_ports_are_told_apart() {
        let t = LocalTransport::new("local");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let open = listener.local_addr().expect("addr").port();
        let outcome = probe_tcp(&t, "127.0.0.1", open, Duration::from_secs(3))
            .await
            .expect("probe");
        assert_eq!(outcome, ProbeOutcome::Open);
        drop(listener);
        let outcome = probe_tcp(&t, "127.0.0.1", open, Duration::from_secs(3))
            .await
            .expect("probe");
        assert_eq!(outcome, ProbeOutcome::Closed("Connection refused".into()));
        let err = probe_tcp(&t, "$(reboot)", 1, Duration::from_secs(1)).await;
        assert!(err.is_err());
    }
}
