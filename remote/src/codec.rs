//! Bodies on the wire: the snappy block format that remote write and
//! SAMPLES remote read use, and the length-and-checksum frames of a
//! STREAMED_XOR_CHUNKS remote read answer.
//!
//! A frame is `uvarint(len(message))`, then the CRC32 (Castagnoli) of the
//! message as a big-endian `u32`, then the message: exactly what
//! Prometheus's `ChunkedWriter` writes and its `ChunkedReader` checks.
//!
//! ```
//! use ember_remote::codec::{FrameReader, compress, decompress, write_frame};
//!
//! let body = compress(b"hello");
//! assert_eq!(decompress(&body, 1 << 20)?, b"hello");
//!
//! let mut stream = Vec::new();
//! write_frame(&mut stream, b"one");
//! write_frame(&mut stream, b"two");
//! let mut frames = FrameReader::new(&stream, 1 << 20);
//! assert_eq!(frames.next_frame()?, Some(&b"one"[..]));
//! assert_eq!(frames.next_frame()?, Some(&b"two"[..]));
//! assert_eq!(frames.next_frame()?, None);
//! # Ok::<(), ember_remote::codec::CodecError>(())
//! ```

/// Why a body could not be decoded.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodecError {
    /// The snappy block is corrupt or truncated.
    #[error("snappy: {0}")]
    Snappy(String),
    /// The decompressed size announced by the block is over the limit.
    #[error("decompressed body of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The announced size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The stream ends inside a frame.
    #[error("truncated frame: {0}")]
    Truncated(&'static str),
    /// A frame's checksum does not match its message.
    #[error("frame checksum mismatch: header says {expected:#010x}, message has {actual:#010x}")]
    Checksum {
        /// The checksum in the frame header.
        expected: u32,
        /// The checksum of the received message.
        actual: u32,
    },
}

/// Compresses `data` as one snappy block (not the framed snappy stream).
pub fn compress(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0; snap::raw::max_compress_len(data.len())];
    // A fresh encoder cannot fail on an in-memory buffer of the maximum
    // compressed size; its only error is input over 2^32 bytes, which no
    // remote-storage body approaches.
    let n = snap::raw::Encoder::new()
        .compress(data, &mut out)
        .expect("snappy compression into a max-sized buffer");
    out.truncate(n);
    out
}

/// Decompresses one snappy block, refusing before allocating when the
/// block announces more than `limit` bytes.
pub fn decompress(data: &[u8], limit: usize) -> Result<Vec<u8>, CodecError> {
    let size = snap::raw::decompress_len(data).map_err(|e| CodecError::Snappy(e.to_string()))?;
    if size > limit {
        return Err(CodecError::TooLarge { size, limit });
    }
    let mut out = vec![0; size];
    let n = snap::raw::Decoder::new()
        .decompress(data, &mut out)
        .map_err(|e| CodecError::Snappy(e.to_string()))?;
    out.truncate(n);
    Ok(out)
}

/// Appends one frame holding `message` to `out`.
pub fn write_frame(out: &mut Vec<u8>, message: &[u8]) {
    put_uvarint(out, message.len() as u64);
    out.extend_from_slice(&crc32c::crc32c(message).to_be_bytes());
    out.extend_from_slice(message);
}

/// Appends `v` as a protobuf/Go unsigned varint.
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads frames from a complete buffer, checking each checksum.
#[derive(Debug)]
pub struct FrameReader<'a> {
    data: &'a [u8],
    max_frame: usize,
}

impl<'a> FrameReader<'a> {
    /// Frames of `data`; a frame longer than `max_frame` bytes is an error.
    pub fn new(data: &'a [u8], max_frame: usize) -> Self {
        Self { data, max_frame }
    }

    /// The next frame's message, `None` at the clean end of the buffer.
    pub fn next_frame(&mut self) -> Result<Option<&'a [u8]>, CodecError> {
        if self.data.is_empty() {
            return Ok(None);
        }
        let (len, used) = read_uvarint(self.data).ok_or(CodecError::Truncated("length"))?;
        let rest = &self.data[used..];
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > self.max_frame {
            return Err(CodecError::TooLarge {
                size: len,
                limit: self.max_frame,
            });
        }
        if rest.len() < 4 {
            return Err(CodecError::Truncated("checksum"));
        }
        let expected = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let rest = &rest[4..];
        if rest.len() < len {
            return Err(CodecError::Truncated("message"));
        }
        let (message, rest) = rest.split_at(len);
        let actual = crc32c::crc32c(message);
        if actual != expected {
            return Err(CodecError::Checksum { expected, actual });
        }
        self.data = rest;
        Ok(Some(message))
    }
}

/// Decodes an unsigned varint, returning it and the bytes it took.
pub fn read_uvarint(data: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &b) in data.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some((v, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snappy_round_trip_and_limits() {
        let data: Vec<u8> = (0..10_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let c = compress(&data);
        assert_eq!(decompress(&c, data.len()).unwrap(), data);
        assert!(matches!(
            decompress(&c, data.len() - 1),
            Err(CodecError::TooLarge { .. })
        ));
        assert!(matches!(
            decompress(&c[..c.len() / 2], usize::MAX),
            Err(CodecError::Snappy(_))
        ));
        assert!(matches!(
            decompress(b"\xff\xff\xff\xff\xff\xff", usize::MAX),
            Err(CodecError::Snappy(_))
        ));
    }

    #[test]
    fn frames_detect_corruption_and_truncation() {
        let mut stream = Vec::new();
        write_frame(&mut stream, &[7u8; 300]);
        // 300 needs a two-byte varint: 0xac 0x02.
        assert_eq!(&stream[..2], &[0xac, 0x02]);
        let mut ok = FrameReader::new(&stream, 1000);
        assert_eq!(ok.next_frame().unwrap().unwrap().len(), 300);
        assert_eq!(ok.next_frame().unwrap(), None);

        let mut bad = stream.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(matches!(
            FrameReader::new(&bad, 1000).next_frame(),
            Err(CodecError::Checksum { .. })
        ));
        assert!(matches!(
            FrameReader::new(&stream[..stream.len() - 1], 1000).next_frame(),
            Err(CodecError::Truncated("message"))
        ));
        assert!(matches!(
            FrameReader::new(&stream, 299).next_frame(),
            Err(CodecError::TooLarge { .. })
        ));
    }

    #[test]
    fn crc_is_castagnoli() {
        // The CRC-32C check value of "123456789".
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
    }
}
