//! Snapshots on this server's disk: save (etcd's own snapshot stream from the local member),
//! list, delete, prune, the `ETCDSnapshotFile` objects naming them, and the schedule. Used by the
//! supervisor's `/db/snapshot` (what `k3s etcd-snapshot` asks the running server to do) and by
//! the scheduled snapshots.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use super::names::{self, SnapshotFile};
use crate::etcd::{EtcdHandle, MemberStatus};
use crate::store::{ObjectStore, ResourceKey};

/// Why a snapshot operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Learners hold no complete copy; etcd and K3s refuse.
    #[error("Unable to take snapshot: not supported for learner")]
    Learner,
    /// etcd failed to stream the snapshot.
    #[error("failed to take etcd snapshot: {0}")]
    Etcd(String),
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The snapshot service of one server.
pub struct Service {
    /// The object store (for `ETCDSnapshotFile` objects).
    pub store: Arc<ObjectStore>,
    /// The local etcd member.
    pub etcd: Arc<EtcdHandle>,
    /// This server's node name.
    pub node: String,
    /// `etcd-snapshot-dir`, default `${data-dir}/server/db/snapshots`.
    pub default_dir: PathBuf,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("node", &self.node)
            .field("default_dir", &self.default_dir)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// `dir`, or the default directory.
    pub fn dir(&self, dir: Option<&str>) -> PathBuf {
        dir.filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| self.default_dir.clone())
    }

    /// Takes a snapshot named `<prefix>-<node>-<now>` into `dir` (written aside, then renamed).
    pub fn save(&self, prefix: &str, dir: &Path) -> Result<SnapshotFile, SnapshotError> {
        if self.etcd.status() == MemberStatus::Learner {
            return Err(SnapshotError::Learner);
        }
        fs_err::create_dir_all(dir).map_err(io(dir))?;
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = fs_err::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
        let now = crate::clock::now().unix_timestamp();
        let name = names::file_name(prefix, &self.node, now);
        let path = dir.join(&name);
        let part = dir.join(format!(".{name}.part"));
        let started = std::time::Instant::now();
        let result = (|| {
            let mut file = fs_err::File::create(&part).map_err(io(&part))?;
            let size = self
                .etcd
                .client
                .snapshot(&mut file)
                .map_err(|e| SnapshotError::Etcd(e.to_string()))?;
            file.sync_all().map_err(io(&part))?;
            fs_err::rename(&part, &path).map_err(io(&path))?;
            Ok(size)
        })();
        let size = match result {
            Ok(s) => s,
            Err(e) => {
                let _ = fs_err::remove_file(&part);
                return Err(e);
            }
        };
        crate::log::info(format!(
            "Saved etcd snapshot {name} to {} ({size} bytes in {} ms)",
            path.display(),
            started.elapsed().as_millis()
        ));
        let file = SnapshotFile {
            name,
            path: path.display().to_string(),
            size,
            created: now,
        };
        self.sync(dir);
        Ok(file)
    }

    /// The snapshots in `dir` (files only; partial downloads and hidden files left out).
    pub fn list(&self, dir: &Path) -> Result<Vec<SnapshotFile>, SnapshotError> {
        let entries = match fs_err::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let Ok(meta) = entry.metadata() else { continue };
            if name.starts_with('.') || !meta.is_file() {
                continue;
            }
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(0))
                .unwrap_or(0);
            out.push(SnapshotFile {
                created: names::trailing_timestamp(&name).unwrap_or(mtime),
                path: entry.path().display().to_string(),
                size: meta.len(),
                name,
            });
        }
        out.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.name.cmp(&b.name)));
        Ok(out)
    }

    /// Deletes the named snapshots from `dir`; returns (deleted, not found).
    pub fn delete(
        &self,
        wanted: &[String],
        dir: &Path,
    ) -> Result<(Vec<String>, Vec<String>), SnapshotError> {
        let files = self.list(dir)?;
        let (mut deleted, mut missing) = (Vec::new(), Vec::new());
        for w in wanted {
            match files.iter().find(|f| &f.name == w) {
                Some(f) => {
                    let p = PathBuf::from(&f.path);
                    fs_err::remove_file(&p).map_err(io(&p))?;
                    crate::log::info(format!("Removed local snapshot {}", f.path));
                    deleted.push(w.clone());
                }
                None => missing.push(w.clone()),
            }
        }
        self.sync(dir);
        Ok((deleted, missing))
    }

    /// Removes this node's snapshots named `prefix` beyond the newest `keep`; returns their names.
    pub fn prune(
        &self,
        prefix: &str,
        keep: usize,
        dir: &Path,
    ) -> Result<Vec<String>, SnapshotError> {
        let files = self.list(dir)?;
        let mut gone = Vec::new();
        for f in names::to_prune(&files, prefix, &self.node, keep) {
            let p = PathBuf::from(&f.path);
            fs_err::remove_file(&p).map_err(io(&p))?;
            crate::log::info(format!("Removed local snapshot {}", f.path));
            gone.push(f.name.clone());
        }
        self.sync(dir);
        Ok(gone)
    }

    /// The `ETCDSnapshotFile` objects of snapshots in `dir` on this node.
    pub fn objects(&self, dir: &Path) -> Result<Vec<Value>, SnapshotError> {
        Ok(self
            .list(dir)?
            .iter()
            .map(|f| names::object(f, &self.node))
            .collect())
    }

    /// Makes the API's `ETCDSnapshotFile` objects of this node for `dir` match the files there
    /// (creates the missing, deletes those whose file is gone). Errors are logged: the files are
    /// what counts, and the next operation or start reconciles again.
    pub fn sync(&self, dir: &Path) {
        let desired = match self.objects(dir) {
            Ok(d) => d,
            Err(e) => {
                crate::log::warn(format!("Listing etcd snapshots for reconcile: {e}"));
                return;
            }
        };
        let prefix = names::location(&format!("{}/", dir.display()));
        let (existing, _) = self.store.list(names::RESOURCE, None);
        for o in existing.iter().filter(|o| {
            o["spec"]["nodeName"] == self.node.as_str()
                && o["spec"]["location"]
                    .as_str()
                    .is_some_and(|l| l.starts_with(&prefix))
        }) {
            let name = o["metadata"]["name"].as_str().unwrap_or("");
            if !desired.iter().any(|d| d["metadata"]["name"] == name) {
                let key = ResourceKey::new(names::RESOURCE, "", name);
                if let Err(e) = self.store.delete(&key) {
                    crate::log::warn(format!("Deleting ETCDSnapshotFile {name}: {}", e.message));
                }
            }
        }
        for d in desired {
            let name = d["metadata"]["name"].as_str().unwrap_or("").to_string();
            if self
                .store
                .get(&ResourceKey::new(names::RESOURCE, "", &name))
                .is_none()
                && let Err(e) = self.store.create(names::RESOURCE, "", d)
                && e.code != 409
            {
                crate::log::warn(format!("Creating ETCDSnapshotFile {name}: {}", e.message));
            }
        }
    }
}

/// The scheduled snapshots of one server (`etcd-snapshot-schedule-cron`, `-retention`,
/// `-name`, `-dir`).
#[derive(Debug, Clone)]
pub struct ScheduleConfig {
    /// When.
    pub schedule: super::cron::Schedule,
    /// Name prefix (`etcd-snapshot-name`, default `etcd-snapshot`).
    pub prefix: String,
    /// How many of this node's scheduled snapshots to keep (default 5).
    pub retention: usize,
    /// Where.
    pub dir: PathBuf,
}

/// Runs the schedule on its own thread: at each time, a snapshot, then pruning to the retention.
pub fn spawn_schedule(svc: Arc<Service>, cfg: ScheduleConfig) {
    std::thread::spawn(move || {
        let mut from = crate::clock::now();
        loop {
            let Some(next) = cfg.schedule.next(from) else {
                crate::log::warn(
                    "etcd snapshot schedule never fires again; scheduled snapshots stop",
                );
                return;
            };
            let wait = next - crate::clock::now();
            if wait.is_positive() {
                std::thread::sleep(wait.unsigned_abs());
            }
            from = next;
            match svc.save(&cfg.prefix, &cfg.dir) {
                Ok(_) => {
                    if let Err(e) = svc.prune(&cfg.prefix, cfg.retention, &cfg.dir) {
                        crate::log::error(format!("Failed to apply snapshot retention: {e}"));
                    }
                }
                Err(e) => crate::log::error(format!("Failed to take scheduled snapshot: {e}")),
            }
        }
    });
}
