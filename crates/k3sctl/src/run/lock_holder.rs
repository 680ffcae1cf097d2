//! Who holds the apply lock, as written in the lock file, and the pure judgement of whether
//! that holder is provably gone (so its lock may be taken over without `--force-unlock`).
//!
//! The line is `user@host pid=N since=UNIX-SECONDS boot=BOOT-ID pidns=INODE start=TICKS`.
//! The last three fields identify the process beyond doubt on its machine: the kernel's boot
//! id (`/proc/sys/kernel/random/boot_id`, new at every boot, shared by every container on the
//! kernel), the PID namespace (two containers on one kernel number processes separately) and
//! the process's start time in clock ticks since boot (`/proc/PID/stat` field 22), which tells
//! a reused pid from the original process. Older k3sctl versions wrote only the first three
//! fields; such a lock is never taken over automatically.

/// Who holds (or wants) the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    /// `user@machine` of the operator.
    pub who: String,
    /// Process id on that machine.
    pub pid: u32,
    /// When it was taken (Unix seconds).
    pub since: u64,
    /// Where and which process exactly (absent in locks of older versions).
    pub process: Option<ProcessId>,
}

/// A process named beyond pid reuse: kernel boot, PID namespace and start time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessId {
    /// `/proc/sys/kernel/random/boot_id`.
    pub boot_id: String,
    /// The inode of `/proc/self/ns/pid`.
    pub pid_ns: u64,
    /// Start time in clock ticks after boot (`/proc/PID/stat` field 22).
    pub start_ticks: u64,
}

/// What this machine can say about a pid: whether a process has it now, and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidNow {
    /// No process has that pid.
    Free,
    /// A process with that pid started at these ticks after boot.
    StartedAt(u64),
    /// Could not tell (e.g. /proc unreadable).
    Unknown,
}

/// The judgement of a lock's holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HolderState {
    /// Provably gone: the lock may be taken over. The text says why.
    Gone(String),
    /// Probably gone, but not provably (an older lock of this host name whose pid is free):
    /// said in the refusal, `--force-unlock` still needed.
    LikelyGone,
    /// Alive, on another machine, or cannot tell: only `--force-unlock` removes the lock.
    Other,
}

impl LockHolder {
    /// The lock file line.
    pub fn line(&self) -> String {
        let mut line = format!("{} pid={} since={}", self.who, self.pid, self.since);
        if let Some(p) = &self.process {
            line.push_str(&format!(
                " boot={} pidns={} start={}",
                p.boot_id, p.pid_ns, p.start_ticks
            ));
        }
        line
    }

    /// Parses a lock file line (with or without the process fields).
    pub fn parse(text: &str) -> Option<Self> {
        let mut words = text.split_whitespace();
        let who = words.next()?.to_string();
        let pid = words.next()?.strip_prefix("pid=")?.parse().ok()?;
        let since = words.next()?.strip_prefix("since=")?.parse().ok()?;
        let (mut boot_id, mut pid_ns, mut start_ticks) = (None, None, None);
        for word in words {
            match word.split_once('=') {
                Some(("boot", v)) if !v.is_empty() => boot_id = Some(v.to_string()),
                Some(("pidns", v)) => pid_ns = v.parse().ok(),
                Some(("start", v)) => start_ticks = v.parse().ok(),
                _ => {}
            }
        }
        let process = match (boot_id, pid_ns, start_ticks) {
            (Some(boot_id), Some(pid_ns), Some(start_ticks)) => Some(ProcessId {
                boot_id,
                pid_ns,
                start_ticks,
            }),
            _ => None,
        };
        Some(Self {
            who,
            pid,
            since,
            process,
        })
    }

    /// Judges this (recorded) holder from `here` (the process looking, same fields) and what
    /// this machine says about the holder's pid now.
    pub fn judge(&self, here: &LockHolder, pid_now: PidNow) -> HolderState {
        let (Some(theirs), Some(ours)) = (&self.process, &here.process) else {
            // An older lock: the host name is all there is; never enough to take over.
            return if self.process.is_none() && self.who == here.who && pid_now == PidNow::Free {
                HolderState::LikelyGone
            } else {
                HolderState::Other
            };
        };
        if theirs.boot_id != ours.boot_id || theirs.pid_ns != ours.pid_ns {
            // Another machine, an earlier boot of this one, or another container: its pids
            // mean nothing here. (An earlier boot's holder is certainly gone, but the boot id
            // alone cannot tell "earlier boot here" from "another machine".)
            return HolderState::Other;
        }
        match pid_now {
            PidNow::Free => {
                HolderState::Gone(format!("pid {} no longer exists on this machine", self.pid))
            }
            PidNow::StartedAt(ticks) if ticks > theirs.start_ticks => HolderState::Gone(format!(
                "pid {} now belongs to a process started after the lock was taken",
                self.pid
            )),
            PidNow::StartedAt(_) | PidNow::Unknown => HolderState::Other,
        }
    }
}

/// The start time (clock ticks after boot) in a `/proc/PID/stat` line: field 22, counted
/// after the command name, which is in parentheses and may itself hold spaces and `)`.
pub fn start_ticks_from_stat(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    // rest starts with field 3 (state); field 22 is the 20th after the name.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The inode in a `/proc/PID/ns/pid` link target such as `pid:[4026531836]`.
pub fn ns_inode(link: &str) -> Option<u64> {
    link.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(who: &str, pid: u32, boot: &str, ns: u64, start: u64) -> LockHolder {
        LockHolder {
            who: who.into(),
            pid,
            since: 1_700_000_000,
            process: Some(ProcessId {
                boot_id: boot.into(),
                pid_ns: ns,
                start_ticks: start,
            }),
        }
    }

    #[test]
    fn line_round_trip_with_and_without_process_fields() {
        let h = holder("ops@laptop", 42, "b1-22", 4026531836, 123456);
        assert_eq!(
            h.line(),
            "ops@laptop pid=42 since=1700000000 boot=b1-22 pidns=4026531836 start=123456"
        );
        assert_eq!(LockHolder::parse(&h.line()), Some(h));
        let old = LockHolder::parse("ops@laptop pid=42 since=1700000000").expect("old format");
        assert_eq!(old.process, None);
        assert_eq!(old.line(), "ops@laptop pid=42 since=1700000000");
        assert_eq!(LockHolder::parse("garbage"), None);
        // A half-written set of process fields is not trusted.
        let half = LockHolder::parse("a@b pid=1 since=2 boot=x").expect("parses");
        assert_eq!(half.process, None);
    }

    #[test]
    fn same_boot_and_namespace_with_the_pid_free_is_gone() {
        let here = holder("root@vm", 500, "boot-1", 7, 90_000);
        let old = holder("root@vm", 12297, "boot-1", 7, 80_000);
        let state = old.judge(&here, PidNow::Free);
        assert!(
            matches!(&state, HolderState::Gone(why) if why.contains("12297")),
            "{state:?}"
        );
        // Another user of the same machine: its process is gone all the same.
        let other_user = holder("ops@vm", 12297, "boot-1", 7, 80_000);
        assert!(matches!(
            other_user.judge(&here, PidNow::Free),
            HolderState::Gone(_)
        ));
    }

    #[test]
    fn a_reused_pid_is_gone_the_original_process_is_not() {
        let here = holder("root@vm", 500, "boot-1", 7, 90_000);
        let old = holder("root@vm", 12297, "boot-1", 7, 80_000);
        assert!(matches!(
            old.judge(&here, PidNow::StartedAt(85_000)),
            HolderState::Gone(why) if why.contains("started after")
        ));
        assert_eq!(
            old.judge(&here, PidNow::StartedAt(80_000)),
            HolderState::Other
        );
        assert_eq!(old.judge(&here, PidNow::Unknown), HolderState::Other);
    }

    #[test]
    fn another_machine_boot_or_namespace_is_never_taken_over() {
        let here = holder("root@vm", 500, "boot-1", 7, 90_000);
        for old in [
            holder("root@vm", 12297, "boot-0", 7, 80_000),
            holder("root@other", 12297, "boot-2", 7, 80_000),
            holder("root@vm", 12297, "boot-1", 8, 80_000),
        ] {
            assert_eq!(
                old.judge(&here, PidNow::Free),
                HolderState::Other,
                "{old:?}"
            );
        }
    }

    #[test]
    fn an_old_format_lock_is_only_called_likely_gone() {
        let here = holder("root@vm", 500, "boot-1", 7, 90_000);
        let mut old = LockHolder::parse("root@vm pid=12297 since=1").expect("parses");
        assert_eq!(old.judge(&here, PidNow::Free), HolderState::LikelyGone);
        assert_eq!(old.judge(&here, PidNow::StartedAt(1)), HolderState::Other);
        old.who = "root@elsewhere".into();
        assert_eq!(old.judge(&here, PidNow::Free), HolderState::Other);
    }

    #[test]
    fn reads_proc_fields() {
        let stat = "12297 (k3sctl (x) y) S 1 12297 12297 0 -1 4194560 1 0 0 0 5 3 0 0 20 0 4 0 \
                    987654 1000 10 0";
        assert_eq!(start_ticks_from_stat(stat), Some(987_654));
        assert_eq!(start_ticks_from_stat("nonsense"), None);
        assert_eq!(ns_inode("pid:[4026531836]"), Some(4_026_531_836));
        assert_eq!(ns_inode("net:[1]"), None);
    }
}
