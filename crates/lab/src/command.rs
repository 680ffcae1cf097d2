//! Running external tools (ip, nft, mount, ssh, ...) with errors that name the step.

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{LabError, Result};

/// Renders a command line for error messages.
pub(crate) fn display(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

/// Runs `cmd` to completion and fails unless it exits 0.
pub(crate) fn run(step: &str, cmd: &mut Command, hint: &'static str) -> Result<Output> {
    let out = output(step, cmd, hint)?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(failed(step, cmd, &out, hint))
    }
}

/// Runs `cmd` to completion and returns its output whatever the exit status.
pub(crate) fn output(step: &str, cmd: &mut Command, hint: &'static str) -> Result<Output> {
    cmd.stdin(Stdio::null())
        .output()
        .map_err(|e| LabError::Command {
            step: step.to_owned(),
            command: display(cmd),
            detail: format!("cannot start: {e}"),
            hint,
        })
}

/// Builds the error for a command that exited unsuccessfully.
pub(crate) fn failed(step: &str, cmd: &Command, out: &Output, hint: &'static str) -> LabError {
    LabError::Command {
        step: step.to_owned(),
        command: display(cmd),
        detail: format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        hint,
    }
}

/// Output of a command run with a deadline.
#[derive(Debug, Clone)]
pub struct TimedOutput {
    /// Exit code; `None` when the command was killed at the deadline or by a signal.
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Whether the deadline killed the command.
    pub timed_out: bool,
    /// How long the command ran.
    pub elapsed: Duration,
}

/// Runs `cmd` and kills it when `limit` passes.
pub(crate) fn run_with_deadline(
    step: &str,
    cmd: &mut Command,
    limit: Duration,
) -> Result<TimedOutput> {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| LabError::Command {
            step: step.to_owned(),
            command: display(cmd),
            detail: format!("cannot start: {e}"),
            hint: "check that the program is installed",
        })?;
    let stdout = child.stdout.take().map(drain);
    let stderr = child.stderr.take().map(drain);
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if start.elapsed() >= limit => {
                timed_out = true;
                // The child may exit between try_wait and kill; both outcomes are fine.
                let _ = child.kill();
                break child.wait().ok();
            }
            Ok(None) => thread::sleep(Duration::from_millis(10)),
            Err(_) => break None,
        }
    };
    let join =
        |h: Option<thread::JoinHandle<String>>| h.and_then(|h| h.join().ok()).unwrap_or_default();
    Ok(TimedOutput {
        code: if timed_out {
            None
        } else {
            status.and_then(|s| s.code())
        },
        stdout: join(stdout),
        stderr: join(stderr),
        timed_out,
        elapsed: start.elapsed(),
    })
}

fn drain(mut r: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        // A read error only truncates the captured text.
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}
