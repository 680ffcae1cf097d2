//! A rotation's turn on the engine (`run_turn`), against fake hosts and a fake API: the quorum
//! check counts servers whose K3s is stopped although their Node still says Ready, K3s is
//! started again when `k3s certificate rotate` fails, and the wait for Ready compares with the
//! start made earlier in the same turn.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::fake_api::{FakeApi, Unreachable};
use super::fake_host::{batch_items, batch_output, output, service_show};
use super::{Log, test_shared};
use crate::host::{ExecOutput, ExecRequest, HostError, Transport, UploadRequest};
use crate::plan::rotate::{RotateAction, RotateNode, turn_plan};
use crate::plan::upgrade::NodeKind;
use crate::run::{ApiConnector, NodeFailure, RolloutContext, RunOptions, Stopwatch, run_turn};
use crate::secret::Secret;

/// A host whose K3s service is a flag: stopped by `systemctl stop`, started by a start.
struct Host {
    name: String,
    log: Log,
    active: Mutex<bool>,
    starts: Mutex<u64>,
    fail_rotate: bool,
}

impl Host {
    fn new(name: &str, log: &Log, active: bool, fail_rotate: bool) -> Arc<Self> {
        Arc::new(Self {
            name: name.into(),
            log: Arc::clone(log),
            active: Mutex::new(active),
            starts: Mutex::new(0),
            fail_rotate,
        })
    }

    fn note(&self, what: &str) {
        self.log
            .lock()
            .expect("lock")
            .push(format!("{}: {what}", self.name));
    }
}

#[async_trait]
impl Transport for Host {
    fn name(&self) -> &str {
        &self.name
    }

    async fn exec(&self, req: ExecRequest) -> Result<ExecOutput, HostError> {
        let c = req.command.as_str();
        if c.contains("\n# k3sctl-item ") {
            let stdin = match &req.stdin {
                crate::host::Stdin::Bytes(bytes) => bytes.as_slice(),
                _ => &[],
            };
            let mut results = Vec::new();
            for item in batch_items(c, stdin) {
                let path = item.what.strip_prefix("writing ").expect("only env files");
                let mode = item
                    .script
                    .lines()
                    .find_map(|l| l.strip_prefix("chmod "))
                    .and_then(|l| l.split_whitespace().next())
                    .expect("mode");
                self.note(&format!(
                    "write {path} {mode} token={}",
                    String::from_utf8_lossy(&item.stdin).contains("newsecret")
                ));
                results.push((0, String::new()));
            }
            return Ok(batch_output(&results));
        }
        let active = *self.active.lock().expect("lock");
        if c.contains("systemctl show") {
            let starts = *self.starts.lock().expect("lock");
            let state = if active { "active" } else { "inactive" };
            return output(0, &service_show(state, starts));
        }
        if c.contains("systemctl is-active") {
            return output(0, if active { "active\n" } else { "inactive\n" });
        }
        if c.starts_with("journalctl") {
            return output(0, "");
        }
        if c.contains("systemctl stop") {
            *self.active.lock().expect("lock") = false;
            self.note("stop");
        } else if c.contains("--no-block") {
            *self.active.lock().expect("lock") = true;
            *self.starts.lock().expect("lock") += 1;
            self.note("start");
        } else if c.contains("certificate rotate") {
            self.note(&format!("rotate (K3s running: {active})"));
            if self.fail_rotate {
                return output(1, "level=fatal msg=\"rotate: disk full\"\n");
            }
        } else {
            self.note(c);
        }
        output(0, "")
    }

    async fn upload(&self, _: UploadRequest) -> Result<(), HostError> {
        Ok(())
    }

    async fn read_file(&self, _: &Path) -> Result<Option<Vec<u8>>, HostError> {
        Ok(None)
    }
}

struct Case {
    /// Servers whose K3s is stopped at the start.
    stopped: &'static [&'static str],
    /// The server whose `k3s certificate rotate` fails.
    fail_rotate: Option<&'static str>,
    /// No API answers.
    no_api: bool,
}

/// Runs s2's turn (3 servers) with `action`; the log and the failure, if any.
async fn turn(case: Case, action: RotateAction) -> (Vec<String>, Option<NodeFailure>) {
    let log: Log = Arc::default();
    let servers: Vec<String> = ["s1", "s2", "s3"].map(String::from).to_vec();
    let hosts: BTreeMap<String, Arc<Host>> = servers
        .iter()
        .map(|s| {
            let host = Host::new(
                s,
                &log,
                !case.stopped.contains(&s.as_str()),
                case.fail_rotate == Some(s.as_str()),
            );
            (s.clone(), host)
        })
        .collect();
    let transports: BTreeMap<String, Arc<dyn Transport>> = hosts
        .iter()
        .map(|(n, h)| (n.clone(), Arc::clone(h) as Arc<dyn Transport>))
        .collect();
    // Every server Ready and a voter, as the Node objects say; or no API at all (every
    // server's admin certificate has expired).
    let connector: Arc<dyn ApiConnector> = if case.no_api {
        Arc::new(Unreachable("certificate has expired"))
    } else {
        FakeApi::new(&log).servers(&["s1", "s2", "s3"]).connector()
    };
    let token = Secret::new("K10abc::server:newsecret");
    let mut shared = test_shared(connector, RunOptions::default(), Some(token));
    shared.rollout = Some(RolloutContext {
        binaries: BTreeMap::new(),
        servers: servers.clone(),
        api_server: String::new(),
        transports: transports.clone(),
    });
    let node = RotateNode {
        name: "s2".into(),
        kind: NodeKind::Server,
    };
    let plan = turn_plan(&node, true, &action);
    let result = run_turn(
        &shared,
        transports["s2"].as_ref(),
        &plan,
        &mut Stopwatch::start(),
    )
    .await;
    let lines = log.lock().expect("lock").clone();
    (lines, result.err().map(|(f, _)| f))
}

fn certs() -> RotateAction {
    RotateAction::Certificates { services: vec![] }
}

fn none() -> Case {
    Case {
        stopped: &[],
        fail_rotate: None,
        no_api: false,
    }
}

#[tokio::test]
async fn a_rotation_stops_rotates_starts_and_waits_for_a_ready_posted_after_that_start() {
    let (lines, failure) = turn(none(), certs()).await;
    assert_eq!(failure, None);
    assert_eq!(
        lines,
        [
            // Every other server a healthy voter before s2 goes down, and again after.
            "cluster: quorum look",
            "s2: stop",
            "s2: rotate (K3s running: false)",
            "s2: start",
            // The start happened at 1010 on the host's clock (its first start in this test):
            // the wait ignores a Ready posted before it.
            "s2: wait for Ready posted after Some(1010)",
            "s2: ready",
            "cluster: quorum look",
        ]
    );
}

#[tokio::test]
async fn a_token_turn_writes_the_env_file_with_the_new_token_and_waits_after_its_restart() {
    let env = crate::plan::FileContent::Env {
        url: Some("https://10.0.0.1:6443".into()),
        with_token: true,
        cluster_init: false,
    };
    let (lines, failure) = turn(none(), RotateAction::Token { env }).await;
    assert_eq!(failure, None);
    assert_eq!(
        lines,
        [
            "cluster: quorum look",
            "s2: write /etc/systemd/system/k3s.service.env 600 token=true",
            "s2: start",
            "s2: wait for Ready posted after Some(1010)",
            "s2: ready",
            "cluster: quorum look",
        ]
    );
}

#[tokio::test]
async fn a_server_is_not_stopped_while_another_servers_k3s_is_stopped() {
    // s3's Node still says Ready and voter (the fake API), but its K3s service is stopped.
    let (lines, failure) = turn(
        Case {
            stopped: &["s3"],
            ..none()
        },
        certs(),
    )
    .await;
    let failure = failure.expect("refused");
    assert_eq!(failure.step, "quorum");
    assert!(
        failure
            .error
            .contains("server s3: its K3s service is not running"),
        "{}",
        failure.error
    );
    assert!(failure.hint.is_some_and(|h| h.contains("voting member")));
    assert!(
        !lines.iter().any(|l| l.starts_with("s2: stop")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn without_the_api_the_check_asks_each_server_over_ssh() {
    let blind = |stopped| Case {
        stopped,
        no_api: true,
        ..none()
    };
    // Nobody answers, every other server runs: the node is rotated; the wait then needs the
    // API and says so when it does not come back.
    let (lines, failure) = turn(blind(&[]), certs()).await;
    assert!(lines.starts_with(&["s2: stop".to_string()]), "{lines:?}");
    let failure = failure.expect("no API for the wait");
    assert_eq!(failure.step, "wait-node-ready");
    assert!(
        failure.error.contains("certificate has expired"),
        "{}",
        failure.error
    );
    // s1 stopped: refused before anything changes.
    let (lines, failure) = turn(blind(&["s1"]), certs()).await;
    let failure = failure.expect("refused");
    assert_eq!(failure.step, "quorum");
    assert!(
        failure.error.contains("server(s) s1 are not running"),
        "{}",
        failure.error
    );
    assert!(lines.is_empty(), "{lines:?}");
}

#[tokio::test]
async fn k3s_is_started_again_when_the_rotate_command_fails() {
    let (lines, failure) = turn(
        Case {
            fail_rotate: Some("s2"),
            ..none()
        },
        certs(),
    )
    .await;
    assert_eq!(
        lines,
        [
            "cluster: quorum look",
            "s2: stop",
            "s2: rotate (K3s running: false)",
            "s2: start"
        ]
    );
    let failure = failure.expect("the rotation failed");
    assert_eq!(failure.step, "rotate-certificates");
    assert!(
        failure.error.contains("rotate: disk full")
            && failure
                .error
                .contains("started again with its old certificates"),
        "{}",
        failure.error
    );
    let seen: BTreeSet<&str> = lines.iter().map(String::as_str).collect();
    assert!(seen.contains("s2: start"));
}
