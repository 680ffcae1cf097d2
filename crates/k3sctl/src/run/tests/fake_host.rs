//! The fake hosts of the engine tests: every command noted in the shared log.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::Log;
use crate::host::{ExecOutput, ExecRequest, HostError, Transport, UploadRequest};

/// The server token every [`FakeHost`] has.
pub(crate) const TOKEN: &str =
    "K10bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb::server:verysecret";

/// A host whose every command succeeds and is noted in the log by what it does; a `broken`
/// host's K3s fails after its start (journal: no CA certs) and its daemon-reload fails. It has
/// the server token [`TOKEN`]; `k3s etcd-snapshot save --name P` saves `P-<host>-1000` (as K3s
/// logs it) and `k3s etcd-snapshot ls -o json` lists what it saved. A batch of script steps
/// ([`crate::run::host_batch`]) is run step by step as the host's shell would: each noted as
/// if it ran alone, stopping at the first that fails.
pub(crate) struct FakeHost {
    name: String,
    log: Log,
    broken: bool,
    starts: Mutex<u64>,
    snapshots: Mutex<Vec<String>>,
    /// Commands run (round trips).
    execs: Mutex<usize>,
    /// A file whose write fails (the disk refuses it).
    refused: Mutex<Option<String>>,
}

#[async_trait]
impl Transport for FakeHost {
    fn name(&self) -> &str {
        &self.name
    }

    async fn exec(&self, req: ExecRequest) -> Result<ExecOutput, HostError> {
        *self.execs.lock().expect("lock") += 1;
        let ok = |stdout: String| output(0, &stdout);
        if req.command.contains("\n# k3sctl-item ") {
            let stdin = match req.stdin {
                crate::host::Stdin::Bytes(bytes) => bytes,
                _ => Vec::new(),
            };
            return Ok(self.batch(&req.command, &stdin).await);
        }
        if req.command.contains("systemctl show") {
            let starts = *self.starts.lock().expect("lock");
            let state = if self.broken && starts > 0 {
                "failed"
            } else {
                "active"
            };
            return ok(service_show(state, starts));
        }
        if req.command.starts_with("systemctl is-active") {
            // A broken host's K3s has stopped.
            return ok(if self.broken { "failed\n" } else { "active\n" }.into());
        }
        // A server's own API answers /readyz (the waits of a rollout's non-API servers).
        if req.command.contains("get --raw /readyz") {
            return ok("ok\n".into());
        }
        if req.command.starts_with("journalctl") {
            return ok("level=fatal msg=\"failed to get CA certs: connection refused\"\n".into());
        }
        if let Some(args) = req.command.strip_prefix("k3s etcd-snapshot ") {
            self.note(&req.what());
            return self.etcd_snapshot(args);
        }
        if req.command.contains("--no-block") {
            *self.starts.lock().expect("lock") += 1;
        }
        self.note(&req.what());
        ok(String::new())
    }

    async fn upload(&self, req: UploadRequest) -> Result<(), HostError> {
        self.note(&format!("upload {}", req.remote.display()));
        Ok(())
    }

    async fn read_file(&self, path: &Path) -> Result<Option<Vec<u8>>, HostError> {
        Ok((path == Path::new(crate::k3s::token::SERVER_TOKEN_PATH))
            .then(|| TOKEN.as_bytes().to_vec()))
    }
}

impl FakeHost {
    /// Host `name`, noting into `log`.
    pub(crate) fn new(name: &str, log: &Log, broken: bool) -> Arc<Self> {
        Arc::new(Self {
            name: name.into(),
            log: Arc::clone(log),
            broken,
            starts: Mutex::new(0),
            snapshots: Mutex::default(),
            execs: Mutex::new(0),
            refused: Mutex::new(None),
        })
    }

    /// How many commands the host has run (each one round trip).
    pub(super) fn execs(&self) -> usize {
        *self.execs.lock().expect("lock")
    }

    /// Writing `path` fails from now on (`No space left on device`).
    pub(super) fn refuse_writing(&self, path: &str) {
        *self.refused.lock().expect("lock") = Some(path.into());
    }

    /// Runs a batch of script steps as the batch script does, step by step, stopping at the
    /// first that fails.
    async fn batch(&self, command: &str, stdin: &[u8]) -> ExecOutput {
        let mut results = Vec::new();
        for item in batch_items(command, stdin) {
            let (rc, stderr) = match item.kind.as_str() {
                "write-file" => {
                    let path = item.what.strip_prefix("writing ").expect("a write");
                    if self.refused.lock().expect("lock").as_deref() == Some(path) {
                        (1, "cat: write error: No space left on device")
                    } else {
                        let token = String::from_utf8_lossy(&item.stdin).contains("verysecret");
                        self.note(&format!("write {path} token={token}"));
                        (0, "")
                    }
                }
                "daemon-reload" => {
                    // Slow enough for hosts running side by side to interleave in the log; a
                    // broken host's reload fails.
                    self.note(&item.what);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    self.note("reloaded");
                    if self.broken {
                        (1, "Failed to reload daemon")
                    } else {
                        (0, "")
                    }
                }
                _ => {
                    self.note(&item.what);
                    (0, "")
                }
            };
            results.push((rc, stderr.to_owned()));
            if rc != 0 {
                break;
            }
        }
        batch_output(&results)
    }

    /// `k3s etcd-snapshot ARGS`: `save --name P` and `ls -o json`.
    fn etcd_snapshot(&self, args: &str) -> Result<ExecOutput, HostError> {
        let mut saved = self.snapshots.lock().expect("lock");
        if let Some(prefix) = args.strip_prefix("save --name ") {
            let name = format!("{}-{}-1000", prefix.trim_matches('\''), self.name);
            let log = format!("level=info msg=\"Snapshot {name} saved.\"\n");
            saved.push(name);
            return Ok(ExecOutput {
                status: Some(0),
                stdout: vec![],
                stderr: log.into_bytes(),
            });
        }
        let items: Vec<String> = saved
            .iter()
            .map(|n| {
                format!(
                    r#"{{"spec":{{"snapshotName":"{n}","nodeName":"{host}","location":"file:///snapshots/{n}"}},"status":{{"size":"4096","readyToUse":true}}}}"#,
                    host = self.name
                )
            })
            .collect();
        output(0, &format!(r#"{{"items":[{}]}}"#, items.join(",")))
    }

    fn note(&self, what: &str) {
        self.log
            .lock()
            .expect("lock")
            .push(format!("{}: {what}", self.name));
    }
}

/// [`FakeHost`]s by name; those named in `broken` are broken.
pub(crate) fn fake_hosts<'a>(
    names: impl IntoIterator<Item = &'a str>,
    log: &Log,
    broken: &[&str],
) -> BTreeMap<String, Arc<dyn Transport>> {
    names
        .into_iter()
        .map(|name| {
            let host = FakeHost::new(name, log, broken.contains(&name));
            (name.to_string(), host as Arc<dyn Transport>)
        })
        .collect()
}

/// A command's result with exit `status` and `stdout`.
pub(crate) fn output(status: i32, stdout: &str) -> Result<ExecOutput, HostError> {
    Ok(ExecOutput {
        status: Some(status),
        stdout: stdout.as_bytes().to_vec(),
        stderr: vec![],
    })
}

/// What `systemctl show` says of a K3s service in `state` started `starts` times: the host's
/// clock reads 1000, and each start happens 10 s later than the last.
pub(crate) fn service_show(state: &str, starts: u64) -> String {
    format!(
        "Now=1000\nActiveState={state}\nExecMainStartTimestampMonotonic={starts}\n\
         ExecMainStartTimestamp=@{}\n",
        1_000 + 10 * starts
    )
}

/// One step of a batch of script steps ([`crate::run::host_batch`]) as a fake host sees it.
pub(super) struct BatchItem {
    /// The step's kind.
    pub(super) kind: String,
    /// What it does (`writing /etc/...`).
    pub(super) what: String,
    /// Its script.
    pub(super) script: String,
    /// Its part of the batch's stdin.
    pub(super) stdin: Vec<u8>,
}

/// The steps of a batch, from its step headers (`# k3sctl-item <i> <kind> <bytes> <what>`)
/// and its stdin (each step's bytes after the last's).
pub(super) fn batch_items(command: &str, stdin: &[u8]) -> Vec<BatchItem> {
    let mut items: Vec<BatchItem> = Vec::new();
    let mut offset = 0;
    for line in command.lines() {
        let Some(header) = line.strip_prefix("# k3sctl-item ") else {
            if let Some(item) = items.last_mut() {
                item.script.push_str(line);
                item.script.push('\n');
            }
            continue;
        };
        let mut words = header.splitn(4, ' ');
        let (Some(_), Some(kind), Some(len), Some(what)) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            panic!("bad batch header {header:?}");
        };
        let len: usize = len.parse().expect("length");
        items.push(BatchItem {
            kind: kind.into(),
            what: what.into(),
            script: String::new(),
            stdin: stdin[offset..offset + len].to_vec(),
        });
        offset += len;
    }
    assert_eq!(offset, stdin.len(), "every byte of stdin belongs to a step");
    items
}

/// What the batch script answers when its steps ended with `results` (exit code and standard
/// error of each step run, the last one failing or all done): a result line per step, each
/// step's standard error after its start line, the failing step's exit code.
pub(super) fn batch_output(results: &[(i32, String)]) -> ExecOutput {
    let (mut stdout, mut stderr) = (String::new(), String::new());
    let mut status = 0;
    for (i, (rc, err)) in results.iter().enumerate() {
        stderr.push_str(&format!("k3sctl-item {i}\n"));
        if !err.is_empty() {
            stderr.push_str(&format!("{err}\n"));
        }
        stdout.push_str(&format!("k3sctl-item {i} {rc} 10.00 10.01\n"));
        status = *rc;
    }
    ExecOutput {
        status: Some(status),
        stdout: stdout.into_bytes(),
        stderr: stderr.into_bytes(),
    }
}
