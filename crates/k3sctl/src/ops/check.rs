//! `k3sctl check` and `k3sctl certs check`: observe the cluster (one round trip per host, the
//! Node and Pod lists and etcd's member list through the API of the first server, in spec
//! order, whose `/readyz` answers, the kubeconfig exports on this machine) and judge it with
//! `plan::check` (pure).
//!
//! Each host answers one script: its K3s version, the certificates under `server/tls`,
//! `server/tls/etcd` and `agent`, and, on servers, its own API server's /readyz. With `--wait`
//! the look is repeated while something is only settling (the upgrade gate's judgement),
//! stopping at once on what waiting will not fix.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;
use serde::Serialize;

use super::connect::{ConnectOptions, connect_all};
use super::error::OpsError;
use super::export::desired_exports;
use super::kube_api::failover_through;
use super::prepare::load_spec;
use crate::host::{ExecRequest, Transport};
use crate::k3s::certs::{CertSummary, parse_pem_certs};
use crate::k3s::unit::BINARY_PATH;
use crate::k3s::version::K3sVersion;
use crate::kube::{NodeInfo, PodHealth};
use crate::plan::check::{
    CertObservation, CertOwner, CertRow, CheckResult, Observation, Status, cert_rows, evaluate,
    failing,
};
use crate::run::{ApiError, ClusterApi, FailoverConnector};
use crate::spec::{LoadedSpec, Role};

/// K3s's data directory.
use crate::k3s::ports::DATA_DIR;
/// How often `--wait` looks again.
const POLL: Duration = Duration::from_millis(1000);
/// The time limit of each host's round trip.
const HOST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why `check` could not judge the cluster at all.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// Loading the spec failed, or it names no server.
    #[error(transparent)]
    Ops(#[from] OpsError),
}

/// Which pods are looked at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Namespaces {
    /// kube-system and these.
    #[default]
    KubeSystem,
    /// kube-system and these namespaces.
    These(Vec<String>),
    /// Every namespace.
    All,
}

impl Namespaces {
    fn list(&self) -> Option<Vec<String>> {
        match self {
            Self::KubeSystem => Some(vec!["kube-system".into()]),
            Self::These(more) => {
                let mut list = vec!["kube-system".to_string()];
                list.extend(more.iter().filter(|n| *n != "kube-system").cloned());
                Some(list)
            }
            Self::All => None,
        }
    }

    fn describe(&self) -> String {
        match self.list() {
            Some(list) => list.join(","),
            None => "all-namespaces".into(),
        }
    }
}

/// How `check` runs.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// The pods looked at.
    pub namespaces: Namespaces,
    /// Wait up to this long while the cluster is only settling.
    pub wait: Option<Duration>,
    /// How hosts are reached.
    pub connect: ConnectOptions,
}

/// What `check` found.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// No check failing or settling.
    pub healthy: bool,
    /// The names of the checks that fail or are still settling (`node a1`, `etcd cluster`).
    pub failing: Vec<String>,
    /// Every check, problems first.
    pub checks: Vec<CheckResult>,
    /// Every certificate read.
    pub certificates: Vec<CertRow>,
    /// How long the last look took, in milliseconds.
    pub observe_ms: u64,
    /// How long `--wait` waited, in milliseconds.
    pub waited_ms: u64,
}

/// What `certs check` found.
#[derive(Debug, Clone, Serialize)]
pub struct CertsReport {
    /// Every certificate read, per host then per export.
    pub certificates: Vec<CertRow>,
    /// Hosts that could not be reached.
    pub unreachable: Vec<(String, String)>,
}

/// What one host answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct HostAnswer {
    version: Option<K3sVersion>,
    certs: Vec<(String, Result<CertSummary, String>)>,
    readyz: Option<String>,
    service: Option<String>,
}

/// The script each host runs: `== version`, one `== <file>` section per certificate file
/// (paths relative to the data dir) and, on servers, `== readyz`.
fn host_script(server: bool) -> String {
    let unit = if server { "k3s" } else { "k3s-agent" };
    let mut script = format!(
        "d={DATA_DIR}\n\
         printf '== service\\n'; systemctl is-active {unit} 2>/dev/null; true\n\
         printf '== version\\n'; {BINARY_PATH} --version 2>/dev/null | head -n 1\n\
         for f in \"$d\"/server/tls/*.crt \"$d\"/server/tls/etcd/*.crt \"$d\"/agent/*.crt; do\n\
         \x20 [ -f \"$f\" ] || continue\n\
         \x20 printf '== %s\\n' \"${{f#\"$d\"/}}\"; cat \"$f\"\n\
         done\n"
    );
    if server {
        script.push_str(&format!(
            "printf '== readyz\\n'; {BINARY_PATH} kubectl get --raw /readyz 2>&1 | head -c 2000; \
             printf '\\n'\n"
        ));
    }
    script
}

/// Pure: a host's answer to [`host_script`]. CA certificates are left out (K3s never renews
/// them; they last 10 years).
fn parse_host_answer(text: &str) -> HostAnswer {
    let mut answer = HostAnswer::default();
    let mut sections: Vec<(&str, String)> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("== ") {
            sections.push((name, String::new()));
        } else if let Some((_, body)) = sections.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    for (name, body) in sections {
        match name {
            "version" => answer.version = K3sVersion::from_version_output(&body).ok(),
            "readyz" => answer.readyz = Some(body.trim().to_string()),
            "service" => answer.service = Some(body.trim().to_string()),
            file => match parse_pem_certs(body.as_bytes()) {
                Ok(certs) if certs[0].is_ca => {}
                Ok(mut certs) => answer.certs.push((file.to_string(), Ok(certs.remove(0)))),
                Err(e) => answer.certs.push((file.to_string(), Err(e))),
            },
        }
    }
    answer
}

/// One host's round trip.
async fn ask_host(transport: &dyn Transport, server: bool) -> Result<HostAnswer, String> {
    let request = ExecRequest::new(host_script(server))
        .sudo(true)
        .timeout(Some(HOST_TIMEOUT))
        .describe("reading K3s's certificates and /readyz");
    let out = transport
        .exec_checked(request)
        .await
        .map_err(|e| e.to_string())?;
    Ok(parse_host_answer(&out.stdout_text()))
}

/// Pure: the client certificate of `context` in a kubeconfig (its current context when `None`).
pub(crate) fn kubeconfig_client_cert(
    text: &str,
    context: Option<&str>,
) -> Result<CertSummary, String> {
    use base64::Engine;
    let doc: serde_json::Value =
        serde_saphyr::from_str(text).map_err(|e| format!("not a kubeconfig: {e}"))?;
    let context = context
        .map(str::to_string)
        .or_else(|| doc["current-context"].as_str().map(str::to_string))
        .ok_or("no context named")?;
    let named = |list: &str, name: &str| {
        doc[list]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["name"].as_str() == Some(name))
            .cloned()
    };
    let ctx = named("contexts", &context).ok_or(format!("no context `{context}`"))?;
    let user_name = ctx["context"]["user"]
        .as_str()
        .ok_or(format!("context `{context}` names no user"))?;
    let user = named("users", user_name).ok_or(format!("no user `{user_name}`"))?;
    let data = user["user"]["client-certificate-data"]
        .as_str()
        .ok_or(format!("user `{user_name}` has no client-certificate-data"))?;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| format!("client-certificate-data is not base64: {e}"))?;
    let mut certs = parse_pem_certs(&pem)?;
    Ok(certs.remove(0))
}

/// The exports' client certificates, read from the local files.
fn export_certs(spec: &LoadedSpec, version: Option<K3sVersion>) -> Vec<CertObservation> {
    desired_exports(spec)
        .into_iter()
        .map(|e| CertObservation {
            owner: CertOwner::Export {
                export: e.name.clone(),
            },
            cert: match fs_err::read_to_string(&e.path) {
                Ok(text) => kubeconfig_client_cert(&text, Some(&e.context)),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    Err("not exported yet (no such file)".into())
                }
                Err(err) => Err(format!("cannot read it: {err}")),
            },
            file: e.path,
            version,
        })
        .collect()
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The spec and a transport per reachable host.
struct Opened {
    spec: LoadedSpec,
    servers: Vec<String>,
    agents: Vec<String>,
    transports: BTreeMap<String, Arc<dyn Transport>>,
    unreachable: Vec<(String, String)>,
}

async fn open(path: &Path, connect: ConnectOptions) -> Result<Opened, OpsError> {
    let spec = load_spec(path)?;
    let hosts = spec.hosts();
    let names = |role: Role| {
        hosts
            .iter()
            .filter(|h| h.role == role)
            .map(|h| h.name.clone())
            .collect::<Vec<_>>()
    };
    let (servers, agents) = (names(Role::Server), names(Role::Agent));
    let (transports, errors) = connect_all(&hosts, connect).await;
    let unreachable = errors
        .iter()
        .map(|e| {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            let first = first
                .strip_prefix(&format!("{}: ", e.host()))
                .unwrap_or(first);
            (e.host().to_string(), first.to_string())
        })
        .collect();
    Ok(Opened {
        spec,
        servers,
        agents,
        transports,
        unreachable,
    })
}

/// Every host's answer, all at once.
async fn ask_hosts(opened: &Opened) -> BTreeMap<String, Result<HostAnswer, String>> {
    let asks = opened.transports.iter().map(|(name, t)| async move {
        let server = opened.servers.contains(name);
        (name.clone(), ask_host(t.as_ref(), server).await)
    });
    join_all(asks).await.into_iter().collect()
}

fn host_certs(
    opened: &Opened,
    answers: &BTreeMap<String, Result<HostAnswer, String>>,
) -> Vec<CertObservation> {
    let mut certs = Vec::new();
    for host in opened.servers.iter().chain(&opened.agents) {
        let Some(Ok(answer)) = answers.get(host) else {
            continue;
        };
        for (file, cert) in &answer.certs {
            certs.push(CertObservation {
                owner: CertOwner::Host { host: host.clone() },
                file: file.clone(),
                cert: cert.clone(),
                version: answer.version,
            });
        }
    }
    certs
}

fn first_server_version(
    opened: &Opened,
    answers: &BTreeMap<String, Result<HostAnswer, String>>,
) -> Option<K3sVersion> {
    opened
        .servers
        .first()
        .and_then(|s| answers.get(s))
        .and_then(|a| a.as_ref().ok())
        .and_then(|a| a.version)
}

/// `k3sctl certs check`: every server's and agent's certificates and every export's client
/// certificate, with days left and whether K3s renews it at its next start.
pub async fn certs_check(path: &Path, connect: ConnectOptions) -> Result<CertsReport, OpsError> {
    let opened = open(path, connect).await?;
    let answers = ask_hosts(&opened).await;
    let mut unreachable = opened.unreachable.clone();
    unreachable.extend(
        answers
            .iter()
            .filter_map(|(h, a)| a.as_ref().err().map(|e| (h.clone(), e.clone()))),
    );
    let mut certs = host_certs(&opened, &answers);
    certs.extend(export_certs(
        &opened.spec,
        first_server_version(&opened, &answers),
    ));
    Ok(CertsReport {
        certificates: cert_rows(&certs, unix_now()),
        unreachable,
    })
}

/// What the API shows: nodes, unhealthy pods, etcd's members.
struct ApiLook {
    nodes: Vec<NodeInfo>,
    pods: Vec<PodHealth>,
    members: Option<Vec<crate::kube::EtcdMember>>,
}

async fn look_api(
    api: &dyn ClusterApi,
    namespaces: &Namespaces,
    ha: bool,
) -> Result<ApiLook, ApiError> {
    let pods = async {
        match namespaces.list() {
            None => api.pod_healths(None).await,
            Some(list) => {
                let mut all = Vec::new();
                for ns in join_all(list.iter().map(|ns| api.pod_healths(Some(ns)))).await {
                    all.extend(ns?);
                }
                Ok(all)
            }
        }
    };
    let members = async {
        if ha {
            api.etcd_members().await
        } else {
            Ok(None)
        }
    };
    let (nodes, pods, members) = tokio::join!(api.node_infos(), pods, members);
    Ok(ApiLook {
        nodes: nodes?,
        pods: pods?,
        members: members?,
    })
}

/// The API reached for an earlier look, and the server it goes through.
type Reached = Option<(String, Arc<dyn ClusterApi>)>;

/// The API's part of one look: through the server reached before while it answers, else
/// through the first server (spec order) whose `/readyz` answers now. Says which server
/// answered, or why none did.
async fn look_through(
    connector: &FailoverConnector,
    reached: &mut Reached,
    namespaces: &Namespaces,
    ha: bool,
) -> Result<(String, ApiLook), String> {
    if let Some((server, api)) = reached.take()
        && let Ok(look) = look_api(api.as_ref(), namespaces, ha).await
    {
        *reached = Some((server.clone(), api));
        return Ok((server, look));
    }
    let (server, api) = connector.connect_named().await.map_err(|e| e.to_string())?;
    let look = look_api(api.as_ref(), namespaces, ha)
        .await
        .map_err(|e| format!("{server}: {e}"))?;
    *reached = Some((server.clone(), api));
    Ok((server, look))
}

/// One complete look: every host's round trip and the API, side by side.
async fn observe(
    opened: &Opened,
    connector: &FailoverConnector,
    reached: &mut Reached,
    options: &CheckOptions,
) -> (Observation, Vec<CertRow>) {
    let ha = opened.servers.len() > 1;
    let (answers, api_look) = tokio::join!(
        ask_hosts(opened),
        look_through(connector, reached, &options.namespaces, ha)
    );
    let now = unix_now();
    let mut unreachable = opened.unreachable.clone();
    let mut readyz = Vec::new();
    let mut services = Vec::new();
    for (host, answer) in &answers {
        match answer {
            Err(e) => unreachable.push((host.clone(), e.clone())),
            Ok(a) => {
                if let Some(state) = &a.service {
                    services.push((host.clone(), state.clone()));
                }
                if let Some(body) = &a.readyz {
                    readyz.push((host.clone(), Ok(body.clone())));
                }
            }
        }
    }
    let mut certs = host_certs(opened, &answers);
    certs.extend(export_certs(
        &opened.spec,
        first_server_version(opened, &answers),
    ));
    let (api_server, nodes, pods, members, api_error) = match api_look {
        Ok((server, l)) => (Some(server), l.nodes, l.pods, l.members, None),
        Err(e) => (None, Vec::new(), Vec::new(), None, Some(e)),
    };
    let rows = cert_rows(&certs, now);
    let obs = Observation {
        now,
        servers: opened.servers.clone(),
        agents: opened.agents.clone(),
        version: opened.spec.cluster.spec.k3s.version,
        unreachable,
        readyz,
        services,
        nodes,
        pods,
        namespaces: options.namespaces.describe(),
        etcd_members: members,
        certs,
        grace_secs: opened
            .spec
            .cluster
            .spec
            .upgrade
            .node_ready_timeout
            .to_std()
            .as_secs(),
        api_server,
        api_error,
    };
    (obs, rows)
}

/// Pure: whether `--wait` should look again: something is settling, and nothing fails that
/// waiting will not fix (an API server that does not answer yet counts as settling).
pub fn worth_waiting(results: &[CheckResult]) -> bool {
    let transient = |r: &CheckResult| matches!(r.check.as_str(), "api" | "readyz");
    let mut settling = false;
    for r in results {
        match r.status {
            Status::Settling => settling = true,
            Status::Fail if transient(r) => settling = true,
            Status::Fail => return false,
            Status::Warn | Status::Ok => {}
        }
    }
    settling
}

/// `k3sctl check`: judges the cluster; with `options.wait`, looks again while it is settling.
pub async fn check(path: &Path, options: CheckOptions) -> Result<CheckReport, CheckError> {
    let opened = open(path, options.connect).await?;
    if opened.servers.is_empty() {
        return Err(OpsError::NoServer {
            file: path.display().to_string(),
        }
        .into());
    }
    let connector = failover_through(
        opened.servers.iter().map(String::as_str),
        &opened.transports,
    );
    let mut reached = None;
    let start = Instant::now();
    loop {
        let look_start = Instant::now();
        let (obs, certificates) = observe(&opened, &connector, &mut reached, &options).await;
        let observe_ms = u64::try_from(look_start.elapsed().as_millis()).unwrap_or(u64::MAX);
        let checks = evaluate(&obs);
        let again = options
            .wait
            .is_some_and(|limit| start.elapsed() < limit && worth_waiting(&checks));
        if !again {
            let failing = failing(&checks);
            return Ok(CheckReport {
                healthy: failing.is_empty(),
                failing,
                checks,
                certificates,
                observe_ms,
                waited_ms: u64::try_from(start.elapsed().as_millis())
                    .unwrap_or(u64::MAX)
                    .saturating_sub(observe_ms),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem(cn: &str, ca: bool) -> String {
        let mut params = rcgen::CertificateParams::new(vec!["x".to_string()]).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        if ca {
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        }
        let key = rcgen::KeyPair::generate().expect("key");
        params.self_signed(&key).expect("cert").pem()
    }

    #[test]
    fn reads_a_host_answer() {
        let text = format!(
            "== service\ninactive\n== version\nk3s version v1.34.1+k3s1 (abc)\ngo version go1.24\n\
             == server/tls/client-admin.crt\n{}== server/tls/server-ca.crt\n{}\
             == agent/broken.crt\nnot pem\n== readyz\nok\n",
            pem("system:admin", false),
            pem("k3s-server-ca", true)
        );
        let answer = parse_host_answer(&text);
        assert_eq!(
            answer.version.map(|v| v.to_string()).as_deref(),
            Some("v1.34.1+k3s1")
        );
        assert_eq!(answer.readyz.as_deref(), Some("ok"));
        assert_eq!(answer.service.as_deref(), Some("inactive"));
        let files: Vec<&str> = answer.certs.iter().map(|(f, _)| f.as_str()).collect();
        // The CA is left out; the unreadable file is reported.
        assert_eq!(files, ["server/tls/client-admin.crt", "agent/broken.crt"]);
        assert_eq!(
            answer.certs[0].1.as_ref().map(|c| c.subject.as_str()),
            Ok("CN=system:admin")
        );
        assert!(answer.certs[1].1.is_err());
        assert!(host_script(true).contains("readyz"));
        assert!(!host_script(false).contains("readyz"));
        assert!(host_script(false).contains("systemctl is-active k3s-agent"));
    }

    #[test]
    fn reads_the_client_certificate_of_an_export() {
        use base64::Engine;
        let data = base64::engine::general_purpose::STANDARD.encode(pem("system:admin", false));
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: other\n\
             contexts:\n- name: lab-admin\n  context: {{cluster: c, user: u1}}\n\
             - name: other\n  context: {{cluster: c, user: u2}}\n\
             users:\n- name: u1\n  user:\n    client-certificate-data: {data}\n\
             - name: u2\n  user: {{token: t}}\n"
        );
        let cert = kubeconfig_client_cert(&text, Some("lab-admin")).expect("cert");
        assert_eq!(cert.subject, "CN=system:admin");
        let err = kubeconfig_client_cert(&text, None).expect_err("token user");
        assert!(err.contains("no client-certificate-data"), "{err}");
        assert!(kubeconfig_client_cert(&text, Some("nope")).is_err());
        assert!(kubeconfig_client_cert("[", None).is_err());
    }

    #[test]
    fn waits_only_while_something_settles_and_nothing_is_stuck() {
        let r = |check: &str, status| CheckResult {
            check: check.into(),
            subject: "x".into(),
            status,
            detail: String::new(),
            hint: None,
        };
        // (results, worth waiting)
        let table = [
            (vec![r("node", Status::Ok)], false),
            (vec![r("pod", Status::Settling)], true),
            (
                vec![r("pod", Status::Settling), r("node", Status::Fail)],
                false,
            ),
            (vec![r("readyz", Status::Fail)], true),
            (vec![r("api", Status::Fail), r("pod", Status::Ok)], true),
            (vec![r("certificate", Status::Warn)], false),
        ];
        for (results, want) in table {
            assert_eq!(worth_waiting(&results), want, "{results:?}");
        }
    }
}
