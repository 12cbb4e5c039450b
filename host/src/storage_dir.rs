//! The data directory and its lock.
//!
//! Two servers writing one TSDB directory would corrupt it, so start-up takes
//! an exclusive advisory lock on `<storage.tsdb.path>/lock`, as Prometheus
//! does, and holds it until the process exits. The lock is released by the
//! kernel even when the process is killed, so a crash never leaves a stale
//! lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

/// An open, locked data directory.
#[derive(Debug)]
pub struct StorageDir {
    path: PathBuf,
    /// Held for the lifetime of the value; dropping it releases the lock.
    _lock: File,
}

#[derive(Debug, thiserror::Error)]
pub enum StorageDirError {
    #[error("cannot create data directory {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error("cannot open lock file {path}: {source}")]
    OpenLock { path: PathBuf, source: io::Error },
    #[error("data directory {path} is in use by another process (lock file {path}/lock is held)")]
    Locked { path: PathBuf },
    #[error("cannot lock {path}: {source}")]
    Lock { path: PathBuf, source: io::Error },
}

impl StorageDir {
    /// Creates the directory if needed and takes its lock without waiting.
    pub fn open(path: &Path) -> Result<Self, StorageDirError> {
        std::fs::create_dir_all(path).map_err(|source| StorageDirError::Create {
            path: path.to_path_buf(),
            source,
        })?;
        let lock_path = path.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| StorageDirError::OpenLock {
                path: lock_path.clone(),
                source,
            })?;
        match lock.try_lock() {
            Ok(()) => Ok(Self {
                path: path.to_path_buf(),
                _lock: lock,
            }),
            Err(TryLockError::WouldBlock) => Err(StorageDirError::Locked {
                path: path.to_path_buf(),
            }),
            Err(TryLockError::Error(source)) => Err(StorageDirError::Lock {
                path: lock_path,
                source,
            }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_open_of_the_same_directory_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = StorageDir::open(&data).expect("first open creates and locks");
        assert!(data.join("lock").is_file());
        match StorageDir::open(&data) {
            Err(StorageDirError::Locked { .. }) => {}
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(first);
        StorageDir::open(&data).expect("lock is free again after drop");
    }
}
