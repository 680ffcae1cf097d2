//! The apply lock on the first server: `/var/lib/rancher/k3s/k3sctl.lock` holds
//! `user@host pid=N since=UNIX-SECONDS`. Taken atomically (noclobber), released only by its
//! holder; a lock whose holder process is gone (same machine) is reported as stale.

use crate::host::{ExecRequest, HostError, Transport, shell};

/// Where the lock lives on the first server.
pub const LOCK_PATH: &str = "/var/lib/rancher/k3s/k3sctl.lock";

/// Who holds (or wants) the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    /// `user@machine` of the operator.
    pub who: String,
    /// Process id on that machine.
    pub pid: u32,
    /// When it was taken (Unix seconds).
    pub since: u64,
}

impl LockHolder {
    /// This process.
    pub fn current() -> Self {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .ok()
            .filter(|u| !u.is_empty())
            .or_else(user_from_passwd)
            .unwrap_or_else(|| "unknown".into());
        let machine = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        Self {
            who: format!("{user}@{machine}"),
            pid: std::process::id(),
            since,
        }
    }

    /// The lock file line.
    pub fn line(&self) -> String {
        format!("{} pid={} since={}", self.who, self.pid, self.since)
    }

    /// Parses a lock file line.
    pub fn parse(text: &str) -> Option<Self> {
        let mut words = text.split_whitespace();
        let who = words.next()?.to_string();
        let pid = words.next()?.strip_prefix("pid=")?.parse().ok()?;
        let since = words.next()?.strip_prefix("since=")?.parse().ok()?;
        Some(Self { who, pid, since })
    }

    /// Whether the holder is a process of this machine that no longer exists.
    pub fn is_stale_here(&self) -> bool {
        let here = Self::current();
        self.who == here.who && !std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

/// The name of this process's user from /etc/passwd (when $USER is unset, e.g. under cron).
fn user_from_passwd() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").ok()?.uid();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        (id == uid).then(|| name.to_string())
    })
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another apply holds it.
    #[error(
        "{host}: another k3sctl run holds the lock {LOCK_PATH}: {holder}{stale}\n  hint: wait for \
         it to finish; if it is gone, re-run with --force-unlock"
    )]
    Held {
        /// First server name.
        host: String,
        /// The holder line.
        holder: String,
        /// " (stale: that process no longer exists)" when detected.
        stale: String,
    },
    /// The host could not be asked.
    #[error(transparent)]
    Host(#[from] HostError),
}

fn acquire_script(line: &str) -> String {
    format!(
        "mkdir -p /var/lib/rancher/k3s\n\
         if ( set -C; printf '%s\\n' {line} > {LOCK_PATH} ) 2>/dev/null; then echo acquired; \
         else echo held; cat {LOCK_PATH}; fi\n",
        line = shell::quote(line)
    )
}

/// Takes the lock, removing an existing one first when `force` is set.
pub async fn acquire(
    transport: &dyn Transport,
    holder: &LockHolder,
    force: bool,
) -> Result<(), LockError> {
    if force {
        let req = ExecRequest::new(format!("rm -f {LOCK_PATH}"))
            .sudo(true)
            .describe("removing the lock");
        transport.exec_checked(req).await?;
    }
    let req = ExecRequest::new(acquire_script(&holder.line()))
        .sudo(true)
        .describe("taking the lock");
    let out = transport.exec_checked(req).await?.stdout_text();
    let mut lines = out.lines();
    if lines.next() == Some("acquired") {
        return Ok(());
    }
    let text = lines.next().unwrap_or_default().to_string();
    let stale = match LockHolder::parse(&text) {
        Some(h) if h.is_stale_here() => " (stale: that process no longer exists)".to_string(),
        _ => String::new(),
    };
    Err(LockError::Held {
        host: transport.name().to_string(),
        holder: text,
        stale,
    })
}

/// Releases the lock if this holder still owns it.
pub async fn release(transport: &dyn Transport, holder: &LockHolder) -> Result<(), HostError> {
    let script = format!(
        "if [ \"$(cat {LOCK_PATH} 2>/dev/null)\" = {line} ]; then rm -f {LOCK_PATH}; fi",
        line = shell::quote(&holder.line())
    );
    transport
        .exec_checked(
            ExecRequest::new(script)
                .sudo(true)
                .describe("releasing the lock"),
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_line_round_trip() {
        let h = LockHolder {
            who: "ops@laptop".into(),
            pid: 42,
            since: 1_700_000_000,
        };
        assert_eq!(h.line(), "ops@laptop pid=42 since=1700000000");
        assert_eq!(LockHolder::parse(&h.line()), Some(h));
        assert_eq!(LockHolder::parse("garbage"), None);
    }

    #[test]
    fn holder_names_a_user_even_without_user_env() {
        assert_eq!(
            user_from_passwd().as_deref(),
            Some("root"),
            "tests run as root"
        );
        assert!(!LockHolder::current().who.starts_with("unknown@"));
    }

    #[test]
    fn dead_local_process_is_stale_live_one_is_not() {
        let mut h = LockHolder::current();
        assert!(!h.is_stale_here());
        h.pid = u32::MAX - 1;
        assert!(h.is_stale_here());
        h.who = "someone@elsewhere".into();
        assert!(!h.is_stale_here());
    }
}
