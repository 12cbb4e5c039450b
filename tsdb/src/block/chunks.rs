//! A block's chunk segment files (`chunks/NNNNNN`); layout in
//! `tsdb/docs/format/block.md`.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::BlockError;
use super::enc::{Decoder, put_uvarint};

/// Magic number at the start of every chunk segment file.
const MAGIC: u32 = 0x85BD_40E1;
const VERSION: u8 = 1;
const HEADER_LEN: u64 = 8;
/// A new segment is started before one would grow past this.
pub(crate) const MAX_SEGMENT_SIZE: u64 = 512 * 1024 * 1024;

pub(crate) fn segment_name(index: u32) -> String {
    format!("{index:06}")
}

/// Writes chunks to consecutive segment files.
pub(crate) struct ChunkWriter {
    dir: PathBuf,
    max_segment_size: u64,
    current: Option<(u32, BufWriter<File>, u64)>,
    /// Total bytes written, headers included.
    pub(crate) bytes: u64,
    entry: Vec<u8>,
}

impl std::fmt::Debug for ChunkWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkWriter")
            .field("dir", &self.dir)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl ChunkWriter {
    pub(crate) fn new(dir: &Path, max_segment_size: u64) -> Result<Self, BlockError> {
        fs::create_dir_all(dir).map_err(|e| BlockError::io(dir, e))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            max_segment_size: max_segment_size.max(HEADER_LEN + 64),
            current: None,
            bytes: 0,
            entry: Vec::new(),
        })
    }

    /// Writes one chunk and returns its reference.
    pub(crate) fn write(&mut self, encoding: u8, data: &[u8]) -> Result<u64, BlockError> {
        self.entry.clear();
        put_uvarint(&mut self.entry, data.len() as u64);
        let crc_start = self.entry.len();
        self.entry.push(encoding);
        self.entry.extend_from_slice(data);
        let crc = crc32c::crc32c(&self.entry[crc_start..]);
        self.entry.extend_from_slice(&crc.to_be_bytes());
        let len = self.entry.len() as u64;
        let fits = self
            .current
            .as_ref()
            .is_some_and(|(_, _, pos)| pos + len <= self.max_segment_size);
        if !fits {
            self.cut()?;
        }
        let Some((index, writer, pos)) = self.current.as_mut() else {
            unreachable!("cut installs a segment");
        };
        let offset = u32::try_from(*pos)
            .map_err(|_| BlockError::Invalid(format!("chunk segment offset {pos} beyond 4 GiB")))?;
        writer
            .write_all(&self.entry)
            .map_err(|e| BlockError::io(&self.dir.join(segment_name(*index)), e))?;
        *pos += len;
        self.bytes += len;
        Ok((u64::from(*index) << 32) | u64::from(offset))
    }

    fn cut(&mut self) -> Result<(), BlockError> {
        let next = match self.current.take() {
            Some((index, writer, _)) => {
                finish_segment(&self.dir.join(segment_name(index)), writer)?;
                index + 1
            }
            None => 1,
        };
        let path = self.dir.join(segment_name(next));
        let file = File::create(&path).map_err(|e| BlockError::io(&path, e))?;
        let mut writer = BufWriter::with_capacity(1 << 20, file);
        let mut header = [0u8; HEADER_LEN as usize];
        header[..4].copy_from_slice(&MAGIC.to_be_bytes());
        header[4] = VERSION;
        writer
            .write_all(&header)
            .map_err(|e| BlockError::io(&path, e))?;
        self.bytes += HEADER_LEN;
        self.current = Some((next, writer, HEADER_LEN));
        Ok(())
    }

    /// Flushes and fsyncs the last segment.
    pub(crate) fn finish(mut self) -> Result<u64, BlockError> {
        if let Some((index, writer, _)) = self.current.take() {
            finish_segment(&self.dir.join(segment_name(index)), writer)?;
        }
        super::sync_dir(&self.dir)?;
        Ok(self.bytes)
    }
}

fn finish_segment(path: &Path, writer: BufWriter<File>) -> Result<(), BlockError> {
    let file = writer
        .into_inner()
        .map_err(|e| BlockError::io(path, e.into_error()))?;
    file.sync_all().map_err(|e| BlockError::io(path, e))
}

/// The mapped chunk segments of a block.
pub(crate) struct ChunkReader {
    /// Segment maps by index (`segments[0]` is file `000001`).
    segments: Vec<Mmap>,
    pub(crate) size: u64,
}

impl std::fmt::Debug for ChunkReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkReader")
            .field("segments", &self.segments.len())
            .field("size", &self.size)
            .finish()
    }
}

impl ChunkReader {
    pub(crate) fn open(dir: &Path) -> Result<Self, BlockError> {
        let mut indexes = Vec::new();
        if dir.exists() {
            for entry in fs::read_dir(dir).map_err(|e| BlockError::io(dir, e))? {
                let entry = entry.map_err(|e| BlockError::io(dir, e))?;
                if let Some(index) = entry
                    .file_name()
                    .to_str()
                    .filter(|n| n.len() == 6 && n.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|n| n.parse::<u32>().ok())
                {
                    indexes.push(index);
                }
            }
        }
        indexes.sort_unstable();
        let mut segments = Vec::with_capacity(indexes.len());
        let mut size = 0;
        for (i, index) in indexes.into_iter().enumerate() {
            let path = dir.join(segment_name(index));
            if index as usize != i + 1 {
                return Err(BlockError::Corrupt {
                    path,
                    reason: "chunk segment files are not numbered 000001, 000002, ...".into(),
                });
            }
            let file = File::open(&path).map_err(|e| BlockError::io(&path, e))?;
            // SAFETY: block files are never modified after the block is
            // complete; Ember only ever deletes them, which leaves the
            // mapping valid.
            let map = unsafe { Mmap::map(&file) }.map_err(|e| BlockError::io(&path, e))?;
            if map.len() < HEADER_LEN as usize
                || map[..4] != MAGIC.to_be_bytes()
                || map[4] != VERSION
            {
                return Err(BlockError::Corrupt {
                    path,
                    reason: "bad chunk segment header".into(),
                });
            }
            size += map.len() as u64;
            segments.push(map);
        }
        Ok(Self { segments, size })
    }

    /// The encoding byte and data of the chunk at `chunk_ref`, CRC checked.
    pub(crate) fn chunk(&self, chunk_ref: u64) -> Result<(u8, &[u8]), String> {
        let segment = (chunk_ref >> 32) as usize;
        let offset = (chunk_ref & 0xFFFF_FFFF) as usize;
        let map = segment
            .checked_sub(1)
            .and_then(|i| self.segments.get(i))
            .ok_or_else(|| format!("chunk reference {chunk_ref:#x}: no segment {segment}"))?;
        let bad = || format!("chunk reference {chunk_ref:#x}: truncated chunk");
        let mut d = Decoder::new(map.get(offset..).ok_or_else(bad)?);
        let len = usize::try_from(d.uvarint().ok_or_else(bad)?).map_err(|_| bad())?;
        let start = d.position();
        let body = d.bytes(len + 1).ok_or_else(bad)?;
        let crc = d.u32().ok_or_else(bad)?;
        if crc32c::crc32c(body) != crc {
            return Err(format!(
                "chunk reference {chunk_ref:#x}: CRC mismatch in segment {segment} at {}",
                offset + start
            ));
        }
        Ok((body[0], &body[1..]))
    }
}
