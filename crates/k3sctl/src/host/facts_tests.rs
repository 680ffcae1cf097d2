use super::*;
use crate::host::LocalTransport;
use crate::host::hash::sha256_hex;

const SAMPLE: &str = "os\tdebian\t12
arch\tx86_64
uid\t0
systemd\t1\t1
hostname\tk3s-master
ipv4\teth0\t10.0.0.241/24
ipv4\t-\t10.0.0.9
clock\t1763700000
virt\tsystemd-nspawn
kmsg\t0
disk\t/var/lib\t5368709120
file\t/etc/rancher/k3s/config.yaml\tabc\t1763690000\t600
file\t/etc/rancher/k3s/registries.yaml\t-\t-\t-
binary\t/usr/local/bin/k3s\tdef\tk3s version v1.33.5+k3s1 (abc123)
unit\tk3s.service\tloaded\tactive\tenabled\t1763690100
unit\tk3s-agent.service\tnot-found\tinactive\t-\t-
future\tkinds are ignored
end
";

#[test]
fn parses_every_record_kind() {
    let f = parse_facts(SAMPLE, 1763700003).expect("parses");
    assert_eq!((f.os_id.as_str(), f.os_version.as_str()), ("debian", "12"));
    assert_eq!(f.machine, "x86_64");
    assert!(f.systemd_present && f.systemd_running);
    assert_eq!(f.hostname, "k3s-master");
    assert_eq!(
        f.ipv4,
        vec![
            HostAddress {
                interface: Some("eth0".into()),
                addr: Ipv4Addr::new(10, 0, 0, 241),
                prefix: Some(24)
            },
            HostAddress {
                interface: None,
                addr: Ipv4Addr::new(10, 0, 0, 9),
                prefix: None
            },
        ]
    );
    assert_eq!(f.clock_offset(), -3);
    assert_eq!(f.container.as_deref(), Some("systemd-nspawn"));
    assert!(!f.kmsg);
    assert_eq!(f.disk.as_ref().map(|d| d.free_bytes), Some(5 << 30));
    let cfg = f.file("/etc/rancher/k3s/config.yaml");
    assert_eq!(cfg.sha256.as_deref(), Some("abc"));
    assert_eq!(cfg.mode, Some(0o600));
    assert_eq!(
        f.file("/etc/rancher/k3s/registries.yaml"),
        FileFact::default()
    );
    assert_eq!(f.file("/not/requested"), FileFact::default());
    let bin = &f.binaries[&PathBuf::from("/usr/local/bin/k3s")];
    assert_eq!(
        bin.version_line.as_deref(),
        Some("k3s version v1.33.5+k3s1 (abc123)")
    );
    let server = &f.units["k3s.service"];
    assert!(server.present() && server.active() && server.enabled());
    assert_eq!(server.active_since, Some(1763690100));
    let agent = &f.units["k3s-agent.service"];
    assert!(!agent.present() && !agent.active() && !agent.enabled());
}

#[test]
fn truncated_output_is_an_error() {
    let cut = SAMPLE.replace("end\n", "");
    let err = parse_facts(&cut, 0).expect_err("no end");
    assert!(err.detail.contains("ended early"));
}

#[test]
fn bad_numbers_name_their_line() {
    let bad = "clock\tsoon\nend\n";
    let err = parse_facts(bad, 0).expect_err("bad clock");
    assert_eq!(err.line, 1);
    assert!(err.detail.contains("clock"));
}

#[tokio::test]
async fn the_script_reports_this_machine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    fs_err::write(d.join("config.yaml"), "a: 1\n").expect("write");
    fs_err::create_dir(d.join("manifests")).expect("mkdir");
    fs_err::write(d.join("manifests/k3sctl-one.yaml"), "x").expect("write");
    fs_err::write(d.join("manifests/other.yaml"), "y").expect("write");
    let bin = d.join("fake-k3s");
    fs_err::write(
        &bin,
        "#!/bin/sh\necho 'k3s version v1.34.3+k3s1 (deadbeef)'\necho 'go version go1.24'\n",
    )
    .expect("write");
    std::process::Command::new("chmod")
        .arg("755")
        .arg(&bin)
        .status()
        .expect("chmod");
    let req = FactsRequest {
        files: vec![d.join("config.yaml"), d.join("absent.yaml")],
        globs: vec![(d.join("manifests"), "k3sctl-*.yaml".into())],
        binaries: vec![bin.clone(), d.join("no-such-binary")],
        units: vec!["k3sctl-test-none.service".into()],
        disk_path: Some(d.join("does/not/exist/yet")),
    };
    let t = LocalTransport::new("local");
    let f = gather_facts(&t, &req, Duration::from_secs(30))
        .await
        .expect("facts");
    assert!(!f.os_id.is_empty());
    assert!(!f.machine.is_empty());
    assert_eq!(f.uid, 0);
    assert!(f.clock_offset().abs() <= 2, "{}", f.clock_offset());
    let hostname = fs_err::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    assert_eq!(f.hostname, hostname.trim());
    let cfg = f.file(d.join("config.yaml"));
    assert_eq!(cfg.sha256, Some(sha256_hex(b"a: 1\n")));
    assert_eq!(cfg.mode, Some(0o644));
    assert!(cfg.mtime.is_some());
    assert_eq!(f.file(d.join("absent.yaml")), FileFact::default());
    assert!(f.files.contains_key(&d.join("manifests/k3sctl-one.yaml")));
    assert!(!f.files.contains_key(&d.join("manifests/other.yaml")));
    assert_eq!(
        f.binaries[&bin].version_line.as_deref(),
        Some("k3s version v1.34.3+k3s1 (deadbeef)")
    );
    assert_eq!(f.binaries[&d.join("no-such-binary")], BinaryFact::default());
    assert!(!f.units["k3sctl-test-none.service"].active());
    let disk = f.disk.expect("disk measured");
    assert_eq!(disk.path, d.to_path_buf(), "nearest existing ancestor");
    assert!(disk.free_bytes > 0);
}
