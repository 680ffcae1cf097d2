//! A host's script steps in one round trip: the adoption's record, files and daemon-reload in
//! one exec per host, each step still reported on its own, a failure inside the batch named
//! by its step and file.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::fake_host::FakeHost;
use super::{Log, cluster_api, config_step, env_step, plan, status_of, test_shared};
use crate::host::Transport;
use crate::k3s::config::NodeRole;
use crate::plan::{FileContent, HostPlan, Step};
use crate::run::events::EventKind;
use crate::run::outcome::HostStatus;
use crate::run::{MemoryReporter, RunOptions, execute};
use crate::secret::Secret;

/// An adoption as the planner gives it for a node whose effective configuration does not
/// change: the record, config.yaml, the env file (with the token), the unit, daemon-reload.
fn adoption(name: &str, role: NodeRole) -> HostPlan {
    HostPlan {
        host: name.into(),
        role,
        group: None,
        first_server: false,
        in_cluster: true,
        steps: vec![
            Step::Adopt {
                files: BTreeMap::from([("/etc/rancher/k3s/config.yaml".into(), "a".repeat(64))]),
            },
            config_step("node-name: x\n"),
            env_step(role, true),
            Step::WriteFile {
                path: crate::k3s::unit::unit_path(role),
                mode: 0o644,
                diff: String::new(),
                create: false,
                content: FileContent::Plain("[Unit]\n".into()),
            },
            Step::DaemonReload,
        ],
    }
}

/// Runs `hosts` on fake hosts (with the token known, as for a running cluster); returns the
/// summary, the hosts' log, the events and the fakes.
async fn run_adoption(
    hosts: Vec<HostPlan>,
    refuse: Option<(&str, String)>,
) -> (
    crate::run::RunSummary,
    Vec<String>,
    Arc<MemoryReporter>,
    BTreeMap<String, Arc<FakeHost>>,
) {
    let log: Log = Arc::default();
    let fakes: BTreeMap<String, Arc<FakeHost>> = hosts
        .iter()
        .map(|h| (h.host.clone(), FakeHost::new(&h.host, &log, false)))
        .collect();
    if let Some((host, path)) = &refuse {
        fakes[*host].refuse_writing(path);
    }
    let transports: BTreeMap<String, Arc<dyn Transport>> = fakes
        .iter()
        .map(|(n, f)| (n.clone(), Arc::clone(f) as Arc<dyn Transport>))
        .collect();
    let reporter = Arc::new(MemoryReporter::default());
    let mut shared = test_shared(
        cluster_api(&log),
        RunOptions::default(),
        Some(Secret::new(super::fake_host::TOKEN)),
    );
    shared.reporter = reporter.clone();
    let summary = execute(&plan(hosts), &transports, &shared).await;
    let lines = log.lock().expect("lock").clone();
    (summary, lines, reporter, fakes)
}

#[tokio::test]
async fn an_adoption_takes_one_round_trip_per_host_and_reports_every_step() {
    let hosts = vec![
        adoption("s1", NodeRole::Server),
        adoption("a1", NodeRole::Agent),
        adoption("a2", NodeRole::Agent),
    ];
    let (summary, lines, reporter, fakes) = run_adoption(hosts, None).await;
    assert!(summary.success(), "{}", summary.render());
    // record + 3 files + daemon-reload on each of 3 hosts.
    assert_eq!(summary.changes(), 15);
    for (name, fake) in &fakes {
        assert_eq!(fake.execs(), 1, "{name}: one round trip for its five steps");
        let env = crate::k3s::unit::env_path(if name == "s1" {
            NodeRole::Server
        } else {
            NodeRole::Agent
        });
        // In plan order, the env file with the token the run knows.
        let mine: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.strip_prefix(&format!("{name}: ")))
            .collect();
        assert_eq!(
            mine,
            [
                "recording the adoption",
                "write /etc/rancher/k3s/config.yaml token=false",
                &format!("write {env} token=true"),
                &format!(
                    "write {} token=false",
                    crate::k3s::unit::unit_path(if name == "s1" {
                        NodeRole::Server
                    } else {
                        NodeRole::Agent
                    })
                ),
                "systemctl daemon-reload",
                "reloaded",
            ],
            "{name}"
        );
    }
    let events = reporter.events.lock().expect("lock");
    for name in ["s1", "a1", "a2"] {
        let steps: Vec<(&str, EventKind)> = events
            .iter()
            .filter(|e| e.host == name)
            .map(|e| (e.step.as_str(), e.kind))
            .collect();
        let each = |step| [(step, EventKind::Start), (step, EventKind::Done)];
        let wanted: Vec<(&str, EventKind)> = [
            "adopt",
            "write-file",
            "write-file",
            "write-file",
            "daemon-reload",
        ]
        .into_iter()
        .flat_map(each)
        .collect();
        assert_eq!(steps, wanted, "{name}");
        // Each step's own time on the host (the fake's clock: 0.01 s each).
        assert!(
            events
                .iter()
                .filter(|e| e.host == name && e.kind == EventKind::Done)
                .all(|e| e.seconds == Some(0.01)),
            "{events:?}"
        );
    }
    let json = serde_json::to_string(&*events).expect("json");
    assert!(!json.contains("verysecret"), "token leaked into events");
}

#[tokio::test]
async fn a_failure_inside_the_batch_names_its_step_and_file_and_nothing_after_it_runs() {
    let env = crate::k3s::unit::env_path(NodeRole::Agent);
    let hosts = vec![
        adoption("a1", NodeRole::Agent),
        adoption("a2", NodeRole::Agent),
    ];
    let (summary, lines, reporter, fakes) = run_adoption(hosts, Some(("a1", env.clone()))).await;
    let Some(HostStatus::Failed { step, error, .. }) = status_of(&summary, "a1") else {
        panic!("{}", summary.render());
    };
    assert_eq!(step, "write-file");
    assert!(
        error.contains(&format!("a1: writing {env} failed (exit code 1)"))
            && error.contains("No space left on device"),
        "{error}"
    );
    assert_eq!(fakes["a1"].execs(), 1);
    // The steps before it are done, nothing after it ran.
    let a1: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("a1: "))
        .collect();
    assert_eq!(
        a1,
        [
            "recording the adoption",
            "write /etc/rancher/k3s/config.yaml token=false"
        ]
    );
    let events = reporter.events.lock().expect("lock");
    let a1_events: Vec<(&str, EventKind)> = events
        .iter()
        .filter(|e| e.host == "a1")
        .map(|e| (e.step.as_str(), e.kind))
        .collect();
    assert_eq!(
        a1_events,
        [
            ("adopt", EventKind::Start),
            ("adopt", EventKind::Done),
            ("write-file", EventKind::Start),
            ("write-file", EventKind::Done),
            ("write-file", EventKind::Start),
            ("write-file", EventKind::Failed),
        ]
    );
    let failed = events
        .iter()
        .find(|e| e.host == "a1" && e.kind == EventKind::Failed)
        .expect("failed event");
    assert!(failed.message.contains(&env), "{failed:?}");
    // The other host's adoption is its own: done (the default group stops only the hosts not
    // started yet, and quiet hosts run side by side).
    assert!(matches!(
        status_of(&summary, "a2"),
        Some(HostStatus::Ok { changes: 5 })
    ));
}

#[tokio::test]
async fn a_joining_host_writes_its_token_free_files_and_reloads_in_one_round_trip() {
    let mut hosts = vec![
        super::host("s1", None, true),
        super::host("a1", Some("g"), false),
    ];
    for h in &mut hosts {
        h.steps.insert(1, config_step("node-name: x\n"));
        h.steps.insert(3, Step::DaemonReload);
    }
    let log: Log = Arc::default();
    let fakes: BTreeMap<String, Arc<FakeHost>> = hosts
        .iter()
        .map(|h| (h.host.clone(), FakeHost::new(&h.host, &log, false)))
        .collect();
    let transports: BTreeMap<String, Arc<dyn Transport>> = fakes
        .iter()
        .map(|(n, f)| (n.clone(), Arc::clone(f) as Arc<dyn Transport>))
        .collect();
    let mut shared = test_shared(cluster_api(&log), RunOptions::default(), None);
    shared.binaries = hosts
        .iter()
        .map(|h| (h.host.clone(), "/bin/true".into()))
        .collect();
    let summary = execute(&plan(hosts), &transports, &shared).await;
    assert!(summary.success(), "{}", summary.render());
    let lines = log.lock().expect("lock").clone();
    let staged = lines
        .iter()
        .position(|l| l == "a1: systemctl daemon-reload")
        .expect("reload");
    let config = lines
        .iter()
        .position(|l| l == "a1: write /etc/rancher/k3s/config.yaml token=false")
        .expect("config");
    assert!(config < staged, "{lines:#?}");
    // a1: the binary's hash record, config.yaml + daemon-reload (one round trip, two before),
    // then the env file, the join probe, the start and its look at the service.
    assert_eq!(fakes["a1"].execs(), 6, "{lines:#?}");
}

/// A host whose connection drops during any command.
struct Lost;

#[async_trait::async_trait]
impl Transport for Lost {
    fn name(&self) -> &str {
        "a1"
    }

    async fn exec(
        &self,
        req: crate::host::ExecRequest,
    ) -> Result<crate::host::ExecOutput, crate::host::HostError> {
        Err(crate::host::HostError::Session {
            host: "a1".into(),
            what: req.what(),
            detail: "the ssh connection was lost".into(),
        })
    }
}

#[tokio::test]
async fn a_round_trip_lost_midway_names_every_step_it_carried_on_the_first() {
    let log: Log = Arc::default();
    let transports: BTreeMap<String, Arc<dyn Transport>> =
        BTreeMap::from([("a1".to_owned(), Arc::new(Lost) as Arc<dyn Transport>)]);
    let reporter = Arc::new(MemoryReporter::default());
    let mut shared = test_shared(
        cluster_api(&log),
        RunOptions::default(),
        Some(Secret::new(super::fake_host::TOKEN)),
    );
    shared.reporter = reporter.clone();
    let summary = execute(
        &plan(vec![adoption("a1", NodeRole::Agent)]),
        &transports,
        &shared,
    )
    .await;
    let Some(HostStatus::Failed { step, error, hint }) = status_of(&summary, "a1") else {
        panic!("{}", summary.render());
    };
    // Which of them were done is not known: the error names them all, the hint says re-run.
    assert_eq!(step, "adopt");
    let env = crate::k3s::unit::env_path(NodeRole::Agent);
    assert!(
        error.contains(&format!(
            "connection lost during recording the adoption, writing /etc/rancher/k3s/config.yaml, \
             writing {env}, writing {}, systemctl daemon-reload",
            crate::k3s::unit::unit_path(NodeRole::Agent)
        )),
        "{error}"
    );
    assert!(hint.is_some_and(|h| h.contains("re-run")));
    let events = reporter.events.lock().expect("lock");
    let kinds: Vec<(&str, EventKind)> = events.iter().map(|e| (e.step.as_str(), e.kind)).collect();
    assert_eq!(
        kinds,
        [("adopt", EventKind::Start), ("adopt", EventKind::Failed)]
    );
}
