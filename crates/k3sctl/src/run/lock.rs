//! The apply lock on the first server: `/var/lib/rancher/k3s/k3sctl.lock` holds the holder's
//! line (see `lock_holder`). Taken atomically (noclobber), released only by its holder. A lock
//! whose holder is provably gone (same boot and PID namespace, pid free or reused) is taken
//! over, and the caller says so; any other held lock needs `--force-unlock`.

pub use super::lock_holder::LockHolder;
use super::lock_holder::{HolderState, PidNow, ProcessId, ns_inode, start_ticks_from_stat};
use crate::host::{ExecRequest, HostError, Transport, shell};

/// Where the lock lives on the first server.
pub const LOCK_PATH: &str = concat!(crate::k3s::ports::data_dir!(), "/k3sctl.lock");

impl LockHolder {
    /// This process.
    pub fn current() -> Self {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .ok()
            .filter(|u| !u.is_empty())
            .or_else(user_from_passwd)
            .unwrap_or_else(|| "unknown".into());
        let machine = fs_err::read_to_string("/proc/sys/kernel/hostname")
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
            process: this_process(),
        }
    }

    /// Judges a recorded holder from this process, looking at its pid in /proc.
    pub fn judge_here(&self) -> HolderState {
        self.judge(&Self::current(), pid_now(self.pid))
    }
}

/// This process's boot id, PID namespace and start time, when /proc tells them.
fn this_process() -> Option<ProcessId> {
    let boot_id = fs_err::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let ns = fs_err::read_link("/proc/self/ns/pid").ok()?;
    let stat = fs_err::read_to_string("/proc/self/stat").ok()?;
    Some(ProcessId {
        boot_id: boot_id.trim().to_string(),
        pid_ns: ns_inode(&ns.to_string_lossy())?,
        start_ticks: start_ticks_from_stat(&stat)?,
    })
}

/// What /proc says about `pid` now.
fn pid_now(pid: u32) -> PidNow {
    match fs_err::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => start_ticks_from_stat(&stat).map_or(PidNow::Unknown, PidNow::StartedAt),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => PidNow::Free,
        Err(_) => PidNow::Unknown,
    }
}

/// The name of this process's user from /etc/passwd (when $USER is unset, e.g. under cron).
fn user_from_passwd() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = fs_err::metadata("/proc/self").ok()?.uid();
    let passwd = fs_err::read_to_string("/etc/passwd").ok()?;
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
        /// " (stale: that process no longer exists)" when likely but not provable.
        stale: String,
    },
    /// The host could not be asked.
    #[error(transparent)]
    Host(#[from] HostError),
}

fn acquire_script(lock: &str, line: &str) -> String {
    format!(
        "mkdir -p \"$(dirname {lock})\"\n\
         if ( set -C; printf '%s\\n' {line} > {lock} ) 2>/dev/null; then echo acquired; \
         else echo held; cat {lock}; fi\n",
        lock = shell::quote(lock),
        line = shell::quote(line)
    )
}

/// How the lock was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// It was free (or removed by `--force-unlock`).
    Free,
    /// It was held by a run that is provably gone and was taken over: the old holder's line
    /// and why it is gone, for the caller's notice.
    TookOver {
        /// The old holder line.
        previous: String,
        /// Why it is known to be gone.
        why: String,
    },
}

/// Replaces the lock only if it still holds `previous`, under flock(1) so that two runs
/// taking over the same stale lock cannot both succeed. Without flock, nothing is replaced.
fn takeover_script(lock: &str, previous: &str, line: &str) -> String {
    format!(
        "command -v flock >/dev/null 2>&1 || {{ echo held; cat {lock}; exit 0; }}\n\
         exec 9>{guard}\n\
         flock -w 30 9 || {{ echo held; cat {lock}; exit 0; }}\n\
         if [ \"$(cat {lock} 2>/dev/null)\" = {previous} ]; then \
         printf '%s\\n' {line} > {new} && mv -f {new} {lock} && echo acquired; \
         else echo held; cat {lock}; fi\n",
        guard = shell::quote(&format!("{lock}.guard")),
        new = shell::quote(&format!("{lock}.new")),
        lock = shell::quote(lock),
        previous = shell::quote(previous),
        line = shell::quote(line)
    )
}

async fn try_take(transport: &dyn Transport, script: String) -> Result<Option<String>, LockError> {
    let req = ExecRequest::new(script)
        .sudo(true)
        .describe("taking the lock");
    let out = transport.exec_checked(req).await?.stdout_text();
    let mut lines = out.lines();
    if lines.next() == Some("acquired") {
        return Ok(None);
    }
    Ok(Some(lines.next().unwrap_or_default().to_string()))
}

/// Takes the lock, removing an existing one first when `force` is set. A lock whose holder is
/// provably gone (see [`LockHolder::judge`]) is taken over and reported in the result.
pub async fn acquire(
    transport: &dyn Transport,
    holder: &LockHolder,
    force: bool,
) -> Result<Acquired, LockError> {
    if force {
        let req = ExecRequest::new(format!("rm -f {LOCK_PATH}"))
            .sudo(true)
            .describe("removing the lock");
        transport.exec_checked(req).await?;
    }
    let Some(text) = try_take(transport, acquire_script(LOCK_PATH, &holder.line())).await? else {
        return Ok(Acquired::Free);
    };
    let held = |text: String, stale: &str| LockError::Held {
        host: transport.name().to_string(),
        holder: text,
        stale: stale.to_string(),
    };
    let Some(previous) = LockHolder::parse(&text) else {
        return Err(held(text, ""));
    };
    match previous.judge_here() {
        HolderState::Gone(why) => {
            match try_take(transport, takeover_script(LOCK_PATH, &text, &holder.line())).await? {
                None => Ok(Acquired::TookOver {
                    previous: text,
                    why,
                }),
                // Someone else took it over first, or it changed meanwhile.
                Some(now) => Err(held(now, "")),
            }
        }
        HolderState::LikelyGone => Err(held(text, " (stale: that process no longer exists)")),
        HolderState::Other => Err(held(text, "")),
    }
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
    fn holder_names_a_user_even_without_user_env() {
        assert_eq!(
            user_from_passwd().as_deref(),
            Some("root"),
            "tests run as root"
        );
        assert!(!LockHolder::current().who.starts_with("unknown@"));
    }

    #[test]
    fn this_process_is_alive_a_free_pid_here_is_gone() {
        let me = LockHolder::current();
        assert!(
            me.process.is_some(),
            "/proc tells boot id, namespace and start"
        );
        assert_eq!(
            me.judge_here(),
            HolderState::Other,
            "a live holder is never gone"
        );
        // pid 0 is never a process's pid.
        let gone = LockHolder {
            pid: 0,
            ..me.clone()
        };
        assert!(matches!(gone.judge_here(), HolderState::Gone(_)));
        // pid 1 exists and started before this process: the holder could be it.
        let init = LockHolder { pid: 1, ..me };
        assert_eq!(init.judge_here(), HolderState::Other);
    }

    fn sh(script: &str) -> String {
        let out = std::process::Command::new("sh")
            .args(["-c", script])
            .output()
            .expect("sh runs");
        assert!(out.status.success(), "{script}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The scripts as the first server runs them, on a lock in a temporary directory.
    #[test]
    fn the_takeover_replaces_only_the_stale_line_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lock = dir
            .path()
            .join("sub/k3sctl.lock")
            .to_string_lossy()
            .into_owned();
        let (old, first, second) = (
            "a@b pid=1 since=2",
            "c@d pid=3 since=4",
            "e@f pid=5 since=6",
        );
        assert_eq!(sh(&acquire_script(&lock, old)), "acquired\n");
        assert_eq!(sh(&acquire_script(&lock, first)), format!("held\n{old}\n"));
        // Two runs judged the same holder gone: the first replaces it, the second is told
        // who holds it now.
        assert_eq!(sh(&takeover_script(&lock, old, first)), "acquired\n");
        assert_eq!(
            sh(&takeover_script(&lock, old, second)),
            format!("held\n{first}\n")
        );
        assert_eq!(
            fs_err::read_to_string(&lock).expect("lock"),
            format!("{first}\n")
        );
    }
}
