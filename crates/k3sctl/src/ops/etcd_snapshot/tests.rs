//! `etcd snapshot` against fake hosts and a fake API: the voter choice, and the API reached
//! through the first server that answers.

use super::*;
use crate::kube::Condition;
use crate::run::ApiConnector;
use crate::run::tests::Log;
use crate::run::tests::fake_api::{FakeApi, Unreachable};
use crate::run::tests::fake_host::fake_hosts;

const SERVERS: [&str; 3] = ["s1", "s2", "s3"];

/// Three fake servers noting into `log`.
fn opened(log: &Log) -> Opened {
    Opened {
        servers: SERVERS.iter().map(|s| s.to_string()).collect(),
        transports: fake_hosts(SERVERS, log, &[]),
    }
}

/// The fake cluster's API (every server a Ready voter), listing `files`.
fn answers(log: &Log, files: &[SnapshotFile]) -> Arc<dyn ApiConnector> {
    FakeApi::new(log)
        .servers(&SERVERS)
        .snapshot_files(files.to_vec())
        .connector()
}

fn down(why: &'static str) -> Arc<dyn ApiConnector> {
    Arc::new(Unreachable(why))
}

fn listed_on_s3() -> SnapshotFile {
    SnapshotFile {
        name: "on-demand-s3-900".into(),
        node: "s3".into(),
        location: "file:///snapshots/on-demand-s3-900".into(),
        size: Some(4096),
        created: None,
        ready: true,
    }
}

#[tokio::test]
async fn save_and_list_answer_through_the_next_server_when_the_first_api_is_down() {
    let log: Log = Arc::default();
    let o = opened(&log);
    let file = listed_on_s3();
    // s1's Node still says Ready and voter (as for 40 s after its K3s stopped), but its API
    // does not answer: the snapshot is taken on s2, through which the API answered.
    let connector = FailoverConnector::new(vec![
        ("s1".into(), down("/readyz: connection refused")),
        ("s2".into(), answers(&log, std::slice::from_ref(&file))),
        ("s3".into(), answers(&log, &[])),
    ]);
    let saved = save_etcd(&o, &connector, "on-demand")
        .await
        .expect("saved through s2");
    assert_eq!(saved.value.node, "s2");
    assert_eq!(saved.value.name, "on-demand-s2-1000");
    assert_eq!(saved.value.location, "file:///snapshots/on-demand-s2-1000");
    let through = saved.api.expect("through the API");
    assert_eq!(through.server, "s2");
    assert_eq!(
        through.note().as_deref(),
        Some("the Kubernetes API answered through s2 (s1: /readyz: connection refused)")
    );
    let lines = log.lock().expect("lock").clone();
    assert!(
        lines.contains(&"s2: taking an etcd snapshot".to_string()),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.starts_with("s1:")), "{lines:?}");

    let listed = list_etcd(&o.servers, &connector).await.expect("listed");
    assert_eq!(listed.value, vec![file]);
    assert_eq!(listed.api.map(|a| a.server).as_deref(), Some("s2"));

    let pruned = prune_etcd(&o, &connector, "on-demand", 1, &Confirmer::assume_yes())
        .await
        .expect("pruned");
    assert_eq!(pruned.api.map(|a| a.server).as_deref(), Some("s2"));
    assert_eq!(pruned.value.len(), 3);
}

#[tokio::test]
async fn with_the_first_api_answering_nothing_changes() {
    let log: Log = Arc::default();
    let o = opened(&log);
    let connector = FailoverConnector::new(vec![
        ("s1".into(), answers(&log, &[])),
        ("s2".into(), down("never asked")),
    ]);
    let saved = save_etcd(&o, &connector, "nightly").await.expect("saved");
    assert_eq!(saved.value.node, "s1");
    let through = saved.api.expect("through the API");
    assert_eq!((through.server.as_str(), through.note()), ("s1", None));
}

#[tokio::test]
async fn with_no_api_answering_every_server_tried_is_named() {
    let log: Log = Arc::default();
    let o = opened(&log);
    let connector = FailoverConnector::new(vec![
        (
            "s1".into(),
            down("ssh: connect to host 10.0.0.1 port 22: Connection refused"),
        ),
        ("s2".into(), down("/readyz is not ok yet")),
        (
            "s3".into(),
            down("reading the admin kubeconfig: no such file"),
        ),
    ]);
    let errors = [
        save_etcd(&o, &connector, "on-demand").await.err(),
        list_etcd(&o.servers, &connector).await.err(),
        prune_etcd(&o, &connector, "on-demand", 1, &Confirmer::assume_yes())
            .await
            .err(),
    ];
    for e in errors {
        let e = e.expect("refused");
        let OpsError::ApiUnreachable { servers, .. } = &e else {
            panic!("not ApiUnreachable: {e:?}");
        };
        assert_eq!(servers, &["s1", "s2", "s3"]);
        let text = e.to_string();
        for want in [
            "none of the servers (s1, s2, s3)",
            "s1: ssh: connect to host 10.0.0.1 port 22: Connection refused",
            "s2: /readyz is not ok yet",
            "s3: reading the admin kubeconfig: no such file",
        ] {
            assert!(text.contains(want), "no `{want}` in {text}");
        }
    }
    assert!(
        log.lock().expect("lock").is_empty(),
        "nothing ran on a host"
    );
}

#[test]
fn a_server_whose_api_does_not_answer_takes_no_snapshot() {
    let servers = vec!["s1".to_string(), "s2".to_string()];
    let nodes = vec![node("s1", true, Some(true)), node("s2", true, Some(true))];
    assert_eq!(
        pick_voter_answering(&servers, &nodes, &["s1".into()]),
        Ok("s2".to_string())
    );
    let e = pick_voter_answering(&servers, &nodes, &servers).expect_err("none answers");
    assert!(
        e.contains("s1: Ready, voter, its API does not answer"),
        "{e}"
    );
}

fn node(name: &str, ready: bool, voter: Option<bool>) -> NodeInfo {
    let mut n = NodeInfo {
        name: name.into(),
        ready,
        ..NodeInfo::default()
    };
    if let Some(v) = voter {
        n.labels.insert(ETCD_ROLE_LABEL.into(), "true".into());
        n.etcd_voter = Some(Condition {
            status: v,
            detail: None,
        });
    }
    n
}

#[test]
fn snapshots_go_to_a_ready_voter_in_spec_order() {
    let servers = vec!["s1".to_string(), "s2".to_string(), "s3".to_string()];
    let nodes = vec![
        node("s1", false, Some(true)),
        node("s2", true, Some(false)),
        node("s3", true, Some(true)),
    ];
    assert_eq!(pick_voter(&servers, &nodes), Ok("s3".to_string()));
    let none = vec![node("s1", false, Some(true)), node("s2", true, Some(false))];
    let e = pick_voter(&servers, &none).expect_err("no voter");
    assert!(
        e.contains("s1: not Ready, voter") && e.contains("s2: Ready, not a voter"),
        "{e}"
    );
    let sqlite = vec![node("s1", true, None)];
    assert!(
        pick_voter(&servers[..1], &sqlite)
            .expect_err("sqlite")
            .contains("does not run embedded etcd")
    );
}
