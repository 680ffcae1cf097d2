//! End to end on the lab: certificate and token rotation on an HA cluster (3 servers on the
//! stand-in's embedded etcd + 1 agent, a fifth host joining later), one 5-host lab, in the order
//! that lets the 2-minute certificates run out while the other scenarios go on:
//! 1. the first server issues 2-minute certificates (the stand-in's `K3S_SIM_CERT_LIFETIME` in its
//!    service environment), apply;
//! 2. `token rotate`: every node restarted one at a time with the new token (etcdctl referee:
//!    never two members down), the token never printed, the snapshot caveat said, every node
//!    Ready;
//! 3. `certs rotate`: servers one at a time (the referee sees each member go down alone), then the
//!    agent; every certificate file new; the export rewritten;
//! 4. while the first server's new certificates run out: a new agent joins with the new token
//!    (apply of the 5-host spec); `check --wait 60s` passes right after, a healthy check's time
//!    is printed, a stopped agent fails it by name;
//! 5. `certs check` shows the first server's and the export's certificates expiring; once they
//!    have expired, kubectl with the export fails; `kubeconfig` says so (exit 1); `kubeconfig
//!    --rotate-if-expired` rotates that server only and kubectl works again;
//! 6. with K3s stopped on the third server (its Node still Ready), rotating the second is
//!    refused by the quorum check and nothing changes on it;
//! 7. `k3s certificate rotate` failing on the second server: K3s is started again there, the
//!    failure reported;
//! 8. `--services`: an unknown service name is refused before anything stops; `--services
//!    api-server` on the second server renews only the API server's certificates.
//!
//! Referees: Debian's kubectl 1.20 through the export, etcdctl on a server.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "support/e2e.rs"]
mod e2e;

use e2e::{build_stand_in, k3sctl, k3sctl_unconfirmed, kube, text};
use lab::{Lab, SpecOptions};

const LAB: &str = "e2e-rot";
/// Copies of a server's etcd client credentials for the referee (a rotation deletes and
/// reissues the originals; the copies stay valid: same CA).
const WATCH_DIR: &str = "/root/etcd-watch";
const HEALTH_LOG: &str = "/root/etcd-health.log";
const HEALTH_STOP: &str = "/root/etcd-health.stop";

/// `name -> Ready?` from kubectl.
fn ready_nodes(kubeconfig: &Path) -> Vec<(String, bool)> {
    let (ok, out) = kube(kubeconfig, &["get", "nodes", "--no-headers"]);
    assert!(ok, "kubectl get nodes: {out}");
    out.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.to_string(), f.next()? == "Ready"))
        })
        .collect()
}

fn wait_all_ready(kubeconfig: &Path, names: &[&str]) {
    let start = Instant::now();
    loop {
        let nodes = ready_nodes(kubeconfig);
        if names
            .iter()
            .all(|n| nodes.iter().any(|(m, r)| m == n && *r))
        {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "not all Ready: {nodes:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Starts `etcdctl endpoint health` in a loop on `on` with copied credentials.
fn start_referee(lab: &Lab, on: &str, endpoints: &[String]) {
    let cmd = format!(
        "mkdir -p {WATCH_DIR} && cp /var/lib/rancher/k3s/server/tls/etcd/server-ca.crt \
         /var/lib/rancher/k3s/server/tls/etcd/client.crt \
         /var/lib/rancher/k3s/server/tls/etcd/client.key {WATCH_DIR}/ && \
         rm -f {HEALTH_STOP} {HEALTH_LOG}; setsid sh -c 'while [ ! -f {HEALTH_STOP} ]; do \
         ETCDCTL_API=3 etcdctl --cacert {WATCH_DIR}/server-ca.crt --cert {WATCH_DIR}/client.crt \
         --key {WATCH_DIR}/client.key --dial-timeout=300ms --command-timeout=700ms \
         --endpoints {} endpoint health -w json 2>/dev/null; echo; sleep 0.05; done' \
         > {HEALTH_LOG} 2>&1 < /dev/null &",
        endpoints.join(",")
    );
    lab.exec(on, &cmd).expect("start the etcd referee");
}

/// Stops the loop; per sample, the endpoints that were down.
fn stop_referee(lab: &Lab, on: &str, endpoints: &[String]) -> Vec<Vec<String>> {
    lab.exec(
        on,
        &format!("touch {HEALTH_STOP}; sleep 2; cat {HEALTH_LOG}"),
    )
    .expect("stop the referee")
    .lines()
    .filter_map(|l| serde_json::from_str::<serde_json::Value>(l.trim()).ok())
    .map(|v| {
        let healthy: Vec<String> = v
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["health"].as_bool() == Some(true))
            .filter_map(|e| e["endpoint"].as_str().map(str::to_string))
            .collect();
        endpoints
            .iter()
            .filter(|e| !healthy.contains(e))
            .cloned()
            .collect()
    })
    .collect()
}

/// Never two members down in one sample; every member seen down at least once (so the referee
/// did see the restarts it judges).
fn assert_one_at_a_time(what: &str, samples: &[Vec<String>], endpoints: &[String]) {
    // A floor that only proves the referee ran: how many samples a rotation spans depends on
    // the machine's speed (44 on a quiet CI machine, 74 under load); that every member was
    // seen down below is what shows the referee watched the restarts.
    assert!(
        samples.len() >= 10,
        "{what}: too few samples: {}",
        samples.len()
    );
    let worst = samples.iter().map(Vec::len).max().unwrap_or(0);
    assert!(
        worst <= 1,
        "{what}: two or more members down at once: {:?}",
        samples.iter().filter(|s| s.len() > 1).collect::<Vec<_>>()
    );
    for e in endpoints {
        assert!(
            samples.iter().any(|s| s.contains(e)),
            "{what}: {e} never seen down ({} samples)",
            samples.len()
        );
    }
    println!(
        "{what}: {} etcd samples, at most {worst} member down",
        samples.len()
    );
}

/// sha256 of the given files on a host, one line each.
fn fingerprints(lab: &Lab, host: &str, files: &[&str]) -> String {
    lab.exec(
        host,
        &format!("cd /var/lib/rancher/k3s && sha256sum {}", files.join(" ")),
    )
    .unwrap_or_else(|e| panic!("sha256sum on {host}: {e}"))
}

/// The spec without the hosts named.
fn without_hosts(spec: &str, leave_out: &[&str]) -> String {
    let mut doc: serde_json::Value = serde_saphyr::from_str(spec).expect("spec parses");
    if let Some(hosts) = doc["spec"]["hosts"].as_array_mut() {
        hosts.retain(|h| !leave_out.iter().any(|n| h["name"].as_str() == Some(n)));
    }
    serde_saphyr::to_string(&doc).expect("spec renders")
}

fn run(args: &[&str]) -> (Option<i32>, String, Duration) {
    let began = Instant::now();
    let out = k3sctl(args);
    let took = began.elapsed();
    let all = text(&out);
    println!(
        "$ k3sctl {} ({:.1}s)\n{all}",
        args.join(" "),
        took.as_secs_f64()
    );
    (out.status.code(), all, took)
}

/// The export's client certificate's notAfter, Unix seconds (openssl on this machine).
fn export_not_after(kubeconfig: &Path) -> i64 {
    let text = fs_err::read_to_string(kubeconfig).expect("export");
    let doc: serde_json::Value = serde_saphyr::from_str(&text).expect("export parses");
    let data = doc["users"][0]["user"]["client-certificate-data"]
        .as_str()
        .expect("client cert");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo {data} | base64 -d | openssl x509 -noout -enddate | cut -d= -f2 | \
             xargs -I{{}} date -d {{}} +%s"
        ))
        .output()
        .expect("openssl runs");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("enddate: {}", text_of(&out)))
}

fn text_of(out: &std::process::Output) -> String {
    text(out)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[test]
fn rotations_keep_quorum_and_restore_access() {
    lab::require_root().expect("the lab needs root");
    build_stand_in();
    let began = Instant::now();
    let lab = Lab::boot(LAB, 5).expect("lab boots");
    let hosts = lab.hosts();
    let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    let (servers, first, agent, newcomer) = (&names[..3], names[0], names[3], names[4]);
    let endpoints: Vec<String> = hosts
        .iter()
        .take(3)
        .map(|h| format!("https://{}:2379", h.address))
        .collect();
    let spec5 = lab.dir().join("cluster5.yaml");
    lab.write_spec(
        &spec5,
        &SpecOptions {
            servers: Some(3),
            ..SpecOptions::default()
        },
    )
    .expect("spec");
    let spec5_text = fs_err::read_to_string(&spec5).expect("spec");
    let spec4 = lab.dir().join("cluster.yaml");
    fs_err::write(&spec4, without_hosts(&spec5_text, &[newcomer])).expect("spec4");
    let (s4, s5) = (
        spec4.to_string_lossy().into_owned(),
        spec5.to_string_lossy().into_owned(),
    );
    let kubeconfig = lab.dir().join("kubeconfig.yaml");

    // --- 1. The first server issues 2-minute certificates; apply. ---
    lab.exec(
        first,
        "mkdir -p /etc/systemd/system/k3s.service.d && printf '[Service]\\nEnvironment=\
         K3S_SIM_CERT_LIFETIME=2m\\n' > /etc/systemd/system/k3s.service.d/lifetime.conf",
    )
    .expect("2-minute certificates");
    let (code, out, took) = run(&["apply", "-c", &s4]);
    assert_eq!(code, Some(0), "apply: {out}");
    println!("apply 3 servers + 1 agent: {:.1}s", took.as_secs_f64());
    wait_all_ready(&kubeconfig, &names[..4]);

    // Without a terminal and without --yes: refused, nothing changed.
    let before = lab
        .exec(first, "sha256sum /var/lib/rancher/k3s/server/token")
        .expect("token hash");
    let refused = k3sctl_unconfirmed(&["token", "rotate", "-c", &s4]);
    let (code, out) = (refused.status.code(), text(&refused));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("no terminal") && out.contains("--yes"),
        "{out}"
    );
    assert_eq!(
        lab.exec(first, "sha256sum /var/lib/rancher/k3s/server/token")
            .expect("token hash"),
        before
    );

    // --- 2. token rotate. ---
    let env_token = |host: &str, unit: &str| {
        lab.exec(
            host,
            &format!("sed -n 's/^K3S_TOKEN=//p' /etc/systemd/system/{unit}.service.env"),
        )
        .expect("env file")
        .trim()
        .trim_matches('"')
        .to_string()
    };
    let old_token = env_token(agent, "k3s-agent");
    assert!(old_token.starts_with("K10"), "agent env: {old_token}");
    start_referee(&lab, servers[2], &endpoints);
    let (code, out, took) = run(&["token", "rotate", "--yes", "-c", &s4]);
    let samples = stop_referee(&lab, servers[2], &endpoints);
    assert_eq!(code, Some(0), "token rotate: {out}");
    println!("token rotate (4 nodes): {:.1}s", took.as_secs_f64());
    let new_token = lab
        .exec(first, "cat /var/lib/rancher/k3s/server/token")
        .expect("token")
        .trim()
        .to_string();
    assert_ne!(new_token, old_token, "the token changed");
    let password = new_token.rsplit(':').next().unwrap_or_default();
    assert!(
        !password.is_empty() && !out.contains(password),
        "token shown: {out}"
    );
    assert!(!out.contains(old_token.rsplit(':').next().unwrap_or("x")));
    assert!(
        out.contains(
            "snapshots taken before this rotation can only be restored with the old token"
        ),
        "{out}"
    );
    for (host, unit) in [
        (servers[0], "k3s"),
        (servers[1], "k3s"),
        (servers[2], "k3s"),
        (agent, "k3s-agent"),
    ] {
        assert_eq!(env_token(host, unit), new_token, "{host}'s env file");
        let other = lab
            .exec(
                host,
                "cat /var/lib/rancher/k3s/server/token 2>/dev/null; true",
            )
            .expect("token");
        assert!(
            other.is_empty() || other.trim() == new_token,
            "{host}: {other}"
        );
    }
    assert_one_at_a_time("token rotate", &samples, &endpoints);
    wait_all_ready(&kubeconfig, &names[..4]);

    // --- 3. certs rotate: servers one at a time, then the agents, then the export. ---
    let server_files = [
        "server/tls/serving-kube-apiserver.crt",
        "server/tls/client-admin.crt",
        "server/tls/etcd/peer-server-client.crt",
        "agent/client-kubelet.crt",
    ];
    let before: Vec<String> = servers
        .iter()
        .map(|s| fingerprints(&lab, s, &server_files))
        .collect();
    let agent_before = fingerprints(&lab, agent, &["agent/client-kubelet.crt"]);
    let export_before = fs_err::read_to_string(&kubeconfig).expect("export");
    start_referee(&lab, servers[2], &endpoints);
    let (code, out, took) = run(&["certs", "rotate", "--yes", "-c", &s4]);
    let samples = stop_referee(&lab, servers[2], &endpoints);
    assert_eq!(code, Some(0), "certs rotate: {out}");
    println!("certs rotate (4 nodes): {:.1}s", took.as_secs_f64());
    assert_one_at_a_time("certs rotate", &samples, &endpoints);
    for (s, old) in servers.iter().zip(&before) {
        let new = fingerprints(&lab, s, &server_files);
        for (a, b) in old.lines().zip(new.lines()) {
            assert_ne!(a, b, "{s}: a certificate was not renewed");
        }
    }
    assert_ne!(
        fingerprints(&lab, agent, &["agent/client-kubelet.crt"]),
        agent_before
    );
    // Servers in spec order, then the agents.
    let order: Vec<usize> = names[..4]
        .iter()
        .map(|n| {
            out.find(&format!("{n}: certificates rotated"))
                .unwrap_or_else(|| panic!("{n} not reported rotated: {out}"))
        })
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "order: {order:?}");
    assert_ne!(
        fs_err::read_to_string(&kubeconfig).expect("export"),
        export_before
    );
    wait_all_ready(&kubeconfig, &names[..4]);

    // --- 4. While the 2-minute certificates run out: a new agent joins with the new token.
    // A new agent joins with the new token (read live from a server, as apply always does).
    let (code, out, took) = run(&["apply", "-c", &s5]);
    assert_eq!(code, Some(0), "apply with the new agent: {out}");
    println!("new agent joined: {:.1}s", took.as_secs_f64());
    assert_eq!(env_token(newcomer, "k3s-agent"), new_token);
    wait_all_ready(&kubeconfig, &names);

    // `check` on the 5-host HA cluster right after that apply: `--wait 60s` passes; then how long
    // a healthy check takes; a stopped agent: exit 1 naming it.
    let (code, out, took) = run(&["check", "--wait", "60s", "-c", &s5]);
    assert_eq!(code, Some(0), "check --wait after apply: {out}");
    println!("check --wait 60s after apply: {:.2}s", took.as_secs_f64());
    let mut figures = Vec::new();
    for _ in 0..3 {
        let began = Instant::now();
        let out = k3sctl(&["check", "-c", &s5]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        figures.push(began.elapsed().as_millis());
    }
    println!("healthy check, 5 hosts (ms): {figures:?}");
    lab.exec(newcomer, "systemctl stop k3s-agent")
        .expect("stop agent");
    let (code, out, _) = run(&["check", "-c", &s5]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("UNHEALTHY:") && l.contains(&format!("service {newcomer}"))),
        "{out}"
    );
    lab.exec(newcomer, "systemctl start k3s-agent")
        .expect("start agent");
    wait_all_ready(&kubeconfig, &names);

    // --- 5. 2-minute certificates: seen expiring, expired, restored. ---
    let out = k3sctl(&["-o", "json", "certs", "check", "-c", &s5]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("certs JSON");
    let rows = report["certificates"].as_array().expect("rows");
    let admin = rows
        .iter()
        .find(|r| r["owner"]["host"] == first && r["file"] == "server/tls/client-admin.crt")
        .unwrap_or_else(|| panic!("{first}'s admin certificate: {report:#}"));
    assert_eq!(admin["days_left"], 0, "{admin:#}");
    assert_eq!(admin["renews_at_start"], true, "{admin:#}");
    let export_row = rows
        .iter()
        .find(|r| r["owner"]["kind"] == "export")
        .unwrap_or_else(|| panic!("export row: {report:#}"));
    assert_eq!(export_row["days_left"], 0, "{export_row:#}");
    let other = rows
        .iter()
        .find(|r| r["owner"]["host"] == servers[1] && r["file"] == "server/tls/client-admin.crt")
        .expect("second server's admin certificate");
    assert!(other["days_left"].as_i64().unwrap_or(0) > 300, "{other:#}");
    let (ok, said) = kube(&kubeconfig, &["get", "nodes"]);
    assert!(ok, "kubectl before expiry: {said}");
    // K3s's certificate monitor (the stand-in's too) said so on the Node: a Warning Event on
    // the first server, whose certificates live 2 minutes; the second server's are fine.
    let (ok, said) = kube(
        &kubeconfig,
        &["get", "events", "-n", "default", "-o", "json"],
    );
    assert!(ok, "kubectl get events: {said}");
    let events: serde_json::Value = serde_json::from_str(&said).expect("events JSON");
    let reasons_on = |node: &str| -> Vec<String> {
        events["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| {
                e["involvedObject"]["kind"] == "Node" && e["involvedObject"]["name"] == node
            })
            .filter_map(|e| e["reason"].as_str().map(str::to_string))
            .collect()
    };
    assert!(
        reasons_on(first).contains(&"CertificateExpirationWarning".to_string()),
        "{first}: {:?}",
        reasons_on(first)
    );
    assert!(
        reasons_on(servers[1]).contains(&"CertificateExpirationOK".to_string()),
        "{}: {:?}",
        servers[1],
        reasons_on(servers[1])
    );

    let expiry = export_not_after(&kubeconfig);
    let wait = (expiry - now() + 3).max(0);
    println!("waiting {wait}s for the 2-minute certificates to expire");
    std::thread::sleep(Duration::from_secs(wait as u64));
    let (ok, said) = kube(&kubeconfig, &["get", "nodes"]);
    assert!(!ok, "kubectl with an expired export must fail: {said}");
    println!("kubectl with the expired export: {said}");
    let (code, out, _) = run(&["kubeconfig", "-c", &s5]);
    assert_eq!(code, Some(1), "kubeconfig with expired certificates: {out}");
    assert!(
        out.contains("EXPIRED") && out.contains("--rotate-if-expired"),
        "{out}"
    );
    let (code, out, took) = run(&["kubeconfig", "--rotate-if-expired", "--yes", "-c", &s5]);
    assert_eq!(code, Some(0), "kubeconfig --rotate-if-expired: {out}");
    println!("kubeconfig --rotate-if-expired: {:.1}s", took.as_secs_f64());
    assert!(
        out.contains(&format!("{first}: certificates rotated")),
        "{out}"
    );
    for s in &servers[1..] {
        assert!(
            !out.contains(&format!("{s}: certificates rotated")),
            "{s} left alone: {out}"
        );
    }
    let (ok, said) = kube(&kubeconfig, &["get", "nodes"]);
    assert!(ok, "kubectl after --rotate-if-expired: {said}");

    // The export holds the first server's 2-minute certificate again: from here on, the
    // referee goes through the second server's own admin kubeconfig (a year's certificates).
    let (s2, s3) = (servers[1], servers[2]);
    let s2_kubeconfig = lab.dir().join("s2-admin.yaml");
    let admin = lab
        .exec(s2, "cat /etc/rancher/k3s/k3s.yaml")
        .expect("s2's admin kubeconfig")
        .replace(
            "https://127.0.0.1:6443",
            &format!("https://{}:6443", hosts[1].address),
        );
    fs_err::write(&s2_kubeconfig, admin).expect("write s2's kubeconfig");
    wait_all_ready(&s2_kubeconfig, &names);
    let is_active = |host: &str| {
        lab.exec(host, "systemctl is-active k3s; true")
            .expect("systemctl is-active")
            .trim()
            .to_string()
    };

    // --- 6. The rotation's quorum check counts a server whose K3s is stopped although its
    // Node still says Ready (for the node-monitor grace period): rotating another server is
    // refused and nothing changes on it. Without the check, s2 would go down too (2 of 3).
    let s2_before = fingerprints(&lab, s2, &server_files);
    lab.exec(s3, "systemctl stop k3s").expect("stop K3s on s3");
    let (code, out, _) = run(&["certs", "rotate", "--node", s2, "--yes", "-c", &s5]);
    assert_eq!(code, Some(1), "rotation with s3 down: {out}");
    assert!(
        out.contains(&format!("{s2}: FAILED at quorum"))
            && out.contains(&format!("server {s3}: its K3s service is not running")),
        "{out}"
    );
    assert_eq!(is_active(s2), "active", "{s2} must not have been stopped");
    assert_eq!(
        fingerprints(&lab, s2, &server_files),
        s2_before,
        "refused: nothing rotated on {s2}"
    );
    lab.exec(s3, "systemctl start k3s")
        .expect("start K3s on s3");
    wait_all_ready(&s2_kubeconfig, &names);

    // --- 7. `k3s certificate rotate` fails on s2 (a wrapper in front of the binary refuses
    // that one subcommand): K3s is started again with its old certificates, the failure is
    // reported with what the command said, and the roll stops there.
    lab.exec(
        s2,
        "mv /usr/local/bin/k3s /usr/local/bin/k3s.real && printf '%s\\n' '#!/bin/bash' \
         'if [ \"$1\" = certificate ]; then echo \"rotate: injected failure\" >&2; exit 1; fi' \
         'exec -a \"$0\" /usr/local/bin/k3s.real \"$@\"' > /usr/local/bin/k3s && \
         chmod 755 /usr/local/bin/k3s",
    )
    .expect("wrap the binary");
    let (code, out, _) = run(&["certs", "rotate", "--node", s2, "--yes", "-c", &s5]);
    lab.exec(s2, "mv /usr/local/bin/k3s.real /usr/local/bin/k3s")
        .expect("unwrap the binary");
    assert_eq!(code, Some(1), "a failed rotate command: {out}");
    assert!(
        out.contains(&format!("{s2}: FAILED at rotate-certificates"))
            && out.contains("rotate: injected failure")
            && out.contains("started again with its old certificates"),
        "{out}"
    );
    assert_eq!(is_active(s2), "active", "K3s on {s2} started again: {out}");
    // The server's certificates are the old ones (the kubelet's client certificate is issued
    // anew at every agent start, so it is not compared).
    let server_tls = &server_files[..3];
    assert!(server_tls.iter().all(|f| f.starts_with("server/tls/")));
    assert_eq!(
        fingerprints(&lab, s2, server_tls),
        s2_before
            .lines()
            .take(3)
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
        "{s2}: no certificate rotated"
    );
    wait_all_ready(&s2_kubeconfig, &names);

    // --- 8. `--services` narrows the rotation: a name K3s does not know is refused before any
    // server is touched; `--services api-server` renews the API server's certificates on s2
    // and leaves its admin and etcd certificates as they were.
    let (code, out, _) = run(&[
        "certs",
        "rotate",
        "--node",
        s2,
        "--services",
        "apiserver",
        "--yes",
        "-c",
        &s5,
    ]);
    assert_ne!(code, Some(0), "an unknown service was accepted: {out}");
    assert!(out.contains("not a K3s service"), "{out}");
    assert_eq!(
        is_active(s2),
        "active",
        "refused: {s2} must not have been stopped"
    );
    let s2_before = fingerprints(&lab, s2, server_tls);
    let (code, out, _) = run(&[
        "certs",
        "rotate",
        "--node",
        s2,
        "--services",
        "api-server",
        "--yes",
        "-c",
        &s5,
    ]);
    assert_eq!(code, Some(0), "certs rotate --services api-server: {out}");
    let s2_after = fingerprints(&lab, s2, server_tls);
    let (old, new): (Vec<&str>, Vec<&str>) =
        (s2_before.lines().collect(), s2_after.lines().collect());
    assert!(server_tls[0].ends_with("serving-kube-apiserver.crt"));
    assert_ne!(
        old[0], new[0],
        "{s2}: the API server's serving certificate was not renewed"
    );
    assert_eq!(
        old[1..],
        new[1..],
        "{s2}: certificates of other services changed"
    );
    wait_all_ready(&s2_kubeconfig, &names);
    println!("whole test: {:.1}s", began.elapsed().as_secs_f64());
}
