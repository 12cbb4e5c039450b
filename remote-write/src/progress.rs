//! The progress marker: where in the WAL a queue's samples are all
//! acknowledged, kept in a small file so a restart resends the rest.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// A record boundary in the WAL: segment index and the file offset just
/// after a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// Segment index.
    pub segment: u64,
    /// Offset after the record.
    pub offset: u64,
}

/// The marker file of one queue.
#[derive(Debug, Clone)]
pub struct ProgressFile {
    path: PathBuf,
}

impl ProgressFile {
    /// The marker for the queue identified by `key` (its name, or its URL
    /// when unnamed) under `dir`. The file name is a hash of the key, so a
    /// queue keeps its marker across changes of anything but its identity.
    pub fn new(dir: &Path, key: &str) -> Self {
        let hash = xxhash_rust::xxh64::xxh64(key.as_bytes(), 0);
        Self {
            path: dir.join(format!("{hash:016x}.progress")),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored position; `None` when there is none or it is unreadable
    /// (logged: the queue then starts from now, as a new queue does).
    pub fn load(&self) -> Option<Position> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(error) => {
                tracing::warn!(path = %self.path.display(), %error, "Cannot read the remote-write progress marker; starting from now");
                return None;
            }
        };
        let mut fields = text.split_whitespace();
        let parsed = match (fields.next(), fields.next(), fields.next()) {
            (Some("v1"), Some(segment), Some(offset)) => {
                segment.parse().ok().zip(offset.parse().ok())
            }
            _ => None,
        };
        if parsed.is_none() {
            tracing::warn!(path = %self.path.display(), "Malformed remote-write progress marker; starting from now");
        }
        parsed.map(|(segment, offset)| Position { segment, offset })
    }

    /// Replaces the stored position atomically (write, fsync, rename).
    ///
    /// # Errors
    /// I/O errors.
    pub fn store(&self, position: Position) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("progress.tmp");
        let mut file = fs::File::create(&tmp)?;
        writeln!(file, "v1 {} {}", position.segment, position.offset)?;
        file.sync_data()?;
        fs::rename(&tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_round_trips_and_bad_files_read_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let file = ProgressFile::new(&dir.path().join("rw"), "queue-a");
        assert_eq!(file.load(), None);
        let position = Position {
            segment: 3,
            offset: 40_000,
        };
        file.store(position).unwrap();
        assert_eq!(file.load(), Some(position));
        assert_ne!(
            ProgressFile::new(&dir.path().join("rw"), "queue-b").path(),
            file.path()
        );
        fs::write(file.path(), "garbage").unwrap();
        assert_eq!(file.load(), None);
    }
}
