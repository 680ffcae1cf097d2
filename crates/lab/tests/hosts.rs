//! Three hosts: strict SSH through the generated config, identity, reachability, a systemd
//! unit reachable from the machine, every fault and its repair, spec output, clean teardown.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Probe, assert_gone, http_get, probe, reachable_from};
use lab::{Lab, Readiness, SpecOptions};

const UNIT: &str = "mkdir -p /srv && hostname > /srv/index.html && \
cat > /etc/systemd/system/labweb.service <<'UNIT'
[Unit]
Description=lab test web server
[Service]
ExecStart=/usr/bin/python3 -m http.server 8080 --directory /srv
[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload && systemctl enable --now labweb";

#[test]
fn three_hosts_answer_and_survive_faults() {
    let mut lab = Lab::boot("t-hosts", 3).expect("lab boots");
    let hosts = lab.hosts();
    let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["t-hosts-1", "t-hosts-2", "t-hosts-3"]);

    // Real ssh, generated config, strict host keys: own name, address and machine-id.
    let mut machine_ids = std::collections::BTreeSet::new();
    for h in &hosts {
        let out = Command::new("ssh")
            .arg("-F")
            .arg(lab.ssh_config())
            .args([
                &h.name,
                "hostname; ip -4 -o addr show eth0; cat /etc/machine-id",
            ])
            .output()
            .expect("ssh runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: {}",
            h.name,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.starts_with(&format!("{}\n", h.name)), "{stdout}");
        assert!(
            stdout.contains(&format!("inet {}/24", h.address)),
            "{stdout}"
        );
        machine_ids.insert(stdout.lines().last().unwrap_or_default().to_owned());
    }
    assert_eq!(machine_ids.len(), 3, "{machine_ids:?}");
    let config = fs_err::read_to_string(lab.ssh_config()).expect("ssh_config");
    assert!(config.contains("StrictHostKeyChecking yes"));
    // Without the lab's known_hosts the same login is refused: host keys are really checked.
    let untrusted = Command::new("ssh")
        .arg("-F")
        .arg(lab.ssh_config())
        .args(["-o", "UserKnownHostsFile=/dev/null", &hosts[0].name, "true"])
        .output()
        .expect("ssh runs");
    assert!(!untrusted.status.success());
    assert!(
        String::from_utf8_lossy(&untrusted.stderr).contains("Host key verification failed"),
        "{}",
        String::from_utf8_lossy(&untrusted.stderr)
    );
    // Every host reaches the others; peer names resolve.
    for from in &hosts {
        let others: Vec<_> = hosts
            .iter()
            .filter(|t| t.name != from.name)
            .map(|t| t.address)
            .collect();
        assert_eq!(
            reachable_from(&lab, &from.name, 22, &others),
            [true, true],
            "from {}",
            from.name
        );
    }
    lab.exec(names[0], &format!("getent hosts {}", names[2]))
        .expect("peer names resolve");
    // The image: etcd installed but not running by default; tools later issues need.
    let image = lab
        .exec(
            names[0],
            "systemctl is-enabled etcd || true; command -v etcd etcdctl python3 nft curl",
        )
        .expect("image check");
    assert!(image.starts_with("disabled\n"), "{image}");
    for tool in ["etcd", "etcdctl", "python3", "nft", "curl"] {
        assert!(
            image.contains(&format!("/{tool}\n")),
            "{tool} missing: {image}"
        );
    }

    // A unit written over ssh starts and is reachable from the machine.
    let web = &hosts[0];
    lab.exec(&web.name, UNIT).expect("unit starts");
    let body = http_get(web.address, 8080, Duration::from_secs(10)).expect("web server answers");
    assert!(
        body.contains("200 OK") && body.contains(&web.name),
        "{body}"
    );

    // Partition: exactly the chosen peer, both directions; heal restores it.
    lab.partition(names[0], &[names[1]]).expect("partition");
    let (a1, a2, a3) = (hosts[0].address, hosts[1].address, hosts[2].address);
    assert_eq!(reachable_from(&lab, names[0], 22, &[a2, a3]), [false, true]);
    assert_eq!(reachable_from(&lab, names[1], 22, &[a1, a3]), [false, true]);
    assert_eq!(reachable_from(&lab, names[2], 22, &[a1, a2]), [true, true]);
    assert_eq!(probe(web.address, 22, Duration::from_secs(2)), Probe::Open);
    lab.heal(None).expect("heal");
    assert_eq!(reachable_from(&lab, names[0], 22, &[a2]), [true]);
    assert_eq!(reachable_from(&lab, names[1], 22, &[a1]), [true]);

    // Crash: stops answering at once (the namespace still sends RST); start: files intact.
    lab.exec(names[2], "echo survives > /root/marker && sync")
        .expect("write marker");
    lab.crash(names[2]).expect("crash");
    assert!(!lab.is_running(names[2]).expect("state"));
    assert_eq!(
        probe(hosts[2].address, 22, Duration::from_secs(2)),
        Probe::Refused
    );
    lab.start(names[2]).expect("start after crash");
    assert_eq!(
        lab.exec(names[2], "cat /root/marker").expect("marker"),
        "survives\n"
    );

    // Lose: connections hang until their timeout; start brings the host and its unit back.
    lab.lose(names[0]).expect("lose");
    let t = Instant::now();
    assert_eq!(
        probe(web.address, 22, Duration::from_secs(2)),
        Probe::TimedOut
    );
    assert!(t.elapsed() >= Duration::from_secs(2));
    let ssh = lab
        .exec_output(names[0], "true", Duration::from_secs(2))
        .expect("ssh runs");
    assert!(ssh.timed_out, "ssh to a lost host must hang: {ssh:?}");
    lab.start(names[0]).expect("start after lose");
    let body = http_get(web.address, 8080, Duration::from_secs(10)).expect("unit back after start");
    assert!(body.contains(&web.name));

    // Cut: the cable is out (no carrier inside); uncut: back.
    lab.cut(names[1]).expect("cut");
    assert_eq!(
        probe(hosts[1].address, 22, Duration::from_secs(1)),
        Probe::TimedOut
    );
    let netns = lab.state().naming().machine(2);
    let link = Command::new("ip")
        .args(["-n", &netns, "link", "show", "eth0"])
        .output()
        .expect("ip runs");
    assert!(String::from_utf8_lossy(&link.stdout).contains("NO-CARRIER"));
    lab.uncut(names[1]).expect("uncut");
    assert_eq!(
        probe(hosts[1].address, 22, Duration::from_secs(2)),
        Probe::Open
    );
    assert_eq!(
        lab.exec(names[1], "cat /sys/class/net/eth0/carrier")
            .expect("carrier"),
        "1\n"
    );

    // Graceful stop; the root dir is the host's file system. Units written there while the
    // host is off: one that never finishes starting, one that fails.
    lab.stop(names[1]).expect("stop");
    assert!(!lab.is_running(names[1]).expect("state"));
    let root = lab.root_dir(names[1]).expect("root");
    let hostname = fs_err::read_to_string(root.join("etc/hostname")).expect("hostname file");
    assert_eq!(hostname.trim(), names[1]);
    let units = root.join("etc/systemd/system");
    let wants = units.join("multi-user.target.wants");
    fs_err::create_dir_all(&wants).expect("wants dir");
    for (unit, exec) in [
        ("labwait", "/bin/sleep infinity"),
        ("labfail", "/bin/false"),
    ] {
        fs_err::write(
            units.join(format!("{unit}.service")),
            format!("[Service]\nType=oneshot\nTimeoutStartSec=infinity\nExecStart={exec}\n"),
        )
        .expect("write unit");
        fs_err::os::unix::fs::symlink(
            format!("../{unit}.service"),
            wants.join(format!("{unit}.service")),
        )
        .expect("enable unit");
    }
    // Waiting only for ssh returns while systemd still waits for labwait.
    lab.start_until(names[1], Readiness::SshAnswers)
        .expect("start until ssh answers");
    let state = lab
        .exec_output(
            names[1],
            "systemctl is-system-running",
            Duration::from_secs(20),
        )
        .expect("ssh runs");
    assert_eq!(state.stdout, "starting\n");
    // A full start reports the failed unit by name.
    lab.crash(names[1]).expect("crash");
    fs_err::remove_file(wants.join("labwait.service")).expect("disable labwait");
    match lab.start(names[1]) {
        Err(lab::LabError::Degraded { failed, .. }) => assert_eq!(failed, "labfail.service"),
        other => panic!("start with a failing unit must report it: {other:?}"),
    }
    lab.exec(
        names[1],
        "systemctl disable --quiet labfail && systemctl reset-failed && systemctl is-system-running",
    )
    .expect("running once the unit is gone");

    // Spec for k3sctl.
    let spec_path = lab.dir().join("test-spec.yaml");
    let any_file = std::env::current_exe().expect("test exe");
    lab.write_spec(
        &spec_path,
        &SpecOptions {
            k3s_binary: Some(any_file.clone()),
            k3s_version: None,
            servers: None,
        },
    )
    .expect("spec");
    let spec: serde_json::Value =
        serde_saphyr::from_str(&fs_err::read_to_string(&spec_path).expect("read spec"))
            .expect("yaml");
    assert_eq!(spec["metadata"]["name"], "t-hosts");
    assert_eq!(spec["spec"]["hosts"][0]["role"], "server");
    assert_eq!(spec["spec"]["hosts"][2]["role"], "agent");
    assert_eq!(
        spec["spec"]["hosts"][1]["address"],
        hosts[1].address.to_string()
    );
    let ssh = &spec["spec"]["hostDefaults"]["ssh"];
    assert_eq!(ssh["configFile"], lab.ssh_config().display().to_string());
    assert_eq!(
        ssh["knownHostsFile"],
        lab.known_hosts().display().to_string()
    );
    assert_eq!(ssh["identityFile"], lab.identity().display().to_string());
    assert_eq!(
        spec["spec"]["k3s"]["binary"]["file"],
        any_file.display().to_string()
    );
    assert_eq!(spec["spec"]["k3s"]["version"], lab::DEFAULT_K3S_VERSION);
    // `--servers N`: the first N hosts are servers.
    let two = SpecOptions {
        k3s_binary: Some(any_file.clone()),
        k3s_version: None,
        servers: Some(2),
    };
    lab.write_spec(&spec_path, &two).expect("spec");
    let spec: serde_json::Value =
        serde_saphyr::from_str(&fs_err::read_to_string(&spec_path).expect("read spec"))
            .expect("yaml");
    let roles: Vec<&str> = (0..3)
        .map(|i| {
            spec["spec"]["hosts"][i]["role"]
                .as_str()
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(roles, ["server", "server", "agent"]);
    let too_many = SpecOptions {
        servers: Some(9),
        ..two
    };
    let err = lab
        .write_spec(&spec_path, &too_many)
        .expect_err("more servers than hosts");
    assert!(err.to_string().contains("--servers 9"), "{err}");

    // Teardown leaves nothing behind.
    let footprint = lab.footprint();
    assert!(footprint.has_every_kind(), "{footprint:?}");
    lab.down().expect("down");
    assert_gone(&footprint);
}
