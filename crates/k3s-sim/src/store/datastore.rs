//! The persistence boundary. Keys look like etcd keys of the Kubernetes API server
//! (`/registry/pods/default/web-1`); values are JSON bytes. Implementations must make every
//! write durable and atomic so a restart (for example during an upgrade) never loses objects.
//!
//! Two implementations: [`FileDatastore`] (the single server's store, standing in for K3s's
//! SQLite `state.db`; one writer, revisions counted by the [`super::ObjectStore`]) and the etcd
//! datastore in `crate::etcd` (shared by every server; revisions are etcd revisions and writes
//! carry preconditions because other servers write too).

use std::path::{Path, PathBuf};

/// Errors from a datastore.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Disk I/O.
    #[error("datastore {path}: {source}")]
    Io {
        /// File or directory.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// A key that cannot be stored.
    #[error("datastore: invalid key {0:?}")]
    BadKey(String),
    /// The remote datastore (etcd) failed or is unreachable.
    #[error("datastore: {0}")]
    Remote(String),
}

/// One stored key with its value and the revision that last wrote it (0 when the store keeps
/// no revisions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Key.
    pub key: String,
    /// Value bytes.
    pub value: Vec<u8>,
    /// Revision of the last write (etcd `mod_revision`), 0 for the file store.
    pub revision: u64,
}

/// Every key at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The records, sorted by key.
    pub records: Vec<Record>,
    /// The store revision the snapshot was read at (0 for the file store).
    pub revision: u64,
}

/// A write's precondition (checked atomically by shared stores, ignored by the file store whose
/// only writer already checked it under the object store lock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// No precondition.
    Any,
    /// The key must not exist.
    Absent,
    /// The key must have been last written at this revision.
    Revision(u64),
}

/// What a write does.
#[derive(Debug, Clone, Copy)]
pub enum Write<'a> {
    /// Store this value.
    Put(&'a [u8]),
    /// Remove the key.
    Delete,
}

/// The result of a conditional write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Written; the store revision of the write when the store assigns revisions.
    Committed(Option<u64>),
    /// The precondition failed; the key's current record (None when absent).
    Conflict(Option<Record>),
}

/// Durable key/value storage for cluster state.
pub trait Datastore: Send + Sync {
    /// Every stored key and value.
    fn load_all(&self) -> Result<Snapshot, StoreError>;
    /// One key.
    fn get(&self, key: &str) -> Result<Option<Record>, StoreError>;
    /// Writes or deletes a key when `expect` holds.
    fn write(&self, key: &str, op: Write<'_>, expect: Expect) -> Result<Outcome, StoreError>;
    /// Whether other processes write to this store too (then changes arrive through
    /// [`super::ObjectStore::apply_change`] and revisions come from the store).
    fn shared(&self) -> bool {
        false
    }
    /// Stores a value unconditionally.
    fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.write(key, Write::Put(value), Expect::Any).map(|_| ())
    }
    /// Removes a key unconditionally (absent keys are fine).
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.write(key, Write::Delete, Expect::Any).map(|_| ())
    }
}

/// A datastore in a directory: one JSON file per key, written atomically (temp file + rename).
#[derive(Debug, Clone)]
pub struct FileDatastore {
    dir: PathBuf,
}

impl FileDatastore {
    /// Opens (creating) the directory, normally `<data-dir>/server/db/state`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        fs_err::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    fn path_for(&self, key: &str) -> Result<PathBuf, StoreError> {
        let rel = key.trim_start_matches('/');
        let ok = !rel.is_empty()
            && rel
                .split('/')
                .all(|seg| !seg.is_empty() && seg != "." && seg != ".." && !seg.starts_with('.'));
        if !ok {
            return Err(StoreError::BadKey(key.to_string()));
        }
        Ok(self.dir.join(format!("{rel}.json")))
    }

    fn walk(&self, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) -> Result<(), StoreError> {
        let io = |source| StoreError::Io {
            path: dir.display().to_string(),
            source,
        };
        for entry in fs_err::read_dir(dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with('.') {
                continue;
            }
            if path.is_dir() {
                self.walk(&path, out)?;
            } else if let Some(stem) = name.strip_suffix(".json") {
                let rel = path
                    .parent()
                    .and_then(|p| p.strip_prefix(&self.dir).ok())
                    .unwrap_or(Path::new(""));
                let key = format!("/{}", rel.join(stem).display());
                let bytes = fs_err::read(&path).map_err(|source| StoreError::Io {
                    path: path.display().to_string(),
                    source,
                })?;
                out.push((key, bytes));
            }
        }
        Ok(())
    }
}

impl FileDatastore {
    /// Every key and value, sorted by key.
    pub fn entries(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        self.walk(&self.dir, &mut out)?;
        out.sort();
        Ok(out)
    }
}

impl Datastore for FileDatastore {
    fn load_all(&self) -> Result<Snapshot, StoreError> {
        Ok(Snapshot {
            records: self
                .entries()?
                .into_iter()
                .map(|(key, value)| Record {
                    key,
                    value,
                    revision: 0,
                })
                .collect(),
            revision: 0,
        })
    }

    fn get(&self, key: &str) -> Result<Option<Record>, StoreError> {
        let path = self.path_for(key)?;
        match fs_err::read(&path) {
            Ok(value) => Ok(Some(Record {
                key: key.to_string(),
                value,
                revision: 0,
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Io {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    fn write(&self, key: &str, op: Write<'_>, _expect: Expect) -> Result<Outcome, StoreError> {
        let path = self.path_for(key)?;
        let io = |source| StoreError::Io {
            path: path.display().to_string(),
            source,
        };
        match op {
            Write::Put(value) => crate::paths::write_atomic(&path, value, 0o600).map_err(io)?,
            Write::Delete => match fs_err::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(io(source)),
            },
        }
        Ok(Outcome::Committed(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_load_delete_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ds = FileDatastore::open(dir.path()).expect("open");
        ds.put("/registry/pods/default/web-1", b"{}").expect("put");
        ds.put("/bootstrap/token", b"x").expect("put");
        let all = ds.entries().expect("load");
        assert_eq!(
            all,
            vec![
                ("/bootstrap/token".to_string(), b"x".to_vec()),
                ("/registry/pods/default/web-1".to_string(), b"{}".to_vec())
            ]
        );
        ds.delete("/bootstrap/token").expect("delete");
        ds.delete("/bootstrap/token").expect("delete twice");
        assert_eq!(ds.load_all().expect("load").records.len(), 1);
        assert_eq!(
            ds.get("/registry/pods/default/web-1")
                .expect("get")
                .map(|r| r.value),
            Some(b"{}".to_vec())
        );
        assert_eq!(ds.get("/bootstrap/token").expect("get"), None);
        assert!(ds.put("/registry/../x", b"").is_err());
    }
}
