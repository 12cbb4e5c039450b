//! [`Db`]: the database a server opens — blocks, WAL, head and head chunk
//! files in one directory — implementing the storage traits of
//! `ember-model`.
//!
//! ```text
//! <dir>/
//! ├── <ULID>/        persistent blocks (docs/format/block.md)
//! ├── wal/           the write-ahead log (docs/format/wal.md)
//! ├── chunks_head/   full head chunks, memory-mapped (docs/format/head_chunks.md)
//! └── snapshots/     hard-linked copies made by [`Db::snapshot`]
//! ```
//!
//! Durability: see [`Db`]. The life cycle of data — head, block,
//! compaction, retention, deletion — is in [`compact`].

mod admin;
pub(crate) mod compact;
mod querier;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use ember_model::labels::Labels;
use ember_model::metadata::Metadata;
use ember_model::storage::{Appendable, Appender, Querier, Queryable, StorageError};

use crate::block::{Block, BlockError};
use crate::head::appender::{HeadAppender, model_metric_type};
use crate::head::querier::HeadQuerier;
use crate::head::series::{ChunkPolicy, MemSeries};
use crate::head::{Head, HeadOptions, IdMap};
use crate::head_chunks::{ChunkFileError, ChunkFiles, DEFAULT_CHUNK_SEGMENT_SIZE};
use crate::wal::{
    self, DEFAULT_SEGMENT_SIZE, Reader, RecordType, SyncPolicy, Wal, WalError, WalOptions,
};

/// Two hours in milliseconds: the block length, which chunks never cross.
pub const DEFAULT_BLOCK_DURATION_MS: i64 = 2 * 60 * 60 * 1000;

/// Fifteen days in milliseconds: the default retention.
pub const DEFAULT_RETENTION_MS: i64 = 15 * 24 * 60 * 60 * 1000;

/// Options for [`Db::open`]. `DbOptions::default()` is what a server
/// should use unless configured otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbOptions {
    /// WAL segment size in bytes (a positive multiple of 32 KiB).
    pub wal_segment_size: u64,
    /// Compress WAL records with snappy.
    pub wal_compression: bool,
    /// When commits are fsynced; see [`Db`](crate::Db#durability).
    pub wal_sync: SyncPolicy,
    /// Out-of-order window in ms: `0` refuses samples older than their
    /// series' newest ([`AppendError::OutOfOrder`]); otherwise such samples
    /// are accepted unless older than the newest sample in the database
    /// minus the window ([`AppendError::TooOld`]).
    ///
    /// [`AppendError::OutOfOrder`]: ember_model::storage::AppendError::OutOfOrder
    /// [`AppendError::TooOld`]: ember_model::storage::AppendError::TooOld
    pub out_of_order_window_ms: i64,
    /// Samples older than this are refused with `OutOfBounds` (blocks will
    /// raise it to the end of the newest block).
    pub min_valid_time: i64,
    /// Samples after which a head chunk is cut and written to the chunk
    /// files (at most `u16::MAX`).
    pub samples_per_chunk: u16,
    /// Block length in ms (`--storage.tsdb.min-block-duration`): the head
    /// is cut into blocks of this range, and a chunk never spans a
    /// multiple of it.
    pub block_duration_ms: i64,
    /// Longest block compaction may produce, in ms
    /// (`--storage.tsdb.max-block-duration`); at most `block_duration_ms`
    /// disables compaction of blocks.
    pub max_block_duration_ms: i64,
    /// Blocks that end more than this many ms before the newest block's end
    /// are deleted; 0 keeps them forever.
    pub retention_ms: i64,
    /// Oldest blocks are deleted while blocks, WAL and head chunk files
    /// together take more bytes than this; 0 means no limit.
    pub retention_bytes: u64,
    /// How often a background thread runs [`Db::compact`]; `None` runs it
    /// only when called.
    pub compaction_interval: Option<Duration>,
    /// Size of a head chunk file segment in bytes.
    pub chunk_segment_size: u64,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            wal_segment_size: DEFAULT_SEGMENT_SIZE,
            wal_compression: true,
            wal_sync: SyncPolicy::SegmentCut,
            out_of_order_window_ms: 0,
            min_valid_time: i64::MIN,
            samples_per_chunk: 120,
            block_duration_ms: DEFAULT_BLOCK_DURATION_MS,
            max_block_duration_ms: max_block_duration_for(DEFAULT_RETENTION_MS),
            retention_ms: DEFAULT_RETENTION_MS,
            retention_bytes: 0,
            compaction_interval: Some(Duration::from_secs(60)),
            chunk_segment_size: DEFAULT_CHUNK_SEGMENT_SIZE,
        }
    }
}

/// Prometheus's default longest block: a tenth of the retention, at most
/// 31 days (and 31 days without a time retention).
pub fn max_block_duration_for(retention_ms: i64) -> i64 {
    const DAYS_31: i64 = 31 * 24 * 60 * 60 * 1000;
    if retention_ms <= 0 {
        DAYS_31
    } else {
        (retention_ms / 10).min(DAYS_31)
    }
}

/// Errors of the database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TsdbError {
    /// The WAL failed.
    #[error(transparent)]
    Wal(#[from] WalError),
    /// The head chunk files failed.
    #[error(transparent)]
    ChunkFile(#[from] ChunkFileError),
    /// Reading or writing a block failed.
    #[error(transparent)]
    Block(#[from] BlockError),
    /// A query over the head failed while writing a block.
    #[error("reading the head: {0}")]
    Storage(#[from] StorageError),
    /// A directory could not be created.
    #[error("creating {}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The options are invalid.
    #[error("invalid TSDB options: {0}")]
    InvalidOptions(String),
    /// The database was closed.
    #[error("the database is closed")]
    Closed,
}

impl From<TsdbError> for StorageError {
    fn from(error: TsdbError) -> Self {
        match error {
            TsdbError::Closed => StorageError::Closed,
            other => StorageError::other(other),
        }
    }
}

/// What [`Db::open`] found and did, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Series defined by the WAL.
    pub series: u64,
    /// Samples read from the WAL.
    pub samples: u64,
    /// Of those, samples already in memory-mapped chunks (skipped).
    pub samples_in_mapped_chunks: u64,
    /// Samples of series the WAL never defined (dropped).
    pub samples_unknown_series: u64,
    /// Chunks loaded from the head chunk files.
    pub mapped_chunks: u64,
    /// Of those, samples older than the newest block's end (already in a
    /// block; skipped).
    pub samples_before_blocks: u64,
    /// Whether damage in the WAL was repaired.
    pub wal_repaired: bool,
    /// Blocks loaded.
    pub blocks: u64,
}

/// The blocks, ascending by `min_time`, and a generation number that
/// changes whenever the list does.
#[derive(Debug, Default)]
pub(crate) struct BlockList {
    pub(crate) generation: u64,
    pub(crate) blocks: Arc<Vec<Arc<Block>>>,
}

/// Counters of the database's own work, for its metrics.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) compactions: AtomicU64,
    pub(crate) compactions_failed: AtomicU64,
    pub(crate) head_truncations: AtomicU64,
    pub(crate) head_truncations_failed: AtomicU64,
    pub(crate) checkpoints: AtomicU64,
    pub(crate) retention_time: AtomicU64,
    pub(crate) retention_size: AtomicU64,
    pub(crate) blocks_deleted: AtomicU64,
}

/// Figures about the database for its metrics (`ember_tsdb_*`) and status
/// pages; see [`Db::stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DbStats {
    /// Blocks loaded.
    pub blocks: u64,
    /// Bytes of the blocks on disk.
    pub blocks_bytes: u64,
    /// Bytes of the WAL (segments and checkpoint).
    pub wal_bytes: u64,
    /// Bytes of the head chunk files.
    pub head_chunks_bytes: u64,
    /// Series in the head.
    pub head_series: u64,
    /// Oldest and newest timestamp in the head (`None` when empty).
    pub head_min_time: Option<i64>,
    /// See `head_min_time`.
    pub head_max_time: Option<i64>,
    /// Oldest timestamp in the database (first block's start, or the
    /// head's oldest sample).
    pub lowest_timestamp: Option<i64>,
    /// Compactions run (head → block and block merges).
    pub compactions_total: u64,
    /// Compactions that failed.
    pub compactions_failed_total: u64,
    /// Head truncations done.
    pub head_truncations_total: u64,
    /// Head truncations that failed or were postponed.
    pub head_truncations_failed_total: u64,
    /// WAL checkpoints written.
    pub checkpoints_total: u64,
    /// Blocks deleted for the retention time.
    pub time_retentions_total: u64,
    /// Blocks deleted for the retention size.
    pub size_retentions_total: u64,
}

/// Everything the appenders and queriers share.
#[derive(Debug)]
pub(crate) struct DbInner {
    pub(crate) head: Head,
    /// The WAL; the mutex is the commit lock. `None` once closed.
    wal: Mutex<Option<Wal>>,
    pub(crate) dropped_at_commit: AtomicU64,
    pub(crate) dir: PathBuf,
    pub(crate) options: DbOptions,
    pub(crate) blocks: RwLock<BlockList>,
    /// Open queriers by the block list generation they saw.
    readers: Mutex<BTreeMap<u64, usize>>,
    readers_done: Condvar,
    /// Serialises compaction, head truncation, retention and deletion.
    pub(crate) maintenance: Mutex<()>,
    pub(crate) counters: Counters,
    /// Set by `close`; wakes the background thread.
    stop: Mutex<bool>,
    stop_signal: Condvar,
    background: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl DbInner {
    pub(crate) fn lock_wal(&self) -> MutexGuard<'_, Option<Wal>> {
        self.wal.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current blocks.
    pub(crate) fn blocks(&self) -> Arc<Vec<Arc<Block>>> {
        Arc::clone(
            &self
                .blocks
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .blocks,
        )
    }

    /// Replaces the block list: removes `remove` (by ULID), adds `add`;
    /// returns the new generation.
    pub(crate) fn swap_blocks(&self, add: Vec<Arc<Block>>, remove: &[String]) -> u64 {
        let mut list = self.blocks.write().unwrap_or_else(PoisonError::into_inner);
        let mut blocks: Vec<Arc<Block>> = list
            .blocks
            .iter()
            .filter(|b| !remove.contains(&b.meta().ulid))
            .cloned()
            .collect();
        blocks.extend(add);
        blocks.sort_by(|a, b| {
            (a.meta().min_time, &a.meta().ulid).cmp(&(b.meta().min_time, &b.meta().ulid))
        });
        list.blocks = Arc::new(blocks);
        list.generation += 1;
        list.generation
    }

    /// End of the newest block, `i64::MIN` without blocks.
    pub(crate) fn blocks_max_t(&self) -> i64 {
        self.blocks()
            .iter()
            .map(|b| b.meta().max_time)
            .max()
            .unwrap_or(i64::MIN)
    }

    /// Waits until no querier created before generation `generation` is
    /// open; `false` on timeout or when the database is being closed.
    pub(crate) fn wait_for_readers_before(&self, generation: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut readers = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if readers.keys().next().is_none_or(|&g| g >= generation) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline || self.is_stopping() {
                return false;
            }
            readers = self
                .readers_done
                .wait_timeout(readers, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn is_closed(&self) -> bool {
        self.lock_wal().is_none()
    }

    /// Whether `close` has begun: long maintenance stops at the next step.
    pub(crate) fn is_stopping(&self) -> bool {
        *self.stop.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A querier's registration with the reader bookkeeping.
#[derive(Debug)]
pub(crate) struct ReaderGuard {
    inner: Arc<DbInner>,
    generation: u64,
}

impl Drop for ReaderGuard {
    fn drop(&mut self) {
        let mut readers = self
            .inner
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = readers.get_mut(&self.generation) {
            *count -= 1;
            if *count == 0 {
                readers.remove(&self.generation);
            }
        }
        drop(readers);
        self.inner.readers_done.notify_all();
    }
}

/// The time-series database: WAL + head. Cheap to share: wrap it in an
/// `Arc` and hand it out as `Arc<dyn Storage>`.
///
/// # Durability
///
/// [`Appender::commit`](ember_model::storage::Appender::commit) returns after
/// the commit's WAL batch has been written with one `write` call, before it
/// is published to queriers. Under the default [`SyncPolicy::SegmentCut`]
/// that means a committed sample survives a crash of the process (the bytes
/// are in the kernel's page cache) but not necessarily a crash of the
/// machine; [`SyncPolicy::Always`] fsyncs every commit before `commit`
/// returns, and [`SyncPolicy::Interval`] bounds the loss in time. See
/// "Fsync policy and durability" in `tsdb/docs/format/wal.md`.
///
/// # Atomicity and isolation
///
/// Commits are serialised by the WAL's mutex and numbered (write ids). A
/// commit's samples are published to the head while that mutex is held, and
/// only then is its id marked published. A querier remembers the last
/// published id when it is created and sees exactly the commits up to it,
/// for as long as it lives: the series keep, for recent commits, how many
/// samples they had before each, and an old querier reads only that prefix
/// (out-of-order samples carry their commit's id instead). Appenders
/// validate and buffer concurrently; only WAL write and publication are
/// serial.
///
/// # Thread safety
///
/// `Db` is `Send + Sync` and cheap to clone (an `Arc` inside); appenders and
/// queriers may be used from any thread, any number at a time.
///
/// ```
/// use std::sync::Arc;
/// use ember_model::labels::Labels;
/// use ember_model::matcher::Matcher;
/// use ember_model::storage::{Storage, collect_samples};
/// use ember_tsdb::{Db, DbOptions};
///
/// let dir = tempfile::tempdir()?;
/// let db = Arc::new(Db::open(dir.path(), DbOptions::default())?);
/// let storage: Arc<dyn Storage> = db.clone();
///
/// let up = Labels::new([("__name__", "up"), ("job", "node")])?;
/// let mut app = storage.appender();
/// let r = app.append(None, &up, 1_000, 1.0)?;
/// app.append(Some(r), &up, 2_000, 1.0)?;
/// app.commit()?;
///
/// {
///     // Everything read borrows the querier; it holds its isolation
///     // snapshot until dropped.
///     let querier = storage.querier(0, 10_000)?;
///     let mut set = querier.select(true, None, &[Matcher::equal("job", "node")])?;
///     let series = set.next().expect("one series")?;
///     assert_eq!(collect_samples(series.samples().as_mut())?.len(), 2);
/// }
///
/// db.close()?; // fsyncs the WAL; later commits fail with `Closed`
/// let db = Db::open(dir.path(), DbOptions::default())?; // replays
/// assert_eq!(db.num_series(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Db {
    inner: Arc<DbInner>,
}

impl Db {
    /// Opens (or creates) the database in `dir`: creates `wal/` and
    /// `chunks_head/`, repairs damage left by a crash, loads the mapped
    /// chunks and replays the WAL, logging progress at `info`.
    ///
    /// # Errors
    /// [`TsdbError::InvalidOptions`], I/O errors, and WAL or chunk file
    /// errors that repair cannot fix (such as damage inside a checkpoint).
    pub fn open(dir: &Path, options: DbOptions) -> Result<Db, TsdbError> {
        Self::open_with_stats(dir, options).map(|(db, _)| db)
    }

    /// Like [`Db::open`], also returning what replay found.
    ///
    /// # Errors
    /// As [`Db::open`].
    pub fn open_with_stats(dir: &Path, options: DbOptions) -> Result<(Db, ReplayStats), TsdbError> {
        if options.samples_per_chunk == 0 {
            return Err(TsdbError::InvalidOptions(
                "samples_per_chunk must be positive".into(),
            ));
        }
        if options.block_duration_ms <= 0 {
            return Err(TsdbError::InvalidOptions(
                "block_duration_ms must be positive".into(),
            ));
        }
        // Chunk references hold a 32-bit offset into a segment.
        if options.chunk_segment_size > u64::from(u32::MAX) {
            return Err(TsdbError::InvalidOptions(format!(
                "chunk_segment_size {} is larger than 4 GiB",
                options.chunk_segment_size
            )));
        }
        std::fs::create_dir_all(dir).map_err(|source| TsdbError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let started = Instant::now();
        let blocks = compact::open_blocks(dir)?;
        let blocks_max_t = blocks
            .iter()
            .map(|b| b.meta().max_time)
            .max()
            .unwrap_or(i64::MIN);
        let (files, scanned) =
            ChunkFiles::open(&dir.join("chunks_head"), options.chunk_segment_size)?;
        let wal_dir = dir.join("wal");
        let (mut wal, repaired) = Wal::open_with_report(
            &wal_dir,
            WalOptions {
                segment_size: options.wal_segment_size,
                compress: options.wal_compression,
                sync: options.wal_sync,
            },
        )?;
        let head = Head::new(
            HeadOptions {
                // Samples before the newest block's end are in blocks.
                min_valid_time: options.min_valid_time.max(blocks_max_t),
                out_of_order_window: options.out_of_order_window_ms,
                chunk_policy: ChunkPolicy {
                    samples_per_chunk: options.samples_per_chunk,
                    chunk_range: options.block_duration_ms,
                },
            },
            files,
        );
        let mut stats = ReplayStats {
            wal_repaired: repaired.is_some(),
            mapped_chunks: scanned.len() as u64,
            blocks: blocks.len() as u64,
            ..ReplayStats::default()
        };
        replay(&head, &mut wal, &wal_dir, scanned, &mut stats)?;
        tracing::info!(
            dir = %dir.display(),
            series = head.num_series(),
            samples = stats.samples,
            mapped_chunks = stats.mapped_chunks,
            duration = ?started.elapsed(),
            "TSDB head loaded"
        );
        let inner = Arc::new(DbInner {
            head,
            wal: Mutex::new(Some(wal)),
            dropped_at_commit: AtomicU64::new(0),
            dir: dir.to_path_buf(),
            options,
            blocks: RwLock::new(BlockList {
                generation: 0,
                blocks: Arc::new(blocks),
            }),
            readers: Mutex::new(BTreeMap::new()),
            readers_done: Condvar::new(),
            maintenance: Mutex::new(()),
            counters: Counters::default(),
            stop: Mutex::new(false),
            stop_signal: Condvar::new(),
            background: Mutex::new(None),
        });
        if let Some(interval) = options.compaction_interval {
            let weak = Arc::downgrade(&inner);
            let handle = std::thread::Builder::new()
                .name("tsdb-compact".into())
                .spawn(move || background(&weak, interval))
                .map_err(|source| TsdbError::Io {
                    path: dir.to_path_buf(),
                    source,
                })?;
            *inner
                .background
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(handle);
        }
        Ok((Db { inner }, stats))
    }

    /// Current figures (cheap: counters, the block list and three
    /// directory listings).
    pub fn stats(&self) -> DbStats {
        let inner = &self.inner;
        let blocks = inner.blocks();
        let head = &inner.head;
        let head_min = Some(head.min_t()).filter(|&t| t != i64::MAX);
        let head_max = Some(head.max_t()).filter(|&t| t != i64::MIN);
        let c = &inner.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        DbStats {
            blocks: blocks.len() as u64,
            blocks_bytes: blocks.iter().map(|b| b.size()).sum(),
            wal_bytes: compact::dir_size(&inner.dir.join("wal")),
            head_chunks_bytes: compact::dir_size(&inner.dir.join("chunks_head")),
            head_series: head.num_series(),
            head_min_time: head_min,
            head_max_time: head_max,
            lowest_timestamp: blocks.first().map(|b| b.meta().min_time).or(head_min),
            compactions_total: load(&c.compactions),
            compactions_failed_total: load(&c.compactions_failed),
            head_truncations_total: load(&c.head_truncations),
            head_truncations_failed_total: load(&c.head_truncations_failed),
            checkpoints_total: load(&c.checkpoints),
            time_retentions_total: load(&c.retention_time),
            size_retentions_total: load(&c.retention_size),
        }
    }

    /// The blocks, ascending by start time.
    pub fn blocks(&self) -> Vec<Arc<Block>> {
        self.inner.blocks().to_vec()
    }

    /// The database directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Number of series in the head (including series created by appends
    /// that were rolled back).
    pub fn num_series(&self) -> u64 {
        self.inner.head.num_series()
    }

    /// Samples dropped at commit because a concurrent commit to the same
    /// series had made them invalid (see the `Appender` contract).
    pub fn dropped_at_commit(&self) -> u64 {
        self.inner.dropped_at_commit.load(Ordering::Relaxed)
    }

    /// The stored metadata of the series `labels`.
    pub fn metadata(&self, labels: &Labels) -> Option<Metadata> {
        let series = self.inner.head.series_by_labels(labels, labels.hash())?;
        series.lock().metadata().cloned()
    }

    /// Makes every commit so far durable (fsyncs the WAL), whatever the
    /// sync policy.
    ///
    /// # Errors
    /// [`TsdbError::Closed`] or the WAL's error.
    pub fn sync(&self) -> Result<(), TsdbError> {
        let mut wal = self.inner.lock_wal();
        wal.as_mut().ok_or(TsdbError::Closed)?.sync()?;
        Ok(())
    }

    /// Closes the database: waits for a commit in progress, fsyncs and
    /// closes the WAL and flushes the chunk files. Afterwards commits fail
    /// with [`StorageError::Closed`] and so does creating queriers. Closing
    /// twice is a no-op. Dropping a `Db` without closing loses no committed
    /// sample (they are in the WAL) but skips the final fsync.
    ///
    /// # Errors
    /// The WAL's or chunk files' error.
    pub fn close(&self) -> Result<(), TsdbError> {
        *self
            .inner
            .stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = true;
        self.inner.stop_signal.notify_all();
        // A head truncation waiting for old queriers gives up (and is
        // retried after the next start).
        drop(
            self.inner
                .readers
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        self.inner.readers_done.notify_all();
        let handle = self
            .inner
            .background
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle
            && handle.thread().id() != std::thread::current().id()
        {
            // Waits for a compaction in progress to finish.
            let _ = handle.join();
        }
        let mut guard = self.inner.lock_wal();
        let Some(wal) = guard.take() else {
            return Ok(());
        };
        self.inner.head.files.sync()?;
        wal.close()?;
        Ok(())
    }

    fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }
}

/// The background thread: runs [`Db::compact`] every `interval` until the
/// database is closed or dropped.
fn background(weak: &Weak<DbInner>, interval: Duration) {
    loop {
        {
            let Some(inner) = weak.upgrade() else { return };
            let stop = inner.stop.lock().unwrap_or_else(PoisonError::into_inner);
            if *stop {
                return;
            }
            let (stop, _) = inner
                .stop_signal
                .wait_timeout(stop, interval)
                .unwrap_or_else(PoisonError::into_inner);
            if *stop {
                return;
            }
        }
        let Some(inner) = weak.upgrade() else { return };
        let db = Db { inner };
        if let Err(error) = db.compact() {
            tracing::error!(%error, "TSDB compaction failed; retrying at the next interval");
        }
    }
}

impl Appendable for Db {
    fn appender(&self) -> Box<dyn Appender> {
        Box::new(HeadAppender::new(Arc::clone(&self.inner)))
    }
}

impl Queryable for Db {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>, StorageError> {
        if self.is_closed() {
            return Err(StorageError::Closed);
        }
        let (generation, blocks) = {
            let list = self
                .inner
                .blocks
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            // Registered while the list is locked, so that head truncation
            // (which swaps the list, then waits) cannot miss this reader.
            *self
                .inner
                .readers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(list.generation)
                .or_insert(0) += 1;
            (list.generation, Arc::clone(&list.blocks))
        };
        let guard = ReaderGuard {
            inner: Arc::clone(&self.inner),
            generation,
        };
        let blocks = blocks
            .iter()
            .filter(|b| b.meta().overlaps(mint, maxt))
            .map(|b| crate::block::BlockQuerier::new(Arc::clone(b), mint, maxt))
            .collect();
        Ok(Box::new(querier::DbQuerier {
            blocks,
            head: HeadQuerier::new(Arc::clone(&self.inner), mint, maxt),
            _guard: guard,
        }))
    }
}

/// Per-series replay state.
struct ReplaySeries {
    series: Arc<MemSeries>,
    /// Newest in-order timestamp seen in the WAL so far.
    in_order_max: i64,
    /// Newest timestamp in the series' mapped chunks.
    mapped_max: i64,
}

/// Loads mapped chunks and replays the WAL into `head`.
fn replay(
    head: &Head,
    wal: &mut Wal,
    wal_dir: &Path,
    scanned: Vec<crate::head_chunks::ScannedChunk>,
    stats: &mut ReplayStats,
) -> Result<(), TsdbError> {
    // Chunks by series, in file order (which is time order per series).
    let mut mapped: IdMap<Vec<crate::head_chunks::ScannedChunk>> = IdMap::default();
    let mut max_chunk_ref = 0;
    for chunk in scanned {
        max_chunk_ref = max_chunk_ref.max(chunk.series_ref);
        mapped.entry(chunk.series_ref).or_default().push(chunk);
    }
    head.reserve_ids_below(max_chunk_ref + 1);
    // Data before this is in blocks.
    let min_valid = head.min_valid();

    let samples_read = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let progress_samples = Arc::clone(&samples_read);
    let mut reader = Reader::open(wal_dir)?.with_progress(move |progress| {
        let samples = progress_samples.load(Ordering::Relaxed);
        let seconds = started.elapsed().as_secs_f64().max(1e-9);
        tracing::info!(
            segments_done = progress.segments_done,
            segments_total = progress.segments_total,
            samples,
            samples_per_second = (samples as f64 / seconds) as u64,
            "WAL replay: {progress}"
        );
    });
    let policy = head.options.chunk_policy;
    let mut series_by_ref: IdMap<ReplaySeries> = IdMap::default();
    let mut decoded_samples = Vec::new();
    let mut max_t = i64::MIN;
    loop {
        let record = match reader.next_record() {
            Ok(Some(record)) => record,
            Ok(None) => break,
            Err(WalError::Corruption(corruption)) => {
                tracing::warn!(%corruption, "WAL damaged; repairing and continuing with what was before the damage");
                wal.repair(&corruption)?;
                stats.wal_repaired = true;
                break;
            }
            Err(other) => return Err(other.into()),
        };
        match RecordType::of(record) {
            RecordType::Series => {
                // Decoded series borrow the record, so the vector lives
                // for this record only.
                let mut decoded_series = Vec::new();
                if let Err(error) = wal::decode_series(record, &mut decoded_series) {
                    tracing::warn!(%error, "skipping undecodable WAL series record");
                }
                for decoded in &decoded_series {
                    let Ok(labels) = Labels::new(decoded.labels.iter().copied()) else {
                        tracing::warn!(
                            series_ref = decoded.series_ref,
                            "skipping WAL series with duplicate label names"
                        );
                        continue;
                    };
                    if labels.is_empty() || series_by_ref.contains_key(&decoded.series_ref) {
                        continue;
                    }
                    let series = head.create_with_id(&labels, decoded.series_ref);
                    series.set_wal_logged();
                    if series.id == decoded.series_ref
                        && let Some(chunks) = mapped.remove(&decoded.series_ref)
                    {
                        for chunk in chunks.into_iter().filter(|c| c.max_t >= min_valid) {
                            series.attach_mapped(chunk.min_t, chunk.max_t, chunk.chunk_ref);
                            head.observe_min_t(chunk.min_t);
                        }
                        series.load_last_value(&head.files);
                    }
                    let mapped_max = series.max_t();
                    stats.series += 1;
                    series_by_ref.insert(
                        decoded.series_ref,
                        ReplaySeries {
                            series,
                            in_order_max: i64::MIN,
                            mapped_max,
                        },
                    );
                }
            }
            RecordType::Samples => {
                decoded_samples.clear();
                if let Err(error) = wal::decode_samples(record, &mut decoded_samples) {
                    tracing::warn!(%error, "skipping undecodable WAL samples record");
                    continue;
                }
                samples_read.fetch_add(decoded_samples.len() as u64, Ordering::Relaxed);
                stats.samples += decoded_samples.len() as u64;
                let mut i = 0;
                while i < decoded_samples.len() {
                    let series_ref = decoded_samples[i].series_ref;
                    let Some(entry) = series_by_ref.get_mut(&series_ref) else {
                        stats.samples_unknown_series += 1;
                        i += 1;
                        continue;
                    };
                    let series = Arc::clone(&entry.series);
                    let mut state = series.lock();
                    while let Some(sample) = decoded_samples
                        .get(i)
                        .filter(|s| s.series_ref == series_ref)
                    {
                        i += 1;
                        if sample.t < min_valid {
                            stats.samples_before_blocks += 1;
                            continue;
                        }
                        max_t = max_t.max(sample.t);
                        head.observe_min_t(sample.t);
                        if sample.t > entry.in_order_max {
                            entry.in_order_max = sample.t;
                            if sample.t <= entry.mapped_max {
                                stats.samples_in_mapped_chunks += 1;
                            } else {
                                state.append_in_order(
                                    &series,
                                    sample.t,
                                    sample.v,
                                    None,
                                    policy,
                                    &head.files,
                                );
                            }
                        } else {
                            state.insert_out_of_order(sample.t, sample.v, 0, 0, policy);
                        }
                    }
                }
            }
            RecordType::Metadata => {
                let mut decoded_metadata = Vec::new();
                if let Err(error) = wal::decode_metadata(record, &mut decoded_metadata) {
                    tracing::warn!(%error, "skipping undecodable WAL metadata record");
                    continue;
                }
                for m in &decoded_metadata {
                    if let Some(entry) = series_by_ref.get(&m.series_ref) {
                        entry.series.lock().set_metadata(Metadata::new(
                            model_metric_type(m.metric_type),
                            m.help,
                            m.unit,
                        ));
                    }
                }
            }
            RecordType::Tombstones => {
                let mut tombstones = Vec::new();
                if let Err(error) = wal::decode_tombstones(record, &mut tombstones) {
                    tracing::warn!(%error, "skipping undecodable WAL tombstones record");
                    continue;
                }
                for t in &tombstones {
                    if t.maxt >= min_valid
                        && let Some(entry) = series_by_ref.get(&t.series_ref)
                    {
                        head.add_tombstone(entry.series.id, t.mint.max(min_valid), t.maxt);
                    }
                }
            }
            // Prometheus's record types Ember does not write (exemplars,
            // native histograms).
            RecordType::Unknown(_) => {}
        }
    }
    // Mapped chunks are the newest data for series whose WAL samples were
    // all skipped; make sure the head's newest time covers them.
    for entry in series_by_ref.values() {
        let series_max = entry.series.max_t();
        if series_max != i64::MIN {
            max_t = max_t.max(series_max);
        }
    }
    head.observe_max_t(max_t);
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    tracing::info!(
        samples = stats.samples,
        series = stats.series,
        samples_per_second = (stats.samples as f64 / seconds) as u64,
        "WAL replay done"
    );
    Ok(())
}
