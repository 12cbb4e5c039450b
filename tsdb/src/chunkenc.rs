//! Chunk encodings: how the samples of one series are compressed in memory,
//! in the head's memory-mapped chunk files and in blocks.
//!
//! The principal type is [`XorChunk`], the float chunk. Its byte layout is
//! specified in `tsdb/docs/format/chunks.md`: Gorilla-style compression with a
//! timestamp predictor that tolerates scrape jitter and an exact decimal mode
//! for values. It has two [`Encoding`]s, named by the byte stored beside each
//! chunk: encoding 1 (`0x81`, what the head writes) and encoding 2 (`0x82`:
//! a grid timestamp predictor, decimals as node_exporter computes them and
//! exp-Golomb residuals, what backfill writes; about 30 % smaller on
//! node_exporter-like data). [`XorChunk::new`] and [`XorIterator::new`] mean
//! encoding 1; [`XorChunk::with_encoding`] and [`XorIterator::with_encoding`]
//! choose.
//!
//! ```
//! use ember_tsdb::chunkenc::{STALE_NAN_BITS, XorChunk};
//!
//! let mut chunk = XorChunk::new();
//! chunk.append(1_000, 1.5).unwrap();
//! chunk.append(16_001, f64::from_bits(STALE_NAN_BITS)).unwrap();
//!
//! // The bytes are all there is: reload them and keep reading or appending.
//! let reloaded = XorChunk::from_bytes(chunk.bytes().to_vec()).unwrap();
//! let mut it = reloaded.iter();
//! assert!(it.next());
//! assert_eq!(it.at(), (1_000, 1.5));
//! assert!(it.next());
//! assert_eq!(it.at().1.to_bits(), STALE_NAN_BITS);
//! assert!(!it.next());
//! assert!(it.err().is_none());
//! ```

mod bstream;
mod xor;

pub use xor::{Encoding, STALE_NAN_BITS, XorChunk, XorIterator};

/// Errors from building or decoding a chunk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// The chunk already holds [`XorChunk::MAX_SAMPLES`] samples.
    #[error("chunk is full ({} samples)", XorChunk::MAX_SAMPLES)]
    Full,
    /// The bytes cannot even hold the chunk header.
    #[error("chunk of {len} bytes is shorter than its 2-byte header")]
    TooShort {
        /// Length of the bytes given.
        len: usize,
    },
    /// The data ends before the sample count in the header says it should.
    #[error("chunk data ends inside sample {sample} of {total}")]
    Truncated {
        /// Index of the sample that could not be read.
        sample: u16,
        /// Sample count from the header.
        total: u16,
    },
    /// The data violates the encoding.
    #[error("chunk data is invalid at sample {sample}: {reason}")]
    Corrupt {
        /// Index of the sample that could not be read.
        sample: u16,
        /// What was wrong.
        reason: &'static str,
    },
    /// Whole bytes follow the last sample's padding.
    #[error("{extra} unexpected bytes after the last sample")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
}
