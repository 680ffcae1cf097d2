//! End-to-end: replacing a server of a 3-server embedded-etcd cluster by a fourth host with
//! `node replace` (surge first, then remove). An etcdctl loop on a server that stays samples the
//! health of all four endpoints every ~0.1 s: never fewer than 2 healthy voters (in fact never
//! fewer than 3), also when the server leaving leads etcd (the test makes it the leader first:
//! k3sctl must hand leadership over before removing it, or every endpoint fails for an election
//! timeout); afterwards etcdctl's member list has the new server and not the old one, the
//! old Node is deleted and K3s on the old host is stopped. Then `node remove` of another
//! server (out of the spec): its member and Node gone, nothing of K3s left on its host.

#[allow(dead_code)]
#[path = "e2e_ha_upgrade/ha_watcher.rs"]
mod ha_watcher;
#[allow(dead_code)]
#[path = "e2e_upgrade/release_site.rs"]
mod release_site;
#[allow(dead_code)]
#[path = "e2e_upgrade/scenario.rs"]
mod scenario;
#[allow(dead_code)]
#[path = "e2e_lifecycle/support.rs"]
mod support;
#[allow(dead_code)]
#[path = "e2e_upgrade/watcher.rs"]
mod watcher;

use std::time::{Duration, Instant};

use ha_watcher::{ETCDCTL, start_health_loop, stop_health_loop};
use scenario::Scenario;
use support::{
    apply_until_ready, k3s_left_on, k3sctl, node_names, ready_nodes, wait_until, write_spec,
};

/// etcd's member names, as etcdctl lists them on `on`.
fn members(s: &Scenario, on: &str) -> Vec<String> {
    let out = s
        .lab()
        .exec(
            on,
            &format!("{ETCDCTL} --endpoints https://127.0.0.1:2379 member list -w json"),
        )
        .expect("etcdctl member list");
    let list: serde_json::Value = serde_json::from_str(out.trim()).expect("member list json");
    list["members"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m["name"].as_str().map(str::to_string))
        .collect()
}

/// Per member name prefix (node name): its id and whether it leads, from `endpoint status`.
fn leaders(s: &Scenario, on: &str) -> Vec<(String, u64, bool)> {
    let names = s
        .lab()
        .exec(
            on,
            &format!("{ETCDCTL} --endpoints https://127.0.0.1:2379 member list -w json"),
        )
        .expect("etcdctl member list");
    let names: serde_json::Value = serde_json::from_str(names.trim()).expect("member list json");
    let out = s
        .lab()
        .exec(
            on,
            &format!(
                "{ETCDCTL} --endpoints https://127.0.0.1:2379 endpoint status --cluster -w json"
            ),
        )
        .expect("etcdctl endpoint status");
    let list: serde_json::Value = serde_json::from_str(out.trim()).expect("status json");
    list.as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|e| {
            let id = e["Status"]["header"]["member_id"].as_u64()?;
            let leads = e["Status"]["leader"].as_u64() == Some(id);
            let name = names["members"]
                .as_array()?
                .iter()
                .find(|m| m["ID"].as_u64() == Some(id))?["name"]
                .as_str()?
                .to_string();
            Some((name, id, leads))
        })
        .collect()
}

/// Makes `node`'s member the etcd leader (the case where removing it would leave the others
/// without a leader until an election timeout, unless k3sctl hands leadership over first).
fn make_leader(s: &Scenario, on: &str, node: &str) {
    let prefix = format!("{node}-");
    let now = leaders(s, on);
    let (_, target, already) = now
        .iter()
        .find(|(name, _, _)| name.starts_with(&prefix))
        .cloned()
        .unwrap_or_else(|| panic!("no member of {node}: {now:?}"));
    if !already {
        let leader = s
            .lab()
            .hosts()
            .iter()
            .find(|x| {
                now.iter()
                    .any(|(name, _, leads)| *leads && name.starts_with(&format!("{}-", x.name)))
            })
            .map(|x| format!("https://{}:2379", x.address))
            .unwrap_or_else(|| panic!("no leader: {now:?}"));
        s.lab()
            .exec(
                on,
                &format!("{ETCDCTL} --endpoints {leader} move-leader {target:x}"),
            )
            .expect("etcdctl move-leader");
    }
    let after = leaders(s, on);
    assert!(
        after
            .iter()
            .any(|(name, _, leads)| *leads && name.starts_with(&prefix)),
        "{node} does not lead: {after:?}"
    );
}

#[test]
fn a_server_is_replaced_without_losing_quorum() {
    let s = Scenario::boot("srep", 4);
    let h: Vec<String> = s.hosts.clone();
    let (s0, s1, old, new) = (&h[0], &h[1], &h[2], &h[3]);
    write_spec(&s, &[(s0, "server"), (s1, "server"), (old, "server")]);
    eprintln!("HA apply of 3 servers: {:?}", apply_until_ready(&s, 3));
    let before = members(&s, s0);
    assert_eq!(before.len(), 3, "{before:?}");
    assert!(before.iter().any(|m| m.starts_with(&format!("{old}-"))));

    // The spec names the target: OLD replaced by NEW (an odd number of servers).
    write_spec(&s, &[(s0, "server"), (s1, "server"), (new, "server")]);
    let out = k3sctl(&s, &["node", "replace", old, "--with", new, "--dry-run"]);
    assert!(out.ok, "{}", out.text);
    for want in [
        "start k3s and join the cluster",
        "wait until it is a voting etcd member",
        "remove its etcd member",
        "delete the Node",
    ] {
        assert!(
            out.text.contains(want),
            "dry run lacks `{want}`:\n{}",
            out.text
        );
    }

    let endpoints: Vec<String> = s
        .lab()
        .hosts()
        .iter()
        .map(|x| format!("https://{}:2379", x.address))
        .collect();
    // The hard case: the server leaving leads etcd.
    make_leader(&s, s0, old);
    start_health_loop(s.lab(), s0, &endpoints);
    let t = Instant::now();
    let out = k3sctl(&s, &["--yes", "node", "replace", old, "--with", new]);
    let took = t.elapsed();
    let samples = stop_health_loop(s.lab(), s0);
    assert!(out.ok, "node replace failed:\n{}", out.text);
    let healthy: Vec<usize> = samples.iter().map(Vec::len).collect();
    let fewest = healthy.iter().copied().min().unwrap_or(0);
    let most = healthy.iter().copied().max().unwrap_or(0);
    eprintln!(
        "server replace took {took:?}; {} etcd samples, healthy members between {fewest} and {most}",
        samples.len()
    );
    assert!(
        samples.len() > 20,
        "too few etcd samples: {}",
        samples.len()
    );
    assert!(
        fewest >= 2,
        "fewer than 2 healthy voters at some moment: {healthy:?}"
    );
    assert_eq!(most, 4, "the surge (4 healthy members) was never seen");
    assert!(
        out.text.contains("etcd leadership moved to"),
        "leadership was not handed over before {old} left:\n{}",
        out.text
    );
    let after = members(&s, s0);
    assert_eq!(after.len(), 3, "{after:?}");
    assert!(
        !after.iter().any(|m| m.starts_with(&format!("{old}-"))),
        "{old} still an etcd member: {after:?}"
    );
    assert!(after.iter().any(|m| m.starts_with(&format!("{new}-"))));
    let names = node_names(&s);
    assert!(!names.contains(old), "{old}'s Node still there: {names:?}");
    wait_until(Duration::from_secs(60), "3 Ready servers again", || {
        ready_nodes(&s).len() == 3
    });
    let active = s
        .lab()
        .exec_output(old, "systemctl is-active k3s", Duration::from_secs(10))
        .expect("ssh");
    assert_ne!(active.stdout.trim(), "active", "K3s still runs on {old}");
    // Re-running finds nothing left to replace and changes nothing.
    let out = k3sctl(&s, &["--yes", "node", "replace", old, "--with", new]);
    assert!(
        !out.ok && out.text.contains("nothing to replace"),
        "{}",
        out.text
    );

    // `node remove` of a server once it is out of the spec (shrinking towards one server; a
    // spec of two servers is refused), end to end: etcd goes from 3 to 2 members (2 healthy
    // voters remain, its quorum), the member is gone from etcdctl's list, the Node is deleted
    // and nothing of K3s is left on the host.
    write_spec(&s, &[(s0, "server")]);
    let t = Instant::now();
    let out = k3sctl(&s, &["--yes", "node", "remove", s1]);
    assert!(out.ok, "node remove of a server failed:\n{}", out.text);
    eprintln!("server remove took {:?}", t.elapsed());
    let after = members(&s, s0);
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(
        !after.iter().any(|m| m.starts_with(&format!("{s1}-"))),
        "{s1} still an etcd member: {after:?}"
    );
    let names = node_names(&s);
    assert!(!names.contains(s1), "{s1}'s Node still there: {names:?}");
    let left = k3s_left_on(&s, s1);
    assert!(left.is_empty(), "K3s left on {s1}: {left:?}");
}
