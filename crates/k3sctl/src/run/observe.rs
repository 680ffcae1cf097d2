//! Observing one host in one round trip: binary version and hash, managed file hashes (and the
//! content of files that differ, for diffs), unit state, and whether files changed after the
//! service last started.

use std::collections::BTreeMap;

use base64::Engine;

use super::{adopt_record, binary_record};
use crate::host::{ExecRequest, HostError, Transport, shell};
use crate::k3s::config::{CONFIG_PATH, NodeRole};
use crate::k3s::kubeconfig::K3S_KUBECONFIG_PATH;
use crate::k3s::registries::{REGISTRIES_PATH, mask_registries_text};
use crate::k3s::release::{Arch, ReleaseError};
use crate::k3s::token::{NODE_PASSWORD_PATH, SERVER_TOKEN_PATH};
use crate::k3s::unit::{BINARY_PATH, env_path, unit_name, unit_path};
use crate::k3s::version::K3sVersion;
use crate::plan::{DesiredHost, ObservedFile, ObservedHost, StartFiles};
use crate::secret::Secret;

pub use crate::k3s::ports::DB_DIR;

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

/// One managed file to look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProbe {
    /// Path on the host.
    pub path: String,
    /// The hash it should have, when known without the token.
    pub wanted: Option<String>,
    /// Send the content back when it differs (for diffs; never for env files).
    pub send_content: bool,
}

/// What to ask a host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObserveRequest {
    /// Binary hashes whose version is known (no `k3s --version` run needed for them).
    pub known_binaries: BTreeMap<String, K3sVersion>,
    /// Also read the join token and the admin kubeconfig (servers).
    pub read_secrets: bool,
}

/// One host's observation, with a server's secrets when asked for.
#[derive(Debug, Clone)]
pub struct Observation {
    /// The host's state.
    pub host: ObservedHost,
    /// /var/lib/rancher/k3s/server/token.
    pub token: Option<Secret>,
    /// /etc/rancher/k3s/k3s.yaml.
    pub admin_kubeconfig: Option<Secret>,
}

/// The file probes for a host's managed files.
pub fn file_probes(host: &DesiredHost) -> Vec<FileProbe> {
    host.files
        .iter()
        .map(|f| FileProbe {
            path: f.path.clone(),
            wanted: f.content.wanted_sha256(None),
            send_content: f.content.is_diffable(),
        })
        .collect()
}

/// The files K3s is started from, in the order systemd and K3s read them: the unit, its env
/// files (`/etc/default/%N`, `/etc/sysconfig/%N`, the installer's `.service.env`), config.yaml.
pub fn start_file_paths(role: NodeRole) -> Vec<String> {
    let unit = unit_name(role);
    vec![
        unit_path(role),
        format!("/etc/default/{unit}"),
        format!("/etc/sysconfig/{unit}"),
        env_path(role),
        CONFIG_PATH.to_owned(),
    ]
}

/// Shell that prints `src=<path> <base64>` for each file K3s may start from: `paths`, and
/// every `EnvironmentFile=` of the unit files `units` (`(unit file, unit name)`, `%N`/`%n`
/// expanded) and of their drop-ins wherever systemd looks for them
/// ([`crate::k3s::unit_dropins::dropin_dirs`]), whatever their paths, then each drop-in as
/// `unitdropin=<unit name> <path> <base64>` ([`crate::k3s::unit_dropins::read_snippet`]).
/// Which of them a unit really reads is decided from its text
/// (`k3s::effective::env_files_of_unit`, `k3s::unit_dropins::applied`); a path named twice is
/// printed twice.
pub fn read_start_files(paths: &[String], units: &[(String, &str)]) -> String {
    read_start_files_under("", paths, units)
}

/// [`read_start_files`] with the drop-in directories under `root` (tests).
fn read_start_files_under(root: &str, paths: &[String], units: &[(String, &str)]) -> String {
    let mut words: Vec<String> = paths.iter().map(|p| shell::quote(p)).collect();
    let mut dropins = String::new();
    for (file, name) in units {
        dropins.push_str(&crate::k3s::unit_dropins::read_snippet(name, root));
        words.push(
            String::from("$(sed -n 's/^[[:space:]]*EnvironmentFile[[:space:]]*=[[:space:]]*-\\{0,1\\}[[:space:]]*//p' ")
                + &shell::quote(file)
                + " "
                + &crate::k3s::unit_dropins::globs(name, root)
                + " 2>/dev/null | sed 's/%N/"
                + name
                + "/g; s/%n/"
                + name
                + ".service/g')",
        );
    }
    format!(
        "for f in {}; do if [ -f \"$f\" ]; then echo \"src=$f $(base64 -w0 \"$f\")\"; fi; done\n{dropins}",
        words.join(" ")
    )
}

/// Builds the observation script for a host: one round trip.
pub fn observe_script(host: &DesiredHost, files: &[FileProbe], request: &ObserveRequest) -> String {
    let unit = unit_name(host.role);
    let known: Vec<String> = request
        .known_binaries
        .keys()
        .map(|k| shell::quote(k))
        .collect();
    let known = if known.is_empty() {
        "-".to_string()
    } else {
        known.join("|")
    };
    let mut script = format!(
        "set -u\n\
         echo \"arch=$(uname -m)\"\n\
         if [ -x {BINARY_PATH} ]; then\n\
         {hash}\
         \x20 bm=${{bst#* }}; echo \"binary=$bh ${{bm%% *}}\"\n\
         \x20 case \"$bh\" in {known}) ;; *) echo \"version=$({BINARY_PATH} --version 2>/dev/null | head -n1)\";; esac\n\
         fi\n\
         {unit_state}\
         if [ -s {NODE_PASSWORD_PATH} ]; then echo \"nodepassword=1\"; fi\n\
         if [ -s {adopted} ]; then echo \"adopted=$(tr '\\n' ' ' < {adopted})\"; fi\n\
         if [ -f {unit_path} ]; then\n\
         \x20 hn=; read -r hn < /proc/sys/kernel/hostname 2>/dev/null || hn=$(hostname)\n\
         \x20 echo \"hostname=$hn\"\n\
         \x20 {start_files}\
         \x20 for f in {CONFIG_PATH}.d/*; do if [ -f \"$f\" ]; then echo \"dropin=${{f##*/}} $(base64 -w0 \"$f\")\"; fi; done\n\
         fi\n\
         {links}",
        hash = binary_record::hash_snippet(BINARY_PATH, binary_record::RECORD_PATH),
        unit_state = unit_state_snippet(unit),
        adopted = adopt_record::RECORD_PATH,
        unit_path = unit_path(host.role),
        start_files = read_start_files(
            &start_file_paths(host.role),
            &[(unit_path(host.role), unit_name(host.role))]
        ),
        links = crate::k3s::links::observe_snippet(),
    );
    if host.role == crate::k3s::config::NodeRole::Server {
        script.push_str(&format!(
            "db={DB_DIR}\n\
             if [ -d \"$db/etcd/member/wal\" ]; then echo \"etcd=1\"; fi\n\
             for s in \"$db/state.db\" \"$db/state\"; do if [ -e \"$s\" ]; then echo \"sqlite=$s\"; break; fi; done\n\
             if [ -s {SERVER_TOKEN_PATH} ]; then echo \"hastoken=1\"; fi\n"
        ));
    }
    if request.read_secrets {
        script.push_str(&format!(
            "if [ -s {SERVER_TOKEN_PATH} ]; then echo \"token=$(base64 -w0 {SERVER_TOKEN_PATH})\"; fi\n\
             if [ -s {K3S_KUBECONFIG_PATH} ]; then echo \"admin=$(base64 -w0 {K3S_KUBECONFIG_PATH})\"; fi\n"
        ));
    }
    script.push_str(&files_snippet(files));
    script
}

/// Shell printing the unit's state with one `systemctl show` (each `systemctl` call costs a
/// D-Bus connection, about 20 ms on a small host): `active=`, `enabled=`, `needreload=` and
/// `started=<epoch seconds>` of the main process. `ActiveState` and `UnitFileState` are what
/// `systemctl is-active` and `is-enabled` print (empty for a unit systemd does not know).
fn unit_state_snippet(unit: &str) -> String {
    let unit = shell::quote(unit);
    format!(
        "systemctl show -p ActiveState -p UnitFileState -p NeedDaemonReload -p ExecMainStartTimestamp {unit} 2>/dev/null | {{
         \x20 ts=; a=; e=; r=\n\
         \x20 while IFS='=' read -r k v; do case \"$k\" in\n\
         \x20   ActiveState) a=$v;; UnitFileState) e=$v;; NeedDaemonReload) r=$v;; ExecMainStartTimestamp) ts=$v;;\n\
         \x20 esac; done\n\
         \x20 echo \"active=${{a:-inactive}}\"; echo \"enabled=$e\"; echo \"needreload=$r\"\n\
         \x20 if [ -n \"$ts\" ]; then echo \"started=$(date -d \"$ts\" +%s 2>/dev/null)\"; fi\n\
         }}\n"
    )
}

/// Shell printing, for each managed file that exists, `fstat=<mtime> <path>` then
/// `fsum=<sha256> <path>`, and `content=<path> <base64>` after the hash of a diffable file that
/// is not the wanted one. One `stat` and one `sha256sum` for all files: a process per file and
/// step made this the slowest part of a no-op run.
fn files_snippet(files: &[FileProbe]) -> String {
    if files.is_empty() {
        return String::new();
    }
    let paths: Vec<String> = files.iter().map(|f| shell::quote(&f.path)).collect();
    let mut cases = String::new();
    for file in files.iter().filter(|f| f.send_content) {
        let want = shell::quote(file.wanted.as_deref().unwrap_or("-"));
        cases.push_str(&format!(
            "\x20   {p}) if [ \"$h\" != {want} ]; then echo \"content=$p $(base64 -w0 \"$p\")\"; fi;;\n",
            p = shell::quote(&file.path)
        ));
    }
    format!(
        "set --\n\
         for p in {paths}; do if [ -f \"$p\" ]; then set -- \"$@\" \"$p\"; fi; done\n\
         if [ $# -gt 0 ]; then\n\
         \x20 stat -c 'fstat=%Y %n' -- \"$@\"\n\
         \x20 sha256sum -- \"$@\" | while read -r h p; do\n\
         \x20   echo \"fsum=$h $p\"\n\
         \x20   case \"$p\" in\n\
         {cases}\
         \x20   *) ;;\n\
         \x20   esac\n\
         \x20 done\n\
         fi\n",
        paths = paths.join(" ")
    )
}

fn decode_secret(data: &str) -> Option<Secret> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .ok()?;
    Some(Secret::new(String::from_utf8_lossy(&bytes).into_owned()))
}

/// Parses the observation report.
pub fn parse_report(
    host: &DesiredHost,
    request: &ObserveRequest,
    report: &str,
) -> Result<Observation, ObserveError> {
    let bad = |line: &str| ObserveError::Report {
        host: host.name.clone(),
        line: line.to_string(),
    };
    let mut arch = None;
    let mut obs = ObservedHost::fresh(Arch::Amd64);
    let mut started: Option<i64> = None;
    let mut binary_mtime: Option<i64> = None;
    let mut changed: Vec<adopt_record::Changed> = Vec::new();
    let mut token = None;
    let mut admin_kubeconfig = None;
    let mut adopted: Option<String> = None;
    let mut start = StartFiles::default();
    let mut unit_dropins: Vec<(String, String)> = Vec::new();
    let mut has_unit = false;
    let mut mtimes: BTreeMap<&str, i64> = BTreeMap::new();
    let unit_file = unit_path(host.role);
    let decode = |data: &str| -> Result<String, ObserveError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|_| bad("src=<undecodable>"))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
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
                binary_mtime = mtime.parse().ok();
            }
            "token" => token = decode_secret(value),
            "etcd" => obs.etcd_data = true,
            "sqlite" => obs.sqlite_store = Some(value.to_owned()),
            "hastoken" => obs.has_token = true,
            "nodepassword" => obs.node_password = true,
            "link" => {
                let (command, state) =
                    crate::k3s::links::parse_observed(value).ok_or_else(|| bad(line))?;
                obs.links.insert(command, state);
            }
            "admin" => admin_kubeconfig = decode_secret(value),
            "active" => obs.service_active = value == "active" || value == "activating",
            "enabled" => obs.service_enabled = value == "enabled",
            "needreload" => obs.needs_daemon_reload = value.trim() == "yes",
            "started" => started = value.parse().ok(),
            "adopted" => adopted = Some(value.to_owned()),
            "hostname" => start.hostname = Some(value.trim().to_owned()),
            "src" => {
                let (path, data) = value.split_once(' ').unwrap_or((value, ""));
                let text = decode(data)?;
                if path == unit_file {
                    has_unit = true;
                    start.unit = text;
                } else if path == CONFIG_PATH {
                    start.config = Some(text);
                } else if !start.env_files.iter().any(|(p, _)| p == path) {
                    start.env_files.push((path.to_owned(), Secret::new(text)));
                }
            }
            "dropin" => {
                let (name, data) = value.split_once(' ').unwrap_or((value, ""));
                start.dropins.push((name.to_owned(), decode(data)?));
            }
            "unitdropin" => {
                let mut parts = value.splitn(3, ' ');
                if let (Some(unit), Some(path)) = (parts.next(), parts.next())
                    && unit == unit_name(host.role)
                {
                    unit_dropins.push((path.to_owned(), decode(parts.next().unwrap_or(""))?));
                }
            }
            "fstat" => {
                let (mtime, path) = value.split_once(' ').ok_or_else(|| bad(line))?;
                mtimes.insert(path, mtime.parse::<i64>().map_err(|_| bad(line))?);
            }
            "fsum" => {
                let (hash, path) = value.split_once(' ').ok_or_else(|| bad(line))?;
                if restarting.contains(&path) {
                    // `stat` printed every file before `sha256sum` ran.
                    let mtime = *mtimes.get(path).ok_or_else(|| bad(line))?;
                    changed.push(adopt_record::Changed {
                        path: path.to_owned(),
                        mtime,
                        sha256: hash.to_owned(),
                    });
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
    if obs.k3s_version.is_none()
        && let Some(sha) = &obs.binary_sha256
    {
        obs.k3s_version = request.known_binaries.get(sha).copied();
    }
    let record = adopted.as_deref().and_then(adopt_record::Record::parse);
    obs.restart_pending = obs.service_active
        && adopt_record::restart_pending(started, record.as_ref(), binary_mtime, &changed);
    if let Some(record) = record.filter(|r| started == Some(r.started)) {
        obs.adopted = record.set;
    }
    start.unit_dropins = crate::k3s::unit_dropins::applied(unit_name(host.role), &unit_dropins);
    obs.start = has_unit.then_some(start);
    Ok(Observation {
        host: obs,
        token,
        admin_kubeconfig,
    })
}

/// Observes one host in one round trip.
pub async fn observe_host(
    transport: &dyn Transport,
    host: &DesiredHost,
    request: &ObserveRequest,
) -> Result<Observation, ObserveError> {
    let script = observe_script(host, &file_probes(host), request);
    let req = ExecRequest::new(script)
        .sudo(true)
        .describe("gathering K3s facts");
    let out = transport.exec_checked(req).await?;
    parse_report(host, request, &out.stdout_text())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k3s::config::NodeRole;
    use crate::plan::{DesiredFile, FileContent};

    fn host() -> DesiredHost {
        DesiredHost {
            name: "agent-1".into(),
            role: NodeRole::Agent,
            group: None,
            first_server: false,
            taints: vec![],
            labels: Default::default(),
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
             enabled=enabled\nstarted=150\nfstat=120 /etc/rancher/k3s/config.yaml\n\
             fstat=140 {REGISTRIES_PATH}\nfsum={h} /etc/rancher/k3s/config.yaml\n\
             fsum={h} {REGISTRIES_PATH}\ncontent={REGISTRIES_PATH} {reg}\n",
            h = "a".repeat(64)
        );
        let obs = parse_report(&host(), &ObserveRequest::default(), &report)
            .expect("parses")
            .host;
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
    fn known_binary_gives_the_version_and_secrets_come_back_as_secrets() {
        let sha = "c".repeat(64);
        let b64 = |t: &str| base64::engine::general_purpose::STANDARD.encode(t);
        let report = format!(
            "arch=x86_64\nbinary={sha} 10\nactive=inactive\ntoken={}\nadmin={}\n",
            b64("K10abc::server:pw"),
            b64("apiVersion: v1\n")
        );
        let request = ObserveRequest {
            known_binaries: BTreeMap::from([(sha.clone(), "v1.33.5+k3s1".parse().expect("v"))]),
            read_secrets: true,
        };
        let seen = parse_report(&host(), &request, &report).expect("parses");
        assert_eq!(
            seen.host.k3s_version.map(|v| v.to_string()).as_deref(),
            Some("v1.33.5+k3s1")
        );
        assert_eq!(
            seen.token.as_ref().map(Secret::expose),
            Some("K10abc::server:pw")
        );
        assert_eq!(
            seen.admin_kubeconfig.as_ref().map(Secret::expose),
            Some("apiVersion: v1\n")
        );
        assert!(!format!("{seen:?}").contains("K10abc"));
        let script = observe_script(&host(), &file_probes(&host()), &request);
        assert!(
            script.contains(&format!("case \"$bh\" in {sha})")),
            "{script}"
        );
    }

    #[test]
    fn file_newer_than_start_means_restart_pending() {
        let report = format!(
            "arch=aarch64\nactive=active\nenabled=enabled\nstarted=150\nfstat=151 /etc/rancher/k3s/config.yaml\n\
             fsum={} /etc/rancher/k3s/config.yaml\n",
            "b".repeat(64)
        );
        let obs = parse_report(&host(), &ObserveRequest::default(), &report)
            .expect("parses")
            .host;
        assert!(obs.restart_pending);
        assert_eq!(obs.arch, Arch::Arm64);
        assert_eq!(obs.binary_sha256, None);
    }

    #[test]
    fn files_an_adoption_record_vouches_for_are_not_a_pending_restart() {
        let sha = "b".repeat(64);
        let line = |record: &str| {
            format!(
                "arch=x86_64\nactive=active\nenabled=enabled\nneedreload=yes\nstarted=150\n{record}\
                 fstat=151 /etc/rancher/k3s/config.yaml\nfsum={sha} /etc/rancher/k3s/config.yaml\n"
            )
        };
        let parse = |report: String| {
            parse_report(&host(), &ObserveRequest::default(), &report)
                .expect("parses")
                .host
        };
        // The record (written before the files, one line as the script prints it) names this
        // start and the content found: no restart pending, the set known to the planner.
        let obs = parse(line(&format!(
            "adopted=150 151 set {sha} /etc/rancher/k3s/config.yaml set {} /etc/x \n",
            "c".repeat(64)
        )));
        assert!(!obs.restart_pending && obs.needs_daemon_reload);
        assert_eq!(
            obs.adopted.get("/etc/rancher/k3s/config.yaml"),
            Some(&sha),
            "{obs:?}"
        );
        // Another content, or a record of an earlier start: pending, and no set.
        let obs = parse(line(&format!(
            "adopted=150 151 set {} /etc/rancher/k3s/config.yaml\n",
            "c".repeat(64)
        )));
        assert!(obs.restart_pending);
        let obs = parse(line(&format!(
            "adopted=140 141 set {sha} /etc/rancher/k3s/config.yaml\n"
        )));
        assert!(obs.restart_pending && obs.adopted.is_empty());
    }

    #[tokio::test]
    async fn env_files_named_by_the_installed_unit_are_read_wherever_they_are() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display();
        let unit = dir.path().join("k3s-agent.service");
        fs_err::write(
            &unit,
            format!(
                "[Service]\nEnvironmentFile=-{d}/default/%N\nEnvironmentFile = -{d}/%n.env\n\
                 EnvironmentFile={d}/missing\nExecStart=/usr/local/bin/k3s agent\n"
            ),
        )
        .expect("unit");
        fs_err::create_dir(dir.path().join("default")).expect("mkdir");
        fs_err::write(
            dir.path().join("default/k3s-agent"),
            "HTTP_PROXY=http://p\n",
        )
        .expect("env");
        fs_err::write(dir.path().join("k3s-agent.service.env"), "K3S_URL=u\n").expect("env");
        fs_err::write(dir.path().join("fixed"), "a: 1\n").expect("fixed");
        // Unit drop-ins where systemd looks for them (under a root here): one in /run naming
        // one more env file, one in the prefix directory under /usr/lib, a mask (a link to
        // /dev/null) and a file systemd does not read.
        let put = |path: &str, text: &str| {
            let full = dir.path().join(path);
            fs_err::create_dir_all(full.parent().expect("parent")).expect("mkdir");
            fs_err::write(full, text).expect("write");
        };
        put(
            "run/systemd/system/k3s-agent.service.d/10-proxy.conf",
            &format!("[Service]\nEnvironmentFile=-{d}/proxy.env\n"),
        );
        put(
            "usr/lib/systemd/system/k3s-.service.d/20-prefix.conf",
            "[Service]\nEnvironment=A=1\n",
        );
        put("etc/systemd/system/k3s-agent.service.d/x.bak", "no");
        fs_err::os::unix::fs::symlink(
            "/dev/null",
            dir.path()
                .join("etc/systemd/system/k3s-agent.service.d/05-masked.conf"),
        )
        .expect("symlink");
        put("proxy.env", "NO_PROXY=x\n");
        let script = read_start_files_under(
            &d.to_string(),
            &[format!("{d}/fixed")],
            &[(unit.to_string_lossy().into_owned(), "k3s-agent")],
        );
        let transport = crate::host::LocalTransport::new("local");
        let out = transport
            .exec_checked(ExecRequest::new(script))
            .await
            .expect("runs");
        let paths: Vec<String> = out
            .stdout_text()
            .lines()
            .filter_map(|l| l.strip_prefix("src=")?.split(' ').next().map(str::to_owned))
            .collect();
        assert_eq!(
            paths,
            [
                format!("{d}/fixed"),
                format!("{d}/default/k3s-agent"),
                format!("{d}/k3s-agent.service.env"),
                format!("{d}/proxy.env"),
            ]
        );
        let text = out.stdout_text();
        let mut dropins: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("unitdropin=k3s-agent "))
            .collect();
        dropins.sort_unstable();
        assert_eq!(dropins.len(), 3, "{text}");
        assert_eq!(
            dropins[0].trim_end(),
            format!("{d}/etc/systemd/system/k3s-agent.service.d/05-masked.conf"),
            "a mask is reported with no content: {text}"
        );
        assert!(dropins[1].starts_with(&format!(
            "{d}/run/systemd/system/k3s-agent.service.d/10-proxy.conf "
        )));
        assert!(dropins[2].starts_with(&format!(
            "{d}/usr/lib/systemd/system/k3s-.service.d/20-prefix.conf "
        )));
        // The report's drop-in reaches the host's start files.
        let b64 = base64::engine::general_purpose::STANDARD.encode("[Service]\nEnvironment=A=1\n");
        let lower =
            base64::engine::general_purpose::STANDARD.encode("[Service]\nEnvironment=A=2\n");
        let obs = parse_report(
            &host(),
            &ObserveRequest::default(),
            &format!(
                "arch=x86_64\nsrc={} {}\n\
                 unitdropin=k3s-agent /etc/systemd/system/k3s-agent.service.d/10-a.conf {b64}\n\
                 unitdropin=k3s /etc/systemd/system/k3s.service.d/10-b.conf {b64}\n\
                 unitdropin=k3s-agent /usr/lib/systemd/system/k3s-agent.service.d/10-a.conf {lower}\n\
                 unitdropin=k3s-agent /etc/systemd/system/k3s-.service.d/05-null.conf \n",
                unit_path(NodeRole::Agent),
                base64::engine::general_purpose::STANDARD.encode("[Service]\nExecStart=/x agent\n"),
            ),
        )
        .expect("parses")
        .host;
        let start = obs.start.expect("start files");
        assert_eq!(
            start.unit_dropins,
            [crate::k3s::unit_dropins::UnitDropin {
                path: "/etc/systemd/system/k3s-agent.service.d/10-a.conf".into(),
                text: "[Service]\nEnvironment=A=1\n".into(),
                masks_another: true,
            }]
        );
    }

    #[test]
    fn unsupported_arch_names_the_host() {
        let err = parse_report(&host(), &ObserveRequest::default(), "arch=s390x\n")
            .expect_err("unsupported");
        assert!(err.to_string().starts_with("agent-1: "), "{err}");
    }

    #[tokio::test]
    async fn script_runs_under_sh_on_this_machine() {
        let dir = tempfile::tempdir().expect("tempdir");
        let differs = dir.path().join("config.yaml");
        fs_err::write(&differs, "a: 2\n").expect("write");
        let same = dir.path().join("with space.yaml");
        fs_err::write(&same, "b: 1\n").expect("write");
        let path = |p: &std::path::Path| p.to_string_lossy().into_owned();
        let mut h = host();
        h.files[0].path = path(&differs);
        h.files[1] = DesiredFile {
            path: path(&same),
            mode: 0o600,
            content: FileContent::Plain("b: 1\n".into()),
            restarts: false,
        };
        h.files.push(DesiredFile {
            path: path(&dir.path().join("missing.yaml")),
            mode: 0o600,
            content: FileContent::Plain("c: 1\n".into()),
            restarts: true,
        });
        let transport = crate::host::LocalTransport::new("local");
        let obs = observe_host(&transport, &h, &ObserveRequest::default())
            .await
            .expect("observes")
            .host;
        // A file that differs comes back with its content; one as wanted only with its hash.
        let file = obs.file(&h.files[0].path);
        assert_eq!(file.shown.as_deref(), Some("a: 2\n"));
        assert_eq!(
            file.sha256.as_deref(),
            Some(crate::secret::Secret::new("a: 2\n").sha256_hex().as_str())
        );
        let file = obs.file(&h.files[1].path);
        assert_eq!(file.shown, None);
        assert_eq!(
            file.sha256.as_deref(),
            Some(crate::secret::Secret::new("b: 1\n").sha256_hex().as_str())
        );
        assert_eq!(obs.file(&h.files[2].path).sha256, None);
        assert_eq!(obs.files.len(), 2, "{:?}", obs.files);
        // No such unit here: inactive, not enabled, nothing pending.
        assert!(!obs.service_active && !obs.service_enabled && !obs.restart_pending);
    }
}
