//! Server behaviour: first start files, kubeconfig, sd_notify, restart, token, config files,
//! manifests, registries, certificate expiry and rotation.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{Cluster, cert_events, server_token, wait_for};

#[test]
fn first_start_writes_token_kubeconfig_and_notifies_systemd() {
    let c = Cluster::new();
    let mut s = c.server(
        "s1",
        "v1.33.5+k3s1",
        &[
            "--write-kubeconfig-mode",
            "0644",
            "--tls-san",
            "api.example.com",
        ],
    );
    let sock_path = c.dir.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).expect("bind notify socket");
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    s.env
        .push(("NOTIFY_SOCKET".into(), sock_path.display().to_string()));
    s.start();
    let mut buf = [0u8; 64];
    let n = sock.recv(&mut buf).expect("READY=1 from the server");
    assert_eq!(&buf[..n], b"READY=1");
    // READY=1 comes only once the API serves.
    let kc = s.path("/etc/rancher/k3s/k3s.yaml");
    assert_eq!(c.kubectl_ok(&kc, &["get", "--raw", "/readyz"]), "ok");
    assert_eq!(
        fs_err::metadata(&kc)
            .expect("kubeconfig")
            .permissions()
            .mode()
            & 0o777,
        0o644
    );
    let kubeconfig = fs_err::read_to_string(&kc).expect("read");
    assert!(
        kubeconfig.contains(&format!("server: https://127.0.0.1:{}", c.port)),
        "{kubeconfig}"
    );
    assert!(
        kubeconfig.contains("name: default") && kubeconfig.contains("current-context: default")
    );

    let token = server_token(&s);
    let (hash, rest) = token
        .strip_prefix("K10")
        .and_then(|t| t.split_once("::"))
        .expect("secure token");
    assert!(rest.starts_with("server:"));
    let ca = fs_err::read(s.path("/var/lib/rancher/k3s/server/tls/server-ca.crt")).expect("ca");
    assert_eq!(hash, k3s_sim::token::ca_hash(&ca));
    let tokdir = s.path("/var/lib/rancher/k3s/server");
    for link in ["node-token", "agent-token"] {
        assert_eq!(
            fs_err::read_link(tokdir.join(link))
                .expect("symlink")
                .to_str(),
            Some("token")
        );
    }
    assert_eq!(
        fs_err::metadata(tokdir.join("token"))
            .expect("token")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    for path in [
        "/livez",
        "/version",
        "/api",
        "/apis",
        "/api/v1",
        "/apis/apps/v1",
        "/apis/policy/v1",
        "/apis/policy/v1beta1",
        "/apis/helm.cattle.io/v1",
    ] {
        c.kubectl_ok(&kc, &["get", "--raw", path]);
    }
    // Packaged traefik: a LoadBalancer Service that ServiceLB gives the node's address, and an
    // IngressClass carrying Helm's ownership metadata.
    let lb = wait_for(
        "traefik load balancer address",
        Duration::from_secs(20),
        || {
            let ip = c.kubectl_ok(
                &kc,
                &[
                    "get",
                    "svc",
                    "traefik",
                    "-n",
                    "kube-system",
                    "-o",
                    "jsonpath={.status.loadBalancer.ingress[*].ip}",
                ],
            );
            (!ip.is_empty()).then_some(ip)
        },
    );
    assert_eq!(lb, "127.0.0.1");
    let owner = c.kubectl_ok(
        &kc,
        &[
            "get",
            "ingressclass",
            "traefik",
            "-o",
            "jsonpath={.metadata.annotations.meta\\.helm\\.sh/release-name}",
        ],
    );
    assert_eq!(owner, "traefik");
    let version = c.kubectl_ok(&kc, &["version", "--short"]);
    assert!(
        version.contains("Server Version: v1.33.5+k3s1"),
        "{version}"
    );

    let serving = fs_err::read_to_string(
        s.path("/var/lib/rancher/k3s/server/tls/serving-kube-apiserver.crt"),
    )
    .expect("cert");
    let (_, _, sans) = k3s_sim::certs::inspect(&serving).expect("parse");
    for want in [
        "127.0.0.1",
        "localhost",
        "s1",
        "api.example.com",
        "kubernetes.default.svc.cluster.local",
    ] {
        assert!(
            sans.iter().any(|x| x == want),
            "{want} missing from {sans:?}"
        );
    }
    s.stop();
}

#[test]
fn restart_keeps_objects_and_a_different_token_is_refused() {
    let c = Cluster::new();
    let mut s = c.server("s1", "v1.33.5+k3s1", &["--token", "first-secret"]);
    s.start();
    let kc = c.wait_ready(&mut s);
    c.kubectl_ok(&kc, &["create", "namespace", "apps"]);
    c.kubectl_ok(
        &kc,
        &[
            "create",
            "configmap",
            "cfg",
            "-n",
            "apps",
            "--from-literal=k=v",
        ],
    );
    c.kubectl_ok(&kc, &["label", "node", "s1", "kept=yes"]);
    s.stop();

    // Restart as an upgrade: same data, a newer binary.
    s.binary = c.binary("v1.34.1+k3s1");
    s.start();
    let kc = c.wait_ready(&mut s);
    let version = c.kubectl_ok(
        &kc,
        &[
            "get",
            "node",
            "s1",
            "-o",
            "jsonpath={.status.nodeInfo.kubeletVersion}",
        ],
    );
    assert_eq!(version, "v1.34.1+k3s1");
    assert_eq!(
        c.kubectl_ok(
            &kc,
            &[
                "get",
                "configmap",
                "cfg",
                "-n",
                "apps",
                "-o",
                "jsonpath={.data.k}"
            ]
        ),
        "v"
    );
    assert_eq!(
        c.kubectl_ok(
            &kc,
            &[
                "get",
                "node",
                "s1",
                "-o",
                "jsonpath={.metadata.labels.kept}"
            ]
        ),
        "yes"
    );
    s.stop();

    // Without --token the server reuses server/token.
    let mut again = c.server("s1", "v1.33.5+k3s1", &[]);
    again.start();
    c.wait_ready(&mut again);
    again.stop();

    let mut wrong = c.server("s1", "v1.33.5+k3s1", &["--token", "other-secret"]);
    wrong.start();
    let code = wrong
        .wait_exit(Duration::from_secs(20))
        .expect("server with wrong token exits");
    assert_ne!(code, 0);
    assert!(
        wrong
            .log()
            .contains("bootstrap data already found and encrypted with different token"),
        "{}",
        wrong.log()
    );
}

#[test]
fn config_files_merge_and_registries_and_manifests_apply() {
    let c = Cluster::new();
    let mut s = c.server("s1", "v1.33.5+k3s1", &["--node-label", "from=cli"]);
    let etc = s.path("/etc/rancher/k3s");
    fs_err::create_dir_all(etc.join("config.yaml.d")).expect("mkdir");
    fs_err::write(etc.join("config.yaml"), "node-label: [base=1]\ndisable: [traefik]\nwrite-kubeconfig-mode: \"0640\"\nnot-a-flag: 1\n").expect("write");
    fs_err::write(
        etc.join("config.yaml.d/10-more.yaml"),
        "node-taint+: [\"dedicated=infra:NoSchedule\"]\ndisable+: [metrics-server]\n",
    )
    .expect("write");
    fs_err::write(
        etc.join("registries.yaml"),
        "mirrors:\n  docker.io:\n    endpoint: [\"http://zot.zot.svc.cluster.local:5000\"]\n",
    )
    .expect("write");
    s.start();
    let kc = c.wait_ready(&mut s);
    // CLI node-label adds to the config's list (k3s puts config args before the command line);
    // drop-in `key+:` appends work for taints and disable.
    let labels = c.kubectl_ok(
        &kc,
        &["get", "node", "s1", "-o", "jsonpath={.metadata.labels}"],
    );
    assert!(
        labels.contains("\"from\":\"cli\"") && labels.contains("\"base\":\"1\""),
        "{labels}"
    );
    let taints = c.kubectl_ok(
        &kc,
        &["get", "node", "s1", "-o", "jsonpath={.spec.taints[*].key}"],
    );
    assert_eq!(taints, "dedicated");
    let deploys = c.kubectl_ok(&kc, &["get", "deploy", "-n", "kube-system", "-o", "name"]);
    assert!(
        deploys.contains("coredns")
            && !deploys.contains("traefik")
            && !deploys.contains("metrics-server"),
        "{deploys}"
    );
    assert_eq!(
        fs_err::metadata(&kc).expect("kc").permissions().mode() & 0o777,
        0o640
    );
    let args = c.kubectl_ok(
        &kc,
        &[
            "get",
            "node",
            "s1",
            "-o",
            "jsonpath={.metadata.annotations.k3s\\.io/node-args}",
        ],
    );
    assert!(
        args.contains("\"--disable\",\"traefik\"")
            && args.contains("\"--node-label\",\"from=cli\""),
        "{args}"
    );
    let hosts = fs_err::read_to_string(
        s.path("/var/lib/rancher/k3s/agent/etc/containerd/certs.d/docker.io/hosts.toml"),
    )
    .expect("hosts.toml");
    assert!(
        hosts.contains("http://zot.zot.svc.cluster.local:5000/v2"),
        "{hosts}"
    );

    let manifest = s.path("/var/lib/rancher/k3s/server/manifests/k3sctl-traefik-config.yaml");
    fs_err::write(&manifest, "apiVersion: helm.cattle.io/v1\nkind: HelmChartConfig\nmetadata:\n  name: traefik\n  namespace: kube-system\nspec:\n  valuesContent: |\n    ports: {web: {expose: true}}\n").expect("write");
    let values = wait_for("HelmChartConfig applied", Duration::from_secs(15), || {
        let out = c.kubectl(
            &kc,
            &[
                "get",
                "helmchartconfigs.helm.cattle.io",
                "traefik",
                "-n",
                "kube-system",
                "-o",
                "jsonpath={.spec.valuesContent}",
            ],
        );
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).to_string())
    });
    assert!(values.contains("expose: true"), "{values}");
    s.stop();
}

#[test]
fn expired_client_certificates_fail_with_the_x509_error_until_rotated() {
    let c = Cluster::new();
    let mut s = c.server("s1", "v1.33.5+k3s1", &[]);
    s.env.push(("K3S_SIM_CERT_LIFETIME".into(), "8s".into()));
    s.env.push(("K3S_SIM_CERT_CHECK".into(), "1s".into()));
    s.start();
    let kc = c.wait_ready(&mut s);
    c.kubectl_ok(&kc, &["get", "nodes"]);
    // K3s's certificate monitor: certificates within the renewal window are a Warning Event on
    // the Node, repeated looks counted on the same Event.
    let warned = wait_for(
        "a counted CertificateExpirationWarning",
        Duration::from_secs(5),
        || {
            cert_events(&c, &kc, "s1", "CertificateExpirationWarning")
                .into_iter()
                .find(|(_, _, count)| *count >= 2)
        },
    );
    assert_eq!(warned.0, "Warning");
    assert!(
        warned
            .1
            .starts_with("Node certificates require attention - restart k3s on this node")
            && warned.1.contains(
                "admin/client-admin.crt: certificate CN=system:admin will expire within 120 days"
            ),
        "{}",
        warned.1
    );
    assert_eq!(cert_events(&c, &kc, "s1", "CertificateExpirationOK"), []);
    let exported = c.dir.path().join("exported.yaml");
    fs_err::copy(&kc, &exported).expect("export");
    let err = wait_for("certificates to expire", Duration::from_secs(30), || {
        let out = c.kubectl(&exported, &["get", "nodes"]);
        (!out.status.success()).then(|| String::from_utf8_lossy(&out.stderr).to_string())
    });
    assert!(
        err.contains("x509: certificate has expired or is not yet valid"),
        "{err}"
    );

    let data_dir = s.path("/var/lib/rancher/k3s");
    let (binary, root) = (s.binary.clone(), s.root.clone());
    let rotate = || {
        std::process::Command::new(&binary)
            .args([
                "certificate",
                "rotate",
                "--data-dir",
                "/var/lib/rancher/k3s",
            ])
            .env("K3S_SIM_ROOT", &root)
            .env_remove("K3S_SIM_CERT_LIFETIME")
            .output()
            .expect("rotate")
    };
    let busy = rotate();
    assert!(
        !busy.status.success(),
        "rotate must refuse while the server runs"
    );
    assert!(String::from_utf8_lossy(&busy.stderr).contains("stop it before rotating"));
    s.stop();
    let done = rotate();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(
        data_dir
            .join("server")
            .read_dir()
            .expect("ls")
            .any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("tls-")))
    );
    // K3s's rotate deletes the certificates (after the backup); the next start issues them.
    assert!(
        !data_dir.join("server/tls/client-admin.crt").exists(),
        "rotate deletes the admin certificate"
    );
    s.env.clear();
    s.start();
    c.wait_ready(&mut s);
    // Renewed for a year: the first look after this start says so.
    let ok = wait_for("CertificateExpirationOK", Duration::from_secs(5), || {
        cert_events(&c, &kc, "s1", "CertificateExpirationOK").pop()
    });
    assert_eq!(ok.0, "Normal");
    let check = std::process::Command::new(&s.binary)
        .args(["certificate", "check", "--data-dir", "/var/lib/rancher/k3s"])
        .env("K3S_SIM_ROOT", &s.root)
        .output()
        .expect("check");
    // The text format is K3s's log lines, on stderr.
    let said = String::from_utf8_lossy(&check.stderr);
    assert!(
        said.contains("client-admin.crt: certificate system:admin (ClientAuth) is ok"),
        "{said}"
    );
    // The old export still holds the expired admin certificate: the API refuses it.
    // kubectl saw the serving certificate expire (sub-second clock); the server checks client
    // certificates with whole seconds, so the old admin certificate is refused once it is past
    // its second too: asked again until then, within a bound.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let old = c.kubectl(&exported, &["get", "nodes"]);
        let said = String::from_utf8_lossy(&old.stderr).into_owned();
        if !old.status.success() {
            assert!(said.contains("Unauthorized"), "{said}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "an expired admin certificate was still accepted 10 s later"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    fs_err::copy(&kc, &exported).expect("re-export");
    assert!(c.kubectl_ok(&exported, &["get", "nodes"]).contains("s1"));
    s.stop();
}
