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
/// logs it) and `k3s etcd-snapshot ls -o json` lists what it saved.
pub(crate) struct FakeHost {
    name: String,
    log: Log,
    broken: bool,
    starts: Mutex<u64>,
    snapshots: Mutex<Vec<String>>,
}

#[async_trait]
impl Transport for FakeHost {
    fn name(&self) -> &str {
        &self.name
    }

    async fn exec(&self, req: ExecRequest) -> Result<ExecOutput, HostError> {
        let ok = |stdout: String| output(0, &stdout);
        if req.command.contains("systemctl show") {
            let starts = *self.starts.lock().expect("lock");
            let state = if self.broken && starts > 0 {
                "failed"
            } else {
                "active"
            };
            return ok(service_show(state, starts));
        }
        if req.command.contains("daemon-reload") {
            // Slow enough for hosts running side by side to interleave in the log; a broken
            // host's reload fails.
            self.note(&req.what());
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.note("reloaded");
            return Ok(ExecOutput {
                status: Some(if self.broken { 1 } else { 0 }),
                stdout: vec![],
                stderr: b"Failed to reload daemon".to_vec(),
            });
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

    async fn write_file(&self, path: &Path, bytes: &[u8], _mode: u32) -> Result<(), HostError> {
        let token = String::from_utf8_lossy(bytes).contains("verysecret");
        self.note(&format!("write {} token={token}", path.display()));
        Ok(())
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
        })
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
