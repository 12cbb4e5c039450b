//! The head's memory-mapped chunk files (`chunks_head/`): where full chunks
//! go so that a series keeps a 24-byte reference instead of the bytes.
//!
//! The byte layout, the recovery rules and why the files are not fsynced per
//! chunk are specified in `tsdb/docs/format/head_chunks.md`.
//!
//! [`ChunkFiles`] owns the segments. Writing ([`ChunkFiles::write`]) is
//! serialised by an internal mutex; reading ([`ChunkFiles::read`]) is
//! lock-free apart from a short read lock to find the segment, and the
//! returned [`MappedChunk`] keeps its segment mapped for as long as it lives.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use memmap2::{MmapRaw, UncheckedAdvice};

/// Magic number at the start of every segment.
const MAGIC: u32 = 0x0130_BC91;
/// Format version byte.
const VERSION: u8 = 1;
/// Segment header: magic, version, three reserved bytes.
const SEGMENT_HEADER_LEN: usize = 8;
/// Encoding byte of Ember's float chunk (see chunks.md).
pub(crate) const ENCODING_XOR: u8 = 0x81;
/// Fixed part of an entry before the length varint: ref, min t, max t,
/// encoding.
const ENTRY_FIXED_LEN: usize = 8 + 8 + 8 + 1;
/// Trailing CRC32C.
const CRC_LEN: usize = 4;

/// Default segment size: 128 MiB.
pub const DEFAULT_CHUNK_SEGMENT_SIZE: u64 = 128 * 1024 * 1024;

/// Where a full chunk lives: segment number (16 bits), entry offset (32
/// bits) and sample count (16 bits) packed into one word, so a series pays
/// eight bytes per chunk for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkRef(u64);

impl ChunkRef {
    fn new(segment: u16, offset: u32, num_samples: u16) -> Self {
        Self((u64::from(segment) << 48) | (u64::from(offset) << 16) | u64::from(num_samples))
    }

    fn segment(self) -> u16 {
        (self.0 >> 48) as u16
    }

    fn offset(self) -> usize {
        ((self.0 >> 16) & 0xFFFF_FFFF) as usize
    }

    /// Samples in the chunk.
    pub(crate) fn num_samples(self) -> u16 {
        (self.0 & 0xFFFF) as u16
    }
}

/// Errors of the chunk files.
#[derive(Debug, thiserror::Error)]
pub enum ChunkFileError {
    /// A file system operation failed.
    #[error("head chunk file I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A reference points outside its segment (a bug or a damaged mapping).
    #[error("head chunk reference points outside segment {segment} at offset {offset}")]
    BadReference {
        /// Segment number.
        segment: u16,
        /// Entry offset.
        offset: usize,
    },
    /// More segments than a reference can name.
    #[error("too many head chunk segments (at most {})", u16::MAX)]
    TooManySegments,
}

fn io_error(path: &Path, source: io::Error) -> ChunkFileError {
    ChunkFileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One mapped segment file.
struct Segment {
    index: u16,
    path: PathBuf,
    /// Written with `pwrite`, not through the mapping, so that freshly
    /// written chunks do not count towards the process's resident memory
    /// until a query reads them (the page cache keeps both views coherent).
    file: File,
    map: MmapRaw,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("index", &self.index)
            .field("len", &self.map.len())
            .finish_non_exhaustive()
    }
}

impl Segment {
    /// The bytes `[start, start + len)`, which must have been completely
    /// written before the reference that leads here was published.
    fn bytes(&self, start: usize, len: usize) -> Option<&[u8]> {
        let end = start.checked_add(len)?;
        if end > self.map.len() {
            return None;
        }
        // SAFETY: the range is inside the mapping, which lives as long as
        // `self`. The writer only ever writes to bytes after the last
        // published entry, and a reader only reaches entries whose
        // reference was published (through the series mutex) after they
        // were written, so these bytes are never written concurrently.
        Some(unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(start), len) })
    }
}

/// The bytes of one full chunk, keeping its segment mapped (or, for a
/// chunk that could not be written, its bytes in memory).
#[derive(Clone)]
pub(crate) struct MappedChunk {
    segment: Option<Arc<Segment>>,
    memory: Option<Arc<[u8]>>,
    start: usize,
    len: usize,
}

impl std::fmt::Debug for MappedChunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedChunk")
            .field("segment", &self.segment.as_ref().map(|s| s.index))
            .field("start", &self.start)
            .field("len", &self.len)
            .finish()
    }
}

impl MappedChunk {
    /// The chunk's encoded bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        match (&self.segment, &self.memory) {
            // Bounds were checked when the chunk was resolved.
            (Some(segment), _) => segment.bytes(self.start, self.len).unwrap_or(&[]),
            (None, Some(memory)) => memory,
            (None, None) => &[],
        }
    }
}

/// A chunk found by the start-up scan.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScannedChunk {
    pub(crate) series_ref: u64,
    pub(crate) min_t: i64,
    pub(crate) max_t: i64,
    pub(crate) chunk_ref: ChunkRef,
}

struct Writer {
    /// The segment being written, and the offset after its last entry.
    current: Option<(Arc<Segment>, usize)>,
}

/// The head chunk files of one database. See the [module docs](self).
pub(crate) struct ChunkFiles {
    dir: PathBuf,
    segment_size: u64,
    /// Every segment, ascending by index.
    segments: RwLock<Vec<Arc<Segment>>>,
    writer: Mutex<Writer>,
    /// Chunks that could not be written to a file, kept in memory. Their
    /// references name segment 0, which no file has, and their index here.
    memory: RwLock<Vec<Arc<[u8]>>>,
    /// Newest chunk `max t` written to each segment, by segment index, so
    /// that head truncation can delete segments holding only older chunks.
    max_times: Mutex<std::collections::BTreeMap<u16, i64>>,
}

impl std::fmt::Debug for ChunkFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkFiles")
            .field("dir", &self.dir)
            .field("segment_size", &self.segment_size)
            .finish_non_exhaustive()
    }
}

fn segment_path(dir: &Path, index: u16) -> PathBuf {
    dir.join(format!("{index:08}"))
}

fn list_segments(dir: &Path) -> Result<Vec<(u16, PathBuf)>, ChunkFileError> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(index) = name.parse::<u16>() {
            segments.push((index, entry.path()));
        }
    }
    segments.sort_unstable_by_key(|&(index, _)| index);
    Ok(segments)
}

fn sync_dir(dir: &Path) -> Result<(), ChunkFileError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, e))
}

fn uvarint_len(mut x: u64) -> usize {
    let mut n = 1;
    while x >= 0x80 {
        x >>= 7;
        n += 1;
    }
    n
}

fn read_uvarint(buf: &[u8]) -> Option<(u64, usize)> {
    let mut x = 0u64;
    for (i, &b) in buf.iter().enumerate().take(10) {
        x |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some((x, i + 1));
        }
    }
    None
}

/// The parsed header of the entry at `offset`: (series ref, min t, max t,
/// data start, data len), or `None` if the bytes there are not a complete,
/// well-formed entry (CRC checked when `verify`).
fn parse_entry(buf: &[u8], offset: usize, verify: bool) -> Option<(u64, i64, i64, usize, usize)> {
    let fixed = buf.get(offset..offset.checked_add(ENTRY_FIXED_LEN)?)?;
    let series_ref = u64::from_be_bytes(fixed[0..8].try_into().ok()?);
    let min_t = i64::from_be_bytes(fixed[8..16].try_into().ok()?);
    let max_t = i64::from_be_bytes(fixed[16..24].try_into().ok()?);
    if series_ref == 0 || fixed[24] != ENCODING_XOR {
        return None;
    }
    let after_fixed = offset + ENTRY_FIXED_LEN;
    let (len, varint_len) = read_uvarint(buf.get(after_fixed..)?)?;
    let data_start = after_fixed + varint_len;
    let len = usize::try_from(len).ok()?;
    let data_end = data_start.checked_add(len)?;
    let crc_end = data_end.checked_add(CRC_LEN)?;
    let crc_bytes = buf.get(data_end..crc_end)?;
    if verify {
        let stored = u32::from_be_bytes(crc_bytes.try_into().ok()?);
        if crc32c::crc32c(&buf[offset..data_end]) != stored {
            return None;
        }
    }
    Some((series_ref, min_t, max_t, data_start, len))
}

fn create_segment(dir: &Path, index: u16, size: u64) -> Result<Segment, ChunkFileError> {
    let path = segment_path(dir, index);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| io_error(&path, e))?;
    let mut header = [0u8; SEGMENT_HEADER_LEN];
    header[..4].copy_from_slice(&MAGIC.to_be_bytes());
    header[4] = VERSION;
    std::os::unix::fs::FileExt::write_all_at(&file, &header, 0).map_err(|e| io_error(&path, e))?;
    file.set_len(size).map_err(|e| io_error(&path, e))?;
    sync_dir(dir)?;
    let map = MmapRaw::map_raw(&file).map_err(|e| io_error(&path, e))?;
    Ok(Segment {
        index,
        path,
        file,
        map,
    })
}

impl ChunkFiles {
    /// Opens the chunk files in `dir` (creating it), scanning and repairing
    /// every segment; returns the chunks found, in file order.
    pub(crate) fn open(
        dir: &Path,
        segment_size: u64,
    ) -> Result<(ChunkFiles, Vec<ScannedChunk>), ChunkFileError> {
        fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        let mut scanned = Vec::new();
        let mut segments: Vec<Arc<Segment>> = Vec::new();
        let mut end_of_last = SEGMENT_HEADER_LEN;
        let mut damaged = false;
        for (index, path) in list_segments(dir)? {
            if damaged {
                // Everything after damage is dropped (see the format page).
                tracing::warn!(segment = index, path = %path.display(), "deleting head chunk segment after damage");
                fs::remove_file(&path).map_err(|e| io_error(&path, e))?;
                continue;
            }
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| io_error(&path, e))?;
            let file_len = file.metadata().map_err(|e| io_error(&path, e))?.len();
            let map = MmapRaw::map_raw(&file).map_err(|e| io_error(&path, e))?;
            let segment = Segment {
                index,
                path,
                file,
                map,
            };
            let len = segment.map.len();
            let all = segment.bytes(0, len).unwrap_or(&[]);
            let header_ok = all.len() >= SEGMENT_HEADER_LEN
                && all[..4] == MAGIC.to_be_bytes()
                && all[4] == VERSION;
            let mut offset = SEGMENT_HEADER_LEN;
            if header_ok {
                while let Some((series_ref, min_t, max_t, data_start, data_len)) =
                    parse_entry(all, offset, true)
                {
                    let num_samples = all
                        .get(data_start..data_start + 2)
                        .map_or(0, |h| u16::from_be_bytes([h[0], h[1]]));
                    let Ok(entry_offset) = u32::try_from(offset) else {
                        break;
                    };
                    scanned.push(ScannedChunk {
                        series_ref,
                        min_t,
                        max_t,
                        chunk_ref: ChunkRef::new(index, entry_offset, num_samples),
                    });
                    offset = data_start + data_len + CRC_LEN;
                }
            }
            // Whatever follows the last good entry must be zeros; anything
            // else is damage (a torn write or flipped bits).
            let rest = all.get(offset..).unwrap_or(&[]);
            if !header_ok || rest.iter().any(|&b| b != 0) {
                damaged = true;
                tracing::warn!(
                    segment = index,
                    offset,
                    file_len,
                    "head chunk segment damaged: keeping the chunks before the damage, dropping the rest"
                );
                let keep = if header_ok { offset as u64 } else { 0 };
                let Segment { file, .. } = segment;
                let path = segment_path(dir, index);
                if keep == 0 {
                    fs::remove_file(&path).map_err(|e| io_error(&path, e))?;
                    continue;
                }
                // Zero the tail: truncate, then grow back (sparse zeros).
                file.set_len(keep).map_err(|e| io_error(&path, e))?;
                file.set_len(file_len).map_err(|e| io_error(&path, e))?;
                file.sync_all().map_err(|e| io_error(&path, e))?;
                let map = MmapRaw::map_raw(&file).map_err(|e| io_error(&path, e))?;
                segments.push(Arc::new(Segment {
                    index,
                    path,
                    file,
                    map,
                }));
            } else {
                // The scan paged the whole segment in; let those pages go
                // from this process's resident set until a query needs them.
                // SAFETY: the mapping is shared and file-backed, so
                // MADV_DONTNEED only drops page table entries and the next
                // access reads the same file contents back; no reference
                // into the mapping is alive at this point.
                if let Err(error) =
                    unsafe { segment.map.unchecked_advise(UncheckedAdvice::DontNeed) }
                {
                    tracing::debug!(%error, segment = index, "madvise(DONTNEED) on a head chunk segment failed");
                }
                segments.push(Arc::new(segment));
            }
            end_of_last = offset;
        }
        if damaged {
            sync_dir(dir)?;
        }
        let current = segments
            .last()
            .map(|segment| (Arc::clone(segment), end_of_last));
        let mut max_times = std::collections::BTreeMap::new();
        for segment in &segments {
            max_times.insert(segment.index, i64::MIN);
        }
        for chunk in &scanned {
            let slot = max_times
                .entry(chunk.chunk_ref.segment())
                .or_insert(i64::MIN);
            *slot = (*slot).max(chunk.max_t);
        }
        Ok((
            ChunkFiles {
                dir: dir.to_path_buf(),
                segment_size: segment_size.max(SEGMENT_HEADER_LEN as u64 + 64),
                segments: RwLock::new(segments),
                writer: Mutex::new(Writer { current }),
                memory: RwLock::new(Vec::new()),
                max_times: Mutex::new(max_times),
            },
            scanned,
        ))
    }

    /// Writes a full chunk of `series_ref` and returns its reference.
    pub(crate) fn write(
        &self,
        series_ref: u64,
        min_t: i64,
        max_t: i64,
        data: &[u8],
    ) -> Result<ChunkRef, ChunkFileError> {
        let num_samples = data
            .get(..2)
            .map_or(0, |h| u16::from_be_bytes([h[0], h[1]]));
        let entry_len = ENTRY_FIXED_LEN + uvarint_len(data.len() as u64) + data.len() + CRC_LEN;
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let fits = writer
            .current
            .as_ref()
            .is_some_and(|(segment, pos)| pos + entry_len <= segment.map.len());
        if !fits {
            self.cut(&mut writer, entry_len)?;
        }
        let Some((segment, pos)) = writer.current.as_mut() else {
            unreachable!("cut installs a segment");
        };
        let mut entry = Vec::with_capacity(entry_len);
        entry.extend_from_slice(&series_ref.to_be_bytes());
        entry.extend_from_slice(&min_t.to_be_bytes());
        entry.extend_from_slice(&max_t.to_be_bytes());
        entry.push(ENCODING_XOR);
        let mut len = data.len() as u64;
        while len >= 0x80 {
            entry.push((len as u8) | 0x80);
            len >>= 7;
        }
        entry.push(len as u8);
        entry.extend_from_slice(data);
        let crc = crc32c::crc32c(&entry);
        entry.extend_from_slice(&crc.to_be_bytes());
        debug_assert_eq!(entry.len(), entry_len);
        let offset = u32::try_from(*pos).map_err(|_| ChunkFileError::BadReference {
            segment: segment.index,
            offset: *pos,
        })?;
        // The range `[pos, pos + entry_len)` is inside the file (checked
        // above) and after every published entry, so no reader looks at it
        // yet; the writer mutex excludes other writers.
        std::os::unix::fs::FileExt::write_all_at(&segment.file, &entry, *pos as u64)
            .map_err(|e| io_error(&segment.path, e))?;
        *pos += entry_len;
        {
            let mut max_times = self
                .max_times
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let slot = max_times.entry(segment.index).or_insert(i64::MIN);
            *slot = (*slot).max(max_t);
        }
        Ok(ChunkRef::new(segment.index, offset, num_samples))
    }

    /// Finishes the current segment (fdatasync) and starts the next one, big
    /// enough for an entry of `entry_len` bytes.
    fn cut(&self, writer: &mut Writer, entry_len: usize) -> Result<(), ChunkFileError> {
        if let Some((segment, _)) = writer.current.take() {
            segment
                .file
                .sync_data()
                .map_err(|e| io_error(&segment.path, e))?;
        }
        let next = {
            let segments = self.segments.read().unwrap_or_else(PoisonError::into_inner);
            match segments.last() {
                None => 1,
                Some(last) => last
                    .index
                    .checked_add(1)
                    .ok_or(ChunkFileError::TooManySegments)?,
            }
        };
        let size = self
            .segment_size
            .max((SEGMENT_HEADER_LEN + entry_len) as u64);
        let segment = Arc::new(create_segment(&self.dir, next, size)?);
        self.segments
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::clone(&segment));
        writer.current = Some((segment, SEGMENT_HEADER_LEN));
        Ok(())
    }

    /// Keeps a chunk in memory (when writing it failed) and returns a
    /// reference that [`ChunkFiles::read`] resolves like any other.
    pub(crate) fn keep_in_memory(&self, data: Vec<u8>) -> ChunkRef {
        let num_samples = data
            .get(..2)
            .map_or(0, |h| u16::from_be_bytes([h[0], h[1]]));
        let mut memory = self.memory.write().unwrap_or_else(PoisonError::into_inner);
        memory.push(data.into());
        let index = u32::try_from(memory.len() - 1).unwrap_or(u32::MAX);
        ChunkRef::new(0, index, num_samples)
    }

    /// The bytes of the chunk at `chunk_ref`.
    pub(crate) fn read(&self, chunk_ref: ChunkRef) -> Result<MappedChunk, ChunkFileError> {
        let wanted = chunk_ref.segment();
        if wanted == 0 {
            let memory = self.memory.read().unwrap_or_else(PoisonError::into_inner);
            return match memory.get(chunk_ref.offset()) {
                Some(bytes) => Ok(MappedChunk {
                    segment: None,
                    memory: Some(Arc::clone(bytes)),
                    start: 0,
                    len: bytes.len(),
                }),
                None => Err(ChunkFileError::BadReference {
                    segment: 0,
                    offset: chunk_ref.offset(),
                }),
            };
        }
        let segment = {
            let segments = self.segments.read().unwrap_or_else(PoisonError::into_inner);
            segments
                .binary_search_by_key(&wanted, |s| s.index)
                .ok()
                .map(|i| Arc::clone(&segments[i]))
        };
        let bad = ChunkFileError::BadReference {
            segment: wanted,
            offset: chunk_ref.offset(),
        };
        let Some(segment) = segment else {
            return Err(bad);
        };
        let all = segment.bytes(0, segment.map.len()).unwrap_or(&[]);
        let Some((_, _, _, start, len)) = parse_entry(all, chunk_ref.offset(), false) else {
            return Err(bad);
        };
        Ok(MappedChunk {
            segment: Some(segment),
            memory: None,
            start,
            len,
        })
    }

    /// Deletes the segments (other than the one being written) whose
    /// chunks all end before `mint`, after head truncation dropped every
    /// reference to them. Readers that still hold a [`MappedChunk`] keep
    /// their segment mapped. Returns how many were deleted.
    pub(crate) fn truncate_before(&self, mint: i64) -> usize {
        let writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let current = writer.current.as_ref().map(|(s, _)| s.index);
        let mut max_times = self
            .max_times
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let doomed: Vec<u16> = max_times
            .iter()
            .filter(|&(&index, &max_t)| Some(index) != current && max_t < mint)
            .map(|(&index, _)| index)
            .collect();
        if doomed.is_empty() {
            return 0;
        }
        let mut segments = self
            .segments
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let mut deleted = 0;
        for index in doomed {
            max_times.remove(&index);
            if let Ok(i) = segments.binary_search_by_key(&index, |s| s.index) {
                let segment = segments.remove(i);
                match fs::remove_file(&segment.path) {
                    Ok(()) => deleted += 1,
                    Err(error) => {
                        tracing::warn!(%error, path = %segment.path.display(), "deleting a head chunk segment failed")
                    }
                }
            }
        }
        drop(segments);
        drop(writer);
        if deleted > 0
            && let Err(error) = sync_dir(&self.dir)
        {
            tracing::warn!(%error, "fsync of chunks_head/ failed");
        }
        deleted
    }

    /// Flushes the segment being written to disk.
    pub(crate) fn sync(&self) -> Result<(), ChunkFileError> {
        let writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((segment, _)) = writer.current.as_ref() {
            segment
                .file
                .sync_data()
                .map_err(|e| io_error(&segment.path, e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_reopen_and_repair() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("chunks_head");
        let (files, scanned) = ChunkFiles::open(&path, 4096).expect("open");
        assert!(scanned.is_empty());
        let mut refs = Vec::new();
        for i in 0..100u64 {
            let mut chunk = crate::chunkenc::XorChunk::new();
            for j in 0..10 {
                chunk
                    .append((i * 100 + j) as i64, j as f64)
                    .expect("append");
            }
            let r = files
                .write(i + 1, (i * 100) as i64, (i * 100 + 9) as i64, chunk.bytes())
                .expect("write");
            assert_eq!(r.num_samples(), 10);
            assert_eq!(files.read(r).expect("read").bytes(), chunk.bytes());
            refs.push((r, chunk.bytes().to_vec()));
        }
        files.sync().expect("sync");
        drop(files);
        let (files, scanned) = ChunkFiles::open(&path, 4096).expect("reopen");
        assert_eq!(scanned.len(), 100);
        for (i, (s, (r, bytes))) in scanned.iter().zip(&refs).enumerate() {
            assert_eq!(s.series_ref, i as u64 + 1);
            assert_eq!(s.chunk_ref, *r);
            assert_eq!(files.read(*r).expect("read").bytes(), &bytes[..]);
        }
        drop(files);

        // Flip a byte inside chunk 50's entry: it and everything after it
        // is dropped, and the files stay writable.
        let victim = scanned[50].chunk_ref;
        let seg = segment_path(&path, victim.segment());
        let mut raw = fs::read(&seg).expect("read segment");
        raw[victim.offset() + 30] ^= 0xff;
        fs::write(&seg, raw).expect("write segment");
        let (files, rescanned) = ChunkFiles::open(&path, 4096).expect("reopen damaged");
        assert_eq!(rescanned.len(), 50);
        let r = files.write(999, 0, 1, &[0, 0]).expect("write after repair");
        drop(files);
        let (_, again) = ChunkFiles::open(&path, 4096).expect("reopen");
        assert_eq!(again.len(), 51);
        assert_eq!(again[50].chunk_ref, r);
    }
}
