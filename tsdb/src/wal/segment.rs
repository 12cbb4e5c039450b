//! Segment files and the fragment framing shared by the writer and reader.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// Size of a page; fragments never cross a page boundary.
pub const PAGE_SIZE: usize = 32 * 1024;

/// Fragment header: type byte, u16 length, u32 CRC32C.
pub(crate) const HEADER_SIZE: usize = 7;

/// Fragment types (the low three bits of the header byte).
pub(crate) const FRAGMENT_PAGE_TERM: u8 = 0;
pub(crate) const FRAGMENT_FULL: u8 = 1;
pub(crate) const FRAGMENT_FIRST: u8 = 2;
pub(crate) const FRAGMENT_MIDDLE: u8 = 3;
pub(crate) const FRAGMENT_LAST: u8 = 4;

pub(crate) const TYPE_MASK: u8 = 0b0000_0111;
pub(crate) const SNAPPY_FLAG: u8 = 0b0000_1000;
pub(crate) const ZSTD_FLAG: u8 = 0b0001_0000;
pub(crate) const RESERVED_MASK: u8 = 0b1110_0000;

/// Prefix of checkpoint directory names.
pub(crate) const CHECKPOINT_PREFIX: &str = "checkpoint.";

/// The file name of segment `index`: eight decimal digits.
pub fn segment_name(index: u64) -> String {
    format!("{index:08}")
}

pub(crate) fn segment_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(segment_name(index))
}

/// The directory name of the checkpoint covering segments up to `index`.
pub fn checkpoint_name(index: u64) -> String {
    format!("{CHECKPOINT_PREFIX}{index:08}")
}

/// Segment files in `dir`, sorted by index. Other files are ignored.
pub(crate) fn list_segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if !entry.file_type()?.is_file() {
            continue;
        }
        if let Ok(index) = name.parse::<u64>() {
            segments.push((index, entry.path()));
        }
    }
    segments.sort_unstable_by_key(|&(index, _)| index);
    Ok(segments)
}

/// Complete checkpoint directories in `dir`, sorted by index; `.tmp`
/// directories of interrupted checkpoints are not included.
pub(crate) fn list_checkpoints(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut checkpoints = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(digits) = name
            .to_str()
            .and_then(|n| n.strip_prefix(CHECKPOINT_PREFIX))
        else {
            continue;
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if !entry.file_type()?.is_dir() {
            continue;
        }
        if let Ok(index) = digits.parse::<u64>() {
            checkpoints.push((index, entry.path()));
        }
    }
    checkpoints.sort_unstable_by_key(|&(index, _)| index);
    Ok(checkpoints)
}

/// Makes the creation, removal or renaming of entries in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The CRC32C of a fragment's data.
#[inline]
pub(crate) fn checksum(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}
