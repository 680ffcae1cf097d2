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
