use super::*;
use crate::k3s::certs::CertSummary;
use crate::kube::Condition;

const NOW: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

fn node(name: &str, ready: bool) -> NodeInfo {
    let old = Some(NOW - 3600);
    NodeInfo {
        name: name.into(),
        ready,
        created: old,
        ready_since: old,
        kubelet_version: "v1.34.1+k3s1".into(),
        ..NodeInfo::default()
    }
}

fn server(name: &str, voter: bool) -> NodeInfo {
    let mut n = node(name, true);
    n.labels
        .insert("node-role.kubernetes.io/etcd".into(), "true".into());
    n.etcd_voter = Some(Condition {
        status: voter,
        detail: None,
    });
    n
}

fn healthy() -> Observation {
    Observation {
        now: NOW,
        servers: vec!["s".into()],
        agents: vec!["a".into()],
        version: Some("v1.34.1+k3s1".parse().expect("version")),
        readyz: vec![("s".into(), Ok("ok".into()))],
        nodes: vec![node("a", true), node("s", true)],
        namespaces: "kube-system".into(),
        grace_secs: 60,
        api_server: Some("s".into()),
        ..Observation::default()
    }
}

fn host_cert(host: &str, left: i64) -> CertObservation {
    CertObservation {
        owner: CertOwner::Host { host: host.into() },
        file: "server/tls/client-admin.crt".into(),
        cert: Ok(CertSummary {
            subject: "CN=system:admin".into(),
            not_after: NOW + left,
            is_ca: false,
        }),
        version: Some("v1.34.1+k3s1".parse().expect("version")),
    }
}

fn problems(obs: &Observation) -> Vec<(Status, String)> {
    evaluate(obs)
        .into_iter()
        .filter(|r| r.status != Status::Ok)
        .map(|r| (r.status, r.name()))
        .collect()
}

#[test]
fn each_observation_turns_into_the_right_checks() {
    // (case, how the healthy observation is changed, expected non-ok results)
    type Change = fn(&mut Observation);
    type Case = (&'static str, Change, Vec<(Status, &'static str)>);
    let table: Vec<Case> = vec![
        ("healthy", |_| {}, vec![]),
        (
            "agent stopped long ago",
            |o| {
                o.nodes[0].ready = false;
            },
            vec![(Status::Fail, "node a")],
        ),
        (
            "agent just restarted: settling",
            |o| {
                o.nodes[0].ready = false;
                o.nodes[0].ready_since = Some(NOW - 5);
            },
            vec![(Status::Settling, "node a")],
        ),
        (
            "spec host without a Node",
            |o| {
                o.nodes.remove(0);
            },
            vec![(Status::Fail, "node a")],
        ),
        (
            "a Node the spec does not know",
            |o| o.nodes.push(node("stray", true)),
            vec![(Status::Fail, "unknown-node stray")],
        ),
        (
            "version differs from the spec",
            |o| o.nodes[1].kubelet_version = "v1.33.5+k3s1".into(),
            vec![(Status::Fail, "version s")],
        ),
        (
            "a channel spec does not compare versions",
            |o| {
                o.version = None;
                o.nodes[1].kubelet_version = "v1.33.5+k3s1".into();
            },
            vec![],
        ),
        (
            "disk pressure",
            |o| o.nodes[0].pressure = vec!["DiskPressure".into()],
            vec![(Status::Fail, "pressure a")],
        ),
        (
            "readyz not ok",
            |o| o.readyz[0].1 = Ok("[-]etcd failed".into()),
            vec![(Status::Fail, "readyz s")],
        ),
        (
            "readyz unanswered",
            |o| o.readyz[0].1 = Err("connection refused".into()),
            vec![(Status::Fail, "readyz s")],
        ),
        (
            "API down: nodes and pods not judged",
            |o| {
                o.api_server = None;
                o.api_error = Some("connection refused".into());
                o.nodes.clear();
            },
            vec![(Status::Fail, "api s")],
        ),
        (
            "agent service stopped (its Node still Ready)",
            |o| {
                o.services = vec![
                    ("s".into(), "active".into()),
                    ("a".into(), "inactive".into()),
                ]
            },
            vec![(Status::Fail, "service a")],
        ),
        (
            "server service starting",
            |o| o.services = vec![("s".into(), "activating".into())],
            vec![(Status::Settling, "service s")],
        ),
        (
            "unreachable host",
            |o| o.unreachable.push(("a".into(), "no route".into())),
            vec![(Status::Fail, "host a")],
        ),
        (
            "pending pod settles, crashing pod fails",
            |o| {
                o.pods = vec![
                    PodHealth::Settling("kube-system/svclb-x: Pending".into()),
                    PodHealth::Stuck(
                        "kube-system/m: Running, container c: CrashLoopBackOff".into(),
                    ),
                ];
            },
            vec![
                (Status::Fail, "pod kube-system/m"),
                (Status::Settling, "pod kube-system/svclb-x"),
            ],
        ),
        (
            "certificate within the window warns, expired fails",
            |o| o.certs = vec![host_cert("s", 30 * DAY), host_cert("a", -1)],
            vec![
                (Status::Fail, "certificate a:server/tls/client-admin.crt"),
                (Status::Warn, "certificate s:server/tls/client-admin.crt"),
            ],
        ),
        (
            "certificate with a year left",
            |o| o.certs = vec![host_cert("s", 365 * DAY)],
            vec![],
        ),
    ];
    for (case, change, want) in table {
        let mut obs = healthy();
        change(&mut obs);
        let want: Vec<(Status, String)> = want.into_iter().map(|(s, n)| (s, n.into())).collect();
        assert_eq!(problems(&obs), want, "{case}");
    }
}

#[test]
fn healthy_cluster_reports_every_check_ok_and_no_failing_names() {
    let results = evaluate(&healthy());
    let names: Vec<String> = results.iter().map(CheckResult::name).collect();
    assert_eq!(
        names,
        ["api s", "node a", "node s", "pods kube-system", "readyz s"]
    );
    assert!(failing(&results).is_empty());
    let mut obs = healthy();
    obs.nodes[0].ready = false;
    obs.certs = vec![host_cert("s", 30 * DAY)];
    let results = evaluate(&obs);
    // Problems first, each with a hint; a warning does not make the cluster unhealthy.
    assert_eq!(results[0].status, Status::Fail);
    assert!(
        results[0]
            .hint
            .as_deref()
            .is_some_and(|h| h.contains("k3s-agent"))
    );
    assert_eq!(results[1].status, Status::Warn);
    assert_eq!(failing(&results), ["node a"]);
}

#[test]
fn etcd_members_voters_and_quorum_on_ha_clusters() {
    let ha = |nodes: Vec<NodeInfo>, members: Option<Vec<EtcdMember>>| Observation {
        servers: vec!["s1".into(), "s2".into(), "s3".into()],
        agents: vec![],
        readyz: vec![],
        nodes,
        etcd_members: members,
        ..healthy()
    };
    let member = |name: &str, learner: bool| EtcdMember {
        name: name.into(),
        peer_urls: vec![],
        is_learner: learner,
    };
    let three = || vec![server("s1", true), server("s2", true), server("s3", true)];
    let etcd = |obs: &Observation| {
        evaluate(obs)
            .into_iter()
            .find(|r| r.check == "etcd")
            .expect("an etcd result")
    };
    let ok = etcd(&ha(
        three(),
        Some(vec![
            member("s1-1", false),
            member("s2-1", false),
            member("s3-1", false),
        ]),
    ));
    assert_eq!(ok.status, Status::Ok, "{ok:?}");
    assert!(ok.detail.contains("quorum 2 of 3"), "{}", ok.detail);
    // A learner in etcd's list.
    let learner = etcd(&ha(
        three(),
        Some(vec![
            member("s1-1", false),
            member("s2-1", false),
            member("s3-1", true),
        ]),
    ));
    assert_eq!(learner.status, Status::Fail);
    assert!(learner.detail.contains("learner"), "{}", learner.detail);
    // A server that is not a voter, and one more member than servers.
    let mut nodes = three();
    nodes[2].etcd_voter = Some(Condition {
        status: false,
        detail: Some("MemberIsLearner".into()),
    });
    nodes.push(server("s4", true));
    let r = etcd(&ha(nodes, None));
    assert_eq!(r.status, Status::Fail);
    assert!(r.detail.contains("s3: not a voting member"), "{}", r.detail);
    assert!(
        r.detail.contains("4 node(s) carry the etcd role"),
        "{}",
        r.detail
    );
    // Two of three down: quorum lost.
    let mut nodes = three();
    nodes[1].ready = false;
    nodes[2].ready = false;
    let r = etcd(&ha(nodes, None));
    assert!(r.detail.starts_with("QUORUM LOST"), "{}", r.detail);
    // Single server: no etcd check.
    assert!(evaluate(&healthy()).iter().all(|r| r.check != "etcd"));
}

#[test]
fn certificate_rows_say_days_left_and_renewal() {
    let mut export = host_cert("s", 10 * DAY + 5);
    export.owner = CertOwner::Export {
        export: "admin".into(),
    };
    let mut old = host_cert("a", 100 * DAY);
    old.version = Some("v1.32.4+k3s1".parse().expect("version"));
    let unreadable = CertObservation {
        cert: Err("no certificate in it".into()),
        ..host_cert("s", 0)
    };
    let rows = cert_rows(&[host_cert("s", 100 * DAY), old, export, unreadable], NOW);
    assert_eq!(rows[0].days_left, Some(100));
    assert_eq!(rows[0].renews_at_start, Some(true));
    assert_eq!(rows[0].renewal_window_days, Some(120));
    assert_eq!(rows[0].expires, "2027-04-25T08:00:00Z");
    // 90-day window before the May-2025 releases.
    assert_eq!(rows[1].renews_at_start, Some(false));
    assert_eq!(rows[1].renewal_window_days, Some(90));
    // K3s never rewrites an export.
    assert_eq!(rows[2].days_left, Some(10));
    assert_eq!(rows[2].renews_at_start, None);
    assert_eq!(rows[3].error.as_deref(), Some("no certificate in it"));
    let results = cert_results(&[rows_source_export()], NOW);
    assert_eq!(results[0].status, Status::Fail);
    assert!(
        results[0]
            .hint
            .as_deref()
            .is_some_and(|h| h.contains("k3sctl kubeconfig"))
    );
}

fn rows_source_export() -> CertObservation {
    CertObservation {
        owner: CertOwner::Export {
            export: "admin".into(),
        },
        ..host_cert("s", -DAY)
    }
}

#[test]
fn the_api_row_names_the_server_that_answered_or_every_server_tried() {
    let ha = Observation {
        servers: vec!["s1".into(), "s2".into(), "s3".into()],
        agents: vec![],
        nodes: vec![server("s1", true), server("s2", true), server("s3", true)],
        readyz: vec![],
        services: vec![
            ("s1".into(), "inactive".into()),
            ("s2".into(), "active".into()),
            ("s3".into(), "active".into()),
        ],
        api_server: Some("s2".into()),
        ..healthy()
    };
    let results = evaluate(&ha);
    let api: Vec<&CheckResult> = results.iter().filter(|r| r.check == "api").collect();
    assert_eq!(api.len(), 1, "{results:?}");
    assert_eq!((api[0].subject.as_str(), api[0].status), ("s2", Status::Ok));
    assert_eq!(api[0].detail, "answers through s2");
    // The stopped first server is a finding of its own, though the API answers.
    assert!(
        failing(&results).contains(&"service s1".to_string()),
        "{results:?}"
    );

    let down = Observation {
        api_server: None,
        api_error: Some("no server answered: s1: refused; s2: refused; s3: refused".into()),
        ..ha
    };
    let results = evaluate(&down);
    let api = results.iter().find(|r| r.check == "api").expect("api row");
    assert_eq!(
        (api.subject.as_str(), api.status),
        ("s1,s2,s3", Status::Fail)
    );
    assert!(api.detail.contains("s3: refused"), "{}", api.detail);
    assert_eq!(
        api.hint.as_deref(),
        Some("nodes, pods and etcd were not checked; is K3s running on any of s1, s2, s3?")
    );
}
