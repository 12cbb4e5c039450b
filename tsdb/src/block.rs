//! Persistent blocks: immutable, memory-mapped files holding every sample of
//! a time range `[min_time, max_time)`. The byte layout is specified in
//! `tsdb/docs/format/block.md`.
//!
//! - [`BlockWriter`] writes a block: create it with the block's range, add
//!   series (labels plus encoded chunks, or plain samples) in any order,
//!   and [`BlockWriter::finish`] writes the index and `meta.json` and moves
//!   the block into place atomically.
//! - [`Block`] opens a block directory through `mmap`: its [`BlockMeta`],
//!   series selection by matchers, series labels and chunk metadata, chunk
//!   bytes, label names and values, tombstones, and a [`Querier`]
//!   ([`Block::querier`]).
//!
//! ```
//! use std::sync::Arc;
//! use ember_model::labels::Labels;
//! use ember_model::matcher::Matcher;
//! use ember_model::sample::Sample;
//! use ember_model::storage::collect_samples;
//! use ember_tsdb::block::{Block, BlockWriter};
//!
//! let dir = tempfile::tempdir()?;
//! let mut writer = BlockWriter::new(dir.path(), 0, 7_200_000)?;
//! let up = Labels::new([("__name__", "up"), ("job", "node")])?;
//! writer.add_samples(&up, &[Sample::new(1_000, 1.0), Sample::new(16_000, 1.0)])?;
//! let meta = writer.finish()?;
//! assert_eq!(meta.stats.num_samples, 2);
//!
//! let block = Arc::new(Block::open(&dir.path().join(&meta.ulid))?);
//! let ids = block.select(&[Matcher::equal("job", "node")])?;
//! let (labels, chunks) = block.series(ids[0])?;
//! assert_eq!(labels, up);
//! assert_eq!(chunks.len(), 1);
//!
//! let querier = block.querier(0, 10_000);
//! let mut set = querier.select(true, None, &[])?;
//! let series = set.next().expect("one series")?;
//! assert_eq!(collect_samples(series.samples().as_mut())?, [Sample::new(1_000, 1.0)]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod chunks;
pub(crate) mod enc;
mod index;
mod querier;
mod tombstones;
mod writer;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use ember_model::labels::Labels;
use ember_model::matcher::Matcher;
use ember_model::storage::Querier;
use serde::{Deserialize, Serialize};

pub(crate) use querier::BlockQuerier;
pub use querier::ChunkIterator;
pub(crate) use tombstones::is_deleted;
pub use tombstones::{Interval, Tombstones};
pub use writer::{BlockChunk, BlockWriter, SAMPLES_PER_CHUNK};

/// Encoding byte of Ember's float chunk ([`crate::chunkenc::XorChunk`]) in
/// block chunk files (the same byte as in the head's chunk files).
pub const ENCODING_XOR: u8 = crate::head_chunks::ENCODING_XOR;

/// Name of the file whose presence marks a block complete.
pub const META_FILE: &str = "meta.json";

/// Suffix of a block directory being written.
pub const TMP_CREATION_SUFFIX: &str = ".tmp-for-creation";
/// Suffix of a block directory being deleted.
pub const TMP_DELETION_SUFFIX: &str = ".tmp-for-deletion";

/// Errors reading or writing blocks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlockError {
    /// A file system operation failed.
    #[error("block I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A file of a block is damaged.
    #[error("block file {} is corrupt: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// `meta.json` cannot be parsed.
    #[error("{}: invalid meta.json: {source}", path.display())]
    Meta {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// The caller broke the writer's contract (chunks out of order or out
    /// of range, duplicate series, ...).
    #[error("invalid block data: {0}")]
    Invalid(String),
}

impl BlockError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Where a chunk of a series is and what time it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkMeta {
    /// Timestamp of the chunk's first sample.
    pub min_t: i64,
    /// Timestamp of the chunk's last sample.
    pub max_t: i64,
    /// Segment file number (upper 32 bits) and offset (lower 32 bits).
    pub chunk_ref: u64,
}

/// Counts recorded when a block is written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockStats {
    /// Samples in the block.
    pub num_samples: u64,
    /// Series in the block.
    pub num_series: u64,
    /// Chunks in the block.
    pub num_chunks: u64,
    /// Series with tombstones when written.
    #[serde(default)]
    pub num_tombstones: u64,
}

/// A block's ULID and range, as listed among a compaction's parents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockDesc {
    /// The parent's ULID.
    pub ulid: String,
    /// Its `minTime`.
    pub min_time: i64,
    /// Its `maxTime`.
    pub max_time: i64,
}

/// How a block came to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockCompaction {
    /// 1 for a block cut from the head (or backfilled); one more than the
    /// highest input level for a compaction's output.
    pub level: u32,
    /// ULIDs of the level-1 blocks whose data the block holds.
    #[serde(default)]
    pub sources: Vec<String>,
    /// The blocks it was compacted from.
    #[serde(default)]
    pub parents: Vec<BlockDesc>,
}

/// The contents of `meta.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockMeta {
    /// The block's ULID, also its directory name.
    pub ulid: String,
    /// First millisecond of the block's range (inclusive).
    pub min_time: i64,
    /// End of the block's range (exclusive).
    pub max_time: i64,
    /// Counts.
    pub stats: BlockStats,
    /// Compaction history.
    pub compaction: BlockCompaction,
    /// Block format version (1).
    pub version: u32,
}

impl BlockMeta {
    /// Reads `dir/meta.json`.
    ///
    /// # Errors
    /// I/O errors and [`BlockError::Meta`].
    pub fn read(dir: &Path) -> Result<Self, BlockError> {
        let path = dir.join(META_FILE);
        let bytes = fs::read(&path).map_err(|e| BlockError::io(&path, e))?;
        serde_json::from_slice(&bytes).map_err(|source| BlockError::Meta { path, source })
    }

    /// Whether the block's range overlaps `[mint, maxt]` (closed).
    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.min_time <= maxt && mint < self.max_time
    }

    #[allow(dead_code)] // Used by compaction.
    pub(crate) fn desc(&self) -> BlockDesc {
        BlockDesc {
            ulid: self.ulid.clone(),
            min_time: self.min_time,
            max_time: self.max_time,
        }
    }
}

/// A block opened for reading: memory-mapped index and chunk files, and its
/// tombstones. `Send + Sync`; share it in an `Arc`. The mappings stay valid
/// even after the directory is deleted, so a reader holding the `Arc` is
/// never disturbed by retention or compaction.
#[derive(Debug)]
pub struct Block {
    dir: PathBuf,
    meta: BlockMeta,
    index: index::IndexReader,
    chunks: chunks::ChunkReader,
    tombstones: RwLock<Arc<Tombstones>>,
}

impl Block {
    /// Opens the block in `dir`: reads `meta.json` and the tombstones,
    /// maps the index and chunk files and checks the index's header, TOC,
    /// symbol table and offset tables.
    ///
    /// # Errors
    /// I/O errors, [`BlockError::Meta`], [`BlockError::Corrupt`].
    pub fn open(dir: &Path) -> Result<Block, BlockError> {
        let meta = BlockMeta::read(dir)?;
        let index = index::IndexReader::open(&dir.join("index"))?;
        let chunks = chunks::ChunkReader::open(&dir.join("chunks"))?;
        let tombstones = Tombstones::read(dir)?;
        Ok(Block {
            dir: dir.to_path_buf(),
            meta,
            index,
            chunks,
            tombstones: RwLock::new(Arc::new(tombstones)),
        })
    }

    /// The block's metadata.
    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    /// The block's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Number of series.
    pub fn num_series(&self) -> usize {
        self.index.num_series()
    }

    /// Bytes on disk: index, chunk files, tombstones, `meta.json`.
    pub fn size(&self) -> u64 {
        let small = |name: &str| fs::metadata(self.dir.join(name)).map_or(0, |m| m.len());
        self.index.size() + self.chunks.size + small(META_FILE) + small(tombstones::FILE_NAME)
    }

    /// Ids of the series matching every matcher, ascending — which is
    /// ascending label order.
    ///
    /// # Errors
    /// [`BlockError::Corrupt`].
    pub fn select(&self, matchers: &[Matcher]) -> Result<Vec<u64>, BlockError> {
        self.index.select(matchers)
    }

    /// Labels and chunks (ascending, not overlapping) of series `id`.
    ///
    /// # Errors
    /// [`BlockError::Corrupt`], also for an id that is not in the block.
    pub fn series(&self, id: u64) -> Result<(Labels, Vec<ChunkMeta>), BlockError> {
        let id = u32::try_from(id).map_err(|_| BlockError::Corrupt {
            path: self.dir.join("index"),
            reason: format!("no series {id}"),
        })?;
        self.index.series(id)
    }

    /// The encoding byte and bytes of a chunk, CRC checked.
    ///
    /// # Errors
    /// [`BlockError::Corrupt`] for a bad reference or CRC.
    pub fn chunk(&self, chunk: &ChunkMeta) -> Result<(u8, &[u8]), BlockError> {
        self.chunks
            .chunk(chunk.chunk_ref)
            .map_err(|reason| BlockError::Corrupt {
                path: self.dir.join("chunks"),
                reason,
            })
    }

    /// Label names of the block, ascending.
    ///
    /// # Errors
    /// [`BlockError::Corrupt`].
    pub fn label_names(&self) -> Result<Vec<String>, BlockError> {
        self.index.label_names()
    }

    /// Values of label `name`, ascending.
    ///
    /// # Errors
    /// [`BlockError::Corrupt`].
    pub fn label_values(&self, name: &str) -> Result<Vec<String>, BlockError> {
        self.index.label_values(name)
    }

    /// The block's tombstones (a snapshot).
    pub fn tombstones(&self) -> Arc<Tombstones> {
        Arc::clone(
            &self
                .tombstones
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Replaces the tombstones, on disk first.
    #[allow(dead_code)] // Used by deletion.
    pub(crate) fn set_tombstones(&self, tombstones: Tombstones) -> Result<(), BlockError> {
        tombstones.write(&self.dir)?;
        *self
            .tombstones
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(tombstones);
        Ok(())
    }

    /// A querier over `[mint, maxt]` of this block alone (tombstones
    /// applied).
    pub fn querier(self: &Arc<Self>, mint: i64, maxt: i64) -> Box<dyn Querier> {
        Box::new(BlockQuerier::new(Arc::clone(self), mint, maxt))
    }

    /// Checks every CRC of the block: index sections, every series entry
    /// and every chunk, and that chunks decode.
    ///
    /// # Errors
    /// The first problem found.
    pub fn verify(&self) -> Result<(), BlockError> {
        self.index.verify_postings()?;
        for id in 0..self.num_series() as u64 {
            let (_, chunks) = self.series(id)?;
            for chunk in &chunks {
                let (encoding, data) = self.chunk(chunk)?;
                let mut it =
                    ChunkIterator::new(encoding, data).map_err(|reason| BlockError::Corrupt {
                        path: self.dir.join("chunks"),
                        reason,
                    })?;
                while it.next() {}
                if let Some(e) = it.err() {
                    return Err(BlockError::Corrupt {
                        path: self.dir.join("chunks"),
                        reason: format!("series {id}: {e}"),
                    });
                }
            }
        }
        Ok(())
    }
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), BlockError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| BlockError::io(dir, e))
}

/// A new ULID: 48 bits of milliseconds since the epoch and 80 bits that
/// make it unique, in Crockford base32 (26 characters).
pub fn new_ulid() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let ms = now.as_millis() as u64 & 0xFFFF_FFFF_FFFF;
    // `RandomState` is seeded randomly per process; hashing a counter and
    // the clock gives distinct, unpredictable bits without a dependency.
    let state = RandomState::new();
    let mut random = [0u64; 2];
    for (i, word) in random.iter_mut().enumerate() {
        let mut h = state.build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_u128(now.as_nanos());
        h.write_u32(std::process::id());
        h.write_usize(i);
        *word = h.finish();
    }
    let value: u128 =
        (u128::from(ms) << 80) | (u128::from(random[0] & 0xFFFF) << 64) | u128::from(random[1]);
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    (0..26)
        .map(|i| {
            let shift = 125 - 5 * i;
            ALPHABET[((value >> shift) & 31) as usize] as char
        })
        .collect()
}

/// Whether `name` looks like a ULID (26 Crockford base32 characters).
pub fn is_ulid(name: &str) -> bool {
    name.len() == 26
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b.is_ascii_uppercase() && !b"ILOU".contains(&b)))
}

#[cfg(test)]
mod tests;
