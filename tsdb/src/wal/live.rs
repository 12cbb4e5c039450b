//! Following a WAL while it is written: [`LiveReader`] and the directory
//! listings a follower needs.
//!
//! [`Reader`](super::Reader) is made for replay: it reads a fixed set of
//! finished segments and treats a short page as the end of a segment. A
//! follower (the remote-write WAL watcher) reads the segment the writer is
//! still appending to, so it must tell "not written yet" from "damaged":
//! [`LiveReader`] only ever parses bytes that are in the file, and when a
//! fragment or a record is incomplete it answers `None` and picks up from
//! the same place on the next call.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::segment::{
    self, FRAGMENT_FIRST, FRAGMENT_FULL, FRAGMENT_LAST, FRAGMENT_MIDDLE, FRAGMENT_PAGE_TERM,
    HEADER_SIZE, PAGE_SIZE, RESERVED_MASK, SNAPPY_FLAG, TYPE_MASK, ZSTD_FLAG,
};
use super::{Corruption, CorruptionKind, WalError};

/// Bytes read from the file at a time.
const READ_CHUNK: usize = 1024 * 1024;

/// Indexes of the WAL segments in `dir`, ascending.
///
/// # Errors
/// I/O errors listing the directory.
pub fn list_segment_indexes(dir: &Path) -> Result<Vec<u64>, WalError> {
    Ok(segment::list_segments(dir)
        .map_err(|e| WalError::io(dir, e))?
        .into_iter()
        .map(|(index, _)| index)
        .collect())
}

/// Finished checkpoints in `dir` as `(index, directory)`, ascending; a
/// checkpoint being written (`.tmp`) is not listed.
///
/// # Errors
/// I/O errors listing the directory.
pub fn list_checkpoints(dir: &Path) -> Result<Vec<(u64, PathBuf)>, WalError> {
    segment::list_checkpoints(dir).map_err(|e| WalError::io(dir, e))
}

/// Reads records from one segment that may still be growing.
///
/// Positions are file offsets of record boundaries: [`LiveReader::offset`]
/// after a record is where the next one starts, and [`LiveReader::open`] at
/// such an offset resumes there (a remote-write queue stores it as its
/// progress marker).
///
/// ```
/// # use ember_tsdb::wal::{LiveReader, Record, RefSample, Wal, WalOptions};
/// let dir = tempfile::tempdir()?;
/// let mut wal = Wal::open(dir.path(), WalOptions::default())?;
/// let segment = wal.current_segment();
/// let mut live = LiveReader::open(dir.path(), segment, 0)?;
/// assert!(live.next_record()?.is_none()); // nothing written yet
/// wal.log(&[Record::Samples(&[RefSample { series_ref: 1, t: 5, v: 1.0 }])])?;
/// assert!(live.next_record()?.is_some()); // the record as soon as it is written
/// assert!(live.next_record()?.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct LiveReader {
    dir: PathBuf,
    index: u64,
    file: File,
    /// File bytes `[buf_start, buf_start + buf.len())`.
    buf: Vec<u8>,
    buf_start: u64,
    /// File offset of the next fragment to parse.
    pos: u64,
    /// Offset after the last complete record.
    boundary: u64,
    assembly: Vec<u8>,
    in_record: bool,
    record_compressed: bool,
    record_start: u64,
    decompressed: Vec<u8>,
    decoder: snap::raw::Decoder,
}

impl LiveReader {
    /// Opens segment `index` of `dir` to read from `offset`, which must be 0
    /// or a record boundary returned by [`LiveReader::offset`].
    ///
    /// # Errors
    /// I/O errors opening the file.
    pub fn open(dir: &Path, index: u64, offset: u64) -> Result<LiveReader, WalError> {
        let path = segment::segment_path(dir, index);
        let file = File::open(&path).map_err(|e| WalError::io(&path, e))?;
        Ok(LiveReader {
            dir: dir.to_path_buf(),
            index,
            file,
            buf: Vec::new(),
            buf_start: offset,
            pos: offset,
            boundary: offset,
            assembly: Vec::new(),
            in_record: false,
            record_compressed: false,
            record_start: offset,
            decompressed: Vec::new(),
            decoder: snap::raw::Decoder::new(),
        })
    }

    /// The segment's index.
    pub fn segment(&self) -> u64 {
        self.index
    }

    /// Offset after the last record returned: where the next one starts.
    pub fn offset(&self) -> u64 {
        self.boundary
    }

    /// Whether part of a record has been read but not its end. At the end of
    /// a finished segment this means the segment's tail is torn.
    pub fn in_partial_record(&self) -> bool {
        self.in_record || self.pos > self.boundary
    }

    /// The next complete record, or `None` when the file holds no further
    /// complete record yet (call again after the writer wrote more).
    ///
    /// # Errors
    /// [`WalError::Corruption`] for damage in bytes that are present,
    /// [`WalError::UnsupportedCompression`] for zstd records, I/O errors.
    pub fn next_record(&mut self) -> Result<Option<&[u8]>, WalError> {
        loop {
            match self.next_fragment()? {
                Step::Wait => return Ok(None),
                Step::Continue => {}
                Step::Record => return self.finish_record().map(Some),
            }
        }
    }

    /// Makes `[at, at + len)` available in `buf`; `false` when the file does
    /// not hold those bytes yet.
    fn ensure(&mut self, at: u64, len: usize) -> Result<bool, WalError> {
        // Drop consumed bytes so the buffer does not grow with the segment.
        let consumed = (self.pos.min(at) - self.buf_start) as usize;
        if consumed >= READ_CHUNK || (consumed > 0 && consumed == self.buf.len()) {
            self.buf.drain(..consumed);
            self.buf_start += consumed as u64;
        }
        let end = at + len as u64;
        while self.buf_start + (self.buf.len() as u64) < end {
            let old = self.buf.len();
            let want = ((end - self.buf_start) as usize - old).max(READ_CHUNK);
            self.buf.resize(old + want, 0);
            let read = loop {
                match self
                    .file
                    .read_at(&mut self.buf[old..], self.buf_start + old as u64)
                {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.buf.truncate(old);
                        return Err(WalError::io(
                            &segment::segment_path(&self.dir, self.index),
                            e,
                        ));
                    }
                }
            };
            self.buf.truncate(old + read);
            if read == 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn bytes(&self, at: u64, len: usize) -> &[u8] {
        let start = (at - self.buf_start) as usize;
        &self.buf[start..start + len]
    }

    fn corruption(&self, offset: u64, kind: CorruptionKind) -> WalError {
        WalError::Corruption(Corruption {
            dir: self.dir.clone(),
            segment: self.index,
            offset,
            kind,
            in_checkpoint: false,
        })
    }

    fn next_fragment(&mut self) -> Result<Step, WalError> {
        let page = PAGE_SIZE as u64;
        let page_end = (self.pos / page + 1) * page;
        let room = (page_end - self.pos) as usize;
        let damage_at = if self.in_record {
            self.record_start
        } else {
            self.pos
        };
        // The writer never starts a fragment in the last HEADER_SIZE bytes
        // of a page: it pads them. Padding is written together with what
        // follows it, so it is only skipped once it is in the file.
        if room <= HEADER_SIZE {
            if !self.ensure(self.pos, room)? {
                return Ok(Step::Wait);
            }
            if self.bytes(self.pos, room).iter().any(|&b| b != 0) {
                return Err(self.corruption(damage_at, CorruptionKind::NonZeroPadding));
            }
            self.pos = page_end;
            if !self.in_record {
                self.boundary = self.pos;
            }
            return Ok(Step::Continue);
        }
        if !self.ensure(self.pos, 1)? {
            return Ok(Step::Wait);
        }
        let header = self.bytes(self.pos, 1)[0];
        if header == FRAGMENT_PAGE_TERM {
            if self.in_record {
                return Err(self.corruption(
                    self.record_start,
                    CorruptionKind::UnexpectedFragment(FRAGMENT_PAGE_TERM),
                ));
            }
            if !self.ensure(self.pos, room)? {
                return Ok(Step::Wait);
            }
            if self.bytes(self.pos, room).iter().any(|&b| b != 0) {
                return Err(self.corruption(damage_at, CorruptionKind::NonZeroPadding));
            }
            self.pos = page_end;
            if !self.in_record {
                self.boundary = self.pos;
            }
            return Ok(Step::Continue);
        }
        if header & RESERVED_MASK != 0 {
            return Err(self.corruption(damage_at, CorruptionKind::BadHeader(header)));
        }
        if header & ZSTD_FLAG != 0 {
            return Err(WalError::UnsupportedCompression {
                segment: self.index,
                offset: self.pos,
            });
        }
        if !self.ensure(self.pos, HEADER_SIZE)? {
            return Ok(Step::Wait);
        }
        let head = self.bytes(self.pos, HEADER_SIZE);
        let length = usize::from(u16::from_be_bytes([head[1], head[2]]));
        let crc = u32::from_be_bytes([head[3], head[4], head[5], head[6]]);
        if HEADER_SIZE + length > room {
            return Err(self.corruption(damage_at, CorruptionKind::FragmentOverrunsPage));
        }
        if !self.ensure(self.pos, HEADER_SIZE + length)? {
            return Ok(Step::Wait);
        }
        let data_at = self.pos + HEADER_SIZE as u64;
        if segment::checksum(self.bytes(data_at, length)) != crc {
            return Err(self.corruption(damage_at, CorruptionKind::Checksum));
        }
        let kind = header & TYPE_MASK;
        let compressed = header & SNAPPY_FLAG != 0;
        let fragment_at = self.pos;
        let next = data_at + length as u64;
        match kind {
            FRAGMENT_FULL | FRAGMENT_FIRST => {
                if self.in_record {
                    return Err(self
                        .corruption(self.record_start, CorruptionKind::UnexpectedFragment(kind)));
                }
                self.record_start = fragment_at;
                self.record_compressed = compressed;
                self.assembly.clear();
                let start = (data_at - self.buf_start) as usize;
                self.assembly
                    .extend_from_slice(&self.buf[start..start + length]);
                self.pos = next;
                if kind == FRAGMENT_FULL {
                    return Ok(Step::Record);
                }
                self.in_record = true;
                Ok(Step::Continue)
            }
            FRAGMENT_MIDDLE | FRAGMENT_LAST => {
                if !self.in_record {
                    return Err(
                        self.corruption(fragment_at, CorruptionKind::UnexpectedFragment(kind))
                    );
                }
                let start = (data_at - self.buf_start) as usize;
                self.assembly
                    .extend_from_slice(&self.buf[start..start + length]);
                self.pos = next;
                if kind == FRAGMENT_LAST {
                    self.in_record = false;
                    return Ok(Step::Record);
                }
                Ok(Step::Continue)
            }
            other => Err(self.corruption(damage_at, CorruptionKind::UnexpectedFragment(other))),
        }
    }

    fn finish_record(&mut self) -> Result<&[u8], WalError> {
        self.boundary = self.pos;
        if !self.record_compressed {
            return Ok(&self.assembly);
        }
        let length = snap::raw::decompress_len(&self.assembly)
            .map_err(|_| self.corruption(self.record_start, CorruptionKind::Snappy))?;
        if self.decompressed.len() < length {
            self.decompressed.resize(length, 0);
        }
        let written = self
            .decoder
            .decompress(&self.assembly, &mut self.decompressed)
            .map_err(|_| self.corruption(self.record_start, CorruptionKind::Snappy))?;
        Ok(&self.decompressed[..written])
    }
}

enum Step {
    /// The file holds no more complete fragment yet.
    Wait,
    /// A fragment or padding was consumed; go on.
    Continue,
    /// A record is complete in `assembly`.
    Record,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::{Reader, Record, RefSample, RefSeries, Wal, WalOptions, segment_name};

    /// Writes records of many sizes (some spanning pages), then feeds the
    /// segment to a `LiveReader` a few bytes at a time, as a writer would:
    /// it must return exactly the records `Reader` returns, in order, and
    /// never report damage for bytes that are merely not written yet.
    #[test]
    fn live_reader_follows_a_segment_written_piecewise() {
        let source = tempfile::tempdir().unwrap();
        let options = WalOptions {
            compress: false,
            ..WalOptions::default()
        };
        let mut wal = Wal::open(source.path(), options).unwrap();
        let segment_index = wal.current_segment();
        let labels = [("__name__", "m"), ("job", "j")];
        for i in 0..300u64 {
            let samples: Vec<RefSample> = (0..(i * 37 % 900))
                .map(|k| RefSample {
                    series_ref: k,
                    t: k as i64,
                    v: i as f64,
                })
                .collect();
            wal.log(&[
                Record::Series(&[RefSeries {
                    series_ref: i,
                    labels: &labels,
                }]),
                Record::Samples(&samples),
            ])
            .unwrap();
        }
        wal.close().unwrap();
        let mut expected = Vec::new();
        let mut reader = Reader::open(source.path()).unwrap();
        while let Some(record) = reader.next_record().unwrap() {
            expected.push(record.to_vec());
        }
        let bytes = std::fs::read(source.path().join(segment_name(segment_index))).unwrap();
        assert!(bytes.len() > 4 * PAGE_SIZE, "records span several pages");

        let follow = tempfile::tempdir().unwrap();
        let path = follow.path().join(segment_name(7));
        std::fs::write(&path, b"").unwrap();
        let mut live = LiveReader::open(follow.path(), 7, 0).unwrap();
        let mut got = Vec::new();
        let mut written = 0;
        let mut step = 1;
        while written < bytes.len() {
            let end = (written + step).min(bytes.len());
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap();
            std::io::Write::write_all(&mut file, &bytes[written..end]).unwrap();
            written = end;
            step = step * 3 % 10_007 + 1;
            while let Some(record) = live.next_record().unwrap() {
                got.push(record.to_vec());
            }
        }
        assert!(!live.in_partial_record());
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "records differ");

        // Resuming at a stored boundary yields the rest.
        let mut first = LiveReader::open(follow.path(), 7, 0).unwrap();
        for _ in 0..100 {
            first.next_record().unwrap().unwrap();
        }
        let mut resumed = LiveReader::open(follow.path(), 7, first.offset()).unwrap();
        let mut rest = 0;
        while resumed.next_record().unwrap().is_some() {
            rest += 1;
        }
        assert_eq!(rest, expected.len() - 100);
    }

    #[test]
    fn damage_in_written_bytes_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
        let index = wal.current_segment();
        wal.log(&[Record::Samples(&[RefSample {
            series_ref: 1,
            t: 1,
            v: 1.0,
        }])])
        .unwrap();
        wal.close().unwrap();
        let path = dir.path().join(segment_name(index));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[HEADER_SIZE + 1] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let mut live = LiveReader::open(dir.path(), index, 0).unwrap();
        assert!(matches!(
            live.next_record(),
            Err(WalError::Corruption(Corruption {
                kind: CorruptionKind::Checksum,
                ..
            }))
        ));
    }
}
