//! A host's consecutive script steps in one round trip.
//!
//! The steps that are each one shell script on their host (file writes, file removals, a unit
//! drop-in taken over, a command link, the adoption record, `daemon-reload`) run, when they
//! follow one another in a host's plan, as one script: one exec instead of one per step. Each
//! step keeps its own script, run in a subshell of its own in plan order; the batch stops at
//! the first that fails, so nothing after a failure runs, as when the steps ran one by one.
//! Every step's result comes back on its own line (`k3sctl-item <i> <exit> <t0> <t1>`, times
//! from the host's /proc/uptime), and its standard error is told apart by a line
//! `k3sctl-item <i>` written before it runs, so progress and errors stay per step.
//!
//! File contents travel on standard input, one after another (secrets never on the command
//! line); each write reads exactly its length (`head -c`: GNU coreutils reads no byte beyond
//! it; a `head` that read ahead would leave the next file short, which its sha256 check
//! refuses without touching it) into the same atomic write as a single file write
//! ([`crate::host::shell::atomic_write_script`]: temporary file beside the target, sha256
//! checked, mode set, renamed over it). If the caller goes away, the batch's next
//! result line cannot be written and the shell ends there (SIGPIPE): it stops between two steps,
//! never inside a file.

use std::time::{Duration, Instant};

use super::context::Shared;
use super::host_steps::Done;
use super::service::QUICK;
use super::step_error::StepError;
use crate::host::shell::{self, quote};
use crate::host::{DEFAULT_EXEC_TIMEOUT, ExecOutput, ExecRequest, HostError, Transport};
use crate::k3s::unit::unit_name;
use crate::plan::{FileContent, HostPlan, Step};

/// The prefix of the lines the batch writes for each step (result on stdout, start on stderr).
const MARKER: &str = "k3sctl-item";

/// Whether `step` is one shell script on its host, so that it can share a round trip with the
/// script steps next to it.
pub fn is_script_step(step: &Step) -> bool {
    match step {
        Step::WriteFile { content, .. } => !matches!(content, FileContent::LocalFile { .. }),
        Step::RemoveFile { .. }
        | Step::TakeOverUnitDropin(_)
        | Step::LinkCommand { .. }
        | Step::Adopt { .. }
        | Step::DaemonReload => true,
        _ => false,
    }
}

/// One step as the host runs it.
#[derive(Debug)]
pub struct Item {
    /// The step's kind (`write-file`, `daemon-reload`, ...).
    pub kind: &'static str,
    /// What it does, for errors (`writing /etc/rancher/k3s/config.yaml`).
    pub what: String,
    /// Its script.
    pub script: String,
    /// The bytes it reads on standard input (a file's content; may be a secret).
    pub stdin: Vec<u8>,
    /// For a file write: the target and the sha256 its content must have.
    pub write: Option<(String, String)>,
    /// How long it may take.
    pub budget: Duration,
}

impl Item {
    fn new(kind: &'static str, what: String, script: String) -> Self {
        Self {
            kind,
            what,
            script,
            stdin: Vec::new(),
            write: None,
            budget: QUICK,
        }
    }
}

/// The script of a script step (see [`is_script_step`]); a file that needs the join token
/// before it is known is refused.
pub fn item(
    host: &HostPlan,
    step: &Step,
    token: Option<&crate::secret::Secret>,
) -> Result<Item, StepError> {
    let item = match step {
        Step::WriteFile {
            path,
            mode,
            content,
            ..
        } => {
            let (bytes, _) = content.resolve(token).ok_or_else(|| {
                format!(
                    "{}: {path} needs the join token, which is not known yet",
                    host.host
                )
            })?;
            let bytes = bytes.expose().as_bytes().to_vec();
            let sha = crate::host::hash::sha256_hex(&bytes);
            Item {
                kind: step.kind(),
                what: format!("writing {path}"),
                script: shell::atomic_write_script(std::path::Path::new(path), *mode, &sha),
                stdin: bytes,
                write: Some((path.clone(), sha)),
                budget: DEFAULT_EXEC_TIMEOUT,
            }
        }
        Step::RemoveFile { path } => Item::new(
            step.kind(),
            format!("removing {path}"),
            format!("rm -f {}\n", quote(path)),
        ),
        Step::TakeOverUnitDropin(takeover) => Item::new(
            step.kind(),
            format!("taking over {}", takeover.path),
            super::dropin_takeover::script(takeover),
        ),
        Step::LinkCommand { command, path } => Item::new(
            step.kind(),
            format!("linking {path} to k3s"),
            crate::k3s::links::create_script(command),
        ),
        Step::Adopt { files } => Item::new(
            step.kind(),
            "recording the adoption".into(),
            super::adopt_record::record_script(unit_name(host.role), files),
        ),
        Step::DaemonReload => Item::new(
            step.kind(),
            "systemctl daemon-reload".into(),
            "systemctl daemon-reload\n".into(),
        ),
        other => {
            return Err(format!(
                "{}: {} is not a script step (a bug in k3sctl)",
                host.host,
                other.kind()
            )
            .into());
        }
    };
    Ok(item)
}

/// The one script running `items` in order, and its standard input (their contents, one after
/// another). Pure.
pub fn script(items: &[Item]) -> (String, Vec<u8>) {
    let mut text = String::from(
        "k3sctl_now() { K3SCTL_T=; { read -r K3SCTL_T _ </proc/uptime; } 2>/dev/null || :; }\n",
    );
    let mut stdin = Vec::new();
    for (i, item) in items.iter().enumerate() {
        // The header is a comment: nothing in it may end the line.
        let what: String = item
            .what
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        text.push_str(&format!(
            "# {MARKER} {i} {} {} {what}\necho '{MARKER} {i}' >&2\nk3sctl_now; k3sctl_t0=$K3SCTL_T\n",
            item.kind,
            item.stdin.len(),
        ));
        let body = item.script.trim_end();
        if item.write.is_some() {
            text.push_str(&format!("head -c {} | (\n{body}\n)\n", item.stdin.len()));
            stdin.extend_from_slice(&item.stdin);
        } else {
            text.push_str(&format!("(\n{body}\n) </dev/null\n"));
        }
        text.push_str(&format!(
            "k3sctl_rc=$?\nk3sctl_now\necho \"{MARKER} {i} $k3sctl_rc $k3sctl_t0 $K3SCTL_T\"\n\
             [ \"$k3sctl_rc\" = 0 ] || exit \"$k3sctl_rc\"\n"
        ));
    }
    (text, stdin)
}

/// How one item ended.
#[derive(Debug)]
pub enum Outcome {
    /// Done, in this long on the host (when its clock could be read).
    Done(Option<Duration>),
    /// Failed; the items after it did not run.
    Failed(HostError),
}

/// The outcome of each item the batch reached, in order, from its output: the items done,
/// then the one that failed, if any (or the first without a result line when the batch
/// stopped early); nothing for items after that. Pure.
pub fn outcomes(host: &str, items: &[Item], out: &ExecOutput) -> Vec<Outcome> {
    let stdout = out.stdout_text();
    let results: Vec<(usize, i32, Option<f64>, Option<f64>)> = stdout
        .lines()
        .filter_map(|line| {
            let mut words = line.strip_prefix(MARKER)?.split_whitespace();
            let i = words.next()?.parse().ok()?;
            let rc = words.next()?.parse().ok()?;
            let t0 = words.next().and_then(|w| w.parse().ok());
            let t1 = words.next().and_then(|w| w.parse().ok());
            Some((i, rc, t0, t1))
        })
        .collect();
    let stderr = out.stderr_text();
    let mut done = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let own_stderr = stderr_of(&stderr, i);
        match results.iter().find(|r| r.0 == i) {
            Some((_, 0, t0, t1)) => {
                let took = match (t0, t1) {
                    (Some(a), Some(b)) if b >= a => Some(Duration::from_secs_f64(b - a)),
                    _ => None,
                };
                done.push(Outcome::Done(took));
            }
            Some((_, rc, _, _)) => {
                done.push(Outcome::Failed(item_error(
                    host,
                    item,
                    &format!("exit code {rc}"),
                    *rc,
                    &own_stderr,
                )));
                break;
            }
            None => {
                // The batch ended before this item said how it went.
                done.push(Outcome::Failed(item_error(
                    host,
                    item,
                    &out.status_text(),
                    -1,
                    if own_stderr.is_empty() {
                        &stderr
                    } else {
                        &own_stderr
                    },
                )));
                break;
            }
        }
    }
    done
}

/// The lines item `i` wrote on standard error (between its start line and the next).
fn stderr_of(stderr: &str, i: usize) -> String {
    let start = format!("{MARKER} {i}");
    let mut lines = stderr.lines().skip_while(|l| *l != start);
    if lines.next().is_none() {
        return String::new();
    }
    lines
        .take_while(|l| !l.starts_with(MARKER))
        .collect::<Vec<_>>()
        .join("\n")
}

fn item_error(host: &str, item: &Item, status: &str, rc: i32, stderr: &str) -> HostError {
    if let Some((path, expected)) = &item.write
        && rc == shell::CHECKSUM_EXIT
        && let Some(actual) = stderr
            .lines()
            .find_map(|l| l.strip_prefix(shell::CHECKSUM_MARKER))
    {
        return HostError::ChecksumMismatch {
            host: host.to_owned(),
            remote: path.into(),
            expected: expected.clone(),
            actual: actual.trim().to_owned(),
        };
    }
    HostError::CommandFailed {
        host: host.to_owned(),
        what: item.what.clone(),
        status: status.to_owned(),
        stderr: shell::tail(stderr, 5),
    }
}

/// Runs `steps` (script steps of `host`, see [`is_script_step`]) in one round trip. Returns a
/// result for each step reached, in order, with its time on the host: those done, then the one
/// that failed (nothing after it ran). A step that cannot be scripted (a file needing the token
/// before it is known) fails in its place, after the steps before it ran. When the round trip
/// itself fails (connection lost, time out), the first step carries that error, which names
/// every step of the batch: which of them were done is not known.
pub async fn run(
    shared: &Shared,
    host: &HostPlan,
    transport: &dyn Transport,
    steps: &[&Step],
) -> Vec<(Result<Done, StepError>, Duration)> {
    let token = shared.token().await;
    let mut items = Vec::new();
    let mut unscriptable = None;
    for step in steps {
        match item(host, step, token.as_ref()) {
            Ok(item) => items.push(item),
            Err(e) => {
                unscriptable = Some(e);
                break;
            }
        }
    }
    let mut results = Vec::new();
    if !items.is_empty() {
        let began = Instant::now();
        let (command, stdin) = script(&items);
        let what = items
            .iter()
            .map(|i| i.what.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let req = ExecRequest::new(command)
            .stdin(stdin)
            .sudo(true)
            .timeout(Some(items.iter().map(|i| i.budget).sum()))
            .describe(what);
        match transport.exec(req).await {
            Err(e) => return vec![(Err(e.into()), began.elapsed())],
            Ok(out) => {
                let elapsed = began.elapsed();
                for outcome in outcomes(transport.name(), &items, &out) {
                    match outcome {
                        Outcome::Done(took) => {
                            results.push((Ok(Done::default()), took.unwrap_or(elapsed)));
                        }
                        Outcome::Failed(e) => {
                            results.push((Err(e.into()), elapsed));
                            return results;
                        }
                    }
                }
            }
        }
    }
    if let Some(e) = unscriptable {
        results.push((Err(e), Duration::ZERO));
    }
    results
}

#[cfg(test)]
#[path = "host_batch_tests.rs"]
mod tests;
