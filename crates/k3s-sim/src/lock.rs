//! The server lock: held while `k3s server` runs, so `k3s certificate rotate` can refuse to touch
//! certificates under a running server.

use fs_err::File;
use std::path::Path;

/// Whether a lock could be taken.
#[derive(Debug)]
pub enum LockState {
    /// Taken; dropping the file releases it.
    Held(File),
    /// Another process holds it.
    Busy,
}

/// Tries to take the exclusive lock on `path` (created if missing).
pub fn try_lock(path: &Path) -> std::io::Result<LockState> {
    if let Some(dir) = path.parent() {
        fs_err::create_dir_all(dir)?;
    }
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    match f.try_lock() {
        Ok(()) => Ok(LockState::Held(f)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(LockState::Busy),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_busy_until_released() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("x.lock");
        let first = try_lock(&p).expect("lock");
        assert!(matches!(first, LockState::Held(_)));
        assert!(matches!(try_lock(&p).expect("lock"), LockState::Busy));
        drop(first);
        assert!(matches!(try_lock(&p).expect("lock"), LockState::Held(_)));
    }
}
