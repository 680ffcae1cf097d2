//! Observing one host in one round trip: binary version and hash, managed file hashes (and the
//! content of files that differ, for diffs), unit state, and whether files changed after the
//! service last started.

use std::collections::BTreeMap;

use base64::Engine;

use crate::host::{ExecRequest, HostError, Transport, shell};
use crate::k3s::registries::{REGISTRIES_PATH, mask_registries_text};
use crate::k3s::release::{Arch, ReleaseError};
use crate::k3s::unit::{BINARY_PATH, unit_name};
use crate::k3s::version::K3sVersion;
use crate::plan::{DesiredHost, FileContent, ObservedFile, ObservedHost};
use crate::secret::Secret;

/// Why an observation failed.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    /// The host could not be asked.
    #[error(transparent)]
    Host(#[from] HostError),
    /// The architecture is not one K3s supports.
    #[error("{host}: {source}")]
    Arch {
        /// Host name.
        host: String,
        /// The arch error.
        source: ReleaseError,
    },
    /// The report was not understood.
    #[error("{host}: unexpected facts report line `{line}`")]
    Report {
        /// Host name.
        host: String,
        /// The line.
        line: String,
    },
}

/// Builds the observation script for a host. `wanted` maps each managed path to the hash it
/// should have (when known): files whose hash differs are sent back base64-encoded for diffs.
pub fn observe_script(host: &DesiredHost, wanted: &BTreeMap<String, Option<String>>) -> String {
    let unit = unit_name(host.role);
    let mut script = format!(
        "set -u\n\
         echo \"arch=$(uname -m)\"\n\
         if [ -x {BINARY_PATH} ]; then\n\
         \x20 echo \"version=$({BINARY_PATH} --version 2>/dev/null | head -n1)\"\n\
         \x20 echo \"binary=$(sha256sum {BINARY_PATH} | cut -d' ' -f1) $(stat -c %Y {BINARY_PATH})\"\n\
         fi\n\
         echo \"active=$(systemctl is-active {unit} 2>/dev/null)\"\n\
         echo \"enabled=$(systemctl is-enabled {unit} 2>/dev/null)\"\n\
         ts=$(systemctl show -p ExecMainStartTimestamp --value {unit} 2>/dev/null)\n\
         if [ -n \"$ts\" ]; then echo \"started=$(date -d \"$ts\" +%s 2>/dev/null)\"; fi\n"
    );
    for (path, want) in wanted {
        let p = shell::quote(path);
        let want = shell::quote(want.as_deref().unwrap_or("-"));
        script.push_str(&format!(
            "if [ -f {p} ]; then h=$(sha256sum {p} | cut -d' ' -f1); \
             echo \"file=$h $(stat -c %Y {p}) {p}\"; \
             if [ \"$h\" != {want} ]; then echo \"content={p} $(base64 -w0 {p})\"; fi; fi\n"
        ));
    }
    script
}

/// Parses the observation report.
pub fn parse_report(host: &DesiredHost, report: &str) -> Result<ObservedHost, ObserveError> {
    let bad = |line: &str| ObserveError::Report {
        host: host.name.clone(),
        line: line.to_string(),
    };
    let mut arch = None;
    let mut obs = ObservedHost::fresh(Arch::Amd64);
    let mut started: Option<i64> = None;
    let mut newest_change: Option<i64> = None;
    let restarting: Vec<&str> = host
        .files
        .iter()
        .filter(|f| f.restarts)
        .map(|f| f.path.as_str())
        .collect();
    for line in report.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        match key {
            "arch" => {
                arch = Some(
                    Arch::from_uname(value).map_err(|source| ObserveError::Arch {
                        host: host.name.clone(),
                        source,
                    })?,
                );
            }
            "version" => obs.k3s_version = K3sVersion::from_version_output(value).ok(),
            "binary" => {
                let (hash, mtime) = value.split_once(' ').ok_or_else(|| bad(line))?;
                obs.binary_sha256 = Some(hash.to_string());
                newest_change = newest_change.max(mtime.parse().ok());
            }
            "active" => obs.service_active = value == "active" || value == "activating",
            "enabled" => obs.service_enabled = value == "enabled",
            "started" => started = value.parse().ok(),
            "file" => {
                let mut parts = value.splitn(3, ' ');
                let (Some(hash), Some(mtime), Some(path)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return Err(bad(line));
                };
                let path = path.trim_matches('\'');
                if restarting.contains(&path) {
                    newest_change = newest_change.max(mtime.parse().ok());
                }
                obs.files.insert(
                    path.to_string(),
                    ObservedFile {
                        sha256: Some(hash.to_string()),
                        shown: None,
                    },
                );
            }
            "content" => {
                let (path, data) = value.split_once(' ').unwrap_or((value, ""));
                let path = path.trim_matches('\'');
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(data.trim())
                    .map_err(|_| bad("content=<undecodable>"))?;
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let secret = host
                    .files
                    .iter()
                    .any(|f| f.path == path && f.content.is_secret());
                let shown = if path == REGISTRIES_PATH {
                    Some(mask_registries_text(&text))
                } else if secret {
                    None
                } else {
                    Some(text)
                };
                if let Some(file) = obs.files.get_mut(path) {
                    file.shown = shown;
                }
            }
            _ => {}
        }
    }
    obs.arch = arch.ok_or_else(|| bad("(no arch line)"))?;
    obs.restart_pending =
        obs.service_active && matches!((started, newest_change), (Some(s), Some(c)) if c > s);
    Ok(obs)
}

/// The hashes each managed file should have, when they can be known without a token.
pub fn wanted_hashes(
    host: &DesiredHost,
    token: Option<&Secret>,
) -> BTreeMap<String, Option<String>> {
    host.files
        .iter()
        .map(|f| {
            let hash = match &f.content {
                FileContent::Env { .. } if token.is_none() => None,
                content => content.resolve(token).map(|(c, _)| c.sha256_hex()),
            };
            (f.path.clone(), hash)
        })
        .collect()
}

/// Observes one host.
pub async fn observe_host(
    transport: &dyn Transport,
    host: &DesiredHost,
    token: Option<&Secret>,
) -> Result<ObservedHost, ObserveError> {
    let script = observe_script(host, &wanted_hashes(host, token));
    let req = ExecRequest::new(script)
        .sudo(true)
        .describe("gathering K3s facts");
    let out = transport.exec_checked(req).await?;
    parse_report(host, &out.stdout_text())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k3s::config::NodeRole;
    use crate::plan::DesiredFile;

    fn host() -> DesiredHost {
        DesiredHost {
            name: "agent-1".into(),
            role: NodeRole::Agent,
            group: None,
            first_server: false,
            files: vec![
                DesiredFile {
                    path: "/etc/rancher/k3s/config.yaml".into(),
                    mode: 0o600,
                    content: FileContent::Plain("a: 1\n".into()),
                    restarts: true,
                },
                DesiredFile {
                    path: REGISTRIES_PATH.into(),
                    mode: 0o600,
                    content: FileContent::Secret {
                        content: Secret::new("x"),
                        masked: "y".into(),
                    },
                    restarts: true,
                },
            ],
        }
    }

    #[test]
    fn parses_a_full_report() {
        let reg = base64::engine::general_purpose::STANDARD
            .encode("configs:\n  r:\n    auth:\n      password: hunter2\n");
        let report = format!(
            "arch=x86_64\nversion=k3s version v1.33.5+k3s1 (abc)\nbinary={h} 100\nactive=active\n\
             enabled=enabled\nstarted=150\nfile={h} 120 /etc/rancher/k3s/config.yaml\n\
             file={h} 140 {REGISTRIES_PATH}\ncontent={REGISTRIES_PATH} {reg}\n",
            h = "a".repeat(64)
        );
        let obs = parse_report(&host(), &report).expect("parses");
        assert_eq!(obs.arch, Arch::Amd64);
        assert_eq!(
            obs.k3s_version.map(|v| v.to_string()).as_deref(),
            Some("v1.33.5+k3s1")
        );
        assert!(obs.service_active && obs.service_enabled && !obs.restart_pending);
        let shown = obs.file(REGISTRIES_PATH).shown.expect("shown");
        assert!(!shown.contains("hunter2") && shown.contains("password: <redacted>"));
    }

    #[test]
    fn file_newer_than_start_means_restart_pending() {
        let report = format!(
            "arch=aarch64\nactive=active\nenabled=enabled\nstarted=150\nfile={} 151 /etc/rancher/k3s/config.yaml\n",
            "b".repeat(64)
        );
        let obs = parse_report(&host(), &report).expect("parses");
        assert!(obs.restart_pending);
        assert_eq!(obs.arch, Arch::Arm64);
        assert_eq!(obs.binary_sha256, None);
    }

    #[test]
    fn unsupported_arch_names_the_host() {
        let err = parse_report(&host(), "arch=s390x\n").expect_err("unsupported");
        assert!(err.to_string().starts_with("agent-1: "), "{err}");
    }

    #[tokio::test]
    async fn script_runs_under_sh_on_this_machine() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, "a: 2\n").expect("write");
        let mut h = host();
        h.files[0].path = path.to_string_lossy().into_owned();
        h.files.truncate(1);
        let transport = crate::host::LocalTransport::new("local");
        let obs = observe_host(&transport, &h, None).await.expect("observes");
        let file = obs.file(&h.files[0].path);
        assert_eq!(file.shown.as_deref(), Some("a: 2\n"));
        assert_eq!(
            file.sha256.as_deref(),
            Some(crate::secret::Secret::new("a: 2\n").sha256_hex().as_str())
        );
    }
}
