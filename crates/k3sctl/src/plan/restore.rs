//! Pure planning of `k3sctl etcd restore SNAPSHOT`: K3s's documented multi-server restore
//! (docs.k3s.io/cli/etcd-snapshot "Restoring Snapshots"; ha-lxc-contracts.md 1.7) as ordered
//! steps, computed from what the servers show, so that a run interrupted anywhere and started
//! again only does what is left:
//!
//! 1. a marker on the restoring server (`server/k3sctl-restore`: restore id, snapshot path,
//!    whether the reset ran) — the only memory of a restore in progress;
//! 2. K3s stopped on every server (agents keep running);
//! 3. `k3s server --cluster-reset --cluster-reset-restore-path=P` on the server holding the
//!    snapshot (skipped once the marker or K3s's `server/db/reset-flag` says it ran);
//! 4. that server started from the restored data;
//! 5. on every other server, `server/db` moved aside to `server/db-before-restore-<id>` (never
//!    deleted) and K3s started, one server at a time, each a voting member before the next;
//! 6. Node objects of hosts not in the spec deleted, agents that lost their Node restarted;
//! 7. the marker removed.
//!
//! A single server keeping its state in SQLite has no etcd to reset: its snapshots are archives
//! of `server/db` and the token (`run::sqlite_snapshot`), and its restore is the same engine
//! with one step in place of the reset: marker, stop, `server/db` replaced by the archive's
//! (the current one moved aside, kept), start, stray Nodes, agents, unmark.

use serde::Serialize;

pub use crate::k3s::ports::{DB_DIR, SERVER_DIR};
/// K3s's default snapshot directory.
pub const SNAPSHOT_DIR: &str = concat!(crate::k3s::ports::db_dir!(), "/snapshots");
/// The restore marker on the restoring server.
pub const MARKER_PATH: &str = concat!(crate::k3s::ports::server_dir!(), "/k3sctl-restore");
/// Where SQLite snapshots (archives of `server/db` and the token) are kept: beside `server/db`,
/// so that a restore moving `server/db` aside does not move them.
pub const SQLITE_SNAPSHOT_DIR: &str =
    concat!(crate::k3s::ports::server_dir!(), "/sqlite-snapshots");
/// A SQLite snapshot's file name suffix.
pub const SQLITE_SUFFIX: &str = ".tar.gz";

/// The datastore a restore puts back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Datastore {
    /// Embedded etcd: K3s's `--cluster-reset` from an etcd snapshot.
    #[default]
    Etcd,
    /// A single server's SQLite store: `server/db` replaced by a SQLite snapshot's.
    Sqlite,
}

impl Datastore {
    fn as_str(self) -> &'static str {
        match self {
            Self::Etcd => "etcd",
            Self::Sqlite => "sqlite",
        }
    }

    /// The snapshot path a SNAPSHOT argument names for this datastore.
    pub fn snapshot_path(self, wanted: &str) -> String {
        match self {
            Self::Etcd => snapshot_path(wanted),
            Self::Sqlite => sqlite_snapshot_path(wanted),
        }
    }
}

/// The restore in progress, as the marker records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Marker {
    /// Restore id (Unix seconds when it began); names the directories moved aside.
    pub id: String,
    /// The snapshot file on the restoring server.
    pub snapshot: String,
    /// `k3s server --cluster-reset` finished (exit 0), or the SQLite store was put in place.
    pub reset_done: bool,
    /// What is restored (markers of older k3sctl have no line: etcd).
    pub datastore: Datastore,
}

impl Marker {
    /// The marker file's text (`key=value` lines).
    pub fn render(&self) -> String {
        format!(
            "id={}\nsnapshot={}\nreset={}\ndatastore={}\n",
            self.id,
            self.snapshot,
            if self.reset_done { "done" } else { "pending" },
            self.datastore.as_str()
        )
    }

    /// Reads the marker file's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut id = None;
        let mut snapshot = None;
        let mut reset = None;
        let mut datastore = Datastore::Etcd;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            match line.split_once('=') {
                Some(("id", v)) => id = Some(v.to_string()),
                Some(("snapshot", v)) => snapshot = Some(v.to_string()),
                Some(("reset", v)) => reset = Some(v == "done"),
                Some(("datastore", "etcd")) => datastore = Datastore::Etcd,
                Some(("datastore", "sqlite")) => datastore = Datastore::Sqlite,
                _ => return Err(format!("unexpected line {line:?}")),
            }
        }
        let id = id
            .filter(|i| !i.is_empty() && i.chars().all(|c| c.is_ascii_digit()))
            .ok_or("no numeric id")?;
        Ok(Self {
            id,
            snapshot: snapshot
                .filter(|s| s.starts_with('/'))
                .ok_or("no snapshot path")?,
            reset_done: reset.ok_or("no reset state")?,
            datastore,
        })
    }

    /// Where a server's `server/db` goes for this restore.
    pub fn aside_dir(&self) -> String {
        aside_dir(&self.id)
    }
}

/// Where a server's `server/db` goes for restore `id`.
pub fn aside_dir(id: &str) -> String {
    format!("{SERVER_DIR}/db-before-restore-{id}")
}

/// The snapshot file as seen on one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenSnapshot {
    /// Its path on the host.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, Unix seconds.
    pub modified: i64,
}

/// What one server shows (one round trip).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerView {
    /// Host name (= node name).
    pub name: String,
    /// `systemctl is-active k3s` says active (or activating).
    pub active: bool,
    /// `server/db` exists.
    pub db: bool,
    /// Embedded etcd data (`server/db/etcd/member/wal`).
    pub etcd_data: bool,
    /// A SQLite store (`server/db/state.db`, or the stand-in's `server/db/state`).
    pub sqlite: bool,
    /// K3s's `server/db/reset-flag` (a reset ran and K3s has not started normally since).
    pub reset_flag: bool,
    /// The `db-before-restore-<id>` directories present (ids).
    pub asides: Vec<String>,
    /// The restore marker, when this server holds one.
    pub marker: Option<Result<Marker, String>>,
    /// The requested snapshot, when this server has it.
    pub snapshot: Option<SeenSnapshot>,
    /// The requested SQLite snapshot, when this server has it.
    pub sqlite_snapshot: Option<SqliteArchive>,
}

/// A SQLite snapshot as seen on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteArchive {
    /// The file.
    pub seen: SeenSnapshot,
    /// It holds `db/` and `token`.
    pub complete: bool,
    /// Its token against the server's.
    pub token: TokenCheck,
}

/// A SQLite snapshot's token against the server's current one (compared on the host, never
/// read by k3sctl).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCheck {
    /// The same token.
    Same,
    /// Another token: the server token changed since the snapshot.
    Different,
    /// The server has no token file (a wiped server): the snapshot's is put back.
    Missing,
}

/// One step of a restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum RestoreStep {
    /// Write the marker on the restoring server.
    Mark {
        /// Host.
        host: String,
        /// The marker.
        marker: Marker,
    },
    /// `systemctl stop k3s`.
    Stop {
        /// Host.
        host: String,
    },
    /// `k3s server --cluster-reset --cluster-reset-restore-path=<snapshot>`.
    Reset {
        /// Host.
        host: String,
        /// Snapshot path on the host.
        snapshot: String,
    },
    /// Start K3s on the restored server (or find it running) and wait for /readyz and Ready.
    StartRestored {
        /// Host.
        host: String,
    },
    /// Move `server/db` aside.
    MoveAside {
        /// Host.
        host: String,
        /// Where it goes.
        to: String,
    },
    /// SQLite: replace `server/db` with the snapshot's (the current one moved aside, kept;
    /// the token put back when the server has none).
    ReplaceSqlite {
        /// Host.
        host: String,
        /// The snapshot archive on the host.
        snapshot: String,
        /// Where the current `server/db` goes.
        to: String,
    },
    /// Start K3s (it joins as a new member) and wait until it is Ready and a voting member.
    Rejoin {
        /// Host.
        host: String,
    },
    /// Delete the Node objects (and node-password secrets) of hosts not in the spec.
    DeleteStrayNodes {
        /// The spec's hosts (kept).
        keep: Vec<String>,
    },
    /// Restart the agents whose Node does not post Ready to the restored cluster.
    CheckAgents {
        /// The spec's agents.
        agents: Vec<String>,
    },
    /// Remove the marker: the restore is complete.
    Unmark {
        /// Host.
        host: String,
    },
}

impl RestoreStep {
    /// A short stable name for progress lines and JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Mark { .. } => "mark",
            Self::Stop { .. } => "stop",
            Self::Reset { .. } => "cluster-reset",
            Self::StartRestored { .. } => "start-restored",
            Self::MoveAside { .. } => "move-db-aside",
            Self::ReplaceSqlite { .. } => "replace-sqlite-store",
            Self::Rejoin { .. } => "rejoin",
            Self::DeleteStrayNodes { .. } => "delete-stray-nodes",
            Self::CheckAgents { .. } => "check-agents",
            Self::Unmark { .. } => "unmark",
        }
    }

    /// The host the step runs on (`-` for API-only steps).
    pub fn host(&self) -> &str {
        match self {
            Self::Mark { host, .. }
            | Self::Stop { host }
            | Self::Reset { host, .. }
            | Self::StartRestored { host }
            | Self::MoveAside { host, .. }
            | Self::ReplaceSqlite { host, .. }
            | Self::Rejoin { host }
            | Self::Unmark { host } => host,
            Self::DeleteStrayNodes { .. } | Self::CheckAgents { .. } => "-",
        }
    }

    /// One line saying what the step does.
    pub fn title(&self) -> String {
        match self {
            Self::Mark { marker, .. } => format!(
                "record restore {} of {} in {MARKER_PATH} (a re-run resumes from it)",
                marker.id, marker.snapshot
            ),
            Self::Stop { .. } => "stop k3s".into(),
            Self::Reset { snapshot, .. } => format!(
                "k3s server --cluster-reset --cluster-reset-restore-path={snapshot} (K3s keeps \
                 the current etcd data in server/db/etcd-old-<time>)"
            ),
            Self::StartRestored { .. } => {
                "start k3s on the restored data; wait for /readyz and the node Ready".into()
            }
            Self::MoveAside { to, .. } => format!("move {DB_DIR} aside to {to} (kept, not deleted)"),
            Self::ReplaceSqlite { snapshot, to, .. } => format!(
                "put the SQLite store of {snapshot} in place: {DB_DIR} moved aside to {to} \
                 (kept, not deleted); the server token restored only if the server has none"
            ),
            Self::Rejoin { .. } => {
                "start k3s: join the restored cluster as a new etcd member; wait until Ready and a voter"
                    .into()
            }
            Self::DeleteStrayNodes { .. } => {
                "delete the Node objects (and node-password secrets) of hosts not in the spec".into()
            }
            Self::CheckAgents { agents } => format!(
                "restart the agents ({}) whose Node does not post Ready to the restored cluster",
                agents.join(", ")
            ),
            Self::Unmark { .. } => format!("remove {MARKER_PATH}: the restore is complete"),
        }
    }
}

/// The restore, planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestorePlan {
    /// What is restored.
    pub datastore: Datastore,
    /// The restoring server.
    pub server: String,
    /// The snapshot path on it.
    pub snapshot: String,
    /// Size in bytes.
    pub size: u64,
    /// When the snapshot file was written (Unix seconds).
    pub taken: i64,
    /// The restore resumes an interrupted one.
    pub resuming: bool,
    /// Restore id.
    pub id: String,
    /// Steps in order.
    pub steps: Vec<RestoreStep>,
}

impl RestorePlan {
    /// Where each other server's `server/db` goes (host, directory), for the report.
    pub fn moved(&self) -> Vec<(String, String)> {
        self.steps
            .iter()
            .filter_map(|s| match s {
                RestoreStep::MoveAside { host, to }
                | RestoreStep::ReplaceSqlite { host, to, .. } => Some((host.clone(), to.clone())),
                _ => None,
            })
            .collect()
    }
}

/// Why no restore can be planned. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// No server holds the snapshot.
    #[error(
        "no server has snapshot {wanted} (looked in {dir} on {}); nothing was changed\n  \
         hint: `k3sctl etcd snapshot list` shows the snapshots and where they are; give a name \
         from it, or an absolute path of a file on a server",
        looked.join(", ")
    )]
    SnapshotNotFound {
        /// The argument.
        wanted: String,
        /// The directory a name is looked for in.
        dir: String,
        /// Servers asked.
        looked: Vec<String>,
    },
    /// An interrupted restore of another snapshot is in progress.
    #[error(
        "{host}: an interrupted restore of {snapshot} is in progress ({MARKER_PATH}); nothing was \
         changed\n  hint: run `k3sctl etcd restore {snapshot}` to finish it first"
    )]
    OtherInProgress {
        /// The server holding the marker.
        host: String,
        /// Its snapshot.
        snapshot: String,
    },
    /// Several servers hold a marker.
    #[error(
        "servers {} each hold a restore marker ({MARKER_PATH}): k3sctl cannot tell which restore \
         is current; nothing was changed\n  hint: keep the marker on the server whose etcd was \
         reset last, remove the others' and run again",
        hosts.join(", ")
    )]
    SeveralMarkers {
        /// The servers.
        hosts: Vec<String>,
    },
    /// A marker cannot be read.
    #[error(
        "{host}: {MARKER_PATH} is not a restore marker k3sctl wrote ({why}); nothing was \
         changed\n  hint: look at the file; remove it if no restore is in progress"
    )]
    BadMarker {
        /// Host.
        host: String,
        /// What is wrong.
        why: String,
    },
    /// The marker's snapshot file is gone from its server.
    #[error(
        "{host}: the restore in progress needs {snapshot}, which is no longer there; nothing was \
         changed\n  hint: put the snapshot file back at that path and run again"
    )]
    MarkerSnapshotGone {
        /// Host.
        host: String,
        /// The path.
        snapshot: String,
    },
    /// A server of several keeps its state in SQLite.
    #[error(
        "{host} keeps its state in SQLite ({DB_DIR}/state.db) while the spec has several \
         servers: a SQLite store is restored only on a single-server cluster, and an etcd \
         restore needs every server on etcd; nothing was changed\n  hint: run `k3sctl apply` \
         to finish the conversion to embedded etcd, or restore with a spec naming only {host}"
    )]
    Sqlite {
        /// The server.
        host: String,
    },
    /// The file is not a SQLite snapshot k3sctl took.
    #[error(
        "{host}: {path} is not a SQLite snapshot k3sctl took (it does not hold db/ and token); \
         nothing was changed\n  hint: give a name from `k3sctl etcd snapshot list`"
    )]
    NotSqliteSnapshot {
        /// Host.
        host: String,
        /// The file.
        path: String,
    },
    /// The SQLite snapshot was taken with another server token.
    #[error(
        "{host}: {path} was taken with another server token than the one {host} has now (the \
         token was rotated since): K3s encrypts its bootstrap data with the token, and the \
         agents join with the current one; nothing was changed\n  hint: restore a snapshot \
         taken after the token changed (`k3sctl etcd snapshot list`); this one needs its own \
         token on the server and in every agent's env file, which k3sctl does not put back"
    )]
    SqliteTokenChanged {
        /// Host.
        host: String,
        /// The file.
        path: String,
    },
    /// A reset flag from a reset k3sctl did not make.
    #[error(
        "{host}: {DB_DIR}/reset-flag is there: a `--cluster-reset` ran and K3s has not started \
         normally since, so K3s would refuse another; nothing was changed\n  hint: start k3s on \
         {host} to finish that reset (K3s removes the flag), or remove the file if that reset \
         is abandoned"
    )]
    ForeignResetFlag {
        /// Host.
        host: String,
    },
    /// `k3s server --cluster-reset` did not succeed.
    #[error(
        "{host}: k3s server --cluster-reset did not finish ({status}); last lines:\n{log}\n  \
         hint: fix what K3s says and run the same `k3sctl etcd restore` again (it resumes; the \
         other servers are still stopped with their data in place)"
    )]
    ResetFailed {
        /// Host.
        host: String,
        /// Exit status.
        status: String,
        /// K3s's last log lines.
        log: String,
    },
    /// A step failed after the restore began.
    #[error(
        "{host}: {error}\n  hint: the restore stopped part-way; once the cause is fixed, run the \
         same `k3sctl etcd restore` again: it resumes from {MARKER_PATH} on the restoring server"
    )]
    StepFailed {
        /// Host (or `-` for the API).
        host: String,
        /// What failed.
        error: String,
    },
}

/// What the planner needs.
#[derive(Debug, Clone)]
pub struct RestoreInput {
    /// The SNAPSHOT argument as given.
    pub wanted: String,
    /// The spec's servers in spec order, as observed.
    pub servers: Vec<ServerView>,
    /// The spec's agents.
    pub agents: Vec<String>,
    /// The spec's hosts (servers and agents).
    pub spec_hosts: Vec<String>,
    /// Id for a new restore (Unix seconds now).
    pub new_id: String,
}

/// Pure: the snapshot path a SNAPSHOT argument names: an absolute path as is, else a file name in
/// K3s's snapshot directory (`file://` locations from `snapshot list` are accepted).
pub fn snapshot_path(wanted: &str) -> String {
    let w = wanted.strip_prefix("file://").unwrap_or(wanted);
    if w.starts_with('/') {
        w.to_string()
    } else {
        format!("{SNAPSHOT_DIR}/{w}")
    }
}

/// Pure: the SQLite snapshot path a SNAPSHOT argument names: an absolute path as is, else a file
/// name in [`SQLITE_SNAPSHOT_DIR`] (`file://` locations from `snapshot list` are accepted).
pub fn sqlite_snapshot_path(wanted: &str) -> String {
    let w = wanted.strip_prefix("file://").unwrap_or(wanted);
    if w.starts_with('/') {
        w.to_string()
    } else {
        format!("{SQLITE_SNAPSHOT_DIR}/{w}")
    }
}

/// Pure: the servers run a single SQLite server (the only server, with a SQLite store and no
/// etcd data).
fn single_sqlite(servers: &[ServerView]) -> bool {
    matches!(servers, [only] if only.sqlite && !only.etcd_data)
}

/// The steps every restore ends with once its server runs again: Nodes of hosts the spec does
/// not name deleted, agents checked (restarted when they lost their Node), the marker removed.
fn push_cleanup(steps: &mut Vec<RestoreStep>, input: &RestoreInput, server: &str) {
    steps.push(RestoreStep::DeleteStrayNodes {
        keep: input.spec_hosts.clone(),
    });
    if !input.agents.is_empty() {
        steps.push(RestoreStep::CheckAgents {
            agents: input.agents.clone(),
        });
    }
    steps.push(RestoreStep::Unmark {
        host: server.to_owned(),
    });
}

/// Pure: plans the restore (or the rest of an interrupted one).
pub fn plan_restore(input: &RestoreInput) -> Result<RestorePlan, RestoreError> {
    let mut markers = Vec::new();
    for s in &input.servers {
        match &s.marker {
            Some(Ok(m)) => markers.push((s, m.clone())),
            Some(Err(why)) => {
                return Err(RestoreError::BadMarker {
                    host: s.name.clone(),
                    why: why.clone(),
                });
            }
            None => {}
        }
    }
    if markers.len() > 1 {
        return Err(RestoreError::SeveralMarkers {
            hosts: markers.iter().map(|(s, _)| s.name.clone()).collect(),
        });
    }
    let (target, marker, resuming) = match markers.pop() {
        Some((s, m)) => {
            if m.snapshot != m.datastore.snapshot_path(&input.wanted) {
                return Err(RestoreError::OtherInProgress {
                    host: s.name.clone(),
                    snapshot: m.snapshot,
                });
            }
            (s, m, true)
        }
        None if single_sqlite(&input.servers) => {
            let target = &input.servers[0];
            let marker = Marker {
                id: input.new_id.clone(),
                snapshot: sqlite_snapshot_path(&input.wanted),
                reset_done: false,
                datastore: Datastore::Sqlite,
            };
            (target, marker, false)
        }
        None => {
            let target = input
                .servers
                .iter()
                .find(|s| s.snapshot.is_some())
                .ok_or_else(|| RestoreError::SnapshotNotFound {
                    wanted: input.wanted.clone(),
                    dir: SNAPSHOT_DIR.into(),
                    looked: input.servers.iter().map(|s| s.name.clone()).collect(),
                })?;
            if let Some(sqlite) = input.servers.iter().find(|s| s.sqlite && !s.etcd_data) {
                return Err(RestoreError::Sqlite {
                    host: sqlite.name.clone(),
                });
            }
            if target.reset_flag {
                return Err(RestoreError::ForeignResetFlag {
                    host: target.name.clone(),
                });
            }
            let marker = Marker {
                id: input.new_id.clone(),
                snapshot: snapshot_path(&input.wanted),
                reset_done: false,
                datastore: Datastore::Etcd,
            };
            (target, marker, false)
        }
    };
    if marker.datastore == Datastore::Sqlite {
        return plan_sqlite(input, target, marker, resuming);
    }
    let seen = target
        .snapshot
        .clone()
        .ok_or_else(|| RestoreError::MarkerSnapshotGone {
            host: target.name.clone(),
            snapshot: marker.snapshot.clone(),
        })?;
    // K3s's flag proves the reset ran even when k3sctl stopped before recording it.
    let reset_done = marker.reset_done || (resuming && target.reset_flag);
    let others: Vec<&ServerView> = input
        .servers
        .iter()
        .filter(|s| s.name != target.name)
        .collect();
    let moved = |s: &ServerView| s.asides.contains(&marker.id);

    let mut steps = Vec::new();
    if !resuming {
        steps.push(RestoreStep::Mark {
            host: target.name.clone(),
            marker: marker.clone(),
        });
    }
    if target.active && !reset_done {
        steps.push(RestoreStep::Stop {
            host: target.name.clone(),
        });
    }
    // A server whose data was moved aside for this restore has rejoined (or is joining): it
    // stays up. Every other one must be down before the reset and until its turn.
    for s in &others {
        if s.active && !moved(s) {
            steps.push(RestoreStep::Stop {
                host: s.name.clone(),
            });
        }
    }
    if !reset_done {
        steps.push(RestoreStep::Reset {
            host: target.name.clone(),
            snapshot: seen.path.clone(),
        });
    }
    steps.push(RestoreStep::StartRestored {
        host: target.name.clone(),
    });
    for s in &others {
        if !moved(s) && s.db {
            steps.push(RestoreStep::MoveAside {
                host: s.name.clone(),
                to: marker.aside_dir(),
            });
        }
        steps.push(RestoreStep::Rejoin {
            host: s.name.clone(),
        });
    }
    push_cleanup(&mut steps, input, &target.name);
    Ok(RestorePlan {
        datastore: Datastore::Etcd,
        server: target.name.clone(),
        snapshot: seen.path,
        size: seen.size,
        taken: seen.modified,
        resuming,
        id: marker.id,
        steps,
    })
}

/// Pure: the SQLite restore (or its rest): the archive checked (its `db/` and token, the token
/// the server's own), then the server stopped, its store replaced, started, and the cluster's
/// Nodes and agents brought in line as after an etcd restore.
fn plan_sqlite(
    input: &RestoreInput,
    target: &ServerView,
    marker: Marker,
    resuming: bool,
) -> Result<RestorePlan, RestoreError> {
    let archive = target.sqlite_snapshot.clone().ok_or_else(|| {
        if resuming {
            RestoreError::MarkerSnapshotGone {
                host: target.name.clone(),
                snapshot: marker.snapshot.clone(),
            }
        } else {
            RestoreError::SnapshotNotFound {
                wanted: input.wanted.clone(),
                dir: SQLITE_SNAPSHOT_DIR.into(),
                looked: vec![target.name.clone()],
            }
        }
    })?;
    let mut steps = Vec::new();
    if !marker.reset_done {
        if !archive.complete {
            return Err(RestoreError::NotSqliteSnapshot {
                host: target.name.clone(),
                path: marker.snapshot.clone(),
            });
        }
        if archive.token == TokenCheck::Different {
            return Err(RestoreError::SqliteTokenChanged {
                host: target.name.clone(),
                path: marker.snapshot.clone(),
            });
        }
        if !resuming {
            steps.push(RestoreStep::Mark {
                host: target.name.clone(),
                marker: marker.clone(),
            });
        }
        if target.active {
            steps.push(RestoreStep::Stop {
                host: target.name.clone(),
            });
        }
        steps.push(RestoreStep::ReplaceSqlite {
            host: target.name.clone(),
            snapshot: marker.snapshot.clone(),
            to: marker.aside_dir(),
        });
    }
    steps.push(RestoreStep::StartRestored {
        host: target.name.clone(),
    });
    push_cleanup(&mut steps, input, &target.name);
    Ok(RestorePlan {
        datastore: Datastore::Sqlite,
        server: target.name.clone(),
        snapshot: marker.snapshot.clone(),
        size: archive.seen.size,
        taken: archive.seen.modified,
        resuming,
        id: marker.id,
        steps,
    })
}

/// Pure: the plan as text, one numbered step a line.
pub fn render_restore_plan(plan: &RestorePlan) -> String {
    let mut out = format!(
        "{} {} snapshot {} on {} ({} bytes, written at Unix time {}), restore {}:\n",
        if plan.resuming {
            "Resuming the restore of"
        } else {
            "Restore of"
        },
        match plan.datastore {
            Datastore::Etcd => "etcd",
            Datastore::Sqlite => "SQLite",
        },
        plan.snapshot,
        plan.server,
        plan.size,
        plan.taken,
        plan.id
    );
    for (i, step) in plan.steps.iter().enumerate() {
        out.push_str(&format!(
            "  {:>2}. [{}] {}\n",
            i + 1,
            step.host(),
            step.title()
        ));
    }
    out
}

#[cfg(test)]
#[path = "restore_tests.rs"]
mod tests;
