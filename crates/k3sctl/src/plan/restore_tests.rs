use super::*;

const SNAP: &str = "/var/lib/rancher/k3s/server/db/snapshots/on-demand-s2-100";

fn server(name: &str) -> ServerView {
    ServerView {
        name: name.into(),
        active: true,
        db: true,
        etcd_data: true,
        ..ServerView::default()
    }
}

fn seen() -> SeenSnapshot {
    SeenSnapshot {
        path: SNAP.into(),
        size: 4096,
        modified: 100,
    }
}

/// A restore of `wanted` asked of `servers`, with agent a1, the spec listing `spec_hosts`.
fn input_of(
    wanted: &str,
    servers: Vec<ServerView>,
    spec_hosts: &[&str],
    new_id: &str,
) -> RestoreInput {
    RestoreInput {
        wanted: wanted.into(),
        servers,
        agents: vec!["a1".into()],
        spec_hosts: spec_hosts.iter().map(|h| (*h).to_string()).collect(),
        new_id: new_id.into(),
    }
}

/// An etcd restore of s2's snapshot in a cluster of s1, s2, s3 and a1.
fn input(servers: Vec<ServerView>) -> RestoreInput {
    input_of(
        "on-demand-s2-100",
        servers,
        &["s1", "s2", "s3", "a1"],
        "200",
    )
}

/// A marker of restore `id`.
fn marker(id: &str, snapshot: &str, reset_done: bool, datastore: Datastore) -> Marker {
    Marker {
        id: id.into(),
        snapshot: snapshot.into(),
        reset_done,
        datastore,
    }
}

fn kinds(plan: &RestorePlan) -> Vec<String> {
    plan.steps
        .iter()
        .map(|s| format!("{} {}", s.kind(), s.host()))
        .collect()
}

/// `head` then `tail`, as [`kinds`] lists them.
fn steps(head: &[&str], tail: &[&str]) -> Vec<String> {
    head.iter().chain(tail).map(|s| (*s).to_string()).collect()
}

/// After s2's reset: s1 and s3 rejoin in spec order, then the cleanup.
const REJOIN_THEN_CLEANUP: [&str; 7] = [
    "move-db-aside s1",
    "rejoin s1",
    "move-db-aside s3",
    "rejoin s3",
    "delete-stray-nodes -",
    "check-agents -",
    "unmark s2",
];

/// The end of a SQLite restore on s1.
const SQLITE_CLEANUP: [&str; 3] = ["delete-stray-nodes -", "check-agents -", "unmark s1"];

#[test]
fn a_fresh_restore_runs_the_whole_documented_procedure_on_the_server_holding_the_snapshot() {
    let mut s2 = server("s2");
    s2.snapshot = Some(seen());
    let plan = plan_restore(&input(vec![server("s1"), s2, server("s3")])).expect("plan");
    assert_eq!(plan.server, "s2");
    assert!(!plan.resuming);
    assert_eq!(
        kinds(&plan),
        steps(
            &[
                "mark s2",
                "stop s2",
                "stop s1",
                "stop s3",
                "cluster-reset s2",
                "start-restored s2",
            ],
            &REJOIN_THEN_CLEANUP
        )
    );
    assert_eq!(
        plan.moved(),
        vec![
            (
                "s1".to_string(),
                "/var/lib/rancher/k3s/server/db-before-restore-200".to_string()
            ),
            (
                "s3".to_string(),
                "/var/lib/rancher/k3s/server/db-before-restore-200".to_string()
            ),
        ]
    );
    let text = render_restore_plan(&plan);
    assert!(
        text.contains(
            "--cluster-reset-restore-path=/var/lib/rancher/k3s/server/db/snapshots/on-demand-s2-100"
        ),
        "{text}"
    );
}

#[test]
fn interrupted_after_the_reset_a_rerun_does_not_reset_again() {
    let marker = marker("200", SNAP, false, Datastore::Etcd);
    // Stopped right after K3s's reset, before the marker said so: the reset flag tells.
    let mut s2 = server("s2");
    s2.active = false;
    s2.reset_flag = true;
    s2.snapshot = Some(seen());
    s2.marker = Some(Ok(marker.clone()));
    let mut s1 = server("s1");
    s1.active = false;
    let mut s3 = server("s3");
    s3.active = false;
    let plan = plan_restore(&input(vec![s1.clone(), s2.clone(), s3.clone()])).expect("plan");
    assert!(plan.resuming);
    assert_eq!(plan.id, "200");
    assert_eq!(
        kinds(&plan),
        steps(&["start-restored s2"], &REJOIN_THEN_CLEANUP)
    );
    // Later: s2 runs (flag gone, marker says done), s1 moved and rejoined, s3 not yet.
    s2.active = true;
    s2.reset_flag = false;
    s2.marker = Some(Ok(Marker {
        reset_done: true,
        ..marker
    }));
    s1.active = true;
    s1.asides = vec!["200".into()];
    s3.active = true; // systemd or a person started it again with its old data
    let plan = plan_restore(&input(vec![s1, s2, s3])).expect("plan");
    assert_eq!(
        kinds(&plan),
        steps(
            &["stop s3", "start-restored s2", "rejoin s1"],
            &REJOIN_THEN_CLEANUP[2..]
        )
    );
}

#[test]
fn refusals_name_what_to_do() {
    let e = plan_restore(&input(vec![server("s1"), server("s2")])).expect_err("not found");
    assert!(
        e.to_string()
            .contains("no server has snapshot on-demand-s2-100")
            && e.to_string().contains("s1, s2"),
        "{e}"
    );
    let mut s1 = server("s1");
    s1.marker = Some(Ok(marker("1", "/other", true, Datastore::Etcd)));
    s1.snapshot = Some(seen());
    let e = plan_restore(&input(vec![s1])).expect_err("other restore");
    assert!(
        matches!(&e, RestoreError::OtherInProgress { host, snapshot } if host == "s1" && snapshot == "/other"),
        "{e}"
    );
    assert!(e.to_string().contains("k3sctl etcd restore /other"));
    // A SQLite server among several (a conversion not finished): refused, naming it.
    let mut sqlite = server("s1");
    sqlite.etcd_data = false;
    sqlite.sqlite = true;
    let mut s2 = server("s2");
    s2.snapshot = Some(seen());
    let e = plan_restore(&input(vec![sqlite, s2])).expect_err("sqlite");
    assert!(
        matches!(&e, RestoreError::Sqlite { host } if host == "s1"),
        "{e}"
    );
    assert!(e.to_string().contains("k3sctl apply"), "{e}");
    let mut flagged = server("s1");
    flagged.reset_flag = true;
    flagged.snapshot = Some(seen());
    assert!(matches!(
        plan_restore(&input(vec![flagged])),
        Err(RestoreError::ForeignResetFlag { .. })
    ));
    let mut bad = server("s1");
    bad.marker = Some(Err("no numeric id".into()));
    assert!(matches!(
        plan_restore(&input(vec![bad])),
        Err(RestoreError::BadMarker { .. })
    ));
}

#[test]
fn a_single_server_restore_has_no_rejoin() {
    let mut s1 = server("s1");
    s1.snapshot = Some(SeenSnapshot {
        path: SNAP.replace("s2", "s1"),
        ..seen()
    });
    let mut i = input(vec![s1]);
    i.wanted = "on-demand-s1-100".into();
    i.agents.clear();
    let plan = plan_restore(&i).expect("plan");
    assert_eq!(
        kinds(&plan),
        vec![
            "mark s1",
            "stop s1",
            "cluster-reset s1",
            "start-restored s1",
            "delete-stray-nodes -",
            "unmark s1"
        ]
    );
}

#[test]
fn markers_and_snapshot_arguments_read_back() {
    let m = marker("1767225600", SNAP, true, Datastore::Etcd);
    assert_eq!(Marker::parse(&m.render()), Ok(m.clone()));
    let sqlite = Marker {
        datastore: Datastore::Sqlite,
        ..m
    };
    assert_eq!(Marker::parse(&sqlite.render()), Ok(sqlite));
    // A marker written before the datastore line existed is an etcd restore's.
    assert_eq!(
        Marker::parse("id=5\nsnapshot=/a\nreset=done\n").map(|m| m.datastore),
        Ok(Datastore::Etcd)
    );
    assert!(Marker::parse("id=5\nsnapshot=/a\nreset=done\ndatastore=mysql\n").is_err());
    assert!(Marker::parse("id=x\nsnapshot=/a\nreset=done\n").is_err());
    assert!(Marker::parse("garbage").is_err());
    assert_eq!(snapshot_path("n-s1-1"), format!("{SNAPSHOT_DIR}/n-s1-1"));
    assert_eq!(snapshot_path("file:///x/y"), "/x/y");
    assert_eq!(snapshot_path("/x/y"), "/x/y");
}

const ARCHIVE: &str = "/var/lib/rancher/k3s/server/sqlite-snapshots/on-demand-s1-100.tar.gz";

fn sqlite_server(token: TokenCheck) -> ServerView {
    ServerView {
        name: "s1".into(),
        active: true,
        db: true,
        sqlite: true,
        sqlite_snapshot: Some(SqliteArchive {
            seen: SeenSnapshot {
                path: ARCHIVE.into(),
                size: 2048,
                modified: 100,
            },
            complete: true,
            token,
        }),
        ..ServerView::default()
    }
}

fn sqlite_input(s1: ServerView) -> RestoreInput {
    input_of("on-demand-s1-100.tar.gz", vec![s1], &["s1", "a1"], "300")
}

#[test]
fn a_single_sqlite_server_is_restored_by_replacing_its_store() {
    let plan = plan_restore(&sqlite_input(sqlite_server(TokenCheck::Same))).expect("plan");
    assert_eq!(plan.datastore, Datastore::Sqlite);
    assert_eq!(plan.snapshot, ARCHIVE);
    assert_eq!(
        kinds(&plan),
        steps(
            &[
                "mark s1",
                "stop s1",
                "replace-sqlite-store s1",
                "start-restored s1"
            ],
            &SQLITE_CLEANUP
        )
    );
    assert!(matches!(
        &plan.steps[0],
        RestoreStep::Mark { marker, .. } if marker.datastore == Datastore::Sqlite
            && marker.snapshot == ARCHIVE
    ));
    assert_eq!(
        plan.moved(),
        vec![(
            "s1".to_string(),
            "/var/lib/rancher/k3s/server/db-before-restore-300".to_string()
        )]
    );
    assert!(render_restore_plan(&plan).starts_with("Restore of SQLite snapshot"));
    // A wiped server without a token gets the snapshot's.
    assert!(plan_restore(&sqlite_input(sqlite_server(TokenCheck::Missing))).is_ok());
}

#[test]
fn an_interrupted_sqlite_restore_resumes_without_replacing_twice() {
    let marker = marker("300", ARCHIVE, false, Datastore::Sqlite);
    // Killed while the store was being replaced: db moved aside, nothing in place yet, so the
    // server no longer looks like SQLite; the marker says what runs.
    let mut s1 = sqlite_server(TokenCheck::Same);
    s1.active = false;
    s1.sqlite = false;
    s1.db = false;
    s1.asides = vec!["300".into()];
    s1.marker = Some(Ok(marker.clone()));
    let plan = plan_restore(&sqlite_input(s1.clone())).expect("plan");
    assert!(plan.resuming);
    assert_eq!(
        kinds(&plan),
        steps(
            &["replace-sqlite-store s1", "start-restored s1"],
            &SQLITE_CLEANUP
        )
    );
    // Killed after the store was in place and recorded: only the start and the rest.
    s1.marker = Some(Ok(Marker {
        reset_done: true,
        ..marker
    }));
    s1.sqlite = true;
    let plan = plan_restore(&sqlite_input(s1)).expect("plan");
    assert_eq!(kinds(&plan), steps(&["start-restored s1"], &SQLITE_CLEANUP));
}

#[test]
fn sqlite_refusals_name_what_to_do() {
    let mut none = sqlite_server(TokenCheck::Same);
    none.sqlite_snapshot = None;
    let e = plan_restore(&sqlite_input(none)).expect_err("not found");
    assert!(
        e.to_string()
            .contains(&format!("looked in {SQLITE_SNAPSHOT_DIR} on s1")),
        "{e}"
    );
    let e = plan_restore(&sqlite_input(sqlite_server(TokenCheck::Different)))
        .expect_err("token changed");
    assert!(matches!(e, RestoreError::SqliteTokenChanged { .. }), "{e}");
    assert!(e.to_string().contains("another server token"), "{e}");
    let mut foreign = sqlite_server(TokenCheck::Same);
    if let Some(a) = foreign.sqlite_snapshot.as_mut() {
        a.complete = false;
    }
    assert!(matches!(
        plan_restore(&sqlite_input(foreign)),
        Err(RestoreError::NotSqliteSnapshot { .. })
    ));
    assert_eq!(
        sqlite_snapshot_path("a.tar.gz"),
        format!("{SQLITE_SNAPSHOT_DIR}/a.tar.gz")
    );
    assert_eq!(sqlite_snapshot_path("file:///x/a.tar.gz"), "/x/a.tar.gz");
}
