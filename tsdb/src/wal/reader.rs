//! Streaming records back out of segment files, for replay, checkpoints
//! and the damage scan at open.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::segment::{
    self, FRAGMENT_FIRST, FRAGMENT_FULL, FRAGMENT_LAST, FRAGMENT_MIDDLE, FRAGMENT_PAGE_TERM,
    HEADER_SIZE, PAGE_SIZE, RESERVED_MASK, SNAPPY_FLAG, TYPE_MASK, ZSTD_FLAG,
};
use super::{Corruption, CorruptionKind, WalError};

/// Progress is reported at least this often (in bytes) within a segment.
const PROGRESS_EVERY: u64 = 16 * 1024 * 1024;

/// How far a replay has got, handed to the progress callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Segments (checkpoint segments included) read completely.
    pub segments_done: usize,
    /// Segments to read in total.
    pub segments_total: usize,
    /// Bytes read so far.
    pub bytes_done: u64,
    /// Bytes to read in total (file sizes when the reader was created).
    pub bytes_total: u64,
    /// Index of the segment being read, or just finished.
    pub segment: u64,
    /// Whether that segment belongs to a checkpoint.
    pub in_checkpoint: bool,
}

impl Progress {
    /// Share of the bytes read, from 0.0 to 1.0 (1.0 for an empty WAL).
    pub fn fraction(&self) -> f64 {
        if self.bytes_total == 0 {
            1.0
        } else {
            self.bytes_done as f64 / self.bytes_total as f64
        }
    }
}

/// A line for the replay log, e.g. `segment 12: 3/40 segments, 96 MiB of
/// 1260 MiB (7.6%)`.
impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const MIB: u64 = 1024 * 1024;
        write!(
            f,
            "{}segment {}: {}/{} segments, {} MiB of {} MiB ({:.1}%)",
            if self.in_checkpoint {
                "checkpoint "
            } else {
                ""
            },
            self.segment,
            self.segments_done,
            self.segments_total,
            self.bytes_done / MIB,
            self.bytes_total.div_ceil(MIB),
            self.fraction() * 100.0
        )
    }
}

/// One segment file to read.
#[derive(Debug, Clone)]
pub(crate) struct SegmentFile {
    pub(crate) dir: PathBuf,
    pub(crate) index: u64,
    pub(crate) size: u64,
    pub(crate) in_checkpoint: bool,
}

type ProgressFn = Box<dyn FnMut(&Progress) + Send>;

/// Reads records in order from a sequence of segments.
///
/// Records are returned one at a time from a buffer the reader reuses, so a
/// record must be decoded (or copied) before the next call to
/// [`Reader::next_record`]. The first damage met ends the stream with
/// [`WalError::Corruption`], which says where the last good record ended;
/// see [`super::Wal::repair`].
///
/// ```
/// # use ember_tsdb::wal::{Reader, Record, RecordType, RefSample, Wal, WalOptions, decode_samples};
/// # let dir = tempfile::tempdir().unwrap();
/// # let mut wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
/// # wal.log(&[Record::Samples(&[RefSample { series_ref: 1, t: 5, v: 1.0 }])]).unwrap();
/// # wal.close().unwrap();
/// let mut reader = Reader::open(dir.path())?
///     .with_progress(|p| eprintln!("replayed {} of {} bytes", p.bytes_done, p.bytes_total));
/// let mut samples = Vec::new();
/// while let Some(record) = reader.next_record()? {
///     if RecordType::of(record) == RecordType::Samples {
///         decode_samples(record, &mut samples).unwrap();
///     }
/// }
/// assert_eq!(samples.len(), 1);
/// # Ok::<(), ember_tsdb::wal::WalError>(())
/// ```
pub struct Reader {
    segments: Vec<SegmentFile>,
    /// Index into `segments` of the segment being read.
    current: usize,
    file: Option<File>,
    page: Box<[u8]>,
    page_len: usize,
    page_pos: usize,
    /// File offset of the page in `page`.
    page_offset: u64,
    /// Whether the segment has no more pages.
    segment_done: bool,
    /// Fragments of the record being assembled.
    assembly: Vec<u8>,
    in_record: bool,
    record_compressed: bool,
    /// File offset where the record being assembled (or last returned) starts.
    record_offset: u64,
    decompressed: Vec<u8>,
    decoder: snap::raw::Decoder,
    returned_compressed: bool,
    progress: Progress,
    last_reported: u64,
    on_progress: Option<ProgressFn>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("segments", &self.segments)
            .field("current", &self.current)
            .field("progress", &self.progress)
            .finish_non_exhaustive()
    }
}

impl Reader {
    /// A reader for replay: the newest checkpoint in `dir`, if any, then
    /// every segment after it.
    ///
    /// # Errors
    /// I/O errors listing the directories.
    pub fn open(dir: &Path) -> Result<Reader, WalError> {
        let checkpoint = segment::list_checkpoints(dir)
            .map_err(|e| WalError::io(dir, e))?
            .pop();
        let mut files = Vec::new();
        let first = match &checkpoint {
            Some((index, path)) => {
                files.extend(segment_files(path, true, |_| true)?);
                index + 1
            }
            None => 0,
        };
        files.extend(segment_files(dir, false, |i| i >= first)?);
        Ok(Reader::new(files))
    }

    /// A reader over segments `first ..= last` of `dir` only.
    ///
    /// # Errors
    /// I/O errors listing the directory.
    pub fn open_range(dir: &Path, first: u64, last: u64) -> Result<Reader, WalError> {
        Ok(Reader::new(segment_files(dir, false, |i| {
            (first..=last).contains(&i)
        })?))
    }

    pub(crate) fn new(segments: Vec<SegmentFile>) -> Reader {
        let progress = Progress {
            segments_done: 0,
            segments_total: segments.len(),
            bytes_done: 0,
            bytes_total: segments.iter().map(|s| s.size).sum(),
            segment: segments.first().map_or(0, |s| s.index),
            in_checkpoint: segments.first().is_some_and(|s| s.in_checkpoint),
        };
        Reader {
            segments,
            current: 0,
            file: None,
            page: vec![0; PAGE_SIZE].into_boxed_slice(),
            page_len: 0,
            page_pos: 0,
            page_offset: 0,
            segment_done: false,
            assembly: Vec::new(),
            in_record: false,
            record_compressed: false,
            record_offset: 0,
            decompressed: Vec::new(),
            decoder: snap::raw::Decoder::new(),
            returned_compressed: false,
            progress,
            last_reported: 0,
            on_progress: None,
        }
    }

    /// Calls `callback` after each segment and every 16 MiB read.
    #[must_use]
    pub fn with_progress(mut self, callback: impl FnMut(&Progress) + Send + 'static) -> Reader {
        self.on_progress = Some(Box::new(callback));
        self
    }

    /// Progress so far.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Segment index and file offset of the start of the record last
    /// returned.
    pub fn position(&self) -> (u64, u64) {
        let index = self.segments.get(self.current).map_or(0, |s| s.index);
        (index, self.record_offset)
    }

    /// The next record, or `None` after the last one.
    ///
    /// # Errors
    /// [`WalError::Corruption`] at the first damage, [`WalError::Io`] when a
    /// file cannot be read, [`WalError::UnsupportedCompression`] for zstd.
    pub fn next_record(&mut self) -> Result<Option<&[u8]>, WalError> {
        loop {
            let Some(segment) = self.segments.get(self.current) else {
                return Ok(None);
            };
            if self.file.is_none() {
                let path = segment::segment_path(&segment.dir, segment.index);
                self.file = Some(File::open(&path).map_err(|e| WalError::io(&path, e))?);
                self.page_len = 0;
                self.page_pos = 0;
                self.page_offset = 0;
                self.segment_done = false;
                self.progress.segment = segment.index;
                self.progress.in_checkpoint = segment.in_checkpoint;
            }
            if self.read_fragment()? {
                return self.finish_record().map(Some);
            }
            if self.segment_done {
                if self.in_record {
                    return Err(self.corruption(self.record_offset, CorruptionKind::TornRecord));
                }
                self.file = None;
                self.current += 1;
                self.progress.segments_done += 1;
                self.report_progress();
            }
        }
    }

    fn report_progress(&mut self) {
        self.last_reported = self.progress.bytes_done;
        if let Some(callback) = self.on_progress.as_mut() {
            callback(&self.progress);
        }
    }

    fn corruption(&self, offset: u64, kind: CorruptionKind) -> WalError {
        let segment = &self.segments[self.current];
        WalError::Corruption(Corruption {
            dir: segment.dir.clone(),
            segment: segment.index,
            offset,
            kind,
            in_checkpoint: segment.in_checkpoint,
        })
    }

    /// Loads the next page; sets `segment_done` at the end of the file.
    fn next_page(&mut self) -> Result<(), WalError> {
        self.page_offset += self.page_len as u64;
        if self.page_len != 0 && self.page_len < PAGE_SIZE {
            // A short page is the end of the file.
            self.segment_done = true;
            return Ok(());
        }
        let Some(file) = self.file.as_mut() else {
            self.segment_done = true;
            return Ok(());
        };
        let mut filled = 0;
        while filled < PAGE_SIZE {
            match file.read(&mut self.page[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let segment = &self.segments[self.current];
                    return Err(WalError::io(
                        &segment::segment_path(&segment.dir, segment.index),
                        e,
                    ));
                }
            }
        }
        self.page_len = filled;
        self.page_pos = 0;
        self.progress.bytes_done += filled as u64;
        if self.progress.bytes_done - self.last_reported >= PROGRESS_EVERY {
            self.report_progress();
        }
        if filled == 0 {
            self.segment_done = true;
        }
        Ok(())
    }

    /// Consumes one fragment; returns `true` when a record is complete.
    fn read_fragment(&mut self) -> Result<bool, WalError> {
        if self.page_pos >= self.page_len {
            self.next_page()?;
            if self.segment_done {
                return Ok(false);
            }
        }
        let start = self.page_pos;
        let fragment_offset = self.page_offset + start as u64;
        let short_page = self.page_len < PAGE_SIZE;
        // Damage inside a record is reported at the record's start.
        let damage_at = |reader: &Self| {
            if reader.in_record {
                reader.record_offset
            } else {
                fragment_offset
            }
        };
        let header = self.page[start];
        if header == FRAGMENT_PAGE_TERM {
            // A record split over pages continues at the start of the next
            // page, so padding cannot appear inside one; and the rest of the
            // page must be padding.
            if self.in_record {
                return Err(self.corruption(
                    self.record_offset,
                    CorruptionKind::UnexpectedFragment(FRAGMENT_PAGE_TERM),
                ));
            }
            if self.page[start..self.page_len].iter().any(|&b| b != 0) {
                return Err(self.corruption(damage_at(self), CorruptionKind::NonZeroPadding));
            }
            self.page_pos = self.page_len;
            return Ok(false);
        }
        if self.page_len - start < HEADER_SIZE {
            let kind = if short_page {
                CorruptionKind::TornRecord
            } else {
                CorruptionKind::HeaderCrossesPage
            };
            return Err(self.corruption(damage_at(self), kind));
        }
        if header & RESERVED_MASK != 0 {
            return Err(self.corruption(damage_at(self), CorruptionKind::BadHeader(header)));
        }
        if header & ZSTD_FLAG != 0 {
            let segment = &self.segments[self.current];
            return Err(WalError::UnsupportedCompression {
                segment: segment.index,
                offset: fragment_offset,
            });
        }
        let length = usize::from(u16::from_be_bytes([
            self.page[start + 1],
            self.page[start + 2],
        ]));
        let crc = u32::from_be_bytes([
            self.page[start + 3],
            self.page[start + 4],
            self.page[start + 5],
            self.page[start + 6],
        ]);
        let data_start = start + HEADER_SIZE;
        let data_end = data_start + length;
        if data_end > self.page_len {
            let kind = if short_page {
                CorruptionKind::TornRecord
            } else {
                CorruptionKind::FragmentOverrunsPage
            };
            return Err(self.corruption(damage_at(self), kind));
        }
        let data = &self.page[data_start..data_end];
        if segment::checksum(data) != crc {
            return Err(self.corruption(damage_at(self), CorruptionKind::Checksum));
        }
        let compressed = header & SNAPPY_FLAG != 0;
        let kind = header & TYPE_MASK;
        match kind {
            FRAGMENT_FULL | FRAGMENT_FIRST => {
                if self.in_record {
                    return Err(self
                        .corruption(self.record_offset, CorruptionKind::UnexpectedFragment(kind)));
                }
                self.record_offset = fragment_offset;
                self.record_compressed = compressed;
                self.assembly.clear();
                self.assembly.extend_from_slice(data);
                self.page_pos = data_end;
                if kind == FRAGMENT_FULL {
                    return Ok(true);
                }
                self.in_record = true;
                Ok(false)
            }
            FRAGMENT_MIDDLE | FRAGMENT_LAST => {
                if !self.in_record {
                    return Err(
                        self.corruption(fragment_offset, CorruptionKind::UnexpectedFragment(kind))
                    );
                }
                self.assembly.extend_from_slice(data);
                self.page_pos = data_end;
                if kind == FRAGMENT_LAST {
                    self.in_record = false;
                    return Ok(true);
                }
                Ok(false)
            }
            other => {
                Err(self.corruption(damage_at(self), CorruptionKind::UnexpectedFragment(other)))
            }
        }
    }

    fn finish_record(&mut self) -> Result<&[u8], WalError> {
        self.returned_compressed = self.record_compressed;
        if !self.record_compressed {
            return Ok(&self.assembly);
        }
        let length = snap::raw::decompress_len(&self.assembly)
            .map_err(|_| self.corruption(self.record_offset, CorruptionKind::Snappy))?;
        if self.decompressed.len() < length {
            self.decompressed.resize(length, 0);
        }
        let written = self
            .decoder
            .decompress(&self.assembly, &mut self.decompressed)
            .map_err(|_| self.corruption(self.record_offset, CorruptionKind::Snappy))?;
        Ok(&self.decompressed[..written])
    }
}

/// Segment files of `dir` whose index passes `keep`.
pub(crate) fn segment_files(
    dir: &Path,
    in_checkpoint: bool,
    keep: impl Fn(u64) -> bool,
) -> Result<Vec<SegmentFile>, WalError> {
    let mut files = Vec::new();
    for (index, path) in segment::list_segments(dir).map_err(|e| WalError::io(dir, e))? {
        if !keep(index) {
            continue;
        }
        let size = path.metadata().map_err(|e| WalError::io(&path, e))?.len();
        files.push(SegmentFile {
            dir: dir.to_path_buf(),
            index,
            size,
            in_checkpoint,
        });
    }
    Ok(files)
}
