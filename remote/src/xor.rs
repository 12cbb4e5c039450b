//! Prometheus's XOR chunk encoding (`chunkenc.EncXOR`), the chunk format
//! of STREAMED_XOR_CHUNKS remote read.
//!
//! Ember's own TSDB chunks are encoded differently, so remote read
//! re-encodes samples here; a remote read client decodes with
//! [`XorIterator`]. The layout, bit for bit as Prometheus writes it:
//!
//! - 2 bytes: the number of samples, big-endian;
//! - sample 0: the timestamp as a zig-zag varint, then the value's 64 bits;
//! - sample 1: the timestamp delta as an unsigned varint, then the value
//!   XOR-encoded against sample 0;
//! - later samples: the delta of deltas in one of five buckets (`0`;
//!   `10` + 14 bits; `110` + 17 bits; `1110` + 20 bits; `1111` + 64 bits),
//!   then the value XOR-encoded: `0` for an unchanged value, `10` + the
//!   meaningful bits inside the previous leading/trailing-zero window, or
//!   `11` + 5 bits of leading zeros + 6 bits of meaningful-bit count (0
//!   meaning 64) + the meaningful bits.
//!
//! ```
//! use ember_remote::xor::{XorEncoder, XorIterator};
//!
//! let mut chunk = XorEncoder::new();
//! for i in 0..10 {
//!     chunk.append(1_000 * i, i as f64 * 0.5);
//! }
//! let bytes = chunk.finish();
//! let samples: Vec<(i64, f64)> = XorIterator::new(&bytes)?.collect::<Result<_, _>>()?;
//! assert_eq!(samples.len(), 10);
//! assert_eq!(samples[9], (9_000, 4.5));
//! # Ok::<(), ember_remote::xor::XorError>(())
//! ```

/// Samples per chunk that Prometheus's head cuts at; the remote read server
/// uses it too so clients see chunks of the usual size.
pub const SAMPLES_PER_CHUNK: u16 = 120;

/// A malformed XOR chunk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid XOR chunk: {0}")]
pub struct XorError(&'static str);

/// Appends bits to a byte vector, most significant bit first.
#[derive(Debug, Default, Clone)]
struct BitWriter {
    bytes: Vec<u8>,
    /// Bits still free in the last byte (0 means start a new byte).
    free: u8,
}

impl BitWriter {
    #[inline]
    fn write_bit(&mut self, bit: bool) {
        if self.free == 0 {
            self.bytes.push(0);
            self.free = 8;
        }
        if bit {
            let last = self.bytes.len() - 1;
            self.bytes[last] |= 1 << (self.free - 1);
        }
        self.free -= 1;
    }

    /// Writes the low `n` bits of `v` (n <= 64), most significant first.
    #[inline]
    fn write_bits(&mut self, v: u64, mut n: u8) {
        while n > 0 {
            if self.free == 0 {
                self.bytes.push(0);
                self.free = 8;
            }
            let take = n.min(self.free);
            let shift = n - take;
            let chunk = ((v >> shift) & ((1u64 << take) - 1)) as u8;
            let last = self.bytes.len() - 1;
            self.bytes[last] |= chunk << (self.free - take);
            self.free -= take;
            n -= take;
        }
    }

    fn write_byte(&mut self, b: u8) {
        self.write_bits(u64::from(b), 8);
    }
}

/// Builds one XOR chunk.
#[derive(Debug, Clone)]
pub struct XorEncoder {
    out: BitWriter,
    count: u16,
    t: i64,
    v: f64,
    t_delta: u64,
    leading: u8,
    trailing: u8,
    min_t: i64,
}

impl Default for XorEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl XorEncoder {
    /// An empty chunk.
    pub fn new() -> Self {
        let out = BitWriter {
            // Room for the sample-count header, filled in by `finish`.
            bytes: vec![0, 0],
            free: 0,
        };
        Self {
            out,
            count: 0,
            t: 0,
            v: 0.0,
            t_delta: 0,
            leading: 0xff,
            trailing: 0,
            min_t: 0,
        }
    }

    /// Samples appended so far.
    pub fn len(&self) -> u16 {
        self.count
    }

    /// Whether no sample was appended.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Timestamp of the first sample.
    pub fn min_time(&self) -> i64 {
        self.min_t
    }

    /// Timestamp of the last sample.
    pub fn max_time(&self) -> i64 {
        self.t
    }

    /// Encoded size so far, in bytes.
    pub fn size(&self) -> usize {
        self.out.bytes.len()
    }

    /// Appends a sample; timestamps must increase and the chunk must hold
    /// fewer than `u16::MAX` samples (the caller cuts chunks well before).
    pub fn append(&mut self, t: i64, v: f64) {
        debug_assert!(self.count < u16::MAX);
        match self.count {
            0 => {
                let mut buf = Vec::with_capacity(10);
                let zigzag = ((t << 1) ^ (t >> 63)) as u64;
                crate::codec::put_uvarint(&mut buf, zigzag);
                for b in buf {
                    self.out.write_byte(b);
                }
                self.out.write_bits(v.to_bits(), 64);
                self.min_t = t;
            }
            1 => {
                let t_delta = t.wrapping_sub(self.t) as u64;
                let mut buf = Vec::with_capacity(10);
                crate::codec::put_uvarint(&mut buf, t_delta);
                for b in buf {
                    self.out.write_byte(b);
                }
                self.write_value(v);
                self.t_delta = t_delta;
            }
            _ => {
                let t_delta = t.wrapping_sub(self.t) as u64;
                let dod = t_delta.wrapping_sub(self.t_delta) as i64;
                if dod == 0 {
                    self.out.write_bit(false);
                } else if bit_range(dod, 14) {
                    self.out.write_bits(0b10, 2);
                    self.out.write_bits(dod as u64, 14);
                } else if bit_range(dod, 17) {
                    self.out.write_bits(0b110, 3);
                    self.out.write_bits(dod as u64, 17);
                } else if bit_range(dod, 20) {
                    self.out.write_bits(0b1110, 4);
                    self.out.write_bits(dod as u64, 20);
                } else {
                    self.out.write_bits(0b1111, 4);
                    self.out.write_bits(dod as u64, 64);
                }
                self.write_value(v);
                self.t_delta = t_delta;
            }
        }
        self.t = t;
        self.v = v;
        self.count += 1;
    }

    fn write_value(&mut self, v: f64) {
        let delta = v.to_bits() ^ self.v.to_bits();
        if delta == 0 {
            self.out.write_bit(false);
            return;
        }
        self.out.write_bit(true);
        let leading = (delta.leading_zeros() as u8).min(31);
        let trailing = delta.trailing_zeros() as u8;
        if self.leading != 0xff && leading >= self.leading && trailing >= self.trailing {
            self.out.write_bit(false);
            self.out
                .write_bits(delta >> self.trailing, 64 - self.leading - self.trailing);
            return;
        }
        self.leading = leading;
        self.trailing = trailing;
        self.out.write_bit(true);
        self.out.write_bits(u64::from(leading), 5);
        let sigbits = 64 - leading - trailing;
        // 64 significant bits do not fit in 6 bits; they are written as 0
        // (zero significant bits never happen: that is the `delta == 0`
        // case above).
        self.out.write_bits(u64::from(sigbits), 6);
        self.out.write_bits(delta >> trailing, sigbits);
    }

    /// The chunk's bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.out.bytes[..2].copy_from_slice(&self.count.to_be_bytes());
        self.out.bytes
    }
}

/// Whether `x` fits Prometheus's signed `nbits` bucket
/// (`-(2^(n-1) - 1) ..= 2^(n-1)`).
fn bit_range(x: i64, nbits: u8) -> bool {
    let half = 1i64 << (nbits - 1);
    -(half - 1) <= x && x <= half
}

/// Reads bits from a byte slice, most significant bit first.
#[derive(Debug, Clone)]
struct BitReader<'a> {
    bytes: &'a [u8],
    /// Position in bits.
    pos: usize,
}

impl BitReader<'_> {
    fn read_bit(&mut self) -> Result<bool, XorError> {
        Ok(self.read_bits(1)? == 1)
    }

    fn read_bits(&mut self, n: u8) -> Result<u64, XorError> {
        if self.pos + usize::from(n) > self.bytes.len() * 8 {
            return Err(XorError("unexpected end of chunk"));
        }
        let mut v = 0u64;
        let mut left = n;
        while left > 0 {
            let byte = self.bytes[self.pos / 8];
            let offset = (self.pos % 8) as u8;
            let avail = 8 - offset;
            let take = left.min(avail);
            let bits = (byte >> (avail - take)) & ((1u16 << take) - 1) as u8;
            v = (v << take) | u64::from(bits);
            self.pos += usize::from(take);
            left -= take;
        }
        Ok(v)
    }

    fn read_uvarint(&mut self) -> Result<u64, XorError> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.read_bits(8)?;
            v |= (b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(XorError("varint too long"))
    }
}

/// Iterates over the samples of an XOR chunk.
#[derive(Debug, Clone)]
pub struct XorIterator<'a> {
    bits: BitReader<'a>,
    total: u16,
    read: u16,
    t: i64,
    v: f64,
    t_delta: u64,
    leading: u8,
    trailing: u8,
    failed: bool,
}

impl<'a> XorIterator<'a> {
    /// Iterates over `chunk` (the `data` of an XOR [`crate::prompb::Chunk`]).
    pub fn new(chunk: &'a [u8]) -> Result<Self, XorError> {
        if chunk.len() < 2 {
            return Err(XorError("shorter than its header"));
        }
        Ok(Self {
            bits: BitReader {
                bytes: chunk,
                pos: 16,
            },
            total: u16::from_be_bytes([chunk[0], chunk[1]]),
            read: 0,
            t: 0,
            v: 0.0,
            t_delta: 0,
            leading: 0,
            trailing: 0,
            failed: false,
        })
    }

    fn step(&mut self) -> Result<(i64, f64), XorError> {
        match self.read {
            0 => {
                let z = self.bits.read_uvarint()?;
                self.t = ((z >> 1) as i64) ^ -((z & 1) as i64);
                self.v = f64::from_bits(self.bits.read_bits(64)?);
            }
            1 => {
                self.t_delta = self.bits.read_uvarint()?;
                self.t = self.t.wrapping_add(self.t_delta as i64);
                self.read_value()?;
            }
            _ => {
                let mut prefix = 0u8;
                for _ in 0..4 {
                    if !self.bits.read_bit()? {
                        break;
                    }
                    prefix += 1;
                }
                let size = match prefix {
                    0 => 0,
                    1 => 14,
                    2 => 17,
                    3 => 20,
                    _ => 64,
                };
                let dod = if size == 0 {
                    0
                } else {
                    let mut bits = self.bits.read_bits(size)?;
                    if size != 64 && bits > (1 << (size - 1)) {
                        bits = bits.wrapping_sub(1 << size);
                    }
                    bits as i64
                };
                self.t_delta = (self.t_delta as i64).wrapping_add(dod) as u64;
                self.t = self.t.wrapping_add(self.t_delta as i64);
                self.read_value()?;
            }
        }
        self.read += 1;
        Ok((self.t, self.v))
    }

    fn read_value(&mut self) -> Result<(), XorError> {
        if !self.bits.read_bit()? {
            return Ok(());
        }
        if self.bits.read_bit()? {
            self.leading = self.bits.read_bits(5)? as u8;
            let mut sigbits = self.bits.read_bits(6)? as u8;
            if sigbits == 0 {
                sigbits = 64;
            }
            self.trailing = 64u8
                .checked_sub(self.leading + sigbits)
                .ok_or(XorError("leading and significant bits exceed 64"))?;
        }
        let sigbits = 64 - self.leading - self.trailing;
        let bits = self.bits.read_bits(sigbits)?;
        self.v = f64::from_bits(self.v.to_bits() ^ (bits << self.trailing));
        Ok(())
    }
}

impl Iterator for XorIterator<'_> {
    type Item = Result<(i64, f64), XorError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.read >= self.total {
            return None;
        }
        let r = self.step();
        self.failed = r.is_err();
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(samples: &[(i64, f64)]) -> Vec<(i64, u64)> {
        let mut e = XorEncoder::new();
        for &(t, v) in samples {
            e.append(t, v);
        }
        let bytes = e.finish();
        XorIterator::new(&bytes)
            .unwrap()
            .map(|r| r.map(|(t, v)| (t, v.to_bits())))
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn known_bytes_match_prometheus() {
        // Two samples, (1000, 1.0) and (2000, 1.0): header 0x0002, the
        // zig-zag varint of 1000 (0xd0 0x0f), the 64 bits of 1.0, the
        // delta 1000 as a uvarint (0xe8 0x07), and a single 0 bit for the
        // unchanged value.
        let mut e = XorEncoder::new();
        e.append(1000, 1.0);
        e.append(2000, 1.0);
        let bytes = e.finish();
        assert_eq!(
            bytes,
            vec![
                0x00, 0x02, 0xd0, 0x0f, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0xe8, 0x07, 0x00
            ]
        );
    }

    #[test]
    fn every_delta_bucket_round_trips() {
        let mut t = 0i64;
        let mut samples = vec![];
        for (i, step) in [
            15_000i64,
            15_000,
            15_001,
            20_000,
            100_000,
            600_000,
            1 << 40,
            1,
            2,
        ]
        .iter()
        .enumerate()
        {
            t += step;
            samples.push((t, i as f64 * 1.5));
        }
        samples.push((t + 5, f64::NAN));
        samples.push((t + 10, f64::from_bits(0x7ff0_0000_0000_0002)));
        samples.push((t + 20, -0.0));
        let got = round_trip(&samples);
        let want: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn truncated_chunk_is_an_error() {
        let mut e = XorEncoder::new();
        for i in 0..50 {
            e.append(i * 1000 + (i * i) % 7, (i as f64).sqrt());
        }
        let bytes = e.finish();
        let cut = &bytes[..bytes.len() / 2];
        assert!(XorIterator::new(cut).unwrap().any(|r| r.is_err()));
    }

    proptest! {
        #[test]
        fn arbitrary_samples_round_trip(
            start in any::<i32>(),
            deltas in prop::collection::vec(1i64..10_000_000, 0..200),
            values in prop::collection::vec(any::<u64>(), 200),
        ) {
            let mut t = i64::from(start);
            let mut samples = vec![];
            for (d, v) in deltas.iter().zip(&values) {
                samples.push((t, f64::from_bits(*v)));
                t += d;
            }
            let want: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
            prop_assert_eq!(round_trip(&samples), want);
        }
    }
}
