//! [`Db`]: the database a server opens — WAL, head and head chunk files in
//! one directory — implementing the storage traits of `ember-model`.
//!
//! ```text
//! <dir>/
//! ├── wal/           the write-ahead log (docs/format/wal.md)
//! └── chunks_head/   full head chunks, memory-mapped (docs/format/head_chunks.md)
//! ```
//!
//! Durability: see [`Db`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use ember_model::labels::Labels;
use ember_model::metadata::Metadata;
use ember_model::storage::{Appendable, Appender, Querier, Queryable, StorageError};

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
    /// Block length in ms; a chunk never spans a multiple of it.
    pub block_duration_ms: i64,
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
            chunk_segment_size: DEFAULT_CHUNK_SEGMENT_SIZE,
        }
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
    /// Whether damage in the WAL was repaired.
    pub wal_repaired: bool,
}

/// Everything the appenders and queriers share.
#[derive(Debug)]
pub(crate) struct DbInner {
    pub(crate) head: Head,
    /// The WAL; the mutex is the commit lock. `None` once closed.
    wal: Mutex<Option<Wal>>,
    pub(crate) dropped_at_commit: AtomicU64,
    dir: PathBuf,
}

impl DbInner {
    pub(crate) fn lock_wal(&self) -> MutexGuard<'_, Option<Wal>> {
        self.wal.lock().unwrap_or_else(PoisonError::into_inner)
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
                min_valid_time: options.min_valid_time,
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
        let inner = DbInner {
            head,
            wal: Mutex::new(Some(wal)),
            dropped_at_commit: AtomicU64::new(0),
            dir: dir.to_path_buf(),
        };
        Ok((
            Db {
                inner: Arc::new(inner),
            },
            stats,
        ))
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
        let mut guard = self.inner.lock_wal();
        let Some(wal) = guard.take() else {
            return Ok(());
        };
        self.inner.head.files.sync()?;
        wal.close()?;
        Ok(())
    }

    fn is_closed(&self) -> bool {
        self.inner.lock_wal().is_none()
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
        Ok(Box::new(HeadQuerier::new(
            Arc::clone(&self.inner),
            mint,
            maxt,
        )))
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
                        for chunk in chunks {
                            series.attach_mapped(chunk.min_t, chunk.max_t, chunk.chunk_ref);
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
                        max_t = max_t.max(sample.t);
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
            // Deletion is not implemented in the head yet; other types are
            // Prometheus's (exemplars, native histograms).
            RecordType::Tombstones | RecordType::Unknown(_) => {}
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
