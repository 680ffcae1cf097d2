//! End to end on ONE five-host lab with the stand-in, scenario after scenario:
//! 1 server + 3 agents in groups a (2, `joinConcurrency: 2`: they join side by side) and b (1)
//! with a registry mirror, TLS SANs and two kubeconfig exports (one merged into a `$KUBECONFIG`
//! that keeps its other context; the user's `config` and an export path are symlinks, which
//! stay symlinks); an unparsable `$KUBECONFIG`
//! stops apply and is left byte for byte; adding a
//! fifth host joins only that host; a wrong host key stops apply before any change; two
//! concurrent applies (the second names the first as holder); an apply killed with SIGKILL
//! leaves its lock, which the next apply takes over with a notice; an agent lost mid-apply fails
//! its group only; while it is lost, apply refuses unless `--skip-unreachable` (which applies to
//! the other hosts, lists it and exits 1; the first server is never skipped); apply converges
//! once it is back.

#[path = "e2e_apply_groups/cluster.rs"]
mod cluster;
#[path = "support/e2e.rs"]
mod e2e;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use cluster::{
    ADMIN_CONTEXT, Cluster, FOREIGN_CONTEXT, OPS_CONTEXT, SAN_NAME, build_stand_in, kubectl, text,
    wait_for_line,
};

#[test]
fn groups_sans_exports_join_host_keys_concurrency_and_a_lost_agent() {
    lab::require_root().expect("the lab needs root");
    build_stand_in();
    let began = Instant::now();
    let mut c = Cluster::boot();
    eprintln!("[timing] lab boot: {:.1}s", began.elapsed().as_secs_f64());

    timed("fresh apply", || fresh_apply(&c));
    timed("unparsable kubeconfig", || unparsable_kubeconfig(&c));
    timed("add a fifth host", || add_fifth_host(&c));
    timed("wrong host key", || wrong_host_key(&c));
    timed("concurrent applies", || concurrent_applies(&c));
    timed("killed apply", || killed_apply(&c));
    timed("agent lost mid-apply", || lost_agent(&mut c));
}

fn timed(what: &str, scenario: impl FnOnce()) {
    let start = Instant::now();
    scenario();
    eprintln!("[timing] {what}: {:.1}s", start.elapsed().as_secs_f64());
}

/// Every node listed and Ready, exactly `names`.
fn assert_ready(c: &Cluster, args: &[&str], names: &[String]) {
    let statuses = c.node_statuses(args);
    let mut seen: Vec<&str> = statuses.iter().map(|(n, _)| n.as_str()).collect();
    seen.sort_unstable();
    let mut want: Vec<&str> = names.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(seen, want, "nodes seen with {args:?}");
    for (name, status) in &statuses {
        assert_eq!(status, "Ready", "{name} with {args:?}");
    }
}

/// Group a has `joinConcurrency: 2`: its two agents' joins overlap, each started (step `start`)
/// before the other was Ready (step `wait-node-ready` done), as the JSON events show.
fn group_a_joined_two_at_a_time(stdout: &str, agents: &[String]) {
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v.get("step").is_some())
        .collect();
    let at = |host: &str, step: &str, kind: &str| {
        events
            .iter()
            .position(|e| e["host"] == host && e["step"] == step && e["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} event of {step} on {host}:\n{stdout}"))
    };
    let [a1, a2] = [&agents[0], &agents[1]]
        .map(|a| (at(a, "start", "start"), at(a, "wait-node-ready", "done")));
    assert!(
        a2.0 < a1.1 && a1.0 < a2.1,
        "group a's agents did not join side by side (start, ready event indexes {a1:?} and \
         {a2:?}):\n{stdout}"
    );
}

fn fresh_apply(c: &Cluster) {
    let names = c.names();
    c.write_spec(4, "http://mirror-a.example:5000");
    let out = c.k3sctl(&["apply", "-o", "json"]);
    assert!(out.status.success(), "fresh apply:\n{}", text(&out));
    group_a_joined_two_at_a_time(&String::from_utf8_lossy(&out.stdout), &names[1..3]);

    // Each export, through Debian's kubectl 1.20, sees the four nodes Ready.
    let admin = c.admin.to_string_lossy().into_owned();
    let ops = c.ops.to_string_lossy().into_owned();
    let merged = c.merged.to_string_lossy().into_owned();
    assert_ready(c, &["--kubeconfig", &admin], &names[..4]);
    assert_ready(c, &["--kubeconfig", &ops], &names[..4]);
    assert_ready(
        c,
        &["--kubeconfig", &merged, "--context", OPS_CONTEXT],
        &names[..4],
    );
    let contexts = Command::new(kubectl())
        .args([
            "--kubeconfig",
            &merged,
            "config",
            "get-contexts",
            "-o",
            "name",
        ])
        .output()
        .expect("kubectl runs");
    let contexts = text(&contexts);
    assert!(contexts.contains(FOREIGN_CONTEXT), "{contexts}");
    assert!(contexts.contains(OPS_CONTEXT), "{contexts}");
    let admin_text = fs_err::read_to_string(&c.admin).expect("admin export");
    assert!(
        admin_text.contains(&format!("current-context: {ADMIN_CONTEXT}")),
        "{admin_text}"
    );
    // Written through the symlinks: the links are still links, their targets hold the content,
    // and the user's stricter mode (0400) is kept.
    for link in [&c.admin, &c.merged] {
        let meta = fs_err::symlink_metadata(link).expect("still there");
        assert!(
            meta.file_type().is_symlink(),
            "{} became a file",
            link.display()
        );
    }
    let public = c.admin.with_file_name("k3s-public.yaml");
    assert_eq!(fs_err::read_to_string(public).expect("target"), admin_text);
    let target = fs_err::read_to_string(&c.merged_target).expect("merged target");
    assert!(
        target.contains(OPS_CONTEXT) && target.contains(FOREIGN_CONTEXT),
        "{target}"
    );
    let mode = fs_err::metadata(&c.merged_target)
        .expect("exists")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o400, "the user's mode was not kept");

    // The mirror is on every host; the serving certificate carries the SANs.
    for i in 0..4 {
        let registries = c.registries(i);
        assert!(
            registries.contains("http://mirror-a.example:5000"),
            "{registries}"
        );
    }
    let sans = serving_sans(&c.address(0));
    assert!(sans.contains(&format!("DNS:{SAN_NAME}")), "{sans}");
    assert!(
        sans.contains(&format!("IP Address:{}", c.address(0))),
        "{sans}"
    );
}

/// A `$KUBECONFIG` that is not YAML: apply and kubeconfig refuse, name the file and the way
/// out, and leave it exactly as it was.
fn unparsable_kubeconfig(c: &Cluster) {
    let broken = c.lab.dir().join("broken-kubeconfig");
    let garbage: &[u8] = b"apiVersion: v1\nclusters: [ {name: half\n\tcontexts: : :\n";
    fs_err::write(&broken, garbage).expect("write");
    for command in [&["apply"][..], &["kubeconfig"][..]] {
        let out = c.k3sctl_with_kubeconfig(command, &broken);
        let said = text(&out);
        eprintln!("[unparsable kubeconfig] {command:?}: {said}");
        assert_eq!(out.status.code(), Some(1), "{command:?}: {said}");
        assert!(
            said.contains(&broken.display().to_string()),
            "path not named:\n{said}"
        );
        assert!(said.contains("is not a kubeconfig"), "{said}");
        assert!(said.contains("merge: false"), "no way out given:\n{said}");
        assert_eq!(
            fs_err::read(&broken).expect("read"),
            garbage,
            "{command:?} touched it"
        );
    }
}

/// The subjectAltName of the certificate the API server presents.
fn serving_sans(address: &str) -> String {
    let script = format!(
        "openssl s_client -connect {address}:6443 -servername {SAN_NAME} </dev/null 2>/dev/null \
         | openssl x509 -noout -ext subjectAltName"
    );
    let out = Command::new("sh")
        .args(["-c", &script])
        .output()
        .expect("openssl runs");
    assert!(out.status.success(), "openssl: {}", text(&out));
    text(&out)
}

fn add_fifth_host(c: &Cluster) {
    let names = c.names();
    let before: Vec<String> = (0..4).map(|i| c.main_pid(i)).collect();
    c.write_spec(5, "http://mirror-a.example:5000");
    let plan = c.k3sctl(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    let out = c.k3sctl(&["apply"]);
    assert!(
        out.status.success(),
        "apply with the fifth host:\n{}",
        text(&out)
    );
    let after: Vec<String> = (0..4).map(|i| c.main_pid(i)).collect();
    assert_eq!(before, after, "a host other than {} restarted", names[4]);
    let admin = c.admin.to_string_lossy().into_owned();
    assert_ready(c, &["--kubeconfig", &admin], &names);
}

fn wrong_host_key(c: &Cluster) {
    let names = c.names();
    let known_hosts = c.lab.known_hosts();
    let original = fs_err::read_to_string(&known_hosts).expect("known_hosts");
    // The fourth host's entry now holds the second host's key: what a reinstalled or
    // impersonated host looks like.
    let key_of = |i: usize| -> String {
        let addr = c.address(i);
        original
            .lines()
            .find(|l| {
                l.split_whitespace()
                    .next()
                    .is_some_and(|h| h.split(',').any(|p| p == names[i] || p == addr))
            })
            .and_then(|l| l.split_once(' ').map(|(_, key)| key.to_owned()))
            .unwrap_or_else(|| panic!("{} not in known_hosts:\n{original}", names[i]))
    };
    let (victim_key, other_key) = (key_of(3), key_of(1));
    fs_err::write(&known_hosts, original.replace(&victim_key, &other_key)).expect("write");

    c.write_spec(5, "http://mirror-b.example:5000");
    let out = c.k3sctl(&["apply"]);
    let said = text(&out);
    fs_err::write(&known_hosts, &original).expect("restore known_hosts");
    eprintln!("[wrong host key] {said}");
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains(&names[3]), "host not named:\n{said}");
    assert!(
        said.contains(&known_hosts.display().to_string()),
        "known_hosts not named:\n{said}"
    );
    assert!(said.contains("ssh-keygen -R"), "no remedy given:\n{said}");
    for (i, name) in names.iter().enumerate() {
        assert!(
            c.registries(i).contains("mirror-a"),
            "{name} changed although apply refused"
        );
    }
}

fn concurrent_applies(c: &Cluster) {
    // The key is restored and the mirror change is pending: the first apply works (five
    // restarts, one at a time), a second one started meanwhile refuses and names it.
    let (mut first, lines) = c.spawn_apply();
    let mut seen = Vec::new();
    let busy = wait_for_line(&lines, &mut seen, Duration::from_secs(120), |l| {
        l.starts_with('…')
    });
    assert!(
        busy,
        "the first apply never started a step:\n{}",
        seen.join("\n")
    );
    let second = c.k3sctl(&["apply"]);
    let said = text(&second);
    eprintln!("[concurrent] {said}");
    assert_eq!(second.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!("pid={}", first.id())) && said.contains('@'),
        "the holder (user@host pid={}) is not named:\n{said}",
        first.id()
    );
    let status = first.wait().expect("first apply ends");
    seen.extend(lines.try_iter());
    assert!(status.success(), "first apply:\n{}", seen.join("\n"));
    // How long each node took from its restart to a Ready posted by the new process.
    for line in seen.iter().filter(|l| l.starts_with('✓')) {
        if line.contains("restart") || line.contains("Ready") {
            eprintln!("[rolling restart] {line}");
        }
    }
    for i in 0..5 {
        assert!(c.registries(i).contains("mirror-b"), "{}", c.names()[i]);
    }
}

/// `kill -9` of an apply leaves its lock on the first server; the next apply on this machine
/// sees that the holder's process is gone, takes the lock over, says so, and converges.
fn killed_apply(c: &Cluster) {
    c.write_spec(5, "http://mirror-k.example:5000");
    let (mut victim, lines) = c.spawn_apply();
    let mut seen = Vec::new();
    let busy = wait_for_line(&lines, &mut seen, Duration::from_secs(120), |l| {
        l.starts_with('…')
    });
    assert!(busy, "the apply never started a step:\n{}", seen.join("\n"));
    let pid = victim.id();
    victim.kill().expect("SIGKILL");
    victim.wait().expect("reaped");
    let lock = c
        .lab
        .exec(&c.names()[0], "cat /var/lib/rancher/k3s/k3sctl.lock")
        .expect("the killed run's lock is still there");
    assert!(lock.contains(&format!("pid={pid} ")), "{lock}");
    assert!(
        lock.contains(" boot=") && lock.contains(" start="),
        "{lock}"
    );

    let out = c.k3sctl(&["apply"]);
    let said = text(&out);
    assert!(out.status.success(), "apply after a killed one:\n{said}");
    let notice = said
        .lines()
        .find(|l| l.contains("taking over the lock of an interrupted run"))
        .unwrap_or_else(|| panic!("no takeover notice:\n{said}"));
    eprintln!("[killed apply] {notice}");
    assert!(notice.contains(&format!("pid={pid} ")), "{notice}");
    assert!(notice.contains("no longer exists"), "{notice}");
    for i in 0..5 {
        assert!(c.registries(i).contains("mirror-k"), "{}", c.names()[i]);
    }
    let left = c
        .lab
        .exec(
            &c.names()[0],
            "ls /var/lib/rancher/k3s/ | grep -c '^k3sctl.lock$' || true",
        )
        .expect("ls");
    assert_eq!(left.trim(), "0", "the lock was not released");
}

/// The third host is still lost: apply refuses and names `--skip-unreachable`; with it, the
/// other four hosts get the change and the lost one is listed (text and JSON), exit 1. The
/// first server cannot be skipped.
fn skip_unreachable(c: &Cluster) {
    let names = c.names();
    c.write_spec(5, "http://mirror-d.example:5000");
    let out = c.k3sctl(&["apply"]);
    let said = text(&out);
    eprintln!("[unreachable] {said}");
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!("{}: cannot connect", names[2])),
        "{said}"
    );
    assert!(
        said.contains("--skip-unreachable"),
        "the hint does not name the flag:\n{said}"
    );
    for i in [0, 1, 3, 4] {
        assert!(c.registries(i).contains("mirror-c"), "{} changed", names[i]);
    }

    let out = c.k3sctl(&["apply", "--skip-unreachable"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let listed = stdout
        .lines()
        .skip_while(|l| !l.starts_with("Skipped 1 unreachable host"))
        .nth(1)
        .unwrap_or_else(|| panic!("no skipped list:\n{said}"));
    eprintln!("[skip unreachable] {listed}");
    assert!(
        listed.trim_start().starts_with(&format!("{}:", names[2])),
        "{listed}"
    );
    for i in [0, 1, 3, 4] {
        assert!(
            c.registries(i).contains("mirror-d"),
            "{} not done",
            names[i]
        );
    }

    // The same in JSON: nothing left to do on the reachable hosts, the lost one listed.
    let out = c.k3sctl(&["-o", "json", "apply", "--skip-unreachable"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("JSON report");
    assert_eq!(report["nothing_to_do"], true, "{report}");
    assert_eq!(report["skipped"][0]["host"], names[2].as_str(), "{report}");

    // The first server unreachable (nothing listens on port 1): refused, and why.
    c.write_spec(5, "http://mirror-e.example:5000");
    let spec = fs_err::read_to_string(&c.spec).expect("spec");
    let server = format!("    - name: {}\n", names[0]);
    fs_err::write(
        &c.spec,
        spec.replacen(
            &server,
            &format!("{server}      ssh:\n        port: 1\n"),
            1,
        ),
    )
    .expect("spec");
    let out = c.k3sctl(&["apply", "--skip-unreachable"]);
    let said = text(&out);
    eprintln!("[first server unreachable] {said}");
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("cannot leave out every server"), "{said}");
    for i in [0, 1, 3, 4] {
        assert!(c.registries(i).contains("mirror-d"), "{} changed", names[i]);
    }
    c.write_spec(5, "http://mirror-d.example:5000");
}

fn lost_agent(c: &mut Cluster) {
    let names = c.names();
    c.write_spec(5, "http://mirror-c.example:5000");
    let (mut apply, lines) = c.spawn_apply();
    let mut seen = Vec::new();
    // Group a's first agent restarts: its second agent is lost before its turn comes.
    let first_of_a = format!("… {}: restart", names[1]);
    let turn = wait_for_line(&lines, &mut seen, Duration::from_secs(180), |l| {
        l.starts_with(&first_of_a)
    });
    assert!(turn, "{} never restarted:\n{}", names[1], seen.join("\n"));
    c.lab.lose(&names[2]).expect("lose");
    let status = apply.wait().expect("apply ends");
    let mut out = String::new();
    if let Some(mut stdout) = apply.stdout.take() {
        std::io::Read::read_to_string(&mut stdout, &mut out).expect("stdout");
    }
    seen.extend(lines.iter());
    let said = format!("{out}{}", seen.join("\n"));
    assert_eq!(status.code(), Some(1), "{said}");
    let failed = said
        .lines()
        .find(|l| l.contains(&names[2]) && l.contains("FAILED at"))
        .unwrap_or_else(|| panic!("{} not reported failed:\n{said}", names[2]));
    eprintln!("[lost agent] {failed}");
    assert!(
        ["write-file", "restart", "wait-node-ready"]
            .iter()
            .any(|step| failed.contains(step)),
        "no step named: {failed}"
    );
    // Group b completed despite group a's failure.
    for i in [3, 4] {
        assert!(
            c.registries(i).contains("mirror-c"),
            "{} not done",
            names[i]
        );
    }

    skip_unreachable(c);

    c.lab.start(&names[2]).expect("start the lost host");
    let out = c.k3sctl(&["apply"]);
    assert!(
        out.status.success(),
        "apply after the host is back:\n{}",
        text(&out)
    );
    for (i, name) in names.iter().enumerate() {
        assert!(c.registries(i).contains("mirror-d"), "{name}");
    }
    let again = c.k3sctl(&["apply"]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("Nothing to do"), "{}", text(&again));
    let admin = c.admin.to_string_lossy().into_owned();
    assert_ready(c, &["--kubeconfig", &admin], &names);
}
