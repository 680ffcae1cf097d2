//! The steps of a plan: each is one side effect (or a wait) on one host, named so that `plan`
//! shows exactly what `apply` runs.

use std::collections::BTreeMap;

use serde::Serialize;

use super::datastore::DatastoreAction;
use super::desired::FileContent;
use crate::k3s::config::NodeRole;
use crate::k3s::version::K3sVersion;

/// One step on one host.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Step {
    /// Stream the release binary to /usr/local/bin/k3s.
    UploadBinary {
        /// Version being installed.
        version: K3sVersion,
        /// Version found, if any.
        installed: Option<K3sVersion>,
        /// sha256 the host will verify.
        sha256: String,
    },
    /// Write a managed file (only when its content differs).
    WriteFile {
        /// Path on the host.
        path: String,
        /// Permission bits.
        mode: u32,
        /// Unified diff, credentials masked (empty when only secret values changed).
        diff: String,
        /// Whether the file is new.
        create: bool,
        /// What to write.
        #[serde(skip)]
        content: FileContent,
    },
    /// Remove a file K3s would read but k3sctl does not manage (a config.yaml.d drop-in whose
    /// settings the spec now holds).
    RemoveFile {
        /// Path on the host.
        path: String,
    },
    /// Take over a unit drop-in that sets K3s's command (`ExecStart=`): k3sctl's unit holds the
    /// command and config.yaml the flags, so the drop-in's `ExecStart` lines go (the drop-in is
    /// rewritten without them, or moved aside when nothing else is left in it); the original
    /// is kept at `backup`.
    TakeOverUnitDropin(crate::k3s::unit_dropins::Takeover),
    /// Link a command (`kubectl`, `crictl`, `ctr`) to the K3s binary as K3s's install script
    /// does, where no file or command of that name exists (see [`crate::k3s::links`]).
    LinkCommand {
        /// The command.
        command: String,
        /// The link's path.
        path: String,
    },
    /// `systemctl daemon-reload` after a unit change.
    DaemonReload,
    /// The files change but K3s's effective configuration does not: K3s keeps running. Before
    /// the files are written, the host records that they are in effect for K3s's current
    /// start, so no restart is pending, even if the run stops half-way.
    Adopt {
        /// The start files judged to leave K3s as it runs: path → sha256 of the content
        /// (never shown: the env file holds the token).
        #[serde(skip)]
        files: BTreeMap<String, String>,
    },
    /// `systemctl enable --now` for a node that is not running.
    Start {
        /// The node joins an existing cluster (agents, later servers).
        join: bool,
    },
    /// `systemctl restart` to pick up changed files.
    Restart {
        /// Why.
        reason: String,
    },
    /// Wait for the first server's token file and /readyz.
    WaitServerReady,
    /// Wait until the node is registered and Ready in the API.
    WaitNodeReady,
    /// Put the spec's taints on the live Node (K3s applies `node-taint` only at registration)
    /// and remove those k3sctl set earlier that the spec no longer lists; never a taint k3sctl
    /// did not set.
    EnforceTaints {
        /// The taints the spec lists for the host.
        wanted: Vec<String>,
        /// Expected additions (recomputed against the live Node when run).
        add: Vec<String>,
        /// Expected removals (only taints k3sctl recorded as its own).
        remove: Vec<String>,
        /// The node registers in this run: the wanted taints it got at registration came from
        /// k3sctl's config and become k3sctl's.
        adopt: bool,
    },
    /// Put the spec's labels on the live Node (K3s applies `node-label` only at registration):
    /// every label the spec names gets the spec's value; labels k3sctl set earlier that the
    /// spec no longer names are removed; never a label k3sctl did not set and the spec does not
    /// name.
    EnforceLabels {
        /// The labels the spec lists for the host.
        wanted: BTreeMap<String, String>,
        /// Expected settings (recomputed against the live Node when run).
        set: BTreeMap<String, String>,
        /// Expected removals (only keys k3sctl recorded as its own).
        remove: Vec<String>,
        /// The node registers in this run: the wanted labels it got at registration came from
        /// k3sctl's config and become k3sctl's.
        adopt: bool,
    },
    /// Wait until the server is a voting etcd member (Node condition `EtcdIsVoter=True`): a
    /// joining server is a learner first, and the next server joins only after it is promoted.
    WaitEtcdVoter,
    /// Before converting a single server from SQLite to embedded etcd: check that no stale
    /// etcd data is there, stop K3s and copy the SQLite store to a backup kept on the host.
    ConvertDatastore {
        /// The SQLite store (state.db, or the stand-in's directory).
        store: String,
    },
    /// Remove the etcd member a server left behind when it lost its data (through a running
    /// server), so that it can join again under its node name.
    RemoveEtcdMember {
        /// Member name.
        member: String,
        /// Member id.
        id: String,
    },
    /// Delete the node's stale password Secret (`kube-system/<node>.node-password.k3s`): the
    /// host lost `/etc/rancher/node/password` (wiped or reinstalled) and K3s would reject it
    /// under its old name ("Node password rejected").
    RemoveNodePassword,
    /// After the conversion: the SQLite store was migrated (renamed `*.migrated`) and every
    /// node registered before is still in the API.
    VerifyMigration {
        /// The SQLite store.
        store: String,
    },
    /// Multi-server clusters, before a server goes down: every etcd member is a healthy voter
    /// and the members are the spec's servers (taking it down could otherwise lose quorum).
    CheckQuorum,
    /// Before a server of several is stopped and started again (a certificate or token
    /// rotation): every *other* server is a healthy voting member and runs (the node itself may
    /// be the one whose expired certificates keep it NotReady). When no server's API answers
    /// (every admin certificate expired), every other server's K3s service must run.
    CheckRotationQuorum,
    /// Stop K3s, `k3s certificate rotate [--service ...]` (K3s renews the certificates at its
    /// next start), start K3s. K3s is started again also when the rotate command fails, and
    /// the failure is reported.
    RotateCertificates {
        /// `--service` values; empty: every certificate of the node.
        services: Vec<String>,
    },
    /// Cordon the node, marking the cordon as k3sctl's (`k3sctl.io/cordoned-for`); a node a
    /// person cordoned is left as it is and stays cordoned afterwards.
    Cordon {
        /// The value of the annotation (`upgrade to v1.34.1+k3s1`).
        reason: String,
    },
    /// Evict the node's pods (PodDisruptionBudgets respected), or delete them when eviction is
    /// disabled; refused before any pod is touched when a pod blocks under the rules.
    Drain(DrainSettings),
    /// Put the new release in place: the binary staged ahead of the rollout (one rename), or
    /// uploaded now when it is not staged; sha256 verified on the host either way.
    SwapBinary {
        /// What runs now.
        from: K3sVersion,
        /// The new release.
        to: K3sVersion,
        /// Leave a marker on the host first, in the swap's own script (the server the API is
        /// reached through: if it does not come back, the next run knows from the marker that it
        /// was mid-upgrade).
        marker: bool,
    },
    /// Wait until the Node is Ready with kubelet `version` (servers: and their own /readyz ok).
    WaitReadyAt {
        /// The version the kubelet must report.
        version: K3sVersion,
        /// Also wait for the server's /readyz.
        readyz: bool,
    },
    /// Multi-server clusters, after a server's restart: it is a voting etcd member again and
    /// every member is a healthy voter, before the next server may go down.
    WaitQuorum,
    /// Take an etcd snapshot on this server (`k3s etcd-snapshot save --name`), and say where
    /// it is.
    EtcdSnapshot {
        /// The name given (K3s appends the node and the time).
        name: String,
    },
    /// Remove the marker [`Step::SwapBinary`] left (the node is back).
    ClearUpgradeMarker,
    /// Uncordon, only when the cordon is k3sctl's.
    Uncordon {
        /// A person cordoned the node before: it stays cordoned.
        keep_cordoned: bool,
    },
    /// Remove the server's etcd member through K3s's member controller (annotation
    /// `etcd.k3s.cattle.io/remove=true`) once quorum allows it, wait for `removed-node-name`
    /// and a shorter member list. When the member leads etcd, leadership is moved to another
    /// voter first (no election gap).
    LeaveEtcd,
    /// Stop the K3s service and disable it (K3s stays installed; a reboot does not start it).
    StopService,
    /// Uninstall K3s from the host: what K3s's `k3s-killall.sh` and `k3s-uninstall.sh` stop and
    /// remove (see [`crate::k3s::uninstall`]).
    Uninstall {
        /// What of K3s the host still had when observed.
        found: Vec<String>,
    },
    /// Delete the Node object and its `<node>.node-password.k3s` secret.
    DeleteNode,
    /// Write objects of a manifest k3sctl manages back through the API (server-side apply of
    /// the declared fields): K3s applies an unchanged manifest file again only at its next
    /// start, so an object edited or deleted through the API stays so until then.
    ApplyObjects {
        /// The manifest's file name in server/manifests.
        file: String,
        /// The objects, described (`HelmChartConfig kube-system/traefik`).
        objects: Vec<String>,
        /// Their documents as declared.
        #[serde(skip)]
        docs: Vec<serde_json::Value>,
    },
}

/// How a [`Step::Drain`] drains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DrainSettings {
    /// Pods with emptyDir volumes may be removed (their data is lost).
    pub delete_empty_dir_data: bool,
    /// Pods without a controller may be removed.
    pub force: bool,
    /// Delete pods instead of evicting them (bypasses PodDisruptionBudgets).
    pub disable_eviction: bool,
    /// The whole drain must finish within this many seconds.
    pub timeout_secs: u64,
}

impl Step {
    /// Whether the step changes something (waits do not).
    pub fn is_change(&self) -> bool {
        !matches!(
            self,
            Self::WaitServerReady
                | Self::WaitNodeReady
                | Self::WaitEtcdVoter
                | Self::VerifyMigration { .. }
                | Self::CheckQuorum
                | Self::CheckRotationQuorum
                | Self::WaitReadyAt { .. }
                | Self::WaitQuorum
        )
    }

    /// A one-line title.
    pub fn title(&self, role: NodeRole) -> String {
        let unit = crate::k3s::unit::unit_name(role);
        match self {
            Self::UploadBinary {
                version,
                installed: Some(old),
                ..
            } => {
                format!("upload k3s {version} (replaces {old})")
            }
            Self::UploadBinary { version, .. } => format!("upload k3s {version}"),
            Self::WriteFile {
                path,
                content: FileContent::LocalFile { local, .. },
                ..
            } => format!("upload {} to {path}", local.display()),
            Self::WriteFile {
                path,
                mode,
                create: true,
                ..
            } => {
                format!("create {path} (mode {mode:04o})")
            }
            Self::WriteFile { path, mode, .. } => format!("update {path} (mode {mode:04o})"),
            Self::RemoveFile { path } => format!("remove {path}"),
            Self::TakeOverUnitDropin(t) => {
                let what = if t.rest.is_some() {
                    "rewritten without its ExecStart lines (its other lines stay)"
                } else {
                    "moved aside"
                };
                format!(
                    "take over {}: its ExecStart override gives way to k3sctl's {unit} unit \
                     (the flags are in config.yaml); {what}, the original kept as {}",
                    t.path, t.backup
                )
            }
            Self::LinkCommand { path, .. } => {
                format!("link {path} -> {}", crate::k3s::links::TARGET)
            }
            Self::DaemonReload => "systemctl daemon-reload".to_string(),
            Self::Adopt { .. } => {
                "adopt: no restart (effective configuration unchanged)".to_string()
            }
            Self::Start { join: true } => format!("start {unit} and join the cluster"),
            Self::Start { join: false } => format!("start {unit}"),
            Self::Restart { reason } => format!("restart {unit} ({reason})"),
            Self::WaitServerReady => "wait for the token file and /readyz".to_string(),
            Self::WaitNodeReady => "wait until the node is Ready".to_string(),
            Self::EnforceTaints {
                add,
                remove,
                adopt,
                wanted,
                ..
            } => {
                let mut parts = Vec::new();
                if !add.is_empty() {
                    parts.push(format!("add {}", add.join(", ")));
                }
                if !remove.is_empty() {
                    parts.push(format!("remove {}", remove.join(", ")));
                }
                if parts.is_empty() && *adopt {
                    parts.push(format!("ensure {}", wanted.join(", ")));
                }
                if parts.is_empty() {
                    parts.push("record k3sctl's taints".into());
                }
                format!("node taints: {}", parts.join("; "))
            }
            Self::EnforceLabels {
                set,
                remove,
                adopt,
                wanted,
            } => {
                let pairs = |m: &BTreeMap<String, String>| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let mut parts = Vec::new();
                if !set.is_empty() {
                    parts.push(format!("set {}", pairs(set)));
                }
                if !remove.is_empty() {
                    parts.push(format!("remove {}", remove.join(", ")));
                }
                if parts.is_empty() && *adopt {
                    parts.push(format!("ensure {}", pairs(wanted)));
                }
                if parts.is_empty() {
                    parts.push("record k3sctl's labels".into());
                }
                format!("node labels: {}", parts.join("; "))
            }
            Self::WaitEtcdVoter => {
                "wait until it is a voting etcd member (EtcdIsVoter)".to_string()
            }
            Self::ConvertDatastore { store } => {
                format!("stop {unit} and back up {store} on the host (conversion to embedded etcd)")
            }
            Self::VerifyMigration { store } => {
                format!("check that {store} was migrated and every node is still registered")
            }
            Self::RemoveEtcdMember { member, .. } => format!(
                "remove the stale etcd member {member} (this server lost its data) through a running server"
            ),
            Self::CheckQuorum => {
                "check that every etcd member is a healthy voter (else stop: quorum at risk)"
                    .to_string()
            }
            Self::CheckRotationQuorum => "check that every other etcd member is a healthy voter \
                 and runs (else stop: quorum at risk)"
                .to_string(),
            Self::RotateCertificates { services } => format!(
                "stop {unit}, `{}`, start {unit} (started again if the rotation fails)",
                crate::k3s::certs::rotate_command(services)
            ),
            Self::Cordon { reason } => format!("cordon (k3sctl.io/cordoned-for: {reason})"),
            Self::Drain(d) => format!(
                "drain: {} its pods ({}; timeout {}s)",
                if d.disable_eviction {
                    "delete"
                } else {
                    "evict"
                },
                if d.disable_eviction {
                    "disableEviction: PodDisruptionBudgets bypassed"
                } else {
                    "PodDisruptionBudgets respected"
                },
                d.timeout_secs
            ),
            Self::SwapBinary { from, to, marker } => format!(
                "put k3s {to} in place of {from} (the staged binary, sha256 verified){}",
                if *marker {
                    "; an upgrade marker is left until it is back"
                } else {
                    ""
                }
            ),
            Self::WaitReadyAt {
                version,
                readyz: true,
            } => format!("wait until the node is Ready with kubelet {version} and /readyz is ok"),
            Self::WaitReadyAt { version, .. } => {
                format!("wait until the node is Ready with kubelet {version}")
            }
            Self::WaitQuorum => {
                "wait until it is a voting etcd member again and every member is a healthy voter"
                    .to_string()
            }
            Self::ClearUpgradeMarker => "remove the upgrade marker".to_string(),
            Self::EtcdSnapshot { name } => {
                format!("take an etcd snapshot `{name}` (a restore point on etcd)")
            }
            Self::Uncordon {
                keep_cordoned: true,
            } => "leave it cordoned (a person cordoned it)".to_string(),
            Self::Uncordon { .. } => "uncordon (only k3sctl's own cordon)".to_string(),
            Self::RemoveNodePassword => "delete the stale node-password secret \
                 (kube-system/<node>.node-password.k3s): the host lost /etc/rancher/node/password, \
                 so K3s would reject it as a duplicate hostname"
                .to_string(),
            Self::LeaveEtcd => {
                "remove its etcd member (etcd.k3s.cattle.io/remove=true; leadership moved off \
                 it first if it leads), wait until etcd's member list no longer has it"
                    .to_string()
            }
            Self::StopService => format!("stop and disable {unit}"),
            Self::Uninstall { found } => format!(
                "uninstall K3s: stop, kill its processes, remove units, binary and links, \
                 /etc/rancher/k3s, {}, /var/lib/kubelet, CNI interfaces and iptables rules ({} \
                 item(s) found)",
                crate::k3s::ports::DATA_DIR,
                found.len()
            ),
            Self::DeleteNode => "delete the Node and its node-password secret".to_string(),
            Self::ApplyObjects { file, objects, .. } => format!(
                "put back {} as {file} declares it (through the API)",
                objects.join(", ")
            ),
        }
    }

    /// A short stable name for progress lines and JSON (`upload-binary`, `write-file`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::UploadBinary { .. } => "upload-binary",
            Self::WriteFile { .. } => "write-file",
            Self::RemoveFile { .. } => "remove-file",
            Self::TakeOverUnitDropin(_) => "take-over-dropin",
            Self::LinkCommand { .. } => "link-command",
            Self::DaemonReload => "daemon-reload",
            Self::Adopt { .. } => "adopt",
            Self::Start { .. } => "start",
            Self::Restart { .. } => "restart",
            Self::WaitServerReady => "wait-server-ready",
            Self::WaitNodeReady => "wait-node-ready",
            Self::EnforceTaints { .. } => "enforce-taints",
            Self::EnforceLabels { .. } => "enforce-labels",
            Self::WaitEtcdVoter => "wait-etcd-voter",
            Self::ConvertDatastore { .. } => "convert-datastore",
            Self::VerifyMigration { .. } => "verify-migration",
            Self::RemoveEtcdMember { .. } => "remove-etcd-member",
            Self::CheckQuorum | Self::CheckRotationQuorum => "quorum",
            Self::RotateCertificates { .. } => "rotate-certificates",
            Self::Cordon { .. } => "cordon",
            Self::Drain(_) => "drain",
            Self::SwapBinary { .. } => "deliver",
            Self::WaitReadyAt { .. } => "wait-ready",
            Self::WaitQuorum => "wait-voter",
            Self::ClearUpgradeMarker => "clear-marker",
            Self::EtcdSnapshot { .. } => "etcd-snapshot",
            Self::Uncordon { .. } => "uncordon",
            Self::RemoveNodePassword => "remove-node-password",
            Self::LeaveEtcd => "leave-etcd",
            Self::StopService => "stop-service",
            Self::Uninstall { .. } => "uninstall",
            Self::DeleteNode => "delete-node",
            Self::ApplyObjects { .. } => "apply-objects",
        }
    }
}

/// The steps for one host.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostPlan {
    /// Host name.
    pub host: String,
    /// Role.
    pub role: NodeRole,
    /// Join group (agents).
    pub group: Option<String>,
    /// The server that starts the cluster (or converts its datastore) in this run.
    pub first_server: bool,
    /// Whether the node already runs in the cluster (restarts then go one node at a time).
    pub in_cluster: bool,
    /// Steps in order.
    pub steps: Vec<Step>,
}

impl HostPlan {
    /// Whether any step changes something.
    pub fn has_changes(&self) -> bool {
        self.steps.iter().any(Step::is_change)
    }

    /// Whether the host's steps leave K3s running as it is: a node already in the cluster
    /// whose files are written (an adoption, a form-only change), command links made, systemd
    /// reloaded and the adoption recorded, and
    /// whose labels or taints change without evicting anything. Such hosts need neither the
    /// one-at-a-time order of restarts nor a wait for Ready, so they run side by side.
    pub fn leaves_k3s_running(&self) -> bool {
        self.in_cluster
            && !self.first_server
            && self.steps.iter().all(|step| match step {
                Step::WriteFile { .. }
                | Step::RemoveFile { .. }
                | Step::TakeOverUnitDropin(_)
                | Step::LinkCommand { .. }
                | Step::DaemonReload
                | Step::Adopt { .. }
                | Step::EnforceLabels { .. } => true,
                Step::EnforceTaints { add, .. } => !add.iter().any(|t| t.ends_with(":NoExecute")),
                _ => false,
            })
    }
}

/// A kubeconfig export step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportStep {
    /// Export name.
    pub name: String,
    /// Local path.
    pub path: String,
    /// Context name.
    pub context: String,
    /// `up-to-date`, `write` or `unknown` (decided once the cluster exists).
    pub action: &'static str,
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// Cluster name.
    pub cluster: String,
    /// K3s version.
    pub version: K3sVersion,
    /// What happens to the datastore.
    pub datastore: DatastoreAction,
    /// K3s's critical configuration values, identical on every server (multi-server only).
    pub critical: BTreeMap<String, String>,
    /// Hosts in order (first server first).
    pub hosts: Vec<HostPlan>,
    /// Kubeconfig exports.
    pub exports: Vec<ExportStep>,
    /// Where the live cluster differs from the spec (what apply puts back is also a step).
    pub drift: Vec<super::drift::DriftItem>,
}

impl Plan {
    /// Whether applying would change anything.
    pub fn has_changes(&self) -> bool {
        self.hosts.iter().any(HostPlan::has_changes)
            || self.exports.iter().any(|e| e.action != "up-to-date")
    }

    /// Whether the host preflight (systemd, architecture, disk, /dev/kmsg, host names, clocks)
    /// concerns this run: some host gets K3s installed, started or restarted. When every host
    /// with steps leaves K3s running as it is (an adoption, labels), K3s already runs with
    /// those facts and the run only writes small files, so there is nothing to check.
    pub fn needs_preflight(&self) -> bool {
        self.hosts
            .iter()
            .any(|h| !h.steps.is_empty() && !h.leaves_k3s_running())
    }

    /// Number of changing steps (exports included).
    pub fn change_count(&self) -> usize {
        self.hosts
            .iter()
            .map(|h| h.steps.iter().filter(|s| s.is_change()).count())
            .sum::<usize>()
            + self
                .exports
                .iter()
                .filter(|e| e.action != "up-to-date")
                .count()
    }
}
