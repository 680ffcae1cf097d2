//! Figures from /proc: peak resident memory (`VmHWM`, the high-water mark of the resident set)
//! of this process or of a child sampled while it runs, and this thread's CPU time (so a figure
//! taken on a busy machine says how much work was done, not only how long it waited).

use std::path::Path;
use std::process::Child;
use std::time::Duration;

use anyhow::{Context, bail};

/// CPU time this thread has used so far (first field of /proc/thread-self/schedstat, ns).
pub fn thread_cpu_time() -> anyhow::Result<Duration> {
    let text = fs_err::read_to_string("/proc/thread-self/schedstat")?;
    let ns: u64 = text
        .split_whitespace()
        .next()
        .context("empty schedstat")?
        .parse()
        .context("schedstat's first field")?;
    Ok(Duration::from_nanos(ns))
}

/// Peak RSS of this process so far, bytes.
pub fn self_peak_rss() -> anyhow::Result<u64> {
    peak_rss_of(Path::new("/proc/self/status"))?.context("no VmHWM in /proc/self/status")
}

fn peak_rss_of(status: &Path) -> anyhow::Result<Option<u64>> {
    let Ok(text) = fs_err::read_to_string(status) else {
        return Ok(None);
    };
    let Some(line) = text.lines().find(|l| l.starts_with("VmHWM:")) else {
        return Ok(None);
    };
    let kib: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| format!("VmHWM line `{line}`"))?;
    Ok(Some(kib * 1024))
}

/// Waits for `child`, sampling its peak RSS every 10 ms; returns its exit status and the last
/// high-water mark read (VmHWM only grows, so the last reading before exit is the peak up to at
/// most 10 ms before the end).
pub fn wait_sampling(child: &mut Child) -> anyhow::Result<(std::process::ExitStatus, u64)> {
    let status = Path::new("/proc")
        .join(child.id().to_string())
        .join("status");
    let mut peak = 0;
    loop {
        if let Some(hwm) = peak_rss_of(&status)? {
            peak = peak.max(hwm);
        }
        if let Some(exit) = child.try_wait().context("wait for k3sctl")? {
            if peak == 0 {
                bail!("k3sctl ended before its memory could be read");
            }
            return Ok((exit, peak));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Clock ticks per second of the times in /proc/*/stat (USER_HZ, 100 on Linux's ABI).
const USER_HZ: u64 = 100;

/// User + system CPU time of this process's children that have been waited for (`cutime` and
/// `cstime` of /proc/self/stat): the difference around one child's run is what it (and the
/// children it waited for) used.
pub fn children_cpu_time() -> anyhow::Result<Duration> {
    let text = fs_err::read_to_string("/proc/self/stat")?;
    children_cpu_of(&text).context("cutime/cstime of /proc/self/stat")
}

/// Pure: `cutime + cstime` of a /proc/<pid>/stat line. The command name (field 2) may contain
/// spaces and parentheses, so the fields are counted after its closing `)`.
fn children_cpu_of(stat: &str) -> Option<Duration> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After `)`: field 3 (state) is at index 0, so field N is at index N - 3.
    let cutime: u64 = fields.get(16 - 3)?.parse().ok()?;
    let cstime: u64 = fields.get(17 - 3)?.parse().ok()?;
    Some(Duration::from_millis((cutime + cstime) * 1000 / USER_HZ))
}

/// The 1-minute load average.
pub fn load_average() -> anyhow::Result<f64> {
    let text = fs_err::read_to_string("/proc/loadavg")?;
    text.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .context("first field of /proc/loadavg")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_cpu_counts_after_the_command_name() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
        // utime stime cutime cstime ...
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194304 10 20 0 0 7 8 150 25 20 0 1 0";
        assert_eq!(children_cpu_of(stat), Some(Duration::from_millis(1750)));
        assert_eq!(children_cpu_of("42 (x) S 1"), None);
    }

    #[test]
    fn reads_this_process() {
        assert!(load_average().expect("loadavg") >= 0.0);
        children_cpu_time().expect("own stat");
    }
}
