//! `k3sctl etcd restore SNAPSHOT`: the servers are observed in one round trip each,
//! [`crate::plan::restore`] (pure) orders what is left to do, a person agrees to what will be
//! lost, and the steps run one after another. Every step is safe to run again, and the marker
//! on the restoring server remembers the restore between runs, so a run stopped anywhere (a
//! lost connection, Ctrl-C, a killed k3sctl) is finished by running the same command again.

use super::confirm::{Confirmer, ConsentRequest};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::connect::{ConnectOptions, connect_all};
use super::error::OpsError;
use super::export::read_admin_kubeconfig;
use crate::host::{ExecRequest, Transport, shell};
use crate::k3s::config::NodeRole;
use crate::k3s::ports::API_PORT;
use crate::k3s::unit::env_path;
use crate::kube::{
    ApiConnection, Poll, StartedAt, connect_through, delete_node, get_node, list_nodes, poll_until,
    wait_node_ready_after,
};
use crate::plan::restore::{
    DB_DIR, Datastore, MARKER_PATH, Marker, RestoreError, RestoreInput, RestorePlan, RestoreStep,
    SERVER_DIR, SeenSnapshot, ServerView, SqliteArchive, TokenCheck, plan_restore, snapshot_path,
    sqlite_snapshot_path,
};
use crate::run::events::{Event, EventKind, Reporter};
use crate::run::service::{QUICK, start_and_wait};
use crate::run::sqlite_snapshot::{observe_lines, replace_script};
use crate::spec::Role;

/// What K3s prints when a reset succeeded (ha-lxc-contracts.md 1.7).
const RESET_DONE: &str = "restart without --cluster-reset flag now";

/// How a restore runs.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// Host connections.
    pub connect: ConnectOptions,
    /// Only plan: print the steps, change nothing.
    pub dry_run: bool,
    /// Limit of each wait (a server Ready, a member a voter, the reset itself).
    pub timeout: Duration,
}

/// A finished (or planned) restore.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreReport {
    /// The plan that ran (or would run).
    pub plan: RestorePlan,
    /// Only planned.
    pub dry_run: bool,
    /// Where each server's old `server/db` was kept.
    pub kept: Vec<(String, String)>,
    /// Node objects deleted (hosts not in the spec).
    pub deleted_nodes: Vec<String>,
    /// Agents restarted.
    pub restarted_agents: Vec<String>,
    /// Seconds the restore took.
    pub seconds: f64,
}

/// Pure: the confirmation text, naming what is lost.
pub fn consent(plan: &RestorePlan, servers: &[String], agents: &[String]) -> ConsentRequest {
    if plan.datastore == Datastore::Sqlite {
        return sqlite_consent(plan, agents);
    }
    let mut items = vec![format!(
        "{}: K3s stopped, its etcd reset from {} (its current etcd data kept in \
         server/db/etcd-old-<time>), started again",
        plan.server, plan.snapshot
    )];
    for s in servers.iter().filter(|s| **s != plan.server) {
        items.push(format!(
            "{s}: K3s stopped, {DB_DIR} moved to {} (kept), then it joins the restored cluster",
            moved_to(plan, Some(s))
        ));
    }
    restore_consent(plan, "etcd", items, agents)
}

/// Where the restore moves `host`'s store aside to (any host's: `None`).
fn moved_to(plan: &RestorePlan, host: Option<&str>) -> String {
    plan.moved()
        .into_iter()
        .find(|(h, _)| host.is_none_or(|host| h == host))
        .map(|(_, to)| to)
        .unwrap_or_else(|| "(already moved)".into())
}

/// The confirmation of restoring the cluster's `store` (`etcd`, `SQLite store`): the server's
/// and the other servers' `items`, then the agents'.
fn restore_consent(
    plan: &RestorePlan,
    store: &str,
    mut items: Vec<String>,
    agents: &[String],
) -> ConsentRequest {
    if !agents.is_empty() {
        items.push(format!(
            "agents {} keep running; those that lost their Node are restarted",
            agents.join(", ")
        ));
    }
    ConsentRequest::new(
        "etcd restore",
        format!(
            "restore the cluster's {store} from {} (written at Unix time {}); the Kubernetes API \
             is down until {} is back",
            plan.snapshot, plan.taken, plan.server
        ),
        items,
    )
    .with_losses(losses(plan))
}

/// What every restore loses, etcd or SQLite alike.
fn losses(plan: &RestorePlan) -> Vec<String> {
    vec![
        format!(
            "every change made through the Kubernetes API after the snapshot (Unix time {}): \
             objects, namespaces, secrets, workloads' desired state",
            plan.taken
        ),
        "nodes that joined after the snapshot re-register; Node objects of hosts not in the \
         spec are deleted"
            .into(),
    ]
}

/// Pure: the confirmation of a single SQLite server's restore.
fn sqlite_consent(plan: &RestorePlan, agents: &[String]) -> ConsentRequest {
    let items = vec![format!(
        "{}: K3s stopped, {DB_DIR} replaced by the SQLite store of {} (the current one moved \
         to {}, kept), started again",
        plan.server,
        plan.snapshot,
        moved_to(plan, None)
    )];
    restore_consent(plan, "SQLite store", items, agents)
}

/// Pure: the observation script of a server: its datastore, the restore's traces and the
/// requested snapshot, looked for as an etcd snapshot (`snapshot`) and as a SQLite one
/// (`sqlite_snapshot`).
fn observe_script(snapshot: &str, sqlite_snapshot: &str) -> String {
    format!(
        "S={SERVER_DIR}\n\
         echo \"active=$(systemctl is-active k3s 2>/dev/null)\"\n\
         if [ -d \"$S/db\" ]; then echo db=1; fi\n\
         if [ -d \"$S/db/etcd/member/wal\" ]; then echo etcd=1; fi\n\
         for s in \"$S/db/state.db\" \"$S/db/state\"; do if [ -e \"$s\" ]; then echo sqlite=1; break; fi; done\n\
         if [ -e \"$S/db/reset-flag\" ]; then echo reset_flag=1; fi\n\
         for d in \"$S\"/db-before-restore-*; do if [ -d \"$d\" ]; then echo \"aside=${{d##*-}}\"; fi; done\n\
         if [ -f {marker} ]; then sed 's/^/marker:/' {marker}; echo marker_end=1; fi\n\
         P={snap}\n\
         if [ -f \"$P\" ]; then echo \"snapshot=$(stat -c '%s %Y' \"$P\")\"; fi\n\
         {sqlite}",
        marker = MARKER_PATH,
        snap = shell::quote(snapshot),
        sqlite = observe_lines(sqlite_snapshot),
    )
}

/// Pure: `<size> <mtime>` as a seen snapshot at `path`.
fn seen(path: &str, s: &str) -> Option<SeenSnapshot> {
    let mut it = s.split_whitespace();
    Some(SeenSnapshot {
        path: path.to_string(),
        size: it.next()?.parse().unwrap_or(0),
        modified: it.next()?.parse().unwrap_or(0),
    })
}

/// Pure: reads the observation script's output.
fn parse_view(name: &str, out: &str, snapshot: &str, sqlite_snapshot: &str) -> ServerView {
    let mut v = ServerView {
        name: name.to_string(),
        ..ServerView::default()
    };
    let mut marker = String::new();
    let mut has_marker = false;
    let mut sqlite_seen = None;
    let mut complete = false;
    let mut token = TokenCheck::Different;
    for line in out.lines() {
        if let Some(m) = line.strip_prefix("marker:") {
            marker.push_str(m);
            marker.push('\n');
            continue;
        }
        match line.split_once('=') {
            Some(("active", s)) => v.active = s == "active" || s == "activating",
            Some(("db", _)) => v.db = true,
            Some(("etcd", _)) => v.etcd_data = true,
            Some(("sqlite", _)) => v.sqlite = true,
            Some(("reset_flag", _)) => v.reset_flag = true,
            Some(("aside", id)) => v.asides.push(id.to_string()),
            Some(("marker_end", _)) => has_marker = true,
            Some(("snapshot", s)) => v.snapshot = seen(snapshot, s),
            Some(("sqlite_snapshot", s)) => sqlite_seen = seen(sqlite_snapshot, s),
            Some(("sqlite_complete", _)) => complete = true,
            Some(("token", "same")) => token = TokenCheck::Same,
            Some(("token", "missing")) => token = TokenCheck::Missing,
            _ => {}
        }
    }
    v.sqlite_snapshot = sqlite_seen.map(|seen| SqliteArchive {
        seen,
        complete,
        token,
    });
    if has_marker {
        v.marker = Some(Marker::parse(&marker));
    }
    v
}

struct Hosts {
    servers: Vec<String>,
    agents: Vec<String>,
    all: Vec<String>,
    transports: BTreeMap<String, Arc<dyn Transport>>,
}

impl Hosts {
    fn get(&self, name: &str) -> Result<&Arc<dyn Transport>, OpsError> {
        self.transports
            .get(name)
            .ok_or_else(|| OpsError::Etcd(format!("{name}: no connection")))
    }
}

async fn open(path: &Path, connect: ConnectOptions) -> Result<Hosts, OpsError> {
    let spec = crate::spec::load_file(path)?;
    let hosts = spec.hosts();
    let servers: Vec<String> = hosts
        .iter()
        .filter(|h| h.role == Role::Server)
        .map(|h| h.name.clone())
        .collect();
    if servers.is_empty() {
        return Err(OpsError::NoServer {
            file: path.display().to_string(),
        });
    }
    let agents = hosts
        .iter()
        .filter(|h| h.role != Role::Server)
        .map(|h| h.name.clone())
        .collect();
    let all = hosts.iter().map(|h| h.name.clone()).collect();
    let (transports, errors) = connect_all(&hosts, connect).await;
    if !errors.is_empty() {
        return Err(OpsError::Unreachable {
            errors,
            hint: "\n  hint: a restore stops and restarts every server; bring the hosts back \
                   (agents may stay down, they are restarted later by `apply`)"
                .into(),
        });
    }
    Ok(Hosts {
        servers,
        agents,
        all,
        transports,
    })
}

async fn observe(hosts: &Hosts, wanted: &str) -> Result<Vec<ServerView>, OpsError> {
    let (snapshot, sqlite) = (snapshot_path(wanted), sqlite_snapshot_path(wanted));
    let script = observe_script(&snapshot, &sqlite);
    let mut views = Vec::new();
    for s in &hosts.servers {
        let t = hosts.get(s)?;
        let out = t
            .exec_checked(
                ExecRequest::new(script.clone())
                    .sudo(true)
                    .timeout(Some(QUICK))
                    .describe("looking at the server's datastore"),
            )
            .await?;
        views.push(parse_view(s, &out.stdout_text(), &snapshot, &sqlite));
    }
    Ok(views)
}

/// Plans and (unless a dry run) runs the restore. `confirm` is asked once, before the first
/// change, with what will be lost (a resumed restore is asked again: it still stops servers).
pub async fn restore(
    path: &Path,
    wanted: &str,
    options: RestoreOptions,
    confirm: &Confirmer,
    reporter: Arc<dyn Reporter>,
) -> Result<RestoreReport, OpsError> {
    let began = Instant::now();
    let hosts = open(path, options.connect).await?;
    let views = observe(&hosts, wanted).await?;
    // A resumed restore names its own snapshot; look again at the marker's path if it differs.
    let input = RestoreInput {
        wanted: wanted.to_string(),
        servers: views,
        agents: hosts.agents.clone(),
        spec_hosts: hosts.all.clone(),
        new_id: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            .to_string(),
    };
    let plan = plan_restore(&input).map_err(restore_error)?;
    let mut report = RestoreReport {
        kept: plan.moved(),
        plan,
        dry_run: options.dry_run,
        deleted_nodes: Vec::new(),
        restarted_agents: Vec::new(),
        seconds: 0.0,
    };
    if options.dry_run {
        return Ok(report);
    }
    confirm.ask(&consent(&report.plan, &hosts.servers, &hosts.agents))?;
    let mut run = Runner {
        hosts: &hosts,
        plan: report.plan.clone(),
        options: &options,
        reporter,
        api: None,
        restored_start: None,
    };
    for step in report.plan.steps.clone() {
        let t = Instant::now();
        run.event(&step, EventKind::Start, step.title(), None);
        match run.step(&step, &mut report).await {
            Ok(()) => run.event(&step, EventKind::Done, step.title(), Some(t.elapsed())),
            Err(e) => {
                run.event(&step, EventKind::Failed, e.to_string(), Some(t.elapsed()));
                return Err(e);
            }
        }
    }
    report.seconds = began.elapsed().as_secs_f64();
    Ok(report)
}

fn restore_error(e: RestoreError) -> OpsError {
    OpsError::Restore(e)
}

struct Runner<'a> {
    hosts: &'a Hosts,
    plan: RestorePlan,
    options: &'a RestoreOptions,
    reporter: Arc<dyn Reporter>,
    api: Option<ApiConnection>,
    /// When K3s started on the restored server (its clock).
    restored_start: Option<StartedAt>,
}

impl Runner<'_> {
    fn event(&self, step: &RestoreStep, kind: EventKind, msg: String, took: Option<Duration>) {
        let mut e = Event::new(step.host(), step.kind(), kind, msg);
        if let Some(t) = took {
            e = e.took(t);
        }
        self.reporter.report(e);
    }

    fn info(&self, host: &str, kind: &str, msg: String) {
        self.reporter
            .report(Event::new(host, kind, EventKind::Info, msg));
    }

    fn poll(&self) -> Poll {
        Poll::new(Duration::from_millis(500), self.options.timeout)
    }

    async fn sh(
        &self,
        host: &str,
        script: String,
        what: &str,
        timeout: Duration,
    ) -> Result<String, OpsError> {
        let out = self
            .hosts
            .get(host)?
            .exec_checked(
                ExecRequest::new(script)
                    .sudo(true)
                    .timeout(Some(timeout))
                    .describe(what.to_string()),
            )
            .await?;
        Ok(out.stdout_text())
    }

    async fn write_marker(&self, marker: &Marker) -> Result<(), OpsError> {
        self.hosts
            .get(&self.plan.server)?
            .write_file(Path::new(MARKER_PATH), marker.render().as_bytes(), 0o600)
            .await?;
        Ok(())
    }

    /// The API through the restored server (connected once it answers).
    async fn api(&mut self) -> Result<&ApiConnection, OpsError> {
        if self.api.is_none() {
            let server = self.hosts.get(&self.plan.server)?.clone();
            let what = format!("the API on {} to answer", self.plan.server);
            let connection = poll_until(&what, self.poll(), || {
                let server = server.clone();
                async move {
                    let admin = match read_admin_kubeconfig(server.as_ref()).await {
                        Ok(a) => a,
                        Err(e) => return Ok(Err(e.to_string())),
                    };
                    Ok(
                        match connect_through(server.as_ref(), admin.expose(), API_PORT).await {
                            Ok(c) => match crate::kube::readyz(&c.client).await {
                                Ok(true) => Ok(c),
                                Ok(false) => Err("/readyz not ok".to_string()),
                                Err(e) => Err(e.to_string()),
                            },
                            Err(e) => Err(e.to_string()),
                        },
                    )
                }
            })
            .await
            .map_err(|e| RestoreFailure::new(&self.plan.server, e.to_string()))?;
            self.api = Some(connection);
        }
        Ok(self.api.as_ref().expect("set above"))
    }

    async fn step(
        &mut self,
        step: &RestoreStep,
        report: &mut RestoreReport,
    ) -> Result<(), OpsError> {
        match step {
            RestoreStep::Mark { marker, .. } => self.write_marker(marker).await,
            RestoreStep::Stop { host } => self
                .sh(
                    host,
                    "systemctl stop k3s".into(),
                    "stopping k3s",
                    Duration::from_secs(120),
                )
                .await
                .map(drop),
            RestoreStep::Reset { host, snapshot } => self.reset(host, snapshot).await,
            RestoreStep::StartRestored { host } => {
                let t = self.hosts.get(host)?.clone();
                self.restored_start =
                    start_and_wait(t.as_ref(), "k3s", false, self.options.timeout)
                        .await
                        .map_err(|e| RestoreFailure::new(host, e.to_string()))?;
                let start = self.restored_start;
                let poll = self.poll();
                let api = self.api().await?;
                wait_node_ready_after(&api.client, host, start, poll)
                    .await
                    .map_err(|e| RestoreFailure::new(host, e.to_string()))?;
                Ok(())
            }
            RestoreStep::MoveAside { host, to } => {
                let script = format!(
                    "if systemctl is-active --quiet k3s; then echo 'k3s is running' >&2; exit 3; fi\n\
                     if [ -d {db} ] && [ ! -e {to} ]; then mv {db} {to}; fi\n",
                    db = DB_DIR,
                    to = shell::quote(to)
                );
                self.sh(host, script, "moving server/db aside", QUICK)
                    .await?;
                self.info(
                    host,
                    step.kind(),
                    format!("the old etcd data of {host} is kept at {to}"),
                );
                Ok(())
            }
            RestoreStep::ReplaceSqlite { host, snapshot, to } => {
                let unit = crate::k3s::unit::unit_name(NodeRole::Server);
                let out = self
                    .sh(
                        host,
                        replace_script(unit, snapshot, to, &self.plan.id),
                        "putting the SQLite snapshot's store in place",
                        self.options.timeout,
                    )
                    .await?;
                self.write_marker(&Marker {
                    id: self.plan.id.clone(),
                    snapshot: self.plan.snapshot.clone(),
                    reset_done: true,
                    datastore: Datastore::Sqlite,
                })
                .await?;
                self.info(
                    host,
                    step.kind(),
                    format!("the SQLite store of {host} before the restore is kept at {to}"),
                );
                if out.contains("token_restored=1") {
                    self.info(
                        host,
                        step.kind(),
                        "the server had no token: the snapshot's was put back".into(),
                    );
                }
                Ok(())
            }
            RestoreStep::Rejoin { host } => self.rejoin(host).await,
            RestoreStep::DeleteStrayNodes { keep } => {
                let api = self.api().await?.client.clone();
                let nodes = list_nodes(&api)
                    .await
                    .map_err(|e| RestoreFailure::new("-", e.to_string()))?;
                for n in nodes.iter().filter(|n| !keep.contains(&n.name)) {
                    let done = delete_node(&api, &n.name, self.poll())
                        .await
                        .map_err(|e| RestoreFailure::new(&n.name, e.to_string()))?;
                    self.info(
                        &n.name,
                        step.kind(),
                        format!(
                            "deleted Node {} (not in the spec){}",
                            n.name,
                            if done.password {
                                " and its node-password secret"
                            } else {
                                ""
                            }
                        ),
                    );
                    report.deleted_nodes.push(n.name.clone());
                }
                Ok(())
            }
            RestoreStep::CheckAgents { agents } => {
                for a in agents {
                    if self.agent_needs_restart(a).await? {
                        let t = self.hosts.get(a)?.clone();
                        let unit = crate::k3s::unit::unit_name(NodeRole::Agent);
                        let started = start_and_wait(t.as_ref(), unit, true, self.options.timeout)
                            .await
                            .map_err(|e| RestoreFailure::new(a, e.to_string()))?;
                        let poll = self.poll();
                        let api = self.api().await?;
                        wait_node_ready_after(&api.client, a, started, poll)
                            .await
                            .map_err(|e| RestoreFailure::new(a, e.to_string()))?;
                        self.info(
                            a,
                            step.kind(),
                            format!("restarted {unit} on {a}: Ready again"),
                        );
                        report.restarted_agents.push(a.clone());
                    }
                }
                Ok(())
            }
            RestoreStep::Unmark { host } => self
                .sh(
                    host,
                    format!("rm -f {MARKER_PATH}"),
                    "removing the restore marker",
                    QUICK,
                )
                .await
                .map(drop),
        }
    }

    async fn reset(&mut self, host: &str, snapshot: &str) -> Result<(), OpsError> {
        // The service's environment (token), without K3S_URL: K3s refuses a reset while a
        // server URL is set (k3s-io/k3s#8488).
        let env = env_path(NodeRole::Server);
        let script = format!(
            "set -a\nif [ -r {env} ]; then . {env}; fi\nset +a\nunset K3S_URL\n\
             k3s server --cluster-reset --cluster-reset-restore-path={snap} 2>&1\n",
            snap = shell::quote(snapshot)
        );
        let t = self.hosts.get(host)?;
        let out = t
            .exec(
                ExecRequest::new(script)
                    .sudo(true)
                    .timeout(Some(self.options.timeout))
                    .describe("k3s server --cluster-reset"),
            )
            .await?;
        let log = out.stdout_text();
        if !out.success() || !log.contains(RESET_DONE) {
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(OpsError::Restore(RestoreError::ResetFailed {
                host: host.to_string(),
                status: out.status_text(),
                log: tail.join("\n"),
            }));
        }
        self.write_marker(&Marker {
            id: self.plan.id.clone(),
            snapshot: self.plan.snapshot.clone(),
            reset_done: true,
            datastore: Datastore::Etcd,
        })
        .await
    }

    async fn rejoin(&mut self, host: &str) -> Result<(), OpsError> {
        let t = self.hosts.get(host)?.clone();
        let started = start_and_wait(t.as_ref(), "k3s", false, self.options.timeout)
            .await
            .map_err(|e| RestoreFailure::new(host, e.to_string()))?;
        let poll = self.poll();
        let api = self.api().await?.client.clone();
        wait_node_ready_after(&api, host, started, poll)
            .await
            .map_err(|e| RestoreFailure::new(host, e.to_string()))?;
        // The Node's EtcdIsVoter may be the snapshot's; etcd's own member list decides.
        let restored = self.hosts.get(&self.plan.server)?.clone();
        let what = format!(
            "{host} to be a voting etcd member (etcd member list on {})",
            self.plan.server
        );
        poll_until(&what, self.poll(), || {
            let restored = restored.clone();
            async move {
                Ok(
                    match crate::run::etcd::list_members(restored.as_ref()).await {
                        Ok(members) => match members.iter().find(|m| m.is_of_node(host)) {
                            Some(m) if !m.learner => Ok(()),
                            Some(m) => Err(format!("{} is a learner", m.name)),
                            None => Err(format!("no member of {host} yet")),
                        },
                        Err(e) => Err(e),
                    },
                )
            }
        })
        .await
        .map_err(|e| RestoreFailure::new(host, e.to_string()))?;
        Ok(())
    }

    /// An agent must be restarted when its Node is gone (it joined after the snapshot) or does
    /// not post Ready to the restored cluster within a heartbeat window.
    async fn agent_needs_restart(&mut self, agent: &str) -> Result<bool, OpsError> {
        let start = self.restored_start;
        let api = self.api().await?.client.clone();
        if get_node(&api, agent)
            .await
            .map_err(|e| RestoreFailure::new(agent, e.to_string()))?
            .is_none()
        {
            return Ok(true);
        }
        let window = Poll::new(
            Duration::from_millis(500),
            AGENT_WINDOW.min(self.options.timeout),
        );
        Ok(wait_node_ready_after(&api, agent, start, window)
            .await
            .is_err())
    }
}

/// How long an agent has to post Ready to the restored cluster before it is restarted (K3s's
/// kubelet posts its status every 10 s; its load balancer retries the servers meanwhile).
const AGENT_WINDOW: Duration = Duration::from_secs(45);

/// A step failed on a host.
struct RestoreFailure;

impl RestoreFailure {
    #[allow(clippy::new_ret_no_self)]
    fn new(host: &str, error: String) -> OpsError {
        OpsError::Restore(RestoreError::StepFailed {
            host: host.to_string(),
            error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_observation_reads_every_signal() {
        let out = "active=inactive\ndb=1\netcd=1\nreset_flag=1\naside=200\naside=150\n\
                   marker:id=200\nmarker:snapshot=/s/n\nmarker:reset=pending\nmarker_end=1\n\
                   snapshot=4096 1767225600\n";
        let v = parse_view("s1", out, "/s/n", "/q/n");
        assert!(!v.active && v.db && v.etcd_data && v.reset_flag && !v.sqlite);
        assert_eq!(v.asides, vec!["200", "150"]);
        assert_eq!(
            v.marker,
            Some(Ok(Marker {
                id: "200".into(),
                snapshot: "/s/n".into(),
                reset_done: false,
                datastore: Datastore::Etcd,
            }))
        );
        assert_eq!(
            v.snapshot,
            Some(SeenSnapshot {
                path: "/s/n".into(),
                size: 4096,
                modified: 1767225600
            })
        );
        assert_eq!(v.sqlite_snapshot, None);
        let v = parse_view("s2", "active=active\n", "/s/n", "/q/n");
        assert!(v.active && v.marker.is_none() && v.snapshot.is_none() && !v.db);
        assert!(observe_script("/a b", "/q").contains("P='/a b'"));
        let v = parse_view(
            "s1",
            "active=active\ndb=1\nsqlite=1\nsqlite_snapshot=2048 1767225600\nsqlite_complete=1\n\
             token=same\n",
            "/s/n",
            "/q/n.tar.gz",
        );
        assert!(v.sqlite && !v.etcd_data);
        assert_eq!(
            v.sqlite_snapshot,
            Some(SqliteArchive {
                seen: SeenSnapshot {
                    path: "/q/n.tar.gz".into(),
                    size: 2048,
                    modified: 1767225600
                },
                complete: true,
                token: TokenCheck::Same
            })
        );
        // No token line (an archive without one): never taken for the same token.
        let v = parse_view("s1", "sqlite_snapshot=1 2\n", "/s/n", "/q");
        assert_eq!(
            v.sqlite_snapshot.map(|a| (a.complete, a.token)),
            Some((false, TokenCheck::Different))
        );
    }

    #[test]
    fn the_confirmation_names_what_is_lost_and_where_data_is_kept() {
        let mut s2 = ServerView {
            name: "s2".into(),
            active: true,
            db: true,
            etcd_data: true,
            ..ServerView::default()
        };
        s2.snapshot = Some(SeenSnapshot {
            path: "/snap".into(),
            size: 1,
            modified: 1700000000,
        });
        let s1 = ServerView {
            name: "s1".into(),
            db: true,
            etcd_data: true,
            ..ServerView::default()
        };
        let plan = plan_restore(&RestoreInput {
            wanted: "/snap".into(),
            servers: vec![s1, s2],
            agents: vec!["a1".into()],
            spec_hosts: vec!["s1".into(), "s2".into(), "a1".into()],
            new_id: "9".into(),
        })
        .expect("plan");
        let c = consent(&plan, &["s1".into(), "s2".into()], &["a1".into()]);
        assert!(c.headline.contains("/snap") && c.headline.contains("1700000000"));
        assert!(
            c.items.iter().any(|i| i.starts_with("s1:")
                && i.contains("/var/lib/rancher/k3s/server/db-before-restore-9")),
            "{c:?}"
        );
        assert!(c.losses[0].contains("after the snapshot"), "{c:?}");
        assert!(
            c.headline
                .starts_with("restore the cluster's etcd from /snap")
                && c.headline
                    .ends_with("the Kubernetes API is down until s2 is back"),
            "{c:?}"
        );
        assert_eq!(
            c.items.last().map(String::as_str),
            Some("agents a1 keep running; those that lost their Node are restarted")
        );
    }

    #[test]
    fn a_sqlite_restore_names_where_the_current_store_is_kept() {
        let archive = "/var/lib/rancher/k3s/server/sqlite-snapshots/on-demand-s1-100.tar.gz";
        let s1 = ServerView {
            name: "s1".into(),
            active: true,
            db: true,
            sqlite: true,
            sqlite_snapshot: Some(SqliteArchive {
                seen: SeenSnapshot {
                    path: archive.into(),
                    size: 2048,
                    modified: 100,
                },
                complete: true,
                token: TokenCheck::Same,
            }),
            ..ServerView::default()
        };
        let plan = plan_restore(&RestoreInput {
            wanted: "on-demand-s1-100.tar.gz".into(),
            servers: vec![s1],
            agents: vec![],
            spec_hosts: vec!["s1".into()],
            new_id: "300".into(),
        })
        .expect("plan");
        let c = consent(&plan, &["s1".into()], &[]);
        assert_eq!(
            c.headline,
            format!(
                "restore the cluster's SQLite store from {archive} (written at Unix time 100); \
                 the Kubernetes API is down until s1 is back"
            )
        );
        assert_eq!(c.items.len(), 1, "{c:?}");
        assert!(
            c.items[0].contains(
                "(the current one moved to /var/lib/rancher/k3s/server/db-before-restore-300, kept)"
            ),
            "{c:?}"
        );
    }
}
