//! The write-ahead log: appended samples survive a crash until the head has
//! written them into a block.
//!
//! Principal types:
//!
//! - [`Wal`]: the writer. [`Wal::open`] repairs a torn or damaged tail left by
//!   a crash and starts a new segment; [`Wal::log`] writes a batch of
//!   [`Record`]s with one `write` (group commit) and fsyncs as
//!   [`SyncPolicy`] says; [`Wal::sync`] makes everything logged durable;
//!   [`Wal::checkpoint`] condenses old segments.
//! - [`Reader`]: streams records for replay, checkpoint first, reporting
//!   [`Progress`] through a callback.
//! - [`LiveReader`]: follows a segment while it is written (the
//!   remote-write WAL watcher), with [`list_segment_indexes`] and
//!   [`list_checkpoints`].
//! - The record codecs: [`Record::encode`], [`decode_series`],
//!   [`decode_samples`], [`decode_tombstones`], [`decode_metadata`].
//!
//! The format (byte-compatible with Prometheus's WAL) and the durability and
//! repair rules are specified in `tsdb/docs/format/wal.md`.
//!
//! ```
//! use ember_tsdb::wal::{
//!     Reader, Record, RecordType, RefSample, RefSeries, SyncPolicy, Wal, WalOptions,
//!     decode_samples, decode_series,
//! };
//!
//! let dir = tempfile::tempdir()?;
//! let options = WalOptions { sync: SyncPolicy::Always, ..WalOptions::default() };
//! let (mut wal, repair) = Wal::open_with_report(dir.path(), options)?;
//! assert!(repair.is_none());
//! let labels = [("__name__", "up"), ("job", "node")];
//! wal.log(&[
//!     Record::Series(&[RefSeries { series_ref: 1, labels: &labels }]),
//!     Record::Samples(&[RefSample { series_ref: 1, t: 1_000, v: 1.0 }]),
//! ])?; // durable when this returns, with SyncPolicy::Always
//! wal.close()?;
//!
//! let mut reader = Reader::open(dir.path())?;
//! let (mut names, mut samples) = (Vec::new(), Vec::new());
//! while let Some(record) = reader.next_record()? {
//!     match RecordType::of(record) {
//!         RecordType::Series => {
//!             // Decoded strings borrow the reader's buffer: copy (or intern)
//!             // them before reading the next record.
//!             let mut series = Vec::new();
//!             decode_series(record, &mut series)?;
//!             names.extend(series.iter().map(|s| s.labels[0].1.to_owned()));
//!         }
//!         RecordType::Samples => decode_samples(record, &mut samples)?,
//!         _ => {}
//!     }
//! }
//! assert_eq!(names, ["up"]);
//! assert_eq!(samples.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Thread safety
//!
//! `Wal` methods take `&mut self`: one writer at a time. The head serialises
//! commits and hands each commit's records to one `log` call, which is what
//! makes a commit a single write. `Wal` and `Reader` are `Send`.

mod checkpoint;
mod live;
mod reader;
mod record;
mod segment;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use checkpoint::CheckpointStats;
pub use live::{LiveReader, list_checkpoints, list_segment_indexes};
pub use reader::{Progress, Reader};
pub use record::{
    DecodedSeries, MetricType, Record, RecordError, RecordType, RefMetadata, RefSample, RefSeries,
    RefTombstone, decode_metadata, decode_samples, decode_series, decode_tombstones,
};
pub use segment::{PAGE_SIZE, checkpoint_name, segment_name};

use segment::{
    FRAGMENT_FIRST, FRAGMENT_FULL, FRAGMENT_LAST, FRAGMENT_MIDDLE, HEADER_SIZE, SNAPPY_FLAG,
};

/// Default segment size: 128 MiB.
pub const DEFAULT_SEGMENT_SIZE: u64 = 128 * 1024 * 1024;

/// Buffered bytes beyond which a long batch is written out before it ends.
const MAX_PENDING: usize = 4 * 1024 * 1024;

/// When the WAL calls `fdatasync`. See "Fsync policy and durability" in
/// `tsdb/docs/format/wal.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// Only when a segment is cut, on close and for checkpoints (Prometheus's
    /// behaviour). Acknowledged writes survive a crash of the process; a
    /// crash of the machine can lose the current segment's unsynced tail.
    #[default]
    SegmentCut,
    /// Additionally at the end of a `log` call when the last fsync is older
    /// than the interval.
    Interval(Duration),
    /// At the end of every `log` call: a write is durable when `log` returns.
    Always,
}

/// Options for [`Wal::open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalOptions {
    /// Size at which a segment is cut; a positive multiple of [`PAGE_SIZE`].
    pub segment_size: u64,
    /// Compress records with snappy (when that makes them smaller).
    pub compress: bool,
    /// When to fsync.
    pub sync: SyncPolicy,
}

impl Default for WalOptions {
    fn default() -> Self {
        Self {
            segment_size: DEFAULT_SEGMENT_SIZE,
            compress: true,
            sync: SyncPolicy::SegmentCut,
        }
    }
}

/// Errors from the WAL.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// A file system operation failed.
    #[error("WAL I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Damaged data; see [`Wal::repair`].
    #[error(transparent)]
    Corruption(#[from] Corruption),
    /// A record carries Prometheus's zstd flag, which Ember does not read.
    #[error(
        "WAL segment {segment} has a zstd-compressed record at offset {offset}, which is not supported"
    )]
    UnsupportedCompression {
        /// Segment index.
        segment: u64,
        /// Offset of the fragment.
        offset: u64,
    },
    /// A record's contents could not be decoded.
    #[error("WAL record: {0}")]
    Record(#[from] RecordError),
    /// An earlier write or fsync failed, so the segment's tail is unknown.
    #[error("WAL is unusable after an earlier write or fsync failure; reopen it to repair")]
    Poisoned,
    /// The options or arguments are invalid.
    #[error("invalid WAL argument: {0}")]
    InvalidArgument(String),
    /// Segment numbers have a gap.
    #[error("WAL segments in {} are not sequential: {before} is followed by {after}", dir.display())]
    NonSequential {
        /// The WAL directory.
        dir: PathBuf,
        /// The segment before the gap.
        before: u64,
        /// The segment after it.
        after: u64,
    },
}

impl WalError {
    pub(crate) fn io(path: &Path, source: io::Error) -> WalError {
        WalError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Where and how a WAL is damaged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("WAL corruption in {} segment {segment} at offset {offset}: {kind}", dir.display())]
pub struct Corruption {
    /// Directory of the damaged segment (the WAL or a checkpoint in it).
    pub dir: PathBuf,
    /// Index of the damaged segment.
    pub segment: u64,
    /// Offset of the start of the damaged record; everything before it is
    /// intact.
    pub offset: u64,
    /// What is wrong.
    pub kind: CorruptionKind,
    /// Whether the segment belongs to a checkpoint (which cannot be repaired
    /// by truncation).
    pub in_checkpoint: bool,
}

/// The kinds of damage the reader detects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CorruptionKind {
    /// A fragment's CRC32C does not match its data.
    #[error("checksum mismatch")]
    Checksum,
    /// The segment ends inside a fragment or between a record's fragments:
    /// the typical result of a crash during a write.
    #[error("torn record at the end of the segment")]
    TornRecord,
    /// A fragment header does not fit in the rest of a full page.
    #[error("fragment header crosses a page boundary")]
    HeaderCrossesPage,
    /// A fragment's length runs past the end of a full page.
    #[error("fragment runs past the end of its page")]
    FragmentOverrunsPage,
    /// Reserved header bits are set.
    #[error("invalid fragment header byte {0:#04x}")]
    BadHeader(u8),
    /// A fragment type that cannot appear here.
    #[error("unexpected fragment type {0}")]
    UnexpectedFragment(u8),
    /// Non-zero bytes after a page terminator.
    #[error("non-zero bytes in page padding")]
    NonZeroPadding,
    /// A record flagged as snappy-compressed does not decompress.
    #[error("record does not decompress")]
    Snappy,
}

/// What a repair dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairReport {
    /// The damage that was repaired.
    pub corruption: Corruption,
    /// Size of the damaged segment before the repair.
    pub segment_size: u64,
    /// Bytes dropped from the damaged segment (from the damage to its end).
    pub dropped_bytes: u64,
    /// Later segments deleted, as `(index, size in bytes)`.
    pub deleted_segments: Vec<(u64, u64)>,
}

impl RepairReport {
    /// All bytes dropped, deleted segments included.
    pub fn total_dropped_bytes(&self) -> u64 {
        self.dropped_bytes
            + self
                .deleted_segments
                .iter()
                .map(|&(_, size)| size)
                .sum::<u64>()
    }
}

/// The write-ahead log writer. See the [module documentation](self).
pub struct Wal {
    dir: PathBuf,
    options: WalOptions,
    segment: File,
    segment_index: u64,
    /// Pages completed in the current segment.
    done_pages: u64,
    page: Box<[u8]>,
    /// Bytes of `page` used.
    page_alloc: usize,
    /// Bytes of `page` already handed to `pending` or the file.
    page_flushed: usize,
    /// Bytes waiting to be written to the current segment.
    pending: Vec<u8>,
    record_buf: Vec<u8>,
    compressed_buf: Vec<u8>,
    encoder: snap::raw::Encoder,
    /// Whether bytes were written since the last fsync.
    unsynced: bool,
    last_sync: Instant,
    poisoned: bool,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.dir)
            .field("options", &self.options)
            .field("segment_index", &self.segment_index)
            .field("done_pages", &self.done_pages)
            .field("page_alloc", &self.page_alloc)
            .field("unsynced", &self.unsynced)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl Wal {
    /// Opens (or creates) the WAL in `dir`, repairing damage in its last
    /// segment (logged at `warn`), and starts a new segment for writing.
    ///
    /// # Errors
    /// [`WalError::InvalidArgument`] for bad options, I/O errors, and
    /// [`WalError::NonSequential`] when segment numbers have a gap.
    pub fn open(dir: &Path, options: WalOptions) -> Result<Wal, WalError> {
        Self::open_with_report(dir, options).map(|(wal, _)| wal)
    }

    /// Like [`Wal::open`], also returning what a repair dropped, if anything
    /// was repaired.
    ///
    /// # Errors
    /// As [`Wal::open`].
    pub fn open_with_report(
        dir: &Path,
        options: WalOptions,
    ) -> Result<(Wal, Option<RepairReport>), WalError> {
        if options.segment_size == 0 || !options.segment_size.is_multiple_of(PAGE_SIZE as u64) {
            return Err(WalError::InvalidArgument(format!(
                "segment size {} is not a positive multiple of the {PAGE_SIZE}-byte page",
                options.segment_size
            )));
        }
        fs::create_dir_all(dir).map_err(|e| WalError::io(dir, e))?;
        checkpoint::remove_temporary(dir)?;
        let segments = segment::list_segments(dir).map_err(|e| WalError::io(dir, e))?;
        for pair in segments.windows(2) {
            if pair[1].0 != pair[0].0 + 1 {
                return Err(WalError::NonSequential {
                    dir: dir.to_path_buf(),
                    before: pair[0].0,
                    after: pair[1].0,
                });
            }
        }
        let mut report = None;
        if let Some(&(last, _)) = segments.last() {
            let mut reader = Reader::open_range(dir, last, last)?;
            loop {
                match reader.next_record() {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(WalError::Corruption(corruption)) => {
                        report = Some(repair_segments(&corruption)?);
                        break;
                    }
                    Err(other) => return Err(other),
                }
            }
        }
        let checkpoint_next = segment::list_checkpoints(dir)
            .map_err(|e| WalError::io(dir, e))?
            .last()
            .map_or(0, |&(index, _)| index + 1);
        let next = segments
            .last()
            .map_or(0, |&(index, _)| index + 1)
            .max(checkpoint_next);
        let segment = create_segment(dir, next)?;
        let wal = Wal {
            dir: dir.to_path_buf(),
            options,
            segment,
            segment_index: next,
            done_pages: 0,
            page: vec![0; PAGE_SIZE].into_boxed_slice(),
            page_alloc: 0,
            page_flushed: 0,
            pending: Vec::new(),
            record_buf: Vec::new(),
            compressed_buf: Vec::new(),
            encoder: snap::raw::Encoder::new(),
            unsynced: false,
            last_sync: Instant::now(),
            poisoned: false,
        };
        Ok((wal, report))
    }

    /// The WAL directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Index of the segment being written.
    pub fn current_segment(&self) -> u64 {
        self.segment_index
    }

    /// Indexes of the first and last segment on disk.
    ///
    /// # Errors
    /// I/O errors listing the directory.
    pub fn segment_range(&self) -> Result<(u64, u64), WalError> {
        let segments = segment::list_segments(&self.dir).map_err(|e| WalError::io(&self.dir, e))?;
        let first = segments.first().map_or(self.segment_index, |&(i, _)| i);
        Ok((first, self.segment_index))
    }

    /// Logs a batch of records with one write, then fsyncs if the policy
    /// says so. This is the group-commit unit: a commit's records go into
    /// one call. Records are never split across segments; a batch may be.
    ///
    /// # Errors
    /// [`WalError::Poisoned`] after an earlier failure; I/O errors (which
    /// poison the WAL).
    pub fn log(&mut self, records: &[Record<'_>]) -> Result<(), WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned);
        }
        let result = self.log_inner(records);
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    fn log_inner(&mut self, records: &[Record<'_>]) -> Result<(), WalError> {
        for record in records {
            self.record_buf.clear();
            record.encode(&mut self.record_buf);
            self.buffer_record()?;
        }
        self.write_pending()?;
        let due = match self.options.sync {
            SyncPolicy::SegmentCut => false,
            SyncPolicy::Interval(interval) => self.last_sync.elapsed() >= interval,
            SyncPolicy::Always => true,
        };
        if due { self.sync_inner() } else { Ok(()) }
    }

    /// Logs records that are already encoded (checkpoints copy records).
    pub(crate) fn log_encoded(&mut self, record: &[u8]) -> Result<(), WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned);
        }
        self.record_buf.clear();
        self.record_buf.extend_from_slice(record);
        let result = self.buffer_record();
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    /// Makes everything logged so far durable (`fdatasync`).
    ///
    /// # Errors
    /// [`WalError::Poisoned`] after an earlier failure; I/O errors (which
    /// poison the WAL: a failed fsync must not be retried).
    pub fn sync(&mut self) -> Result<(), WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned);
        }
        let result = self.write_pending().and_then(|()| self.sync_inner());
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    fn sync_inner(&mut self) -> Result<(), WalError> {
        if self.unsynced {
            self.segment.sync_data().map_err(|e| {
                WalError::io(&segment::segment_path(&self.dir, self.segment_index), e)
            })?;
            self.unsynced = false;
        }
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Pads the last page, fsyncs and closes the WAL.
    ///
    /// Dropping a `Wal` without closing loses nothing that `log` returned
    /// for (it is in the kernel already), but skips the final fsync.
    ///
    /// # Errors
    /// [`WalError::Poisoned`] or I/O errors.
    pub fn close(mut self) -> Result<(), WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned);
        }
        if self.page_alloc > 0 {
            self.finish_page();
        }
        self.write_pending()?;
        self.sync_inner()
    }

    /// Finishes the current segment and starts the next one, fsyncing the
    /// finished one.
    ///
    /// # Errors
    /// [`WalError::Poisoned`] or I/O errors (which poison the WAL).
    pub fn cut_segment(&mut self) -> Result<u64, WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned);
        }
        let result = self.cut_inner();
        if result.is_err() {
            self.poisoned = true;
        }
        result.map(|()| self.segment_index)
    }

    fn cut_inner(&mut self) -> Result<(), WalError> {
        if self.page_alloc > 0 {
            self.finish_page();
        }
        self.write_pending()?;
        self.sync_inner()?;
        let next = self.segment_index + 1;
        self.segment = create_segment(&self.dir, next)?;
        self.segment_index = next;
        self.done_pages = 0;
        tracing::debug!(dir = %self.dir.display(), segment = next, "WAL segment cut");
        Ok(())
    }

    /// Deletes segments with an index below `before` (never the current
    /// one). Returns how many were deleted.
    ///
    /// # Errors
    /// I/O errors.
    pub fn truncate(&mut self, before: u64) -> Result<usize, WalError> {
        let before = before.min(self.segment_index);
        let mut deleted = 0;
        for (index, path) in
            segment::list_segments(&self.dir).map_err(|e| WalError::io(&self.dir, e))?
        {
            if index >= before {
                break;
            }
            fs::remove_file(&path).map_err(|e| WalError::io(&path, e))?;
            deleted += 1;
        }
        if deleted > 0 {
            segment::sync_dir(&self.dir).map_err(|e| WalError::io(&self.dir, e))?;
        }
        Ok(deleted)
    }

    /// Repairs damage found by a [`Reader`] during replay: truncates the
    /// damaged segment at the damaged record, deletes every later segment
    /// (including the one this WAL was writing) and continues in a new
    /// segment after the damaged one. Call it before logging anything new.
    ///
    /// # Errors
    /// [`WalError::InvalidArgument`] for damage in a checkpoint or another
    /// directory, which truncation cannot repair; I/O errors.
    pub fn repair(&mut self, corruption: &Corruption) -> Result<RepairReport, WalError> {
        if corruption.in_checkpoint || corruption.dir != self.dir {
            return Err(WalError::InvalidArgument(format!(
                "cannot repair {corruption}: only segments of {} can be truncated",
                self.dir.display()
            )));
        }
        // Whatever this writer buffered belongs to a segment that is about
        // to be deleted.
        self.pending.clear();
        self.page.fill(0);
        self.page_alloc = 0;
        self.page_flushed = 0;
        let report = repair_segments(corruption)?;
        let next = corruption.segment + 1;
        self.segment = create_segment(&self.dir, next)?;
        self.segment_index = next;
        self.done_pages = 0;
        self.unsynced = false;
        self.poisoned = false;
        Ok(report)
    }

    /// Condenses segments `from ..= to` and the previous checkpoint into
    /// `checkpoint.<to>`, keeping only series for which `keep_series`
    /// holds and samples at or after `mint`, then deletes those segments and
    /// older checkpoints. See "Checkpoints" in `tsdb/docs/format/wal.md`.
    ///
    /// # Errors
    /// [`WalError::InvalidArgument`] unless `from <= to < current_segment()`;
    /// corruption and I/O errors from reading or writing.
    pub fn checkpoint(
        &mut self,
        from: u64,
        to: u64,
        keep_series: impl Fn(u64) -> bool,
        mint: i64,
    ) -> Result<CheckpointStats, WalError> {
        if from > to || to >= self.segment_index {
            return Err(WalError::InvalidArgument(format!(
                "checkpoint range {from}..={to} must end before the current segment {}",
                self.segment_index
            )));
        }
        let stats = checkpoint::write(&self.dir, from, to, &keep_series, mint, self.options)?;
        self.truncate(to + 1)?;
        checkpoint::remove_older(&self.dir, to)?;
        Ok(stats)
    }

    /// The options the WAL was opened with.
    pub fn options(&self) -> WalOptions {
        self.options
    }

    /// Free bytes for record data in the rest of the current segment.
    fn segment_room(&self) -> u64 {
        let pages_per_segment = self.options.segment_size / PAGE_SIZE as u64;
        let page_room = (PAGE_SIZE - self.page_alloc).saturating_sub(HEADER_SIZE) as u64;
        let later_pages = pages_per_segment.saturating_sub(self.done_pages + 1);
        page_room + later_pages * (PAGE_SIZE - HEADER_SIZE) as u64
    }

    /// Frames `record_buf` (compressed if that helps) into pages.
    fn buffer_record(&mut self) -> Result<(), WalError> {
        let mut flags = 0;
        let mut use_compressed = false;
        if self.options.compress {
            let max = snap::raw::max_compress_len(self.record_buf.len());
            if self.compressed_buf.len() < max {
                self.compressed_buf.resize(max, 0);
            }
            if let Ok(n) = self
                .encoder
                .compress(&self.record_buf, &mut self.compressed_buf)
                && n < self.record_buf.len()
            {
                self.compressed_buf.truncate(n);
                use_compressed = true;
                flags = SNAPPY_FLAG;
            }
        }
        let record = if use_compressed {
            std::mem::take(&mut self.compressed_buf)
        } else {
            std::mem::take(&mut self.record_buf)
        };
        let segment_started = self.done_pages > 0 || self.page_alloc > 0;
        let result = if record.len() as u64 > self.segment_room() && segment_started {
            self.cut_inner()
        } else {
            Ok(())
        };
        if result.is_ok() {
            self.frame(&record, flags);
        }
        if use_compressed {
            self.compressed_buf = record;
        } else {
            self.record_buf = record;
        }
        result?;
        if self.pending.len() >= MAX_PENDING {
            self.write_pending()?;
        }
        Ok(())
    }

    fn frame(&mut self, record: &[u8], flags: u8) {
        let mut rest = record;
        let mut first = true;
        loop {
            if PAGE_SIZE - self.page_alloc <= HEADER_SIZE {
                self.finish_page();
            }
            let room = PAGE_SIZE - self.page_alloc - HEADER_SIZE;
            let part = rest.len().min(room);
            let last = part == rest.len();
            let kind = match (first, last) {
                (true, true) => FRAGMENT_FULL,
                (true, false) => FRAGMENT_FIRST,
                (false, false) => FRAGMENT_MIDDLE,
                (false, true) => FRAGMENT_LAST,
            };
            let (data, remaining) = rest.split_at(part);
            let at = self.page_alloc;
            self.page[at] = kind | flags;
            // `part <= PAGE_SIZE`, so it fits the u16 length field.
            self.page[at + 1..at + 3].copy_from_slice(&(part as u16).to_be_bytes());
            self.page[at + 3..at + 7].copy_from_slice(&segment::checksum(data).to_be_bytes());
            self.page[at + HEADER_SIZE..at + HEADER_SIZE + part].copy_from_slice(data);
            self.page_alloc += HEADER_SIZE + part;
            rest = remaining;
            first = false;
            if last {
                return;
            }
        }
    }

    /// Queues the rest of the current page (zero padding included) and
    /// starts a new page.
    fn finish_page(&mut self) {
        self.pending
            .extend_from_slice(&self.page[self.page_flushed..]);
        self.page.fill(0);
        self.page_alloc = 0;
        self.page_flushed = 0;
        self.done_pages += 1;
    }

    /// Writes queued bytes and the filled part of the current page.
    fn write_pending(&mut self) -> Result<(), WalError> {
        self.pending
            .extend_from_slice(&self.page[self.page_flushed..self.page_alloc]);
        self.page_flushed = self.page_alloc;
        if self.pending.is_empty() {
            return Ok(());
        }
        let result = self.segment.write_all(&self.pending);
        self.pending.clear();
        result
            .map_err(|e| WalError::io(&segment::segment_path(&self.dir, self.segment_index), e))?;
        self.unsynced = true;
        Ok(())
    }
}

fn create_segment(dir: &Path, index: u64) -> Result<File, WalError> {
    let path = segment::segment_path(dir, index);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| WalError::io(&path, e))?;
    segment::sync_dir(dir).map_err(|e| WalError::io(dir, e))?;
    Ok(file)
}

/// Truncates the damaged segment at the damage, pads it to a page boundary
/// and deletes every later segment. Logs and returns what was dropped.
fn repair_segments(corruption: &Corruption) -> Result<RepairReport, WalError> {
    let dir = &corruption.dir;
    let path = segment::segment_path(dir, corruption.segment);
    let file = OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| WalError::io(&path, e))?;
    let segment_size = file.metadata().map_err(|e| WalError::io(&path, e))?.len();
    let offset = corruption.offset.min(segment_size);
    // Zero padding up to the page boundary is a valid page terminator, so
    // the segment stays whole pages.
    let padded = offset.div_ceil(PAGE_SIZE as u64) * PAGE_SIZE as u64;
    file.set_len(offset).map_err(|e| WalError::io(&path, e))?;
    file.set_len(padded).map_err(|e| WalError::io(&path, e))?;
    file.sync_all().map_err(|e| WalError::io(&path, e))?;

    let mut deleted_segments = Vec::new();
    for (index, later) in segment::list_segments(dir).map_err(|e| WalError::io(dir, e))? {
        if index <= corruption.segment {
            continue;
        }
        let size = later.metadata().map_err(|e| WalError::io(&later, e))?.len();
        fs::remove_file(&later).map_err(|e| WalError::io(&later, e))?;
        deleted_segments.push((index, size));
    }
    segment::sync_dir(dir).map_err(|e| WalError::io(dir, e))?;
    let report = RepairReport {
        corruption: corruption.clone(),
        segment_size,
        dropped_bytes: segment_size - offset,
        deleted_segments,
    };
    tracing::warn!(
        dir = %dir.display(),
        segment = corruption.segment,
        offset,
        damage = %corruption.kind,
        dropped_bytes = report.dropped_bytes,
        segment_size,
        deleted_segments = ?report.deleted_segments,
        "repaired WAL: kept everything before the damage, dropped the rest"
    );
    Ok(report)
}

/// Writes `checkpoint.<to>` from segments `from ..= to` of the WAL in
/// `dir` (which must all be finished: `to` below the segment being
/// written) without holding the [`Wal`], so that commits continue while it
/// runs; see [`Wal::checkpoint`]. Afterwards the caller deletes the
/// segments with [`Wal::truncate`] and older checkpoints with
/// [`remove_checkpoints_before`].
///
/// # Errors
/// Corruption and I/O errors.
pub(crate) fn write_checkpoint(
    dir: &Path,
    from: u64,
    to: u64,
    keep_series: impl Fn(u64) -> bool,
    mint: i64,
    options: WalOptions,
) -> Result<CheckpointStats, WalError> {
    checkpoint::write(dir, from, to, &keep_series, mint, options)
}

/// Deletes checkpoints older than `checkpoint.<index>`.
///
/// # Errors
/// I/O errors.
pub(crate) fn remove_checkpoints_before(dir: &Path, index: u64) -> Result<(), WalError> {
    checkpoint::remove_older(dir, index)
}

#[cfg(test)]
mod tests;
