//! The persistence boundary. Keys look like etcd keys of the Kubernetes API server
//! (`/registry/pods/default/web-1`); values are JSON bytes. Implementations must make every
//! `put` durable and atomic so a restart (for example during an upgrade) never loses objects.

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
}

/// Durable key/value storage for cluster state.
pub trait Datastore: Send + Sync {
    /// Every stored key and value.
    fn load_all(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// Stores a value durably (atomic replace).
    fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Removes a key (absent keys are fine).
    fn delete(&self, key: &str) -> Result<(), StoreError>;
}

/// A datastore in a directory: one JSON file per key, written atomically (temp file + rename).
#[derive(Debug, Clone)]
pub struct FileDatastore {
    dir: PathBuf,
}

impl FileDatastore {
    /// Opens (creating) the directory, normally `<data-dir>/server/db/state`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
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
        for entry in std::fs::read_dir(dir).map_err(io)? {
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
                let bytes = std::fs::read(&path).map_err(|source| StoreError::Io {
                    path: path.display().to_string(),
                    source,
                })?;
                out.push((key, bytes));
            }
        }
        Ok(())
    }
}

impl Datastore for FileDatastore {
    fn load_all(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        self.walk(&self.dir, &mut out)?;
        out.sort();
        Ok(out)
    }

    fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let path = self.path_for(key)?;
        crate::paths::write_atomic(&path, value, 0o600).map_err(|source| StoreError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path_for(key)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StoreError::Io {
                path: path.display().to_string(),
                source,
            }),
        }
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
        let all = ds.load_all().expect("load");
        assert_eq!(
            all,
            vec![
                ("/bootstrap/token".to_string(), b"x".to_vec()),
                ("/registry/pods/default/web-1".to_string(), b"{}".to_vec())
            ]
        );
        ds.delete("/bootstrap/token").expect("delete");
        ds.delete("/bootstrap/token").expect("delete twice");
        assert_eq!(ds.load_all().expect("load").len(), 1);
        assert!(ds.put("/registry/../x", b"").is_err());
    }
}
