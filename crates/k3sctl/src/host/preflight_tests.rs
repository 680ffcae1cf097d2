use std::collections::BTreeMap;

use super::*;
use crate::host::facts::{DiskFree, Facts};

fn healthy(hostname: &str) -> Facts {
    Facts {
        os_id: "debian".into(),
        os_version: "12".into(),
        machine: "x86_64".into(),
        systemd_present: true,
        systemd_running: true,
        hostname: hostname.into(),
        clock: 1000,
        observed_at: 1000,
        kmsg: true,
        disk: Some(DiskFree {
            path: "/var/lib/rancher".into(),
            free_bytes: 20 << 30,
        }),
        ..Facts::default()
    }
}

fn x86_only(machine: &str) -> bool {
    machine == "x86_64"
}

fn hosts(list: Vec<(&str, Facts)>) -> BTreeMap<String, Facts> {
    list.into_iter().map(|(n, f)| (n.to_owned(), f)).collect()
}

#[test]
fn healthy_hosts_have_no_problems() {
    let h = hosts(vec![("a", healthy("a")), ("b", healthy("b"))]);
    assert_eq!(
        check_hosts(&h, &PreflightLimits::default(), x86_only),
        vec![]
    );
}

#[test]
fn every_problem_is_reported_together() {
    let mut no_systemd = healthy("b");
    no_systemd.systemd_running = false;
    let mut riscv = healthy("c");
    riscv.machine = "riscv64".into();
    let mut full = healthy("d");
    full.disk = Some(DiskFree {
        path: "/".into(),
        free_bytes: 100 << 20,
    });
    let mut late = healthy("e");
    late.clock = 1100;
    let h = hosts(vec![
        ("a", healthy("same")),
        ("b", no_systemd),
        ("c", riscv),
        ("d", full),
        ("e", late),
        ("f", healthy("SAME")),
    ]);
    let problems = check_hosts(&h, &PreflightLimits::default(), x86_only);
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), 5, "{text:#?}");
    assert!(matches!(&problems[0], Problem::NoSystemd { host, installed: true } if host == "b"));
    assert!(
        matches!(&problems[1], Problem::UnsupportedArch { machine, .. } if machine == "riscv64")
    );
    assert!(matches!(&problems[2], Problem::LowDisk { host, .. } if host == "d"));
    assert_eq!(
        problems[3],
        Problem::DuplicateHostname {
            hostname: "same".into(),
            hosts: vec!["a".into(), "f".into()]
        }
    );
    match &problems[4] {
        Problem::ClockSkew { spread, .. } => assert_eq!(*spread, 100),
        other => panic!("unexpected {other}"),
    }
    assert!(text[2].contains("0.1 GiB free on /"), "{}", text[2]);
    assert!(text[4].contains("e +100s"), "{}", text[4]);
    assert!(problems.iter().all(|p| p.severity() == Severity::Error));
}

#[test]
fn skew_within_the_limit_passes_and_kmsg_is_a_warning() {
    let mut skewed = healthy("b");
    skewed.clock = 1029;
    let mut lxc = healthy("c");
    lxc.kmsg = false;
    lxc.container = Some("lxc".into());
    let h = hosts(vec![("a", healthy("a")), ("b", skewed), ("c", lxc)]);
    let problems = check_hosts(&h, &PreflightLimits::default(), x86_only);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].severity(), Severity::Warning);
    assert!(problems[0].to_string().contains("(running in lxc)"));
}
