//! The HA rollout on the engine, against fake hosts and a fake API whose Nodes and etcd member
//! list follow the servers' restarts: the quorum check before each server, one server down at a
//! time, the marker only on the server the API goes through, and a server that does not come
//! back as a voter stopping the rollout with etcd's view of the members.

use super::position;
use super::rollout::{TO, roll};
use crate::plan::upgrade::NodeKind;
use crate::run::{NodeOutcome, RolloutResult};

const SERVERS: [&str; 3] = ["s1", "s2", "s3"];

/// Three embedded-etcd servers. A server is down from its cordon's restart until the API saw
/// it Ready at the new version; `stuck` stays a learner after its restart.
async fn roll_ha(stuck: Option<&str>) -> (RolloutResult, Vec<String>) {
    let nodes = SERVERS.map(|s| (s, NodeKind::Server));
    roll(&nodes, &[], |api| api.servers(&SERVERS).members(stuck)).await
}

#[tokio::test]
async fn servers_go_one_at_a_time_each_back_as_a_voter_before_the_next() {
    let (result, lines) = roll_ha(None).await;
    assert!(result.failures.is_empty(), "{:?}", result.failures);
    let outcomes: Vec<_> = result.records.iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, [NodeOutcome::Upgraded; 3]);
    // Only the API's server carries the marker, written by its swap's script (one round trip).
    assert!(
        lines.contains(
            &"s1: writing the upgrade marker and putting the new k3s binary in place".to_string()
        ),
        "{lines:#?}"
    );
    assert!(lines.contains(&"s1: removing the upgrade marker".to_string()));
    for other in ["s2", "s3"] {
        assert!(lines.contains(&format!("{other}: putting the new k3s binary in place")));
        assert!(!lines.contains(&format!("{other}: removing the upgrade marker")));
    }
    assert!(!lines.iter().any(|l| l.contains(": write ")), "{lines:#?}");
    // Each server: a quorum look before its cordon, and its uncordon (after the wait for the
    // voters, which looks again) before the next server's cordon.
    for pair in SERVERS.windows(2) {
        let uncordon = position(&lines, &format!("{}: uncordon", pair[0]));
        let next = position(&lines, &format!("{}: cordon (upgrade to {TO})", pair[1]));
        assert!(uncordon < next, "{lines:#?}");
        assert!(
            lines[uncordon..next]
                .iter()
                .any(|l| l == "cluster: quorum look"),
            "no quorum check before {}: {lines:#?}",
            pair[1]
        );
    }
    let s1_ready = position(&lines, &format!("s1: Ready at {TO}"));
    let s1_clear = position(&lines, "s1: removing the upgrade marker");
    assert!(
        lines[s1_ready..s1_clear]
            .iter()
            .any(|l| l == "cluster: quorum look"),
        "the marker went before s1 was a voter again: {lines:#?}"
    );
}

#[tokio::test]
async fn a_server_that_does_not_come_back_as_a_voter_stops_the_rollout_with_etcds_view() {
    let (result, lines) = roll_ha(Some("s2")).await;
    assert_eq!(result.failures.len(), 1, "{:?}", result.failures);
    let failure = &result.failures[0];
    assert_eq!(
        (failure.node.as_str(), failure.step.as_str()),
        ("s2", "wait-voter")
    );
    for part in [
        "did not have every server back as a voting member within 2s",
        "server s2: not a voting member (MemberIsLearner)",
        "etcd member list: s2-1a2b (learner) https://s2:2380",
        "etcd member list: s1-1a2b (voter)",
    ] {
        assert!(failure.error.contains(part), "{part} not in {failure}");
    }
    assert!(failure.journal.is_some(), "{failure}");
    // Never a second server down: s3 is not touched, s2 stays cordoned for the re-run.
    let s3 = result.records.iter().find(|r| r.name == "s3").expect("s3");
    assert_eq!(s3.outcome, NodeOutcome::Untouched);
    assert!(!lines.iter().any(|l| l.starts_with("s3: ")), "{lines:#?}");
    assert!(!lines.contains(&"s2: uncordon".to_string()));
}
