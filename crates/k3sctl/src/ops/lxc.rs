//! LXC preflight and `--fix-lxc` for Proxmox containers: every problem of every container
//! reported together with the lines to add to its .conf; with the fix, k3sctl writes them (before
//! the first `[section]`, after a backup), installs the conf-kmsg unit when /dev/kmsg is
//! missing, and restarts the container with `pct reboot` — cordoned and drained first when it
//! is already a node, uncordoned once Ready again. The API is reached as `apply` reaches it
//! (`run::FailoverConnector`: the first server whose API answers), and reached again after each
//! restart, since the server it went through may be the container restarted.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use super::error::OpsError;
use crate::host::{
    ExecRequest, HostError, INSIDE_SCRIPT, LxcProblem, LxcSeverity, PctTransport, Transport,
    check_lxc, insert_lxc_lines, parse_inside, shell,
};
use crate::kube::DrainOptions;
use crate::run::{ApiConnector, ClusterApi};

/// The conf-kmsg script (the seeds' and most Proxmox guides' fix): /dev/kmsg as a link to the
/// console when missing, and `/` made rshared for mount propagation.
pub const CONF_KMSG_SCRIPT: &str = "#!/bin/sh -e\n# Managed by k3sctl (--fix-lxc): /dev/kmsg for the kubelet in an LXC container.\n\
[ -e /dev/kmsg ] || ln -s /dev/console /dev/kmsg\nmount --make-rshared /\n";
/// Where [`CONF_KMSG_SCRIPT`] goes.
pub const CONF_KMSG_SCRIPT_PATH: &str = "/usr/local/bin/conf-kmsg.sh";
/// The unit running it at boot.
pub const CONF_KMSG_UNIT: &str = "# Managed by k3sctl (--fix-lxc)\n[Unit]\nDescription=Make sure /dev/kmsg exists\n\n\
[Service]\nType=simple\nRemainAfterExit=yes\nExecStart=/usr/local/bin/conf-kmsg.sh\nTimeoutStartSec=0\n\n\
[Install]\nWantedBy=default.target\n";
/// Where [`CONF_KMSG_UNIT`] goes.
pub const CONF_KMSG_UNIT_PATH: &str = "/etc/systemd/system/conf-kmsg.service";
/// Where backups of .conf files go on the Proxmox host (outside /etc/pve, which is pmxcfs).
pub const BACKUP_DIR: &str = "/root/k3sctl-lxc-backup";

/// The problems of one container.
#[derive(Debug, Clone)]
pub struct ContainerFindings {
    /// The spec's host name.
    pub host: String,
    /// The container.
    pub vmid: u32,
    /// Its Proxmox host.
    pub node: String,
    /// Everything found.
    pub problems: Vec<LxcProblem>,
}

impl ContainerFindings {
    /// Whether apply must stop (without a fix).
    pub fn blocking(&self) -> bool {
        self.problems
            .iter()
            .any(|p| p.severity == LxcSeverity::Error)
    }

    /// The lines to add to the .conf.
    pub fn lines(&self) -> Vec<String> {
        self.problems
            .iter()
            .filter_map(|p| p.line.clone())
            .collect()
    }

    /// Whether the container is locked (nothing can be fixed then).
    pub fn locked(&self) -> bool {
        self.problems.iter().any(|p| p.what.contains("is locked"))
    }

    /// Whether /dev/kmsg is missing (the fix installs conf-kmsg).
    pub fn needs_conf_kmsg(&self) -> bool {
        self.problems
            .iter()
            .any(|p| p.what.starts_with("/dev/kmsg is missing") || p.what.contains("(not shared)"))
    }

    /// The report: every problem, then the exact lines to add and where.
    pub fn render(&self) -> String {
        let mut out = format!(
            "{} (CT {} on {}): LXC settings K3s needs:",
            self.host, self.vmid, self.node
        );
        for p in &self.problems {
            let tag = match p.severity {
                LxcSeverity::Error => "error",
                LxcSeverity::Warning => "warning",
            };
            out.push_str(&format!("\n  - {tag}: {}", p.what));
        }
        let lines = self.lines();
        if !lines.is_empty() {
            out.push_str(&format!(
                "\n  add to /etc/pve/lxc/{}.conf on {} (before any [snapshot] section), then `pct reboot {}`:",
                self.vmid, self.node, self.vmid
            ));
            for l in &lines {
                out.push_str(&format!("\n    {l}"));
            }
        }
        if self.blocking() {
            out.push_str("\n  or run apply with --fix-lxc to let k3sctl do it");
        }
        out
    }
}

/// Inspects one container: its applied configuration and facts inside.
pub async fn inspect(t: &PctTransport) -> Result<ContainerFindings, HostError> {
    let config = t.current_config().await?;
    let out = t
        .exec_checked(ExecRequest::new(INSIDE_SCRIPT).describe("LXC checks inside the container"))
        .await?;
    Ok(ContainerFindings {
        host: t.name().to_owned(),
        vmid: t.vmid(),
        node: t.node_name().to_owned(),
        problems: check_lxc(&config, &parse_inside(&out.stdout_text())),
    })
}

/// Inspects every container at once; returns those with any finding.
pub async fn inspect_all(
    containers: &BTreeMap<String, Arc<PctTransport>>,
) -> Result<Vec<ContainerFindings>, OpsError> {
    let results = join_all(containers.values().map(|t| inspect(t))).await;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(f) if !f.problems.is_empty() => found.push(f),
            Ok(_) => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(found)
    } else {
        Err(OpsError::Preflight(errors))
    }
}

/// Writes the lines into the container's .conf on its Proxmox host: refuses if the file changed
/// since it was read, keeps a backup in [`BACKUP_DIR`], replaces the file in one rename.
async fn write_conf(t: &PctTransport, lines: &[String]) -> Result<String, HostError> {
    let path = format!("/etc/pve/lxc/{}.conf", t.vmid());
    let node = t.node();
    let before = node
        .read_file(Path::new(&path))
        .await?
        .ok_or_else(|| HostError::Protocol {
            host: t.name().to_owned(),
            what: format!("reading {path} on {}", t.node_name()),
            detail: "the file does not exist".into(),
        })?;
    let before_text = String::from_utf8_lossy(&before).into_owned();
    let after = insert_lxc_lines(&before_text, lines);
    let old_sha = crate::host::hash::sha256_hex(&before);
    let new_sha = crate::host::hash::sha256_hex(after.as_bytes());
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let backup = format!("{BACKUP_DIR}/{}.conf.{stamp}", t.vmid());
    let script = format!(
        r#"set -eu
f={f}; b={b}; tmp="$f.tmp.$$"
[ "$(sha256sum < "$f" | cut -d' ' -f1)" = {old} ] || {{ echo "k3sctl: $f changed while k3sctl was reading it; re-run" >&2; exit 66; }}
mkdir -p {dir}; cp "$f" "$b"
cat > "$tmp"
[ "$(sha256sum < "$tmp" | cut -d' ' -f1)" = {new} ] || {{ rm -f "$tmp"; echo "k3sctl: corrupted upload" >&2; exit 65; }}
mv "$tmp" "$f"
"#,
        f = shell::quote(&path),
        b = shell::quote(&backup),
        dir = shell::quote(BACKUP_DIR),
        old = old_sha,
        new = new_sha,
    );
    node.exec_checked(
        ExecRequest::new(script)
            .stdin(after.into_bytes())
            .sudo(true)
            .describe(format!("writing {path} on {}", t.node_name())),
    )
    .await?;
    Ok(backup)
}

/// Installs the conf-kmsg script and unit in the container (files k3sctl owns: rewritten when
/// they differ) and enables the unit.
async fn install_conf_kmsg(t: &PctTransport) -> Result<(), HostError> {
    for (path, body, mode) in [
        (CONF_KMSG_SCRIPT_PATH, CONF_KMSG_SCRIPT, 0o755),
        (CONF_KMSG_UNIT_PATH, CONF_KMSG_UNIT, 0o644),
    ] {
        let want = crate::host::hash::sha256_hex(body.as_bytes());
        if t.file_sha256(Path::new(path)).await?.as_deref() != Some(want.as_str()) {
            t.write_file(Path::new(path), body.as_bytes(), mode).await?;
        }
    }
    t.exec_checked(
        ExecRequest::new("systemctl daemon-reload && systemctl enable conf-kmsg.service")
            .describe("enabling conf-kmsg.service"),
    )
    .await
    .map(drop)
}

/// How long a restarted node may take to be reachable through the API and Ready again.
const BACK_TIMEOUT: Duration = Duration::from_secs(300);

/// Cordons and drains `node` through `api`, runs `restart`, then, through the API reached again
/// by `connector` (the server `api` went through may be the one restarted; retried until
/// `back_within`), waits until the node is Ready and uncordons it (k3sctl's cordon only).
/// Returns the client reached last, for the next node.
async fn drained_restart(
    api: Arc<dyn ClusterApi>,
    connector: &dyn ApiConnector,
    node: &str,
    restart: impl Future<Output = Result<(), String>>,
    back_within: Duration,
) -> Result<Arc<dyn ClusterApi>, String> {
    api.cordon(node, "lxc settings fix")
        .await
        .map_err(|e| e.to_string())?;
    api.drain(node, &DrainOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    drop(api);
    restart.await?;
    let deadline = Instant::now() + back_within;
    let api = loop {
        match connector.connect().await {
            Ok(api) => break api,
            Err(e) if Instant::now() >= deadline => {
                return Err(format!(
                    "restarted, but the API did not answer again within {}s: {e}",
                    back_within.as_secs()
                ));
            }
            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    };
    api.wait_node_ready(
        node,
        None,
        deadline.saturating_duration_since(Instant::now()),
    )
    .await
    .map_err(|e| e.to_string())?;
    api.uncordon(node).await.map_err(|e| e.to_string())?;
    Ok(api)
}

/// Fixes the containers' findings; `connector` reaches the API (the first server that answers)
/// when some of them are already nodes (`registered`: they are drained first). Returns what
/// was done, for the report.
pub async fn fix_all(
    findings: &[ContainerFindings],
    containers: &BTreeMap<String, Arc<PctTransport>>,
    connector: Arc<dyn ApiConnector>,
    registered: &[String],
) -> Result<Vec<String>, OpsError> {
    let locked: Vec<String> = findings
        .iter()
        .filter(|f| f.locked())
        .map(ContainerFindings::render)
        .collect();
    if !locked.is_empty() {
        return Err(OpsError::Preflight(locked));
    }
    let needs_api = findings.iter().any(|f| registered.contains(&f.host));
    let mut api = if needs_api {
        Some(
            connector
                .connect()
                .await
                .map_err(|e| OpsError::Preflight(vec![format!("--fix-lxc: {e}")]))?,
        )
    } else {
        None
    };
    let mut done = Vec::new();
    // One container at a time: a node is drained, restarted and back before the next.
    for f in findings {
        let Some(t) = containers.get(&f.host) else {
            continue;
        };
        let fail = |e: String| OpsError::Preflight(vec![format!("{}: --fix-lxc: {e}", f.host)]);
        let lines = f.lines();
        if !lines.is_empty() {
            let backup = write_conf(t, &lines)
                .await
                .map_err(|e| fail(e.to_string()))?;
            done.push(format!(
                "{}: added to /etc/pve/lxc/{}.conf on {} (backup {backup}): {}",
                f.host,
                f.vmid,
                f.node,
                lines.join(" | ")
            ));
        }
        if f.needs_conf_kmsg() {
            install_conf_kmsg(t)
                .await
                .map_err(|e| fail(e.to_string()))?;
            done.push(format!("{}: installed conf-kmsg.service", f.host));
        }
        let reboot = async { t.reboot().await.map_err(|e| e.to_string()) };
        match (api.take(), registered.contains(&f.host)) {
            (Some(reached), true) => {
                api = Some(
                    drained_restart(reached, connector.as_ref(), &f.host, reboot, BACK_TIMEOUT)
                        .await
                        .map_err(fail)?,
                );
                done.push(format!("{}: cordoned and drained", f.host));
                done.push(format!("{}: restarted (pct reboot {})", f.host, f.vmid));
                done.push(format!("{}: Ready again and uncordoned", f.host));
            }
            (reached, _) => {
                api = reached;
                reboot.await.map_err(fail)?;
                done.push(format!("{}: restarted (pct reboot {})", f.host, f.vmid));
            }
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{APPARMOR_LINE, KMSG_LINE};
    use crate::run::tests::Log;
    use crate::run::tests::fake_api::{FakeApi, Unreachable};
    use crate::run::{ApiError, FailoverConnector};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Hands out `inner`'s API, counting the connections.
    struct Counting {
        inner: Arc<dyn ApiConnector>,
        connects: Arc<AtomicUsize>,
    }

    #[async_trait::async_trait]
    impl ApiConnector for Counting {
        async fn connect(&self) -> Result<Arc<dyn ClusterApi>, ApiError> {
            self.connects.fetch_add(1, Ordering::SeqCst);
            self.inner.connect().await
        }
    }

    /// A restart that notes itself in `log`.
    fn reboot(log: &Log, node: &str) -> impl Future<Output = Result<(), String>> + use<> {
        let (log, line) = (Arc::clone(log), format!("{node}: pct reboot"));
        async move {
            log.lock().expect("lock").push(line);
            Ok(())
        }
    }

    #[tokio::test]
    async fn the_drain_goes_through_the_first_server_whose_api_answers_and_again_after_the_restart()
    {
        let log: Log = Arc::default();
        let connects = Arc::new(AtomicUsize::new(0));
        let failover = FailoverConnector::new(vec![
            (
                "s1".into(),
                Arc::new(Unreachable("pct exec 201: container is restarting")),
            ),
            (
                "s2".into(),
                Arc::new(Counting {
                    inner: FakeApi::new(&log).connector(),
                    connects: Arc::clone(&connects),
                }),
            ),
        ]);
        let api = failover.connect().await.expect("through s2");
        drained_restart(
            api,
            &failover,
            "k3s-4",
            reboot(&log, "k3s-4"),
            Duration::from_secs(5),
        )
        .await
        .expect("fixed through s2");
        assert_eq!(
            log.lock().expect("lock").as_slice(),
            [
                "k3s-4: cordon (lxc settings fix)",
                "k3s-4: drain within 300s",
                "k3s-4: pct reboot",
                "k3s-4: wait for Ready posted after None",
                "k3s-4: ready",
                "k3s-4: uncordon",
            ]
        );
        // Once for the drain, once again after the restart.
        assert_eq!(connects.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn with_no_api_back_after_the_restart_every_server_tried_is_named() {
        let log: Log = Arc::default();
        let api = FakeApi::new(&log)
            .connector()
            .connect()
            .await
            .expect("fake");
        let none = FailoverConnector::new(vec![
            (
                "s1".into(),
                Arc::new(Unreachable("/readyz: connection refused")),
            ),
            ("s2".into(), Arc::new(Unreachable("/readyz is not ok yet"))),
        ]);
        let e = drained_restart(api, &none, "s1", reboot(&log, "s1"), Duration::ZERO)
            .await
            .err()
            .expect("no API");
        assert!(
            e.contains("restarted, but the API did not answer again")
                && e.contains("s1: /readyz: connection refused; s2: /readyz is not ok yet"),
            "{e}"
        );
        assert_eq!(
            log.lock().expect("lock").last().map(String::as_str),
            Some("s1: pct reboot")
        );
    }

    #[test]
    fn report_lists_problems_and_the_lines_to_add() {
        let f = ContainerFindings {
            host: "k3s-2".into(),
            vmid: 202,
            node: "pve".into(),
            problems: vec![
                LxcProblem {
                    severity: LxcSeverity::Error,
                    what: "AppArmor confines the container".into(),
                    line: Some(APPARMOR_LINE.into()),
                },
                LxcProblem {
                    severity: LxcSeverity::Error,
                    what: "/dev/kmsg is missing".into(),
                    line: Some(KMSG_LINE.into()),
                },
            ],
        };
        let text = f.render();
        assert!(text.starts_with("k3s-2 (CT 202 on pve): LXC settings K3s needs:"));
        assert!(text.contains(&format!(
            "add to /etc/pve/lxc/202.conf on pve (before any [snapshot] section), then `pct reboot 202`:\n    {APPARMOR_LINE}\n    {KMSG_LINE}"
        )));
        assert!(text.contains("--fix-lxc"));
        assert!(f.blocking());
        assert!(f.needs_conf_kmsg());
        assert!(!f.locked());
    }
}
