//! Advisory file locks (flock) that serialise lab creation, image builds and per-lab changes
//! across threads and processes. The kernel drops them when the holder dies.

use std::fs::File;
use std::path::Path;

use crate::error::{Result, fs_step};

/// Holds an exclusive lock until dropped.
#[derive(Debug)]
pub(crate) struct FileLock {
    _file: File,
}

impl FileLock {
    /// Blocks until the exclusive lock on `path` (created if missing) is held.
    pub(crate) fn acquire(path: &Path, what: &str) -> Result<Self> {
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent).map_err(fs_step(format!("lock {what}")))?;
        }
        let file = fs_err::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(fs_step(format!("lock {what}")))?;
        let file = file.into_parts().0;
        file.lock().map_err(|e| crate::error::LabError::Fs {
            step: format!("lock {what} ({})", path.display()),
            source: e,
            hint: "another k3sctl-lab may hang holding it; check `fuser` on the lock file",
        })?;
        Ok(Self { _file: file })
    }
}
