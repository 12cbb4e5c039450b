//! The float chunk: Gorilla-style compression with a jitter-tolerant
//! timestamp tracker and an exact decimal mode for values.
//!
//! The byte layout is specified in `tsdb/docs/format/chunks.md`; this file
//! follows it section by section. Encoder and decoder share [`SeriesState`],
//! so the prediction logic exists exactly once and cannot drift apart.

use super::ChunkError;
use super::bstream::{BitReader, BitWriter, EndOfStream};

/// The staleness marker's bit pattern, a signalling NaN that PromQL treats
/// as "this series ended". It must survive encoding bit for bit.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The float chunk encodings, named by the encoding byte that head chunk
/// files and block chunk files store beside each chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// `0x81`: the first float chunk encoding (phase-following timestamp
    /// tracker, decimals by division only).
    Xor = 0x81,
    /// `0x82`: grid timestamp predictor and three ways of turning a decimal
    /// integer into a value (see chunks.md, "Encoding 2").
    Xor2 = 0x82,
}

impl Encoding {
    /// The encoding of an encoding byte, if it is one of these.
    pub fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0x81 => Some(Self::Xor),
            0x82 => Some(Self::Xor2),
            _ => None,
        }
    }

    /// The encoding byte.
    pub fn byte(self) -> u8 {
        self as u8
    }
}

/// Bytes before the bit stream: the big-endian sample count.
const HEADER_LEN: usize = 2;

/// Largest decimal scale `k` (values are `m / 10^k`); fits the 4-bit field.
const MAX_SCALE: u8 = 15;

/// Powers of ten that are exact doubles (all up to 10^22 are).
const POW10_F64: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];
const POW10_I64: [i64; 16] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
    10_000_000_000,
    100_000_000_000,
    1_000_000_000_000,
    10_000_000_000_000,
    100_000_000_000_000,
    1_000_000_000_000_000,
];

/// Integers up to this magnitude are exact doubles.
const MAX_EXACT_INT: f64 = 9_007_199_254_740_992.0; // 2^53

/// Residuals in this range update the timestamp tracker; larger ones are
/// outliers (see "Timestamps" in the format page).
const SMALL_RESIDUAL: std::ops::RangeInclusive<i64> = -31..=31;

/// How a decimal-mode integer `m` at scale `k` becomes a value (see
/// "Short decimals" in the format page). Encoding 1 knows only [`OP_DIV`].
const OP_DIV: u8 = 0;
/// `m * 10^-k`, with `10^-k` the double nearest to it (`ms * 0.001`).
const OP_MUL: u8 = 1;
/// `(m / 1000) / 10^(k-3)`, for `k >= 3` (`us / 1000 / 1000`).
const OP_DIV_DIV: u8 = 2;
/// Operations an encoder of encoding 2 tries, in order of preference.
const OPS: [u8; 3] = [OP_DIV, OP_MUL, OP_DIV_DIV];

/// Returns `m` if `v` is exactly `m / 10^k` under IEEE division.
#[inline]
fn decimal_at(v: f64, k: u8) -> Option<i64> {
    decimal_at_op(v, k, OP_DIV)
}

/// Returns `m` if `v` is exactly `m` at scale `k` under `op`.
#[inline]
fn decimal_at_op(v: f64, k: u8, op: u8) -> Option<i64> {
    if op == OP_DIV_DIV && k < 3 {
        return None;
    }
    let power = POW10_F64[usize::from(k)];
    let scaled = (v * power).round();
    if !scaled.is_finite() || scaled.abs() > MAX_EXACT_INT {
        return None;
    }
    // `scaled` is an integer of at most 2^53 in magnitude, so the cast is exact.
    let m = scaled as i64;
    (decimal_value_op(m, k, op).to_bits() == v.to_bits()).then_some(m)
}

/// The smallest scale at or above `from` at which `v` is a short decimal.
fn smallest_scale(v: f64, from: u8) -> Option<(u8, i64)> {
    (from..=MAX_SCALE).find_map(|k| decimal_at(v, k).map(|m| (k, m)))
}

/// The smallest scale at or above `from` at which `v` is a short decimal
/// under `op`.
fn smallest_scale_op(v: f64, from: u8, op: u8) -> Option<(u8, i64)> {
    (from..=MAX_SCALE).find_map(|k| decimal_at_op(v, k, op).map(|m| (k, m)))
}

#[inline]
fn decimal_value(m: i64, k: u8) -> f64 {
    m as f64 / POW10_F64[usize::from(k)]
}

#[inline]
fn decimal_value_op(m: i64, k: u8, op: u8) -> f64 {
    match op {
        OP_DIV => decimal_value(m, k),
        // 1 / 10^k is correctly rounded, so it is the double nearest 10^-k.
        OP_MUL => m as f64 * (1.0 / POW10_F64[usize::from(k)]),
        _ => m as f64 / 1000.0 / POW10_F64[usize::from(k.saturating_sub(3))],
    }
}

/// A fixed-point time: whole milliseconds plus `frac` 64ths of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fixed {
    ms: i64,
    frac: u8,
}

impl Fixed {
    fn whole(ms: i64) -> Self {
        Self { ms, frac: 0 }
    }

    #[inline]
    fn add(self, other: Fixed) -> Fixed {
        let frac = u16::from(self.frac) + u16::from(other.frac);
        Fixed {
            ms: self
                .ms
                .wrapping_add(other.ms)
                .wrapping_add(i64::from(frac >> 6)),
            frac: (frac & 63) as u8,
        }
    }

    /// Adds `x` 64ths of a millisecond; `x` is small (a scaled residual).
    #[inline]
    fn add_64ths(self, x: i64) -> Fixed {
        let total = i64::from(self.frac) + x;
        Fixed {
            ms: self.ms.wrapping_add(total.div_euclid(64)),
            frac: total.rem_euclid(64) as u8,
        }
    }

    /// Rounds to the nearest millisecond, halves up.
    #[inline]
    fn round(self) -> i64 {
        self.ms.wrapping_add(i64::from(self.frac >= 32))
    }
}

/// The alpha-beta filter that predicts timestamps from sample 2 on.
#[derive(Debug, Clone, Copy)]
struct TimeTracker {
    /// Expected position of the last sample.
    expected: Fixed,
    /// Expected interval.
    interval: Fixed,
    /// Sign of the previous residual if it was an outlier, else 0.
    last_outlier: i8,
    /// Encoding 2: stay on the grid (see "Encoding 2" in the format page).
    grid: bool,
    /// Encoding 2: the previous residual and how many equal non-zero
    /// residuals ended with it.
    last_residual: i64,
    same: u8,
}

/// Encoding 2 re-anchors the grid after this many equal non-zero residuals.
const GRID_REANCHOR: u8 = 3;

/// Encoding 2's first interval: `t1 - t0` rounded to a whole second or
/// 100 ms if within 10 ms of one, so that the jitter of `t0` and `t1` does
/// not become a drift of every later prediction.
fn snapped_interval(delta: i64) -> i64 {
    for unit in [1000, 100] {
        let rounded = (delta + unit / 2).div_euclid(unit) * unit;
        if rounded > 0 && (delta - rounded).abs() <= 10 {
            return rounded;
        }
    }
    delta
}

impl TimeTracker {
    fn new(t0: i64, t1: i64, grid: bool) -> Self {
        let delta = t1.wrapping_sub(t0);
        Self {
            expected: Fixed::whole(t1),
            interval: Fixed::whole(if grid { snapped_interval(delta) } else { delta }),
            last_outlier: 0,
            grid,
            last_residual: 0,
            same: 0,
        }
    }

    /// The predicted position and its whole-millisecond rounding.
    #[inline]
    fn predict(&self) -> (Fixed, i64) {
        let position = self.expected.add(self.interval);
        (position, position.round())
    }

    #[inline]
    fn update(&mut self, predicted: Fixed, t: i64, prev_t: i64, residual: i64) {
        if self.grid {
            self.update_grid(predicted, t, prev_t, residual);
            return;
        }
        if SMALL_RESIDUAL.contains(&residual) {
            // alpha = 1/4 and beta = 1/32, in 64ths of a millisecond.
            self.expected = predicted.add_64ths(16 * residual);
            self.interval = self.interval.add_64ths(2 * residual);
            self.last_outlier = 0;
            return;
        }
        let sign = residual.signum() as i8;
        if self.last_outlier == sign {
            // Two outliers in a row on the same side: the grid itself moved
            // (new phase or new interval). Re-anchor on the last two samples.
            self.expected = Fixed::whole(t);
            self.interval = Fixed::whole(t.wrapping_sub(prev_t));
            self.last_outlier = 0;
        } else {
            // A lone late or early sample: keep the grid, ignore the sample.
            self.expected = predicted;
            self.last_outlier = sign;
        }
    }

    /// Encoding 2: small residuals are jitter around a fixed grid and do not
    /// move it, unless the same non-zero residual comes [`GRID_REANCHOR`]
    /// times in a row (the grid is elsewhere, e.g. `t1` was off it).
    #[inline]
    fn update_grid(&mut self, predicted: Fixed, t: i64, prev_t: i64, residual: i64) {
        let repeated = residual != 0 && residual == self.last_residual;
        self.same = if repeated {
            self.same.saturating_add(1)
        } else {
            1
        };
        self.last_residual = residual;
        if SMALL_RESIDUAL.contains(&residual) {
            self.last_outlier = 0;
            if residual != 0 && self.same >= GRID_REANCHOR {
                self.expected = Fixed::whole(t);
                self.same = 0;
            } else {
                self.expected = predicted;
            }
            return;
        }
        let sign = residual.signum() as i8;
        if self.last_outlier == sign {
            self.expected = Fixed::whole(t);
            self.interval = Fixed::whole(t.wrapping_sub(prev_t));
            self.last_outlier = 0;
        } else {
            self.expected = predicted;
            self.last_outlier = sign;
        }
    }
}

/// How values are currently coded.
#[derive(Debug, Clone, Copy)]
enum ValueMode {
    /// Values are short decimals `m / 10^scale`.
    Decimal(Decimal),
    /// Gorilla XOR against `prev`; `lead == NO_WINDOW` until a window exists.
    Float { prev: u64, lead: u8, trail: u8 },
}

/// Decimal-mode state (see "Decimal mode" in the format page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decimal {
    scale: u8,
    /// The previous value's integer.
    m: i64,
    /// The previous integer delta `m - m_before`.
    delta: i64,
    /// Residuals are multiples of `2^shift` and written shifted right.
    shift: u8,
    /// Running costs, in 1/16 bit, of predicting with and without the
    /// previous delta; the cheaper predictor is used for the next value.
    cost_delta: i32,
    cost_dod: i32,
    /// How `m` becomes a value ([`OP_DIV`] in encoding 1).
    op: u8,
    /// Encoding 2: re-scales carry an operation.
    ops: bool,
}

/// Largest residual shift; fits the 5-bit field.
const MAX_SHIFT: u8 = 31;

impl Decimal {
    fn new(scale: u8, m: i64) -> Self {
        Self {
            scale,
            m,
            delta: 0,
            shift: shift_of(m),
            cost_delta: 0,
            cost_dod: 0,
            op: OP_DIV,
            ops: false,
        }
    }

    /// The predicted integer of the next value.
    #[inline]
    fn predict(&self) -> i64 {
        if self.cost_dod <= self.cost_delta {
            self.m.wrapping_add(self.delta)
        } else {
            self.m
        }
    }

    /// Records the next value's integer.
    #[inline]
    fn update(&mut self, m: i64) {
        let delta = m.wrapping_sub(self.m);
        let dod = delta.wrapping_sub(self.delta);
        // Exponential averages of the bit lengths, weight 1/4.
        self.cost_delta += (bit_length(delta) * 16 - self.cost_delta) >> 2;
        self.cost_dod += (bit_length(dod) * 16 - self.cost_dod) >> 2;
        self.m = m;
        self.delta = delta;
    }

    #[inline]
    fn value(&self) -> f64 {
        if self.op == OP_DIV {
            decimal_value(self.m, self.scale)
        } else {
            decimal_value_op(self.m, self.scale, self.op)
        }
    }
}

/// Trailing zero bits of `x`, capped at [`MAX_SHIFT`] (so 0 gives the cap).
#[inline]
fn shift_of(x: i64) -> u8 {
    (x.trailing_zeros() as u8).min(MAX_SHIFT)
}

#[inline]
fn bit_length(x: i64) -> i32 {
    64 - x.unsigned_abs().leading_zeros() as i32
}

const NO_WINDOW: u8 = 0xff;

/// Everything the encoder and decoder must agree on after each sample.
#[derive(Debug, Clone, Copy)]
struct SeriesState {
    prev_t: i64,
    first_t: i64,
    tracker: Option<TimeTracker>,
    mode: ValueMode,
}

/// Decimal-mode residual buckets: (prefix ones, payload bits). The prefix is
/// that many one bits followed by a zero; six ones introduce an escape.
const RESIDUAL_BUCKETS: [(u32, u32); 6] = [(0, 0), (1, 4), (2, 8), (3, 14), (4, 24), (5, 64)];
const ESCAPE_ONES: u32 = 6;
/// Beyond this many bits a residual means the values are effectively
/// random, and the encoder switches to float mode instead of writing it.
const MAX_DECIMAL_RESIDUAL_BITS: u32 = 24;
const ESCAPE_STALE: u64 = 0b00;
const ESCAPE_RESCALE: u64 = 0b01;
const ESCAPE_TO_FLOAT: u64 = 0b10;
const ESCAPE_RESHIFT: u64 = 0b11;

/// Timestamp residual buckets from the third on: (prefix ones, payload
/// bits). Five ones with no terminating zero select the 64-bit bucket. The
/// first two buckets (`0` and `10`, `110` with a magnitude-and-sign payload)
/// are written by [`write_time_residual`] itself.
const TS_BUCKETS: [(u32, u32); 3] = [(3, 10), (4, 32), (5, 64)];

/// Writes a timestamp residual (see "Timestamps" in the format page).
#[inline]
fn write_time_residual(w: &mut BitWriter, residual: i64) {
    let sign = u64::from(residual < 0);
    match residual.unsigned_abs() {
        0 => w.write_bit(false),
        // `10` then (|r| - 1, sign): ±1, ±2.
        magnitude @ 1..=2 => w.write_bits(0b10_00 | (magnitude - 1) << 1 | sign, 4),
        // `110` then (|r| - 3, sign): ±3 ... ±6.
        magnitude @ 3..=6 => w.write_bits(0b110_000 | (magnitude - 3) << 1 | sign, 6),
        _ => write_bucketed(w, &TS_BUCKETS, 5, residual),
    }
}

/// Reads a timestamp residual written by [`write_time_residual`].
#[inline]
fn read_time_residual(r: &mut BitReader<'_>) -> Result<i64, EndOfStream> {
    let ones = r.read_unary(5)?;
    let (base, payload) = match ones {
        0 => return Ok(0),
        1 => (1, r.read_bits(2)?),
        2 => (3, r.read_bits(3)?),
        _ => return r.read_signed(TS_BUCKETS[ones as usize - 3].1),
    };
    let magnitude = base + (payload >> 1) as i64;
    Ok(if payload & 1 == 1 {
        -magnitude
    } else {
        magnitude
    })
}

#[inline]
fn fits_signed(value: i64, bits: u32) -> bool {
    if bits == 0 {
        value == 0
    } else if bits >= 64 {
        true
    } else {
        let limit = 1i64 << (bits - 1);
        (-limit..limit).contains(&value)
    }
}

/// Writes `value` with the first bucket of `buckets` that holds it, using a
/// unary prefix of `ones` one bits closed by a zero unless `ones == max`.
#[inline]
fn write_bucketed(w: &mut BitWriter, buckets: &[(u32, u32)], max_ones: u32, value: i64) {
    for &(ones, bits) in buckets {
        if fits_signed(value, bits) {
            let prefix_len = if ones == max_ones { ones } else { ones + 1 };
            // `ones` one bits followed by a zero, as an integer.
            let prefix = ((1u64 << ones) - 1) << (prefix_len - ones);
            w.write_bits(prefix, prefix_len);
            if bits > 0 {
                w.write_signed(value, bits);
            }
            return;
        }
    }
}

/// A chunk of float samples with its appender.
///
/// `XorChunk` owns its bytes (see [`XorChunk::bytes`]) and the small state
/// needed to append the next sample. Iterating borrows the chunk; any number
/// of iterators may read it at once, appending needs `&mut`.
///
/// ```
/// use ember_tsdb::chunkenc::XorChunk;
///
/// let mut chunk = XorChunk::new();
/// for i in 0..120 {
///     chunk.append(1_700_000_000_000 + i * 15_000, i as f64).unwrap();
/// }
/// assert_eq!(chunk.num_samples(), 120);
/// let mut it = chunk.iter();
/// assert!(it.seek(1_700_000_000_000 + 60_000));
/// assert_eq!(it.at(), (1_700_000_000_000 + 60_000, 4.0));
/// ```
#[derive(Debug, Clone)]
pub struct XorChunk {
    writer: BitWriter,
    num_samples: u16,
    state: Option<SeriesState>,
    encoding: Encoding,
}

impl Default for XorChunk {
    fn default() -> Self {
        Self::new()
    }
}

impl XorChunk {
    /// Most samples a chunk can hold (the header's count is a `u16`).
    pub const MAX_SAMPLES: u16 = u16::MAX;

    /// An empty chunk in encoding 1 ([`Encoding::Xor`]).
    pub fn new() -> Self {
        Self::with_capacity(128)
    }

    /// An empty chunk in `encoding` with room for `bytes` bytes before it
    /// reallocates.
    pub fn with_encoding(encoding: Encoding, bytes: usize) -> Self {
        Self {
            encoding,
            ..Self::with_capacity(bytes)
        }
    }

    /// The chunk's encoding.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// An empty chunk with room for `bytes` bytes before it reallocates.
    /// The head sizes a series' next chunk after its previous one, so that
    /// a chunk's buffer is not twice the size it needs.
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            writer: BitWriter::with_header(&[0; HEADER_LEN], bytes),
            num_samples: 0,
            state: None,
            encoding: Encoding::Xor,
        }
    }

    /// Loads a chunk from its bytes, validating every sample, so that it can
    /// be iterated or appended to.
    ///
    /// # Errors
    /// [`ChunkError`] if the bytes are not a well-formed chunk, including
    /// bytes left over after the last sample's padding.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, ChunkError> {
        Self::from_bytes_with(Encoding::Xor, bytes)
    }

    /// Like [`XorChunk::from_bytes`] for bytes in `encoding`.
    ///
    /// # Errors
    /// As [`XorChunk::from_bytes`].
    pub fn from_bytes_with(encoding: Encoding, bytes: Vec<u8>) -> Result<Self, ChunkError> {
        let (state, end_bit, num_samples) = {
            let mut it = XorIterator::with_encoding(&bytes, encoding)?;
            while it.next() {}
            if let Some(err) = it.err() {
                return Err(err.clone());
            }
            (it.state, it.reader.bit_pos(), it.total)
        };
        let used_bytes = end_bit.div_ceil(8);
        if bytes.len() != used_bytes {
            return Err(ChunkError::TrailingBytes {
                extra: bytes.len() - used_bytes,
            });
        }
        let free = (used_bytes * 8 - end_bit) as u32;
        Ok(Self {
            writer: BitWriter::resume(bytes, free),
            num_samples,
            state,
            encoding,
        })
    }

    /// The encoded chunk: header, bit stream and padding.
    pub fn bytes(&self) -> &[u8] {
        self.writer.bytes()
    }

    /// The encoded chunk, consumed (to move it into a memory-mapped file or
    /// a block without copying).
    pub fn into_bytes(self) -> Vec<u8> {
        self.writer.into_bytes()
    }

    /// Number of samples in the chunk.
    pub fn num_samples(&self) -> u16 {
        self.num_samples
    }

    /// Timestamp of the first sample, if any.
    pub fn min_time(&self) -> Option<i64> {
        self.state.map(|s| s.first_t)
    }

    /// Timestamp of the last sample, if any.
    pub fn max_time(&self) -> Option<i64> {
        self.state.map(|s| s.prev_t)
    }

    /// An iterator over the samples, positioned before the first one.
    pub fn iter(&self) -> XorIterator<'_> {
        XorIterator::from_valid(self.writer.bytes(), self.num_samples, self.encoding)
    }

    /// Appends a sample.
    ///
    /// Timestamps are expected to increase (the head rejects out-of-order
    /// samples before they get here); any `i64` sequence still round-trips,
    /// only less compactly. Every `f64` bit pattern round-trips exactly.
    ///
    /// # Errors
    /// [`ChunkError::Full`] when the chunk already holds
    /// [`XorChunk::MAX_SAMPLES`] samples.
    pub fn append(&mut self, t: i64, v: f64) -> Result<(), ChunkError> {
        if self.num_samples == Self::MAX_SAMPLES {
            return Err(ChunkError::Full);
        }
        let w = &mut self.writer;
        let v2 = self.encoding == Encoding::Xor2;
        match self.state.as_mut() {
            None => {
                w.write_varint(t);
                let first = if v2 {
                    OPS.iter()
                        .filter_map(|&op| smallest_scale_op(v, 0, op).map(|(k, m)| (k, op, m)))
                        .min_by_key(|&(k, _, _)| k)
                        .map(|(k, op, m)| (k, m, op))
                } else {
                    smallest_scale(v, 0).map(|(k, m)| (k, m, OP_DIV))
                };
                let mode = match first {
                    Some((scale, m, op)) => {
                        let mut decimal = Decimal::new(scale, m);
                        decimal.op = op;
                        decimal.ops = v2;
                        w.write_bit(false);
                        if v2 {
                            w.write_bits(u64::from(op), 2);
                        }
                        w.write_bits(u64::from(scale), 4);
                        w.write_varint(m);
                        w.write_bits(u64::from(decimal.shift), 5);
                        ValueMode::Decimal(decimal)
                    }
                    None => {
                        w.write_bit(true);
                        w.write_bits(v.to_bits(), 64);
                        ValueMode::Float {
                            prev: v.to_bits(),
                            lead: NO_WINDOW,
                            trail: 0,
                        }
                    }
                };
                self.state = Some(SeriesState {
                    prev_t: t,
                    first_t: t,
                    tracker: None,
                    mode,
                });
            }
            Some(state) => {
                match state.tracker.as_mut() {
                    None => {
                        w.write_varint(t.wrapping_sub(state.prev_t));
                        state.tracker = Some(TimeTracker::new(state.prev_t, t, v2));
                    }
                    Some(tracker) => {
                        let (predicted, rounded) = tracker.predict();
                        let residual = t.wrapping_sub(rounded);
                        write_time_residual(w, residual);
                        tracker.update(predicted, t, state.prev_t, residual);
                    }
                }
                state.prev_t = t;
                encode_value(w, &mut state.mode, v);
            }
        }
        self.num_samples += 1;
        self.writer.bytes_mut()[..HEADER_LEN].copy_from_slice(&self.num_samples.to_be_bytes());
        Ok(())
    }
}

/// The decimal state re-scaled for `v`, with `v`'s integer at the new
/// scale, if `v` is a short decimal at a larger scale and re-scaling does
/// not overflow.
fn rescale(dec: &Decimal, v: f64) -> Option<(Decimal, i64)> {
    let (scale, new_m, op) = if dec.ops {
        // The current operation at a larger scale, or another operation at
        // this scale or larger: the smallest scale wins, the current
        // operation on a tie.
        std::iter::once(dec.op)
            .chain(OPS.into_iter().filter(|&op| op != dec.op))
            .filter_map(|op| {
                let from = if op == dec.op {
                    dec.scale + 1
                } else {
                    dec.scale
                };
                smallest_scale_op(v, from, op).map(|(k, m)| (k, m, op))
            })
            .min_by_key(|&(k, _, _)| k)?
    } else {
        let (k, m) = smallest_scale(v, dec.scale + 1)?;
        (k, m, OP_DIV)
    };
    let factor = POW10_I64[usize::from(scale - dec.scale)];
    let rescaled = Decimal {
        scale,
        op,
        m: dec.m.checked_mul(factor)?,
        delta: dec.delta.checked_mul(factor)?,
        ..*dec
    };
    Some((rescaled, new_m))
}

#[inline]
fn write_escape(w: &mut BitWriter, kind: u64) {
    w.write_bits((1 << ESCAPE_ONES) - 1, ESCAPE_ONES);
    w.write_bits(kind, 2);
}

/// Encoding 2: a unary prefix of this many ones introduces an escape. The
/// longest exp-Golomb prefix of a 24-bit residual is 25 ones.
const RICE_ESCAPE_ONES: u32 = 28;
/// Largest exp-Golomb order.
const MAX_RICE_K: i32 = 30;
/// The order is the running bit length of the residuals plus this.
const RICE_K_BIAS: i32 = 0;

#[inline]
fn zigzag(x: i64) -> u64 {
    ((x << 1) ^ (x >> 63)) as u64
}

#[inline]
fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

impl Decimal {
    /// Encoding 2's Rice parameter for the next residual: the running bit
    /// length of the chosen predictor's residuals, less the shift.
    #[inline]
    fn rice_k(&self) -> u32 {
        let bits = (self.cost_delta.min(self.cost_dod) + 8) >> 4;
        (bits - i32::from(self.shift) + RICE_K_BIAS).clamp(0, MAX_RICE_K) as u32
    }
}

/// Writes an escape of either encoding.
#[inline]
fn write_escape_of(w: &mut BitWriter, ops: bool, kind: u64) {
    if ops {
        w.write_bits((1 << RICE_ESCAPE_ONES) - 1, RICE_ESCAPE_ONES);
        w.write_bits(kind, 3);
    } else {
        write_escape(w, kind);
    }
}

/// Writes a shifted residual in the ordinary value code of the chunk's
/// encoding: buckets (1) or a Rice code with parameter `dec.rice_k()` (2).
#[inline]
fn write_value_residual(w: &mut BitWriter, dec: &Decimal, residual: i64) {
    if !dec.ops {
        write_bucketed(w, &RESIDUAL_BUCKETS, ESCAPE_ONES, residual);
        return;
    }
    // Exp-Golomb of order k: n = (u >> k) + 1 has l + 1 significant bits;
    // l ones and a zero, the l bits of n below its top bit, the k low bits
    // of u. The caller guarantees a residual of at most 24 bits, so l < 26.
    let k = dec.rice_k();
    let u = zigzag(residual);
    let n = (u >> k) + 1;
    let l = 63 - n.leading_zeros();
    w.write_bits((1u64 << (l + 1)) - 2, l + 1);
    if l > 0 {
        w.write_bits(n & ((1u64 << l) - 1), l);
    }
    if k > 0 {
        w.write_bits(u & ((1u64 << k) - 1), k);
    }
}

/// Writes the shifted residual that follows a re-scale or re-shift escape.
#[inline]
fn write_plain_value_residual(w: &mut BitWriter, ops: bool, residual: i64) {
    if ops {
        w.write_varint(residual);
    } else {
        write_bucketed(w, &RESIDUAL_BUCKETS, ESCAPE_ONES, residual);
    }
}

/// Appends the value code of a sample after the first.
#[inline]
fn encode_value(w: &mut BitWriter, mode: &mut ValueMode, v: f64) {
    match mode {
        ValueMode::Decimal(dec) => {
            if let Some(new_m) = decimal_at_op(v, dec.scale, dec.op) {
                let residual = new_m.wrapping_sub(dec.predict());
                let shift = shift_of(residual).min(dec.shift);
                if fits_signed(residual >> shift, MAX_DECIMAL_RESIDUAL_BITS) {
                    if shift < dec.shift {
                        write_escape_of(w, dec.ops, ESCAPE_RESHIFT);
                        w.write_bits(u64::from(shift), 5);
                        dec.shift = shift;
                        write_plain_value_residual(w, dec.ops, residual >> shift);
                    } else {
                        write_value_residual(w, dec, residual >> shift);
                    }
                    dec.update(new_m);
                    return;
                }
            } else if v.to_bits() == STALE_NAN_BITS {
                write_escape_of(w, dec.ops, ESCAPE_STALE);
                return;
            } else if let Some((mut rescaled, new_m)) = rescale(dec, v) {
                let residual = new_m.wrapping_sub(rescaled.predict());
                rescaled.shift = shift_of(residual);
                if fits_signed(residual >> rescaled.shift, MAX_DECIMAL_RESIDUAL_BITS) {
                    write_escape_of(w, rescaled.ops, ESCAPE_RESCALE);
                    if rescaled.ops {
                        w.write_bits(u64::from(rescaled.op), 2);
                    }
                    w.write_bits(u64::from(rescaled.scale), 4);
                    w.write_bits(u64::from(rescaled.shift), 5);
                    write_plain_value_residual(w, rescaled.ops, residual >> rescaled.shift);
                    rescaled.update(new_m);
                    *dec = rescaled;
                    return;
                }
            }
            // Not a short decimal, or one so far from the prediction that
            // the values are effectively random: XOR coding does better.
            write_escape_of(w, dec.ops, ESCAPE_TO_FLOAT);
            w.write_bits(v.to_bits(), 64);
            *mode = ValueMode::Float {
                prev: v.to_bits(),
                lead: NO_WINDOW,
                trail: 0,
            };
        }
        ValueMode::Float { prev, lead, trail } => {
            let bits = v.to_bits();
            let xor = bits ^ *prev;
            *prev = bits;
            if xor == 0 {
                w.write_bit(false);
                return;
            }
            let new_lead = xor.leading_zeros().min(31) as u8;
            let new_trail = xor.trailing_zeros() as u8;
            if *lead != NO_WINDOW && new_lead >= *lead && new_trail >= *trail {
                w.write_bits(0b10, 2);
                let sig = 64 - u32::from(*lead) - u32::from(*trail);
                w.write_bits(xor >> *trail, sig);
            } else {
                let sig = 64 - u32::from(new_lead) - u32::from(new_trail);
                w.write_bits(0b11, 2);
                w.write_bits(u64::from(new_lead), 5);
                // A 6-bit field cannot hold 64; 0 stands for it (sig is never 0).
                w.write_bits(u64::from(sig & 63), 6);
                w.write_bits(xor >> new_trail, sig);
                *lead = new_lead;
                *trail = new_trail;
            }
        }
    }
}

/// Iterates over the samples of a chunk.
///
/// The iterator starts before the first sample: call [`XorIterator::next`]
/// (or [`XorIterator::seek`]) before [`XorIterator::at`]. When `next`
/// returns `false`, either the chunk is exhausted or its data is damaged;
/// [`XorIterator::err`] tells which.
#[derive(Debug, Clone)]
pub struct XorIterator<'a> {
    reader: BitReader<'a>,
    total: u16,
    read: u16,
    t: i64,
    v: f64,
    state: Option<SeriesState>,
    err: Option<ChunkError>,
    encoding: Encoding,
}

impl<'a> XorIterator<'a> {
    /// An iterator over chunk bytes from any source (a block, an mmapped
    /// head chunk). Damage is reported through [`XorIterator::err`].
    ///
    /// # Errors
    /// [`ChunkError::TooShort`] if the bytes cannot hold the header.
    pub fn new(bytes: &'a [u8]) -> Result<Self, ChunkError> {
        Self::with_encoding(bytes, Encoding::Xor)
    }

    /// Like [`XorIterator::new`] for bytes in `encoding`.
    ///
    /// # Errors
    /// [`ChunkError::TooShort`] if the bytes cannot hold the header.
    pub fn with_encoding(bytes: &'a [u8], encoding: Encoding) -> Result<Self, ChunkError> {
        let header: [u8; HEADER_LEN] = bytes
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(ChunkError::TooShort { len: bytes.len() })?;
        Ok(Self::from_valid(
            bytes,
            u16::from_be_bytes(header),
            encoding,
        ))
    }

    fn from_valid(bytes: &'a [u8], total: u16, encoding: Encoding) -> Self {
        Self {
            encoding,
            reader: BitReader::new(bytes, HEADER_LEN),
            total,
            read: 0,
            t: 0,
            v: 0.0,
            state: None,
            err: None,
        }
    }

    /// Advances to the next sample; `false` at the end or on damage.
    #[inline]
    #[allow(clippy::should_implement_trait)] // Prometheus-style cursor, see `at`.
    pub fn next(&mut self) -> bool {
        if self.read >= self.total || self.err.is_some() {
            return false;
        }
        match self.decode_next() {
            Ok(()) => {
                self.read += 1;
                true
            }
            Err(reason) => {
                self.err = Some(match reason {
                    DecodeFailure::End => ChunkError::Truncated {
                        sample: self.read,
                        total: self.total,
                    },
                    DecodeFailure::Invalid(reason) => ChunkError::Corrupt {
                        sample: self.read,
                        reason,
                    },
                });
                false
            }
        }
    }

    /// Advances to the first sample with a timestamp `>= t`, staying put if
    /// the current sample already qualifies. Returns whether there is one.
    pub fn seek(&mut self, t: i64) -> bool {
        if self.read > 0 && self.err.is_none() && self.t >= t {
            return true;
        }
        while self.next() {
            if self.t >= t {
                return true;
            }
        }
        false
    }

    /// The current sample. Only meaningful after `next` or `seek` returned
    /// `true`.
    #[inline]
    pub fn at(&self) -> (i64, f64) {
        (self.t, self.v)
    }

    /// The damage that stopped iteration, if any.
    pub fn err(&self) -> Option<&ChunkError> {
        self.err.as_ref()
    }

    #[inline]
    fn decode_next(&mut self) -> Result<(), DecodeFailure> {
        let r = &mut self.reader;
        match self.state.as_mut() {
            None => {
                let t = r
                    .read_varint()?
                    .ok_or(DecodeFailure::Invalid("bad t0 varint"))?;
                let (v, mode) = if r.read_bit()? {
                    let bits = r.read_bits(64)?;
                    (
                        f64::from_bits(bits),
                        ValueMode::Float {
                            prev: bits,
                            lead: NO_WINDOW,
                            trail: 0,
                        },
                    )
                } else {
                    let v2 = self.encoding == Encoding::Xor2;
                    let op = if v2 { read_op(r)? } else { OP_DIV };
                    let scale = r.read_bits(4)? as u8;
                    if op == OP_DIV_DIV && scale < 3 {
                        return Err(DecodeFailure::Invalid("division twice below scale 3"));
                    }
                    let m = r
                        .read_varint()?
                        .ok_or(DecodeFailure::Invalid("bad first value varint"))?;
                    let mut decimal = Decimal::new(scale, m);
                    decimal.op = op;
                    decimal.ops = v2;
                    decimal.shift = r.read_bits(5)? as u8;
                    (decimal.value(), ValueMode::Decimal(decimal))
                };
                self.state = Some(SeriesState {
                    prev_t: t,
                    first_t: t,
                    tracker: None,
                    mode,
                });
                self.t = t;
                self.v = v;
            }
            Some(state) => {
                let t = match state.tracker.as_mut() {
                    None => {
                        let delta = r
                            .read_varint()?
                            .ok_or(DecodeFailure::Invalid("bad first delta varint"))?;
                        let t = state.prev_t.wrapping_add(delta);
                        let grid = self.encoding == Encoding::Xor2;
                        state.tracker = Some(TimeTracker::new(state.prev_t, t, grid));
                        t
                    }
                    Some(tracker) => {
                        let residual = read_time_residual(r)?;
                        let (predicted, rounded) = tracker.predict();
                        let t = rounded.wrapping_add(residual);
                        tracker.update(predicted, t, state.prev_t, residual);
                        t
                    }
                };
                state.prev_t = t;
                self.t = t;
                self.v = decode_value(r, &mut state.mode)?;
            }
        }
        Ok(())
    }
}

/// Why a sample could not be decoded.
enum DecodeFailure {
    End,
    Invalid(&'static str),
}

impl From<EndOfStream> for DecodeFailure {
    fn from(_: EndOfStream) -> Self {
        DecodeFailure::End
    }
}

#[inline]
fn read_residual(r: &mut BitReader<'_>, ones: u32) -> Result<i64, DecodeFailure> {
    let bits = RESIDUAL_BUCKETS[ones as usize].1;
    Ok(if bits == 0 { 0 } else { r.read_signed(bits)? })
}

/// An encoding-2 decimal operation field.
fn read_op(r: &mut BitReader<'_>) -> Result<u8, DecodeFailure> {
    match r.read_bits(2)? as u8 {
        op @ (OP_DIV | OP_MUL | OP_DIV_DIV) => Ok(op),
        _ => Err(DecodeFailure::Invalid("unknown decimal operation")),
    }
}

/// The residual after a re-scale or re-shift escape in either encoding.
fn read_plain_value_residual(r: &mut BitReader<'_>, ops: bool) -> Result<i64, DecodeFailure> {
    if ops {
        r.read_varint()?
            .ok_or(DecodeFailure::Invalid("bad residual varint"))
    } else {
        read_plain_residual(r)
    }
}

/// A residual code right after an escape, where another escape is invalid.
fn read_plain_residual(r: &mut BitReader<'_>) -> Result<i64, DecodeFailure> {
    let ones = r.read_unary(ESCAPE_ONES)?;
    if ones == ESCAPE_ONES {
        return Err(DecodeFailure::Invalid("escape directly after an escape"));
    }
    read_residual(r, ones)
}

#[inline]
fn decode_value(r: &mut BitReader<'_>, mode: &mut ValueMode) -> Result<f64, DecodeFailure> {
    match mode {
        ValueMode::Decimal(dec) => {
            let kind = if dec.ops {
                let k = dec.rice_k();
                let l = r.read_unary(RICE_ESCAPE_ONES)?;
                if l < RICE_ESCAPE_ONES {
                    let n = (1u64 << l) | if l > 0 { r.read_bits(l)? } else { 0 };
                    let low = if k > 0 { r.read_bits(k)? } else { 0 };
                    let u = ((n - 1) << k) | low;
                    let residual = unzigzag(u) << dec.shift;
                    dec.update(dec.predict().wrapping_add(residual));
                    return Ok(dec.value());
                }
                r.read_bits(3)?
            } else {
                let ones = r.read_unary(ESCAPE_ONES)?;
                if ones < ESCAPE_ONES {
                    let residual = read_residual(r, ones)? << dec.shift;
                    dec.update(dec.predict().wrapping_add(residual));
                    return Ok(dec.value());
                }
                r.read_bits(2)?
            };
            match kind {
                ESCAPE_STALE => Ok(f64::from_bits(STALE_NAN_BITS)),
                ESCAPE_RESCALE => {
                    let op = if dec.ops { read_op(r)? } else { OP_DIV };
                    let scale = r.read_bits(4)? as u8;
                    if scale < dec.scale || (scale == dec.scale && op == dec.op) {
                        return Err(DecodeFailure::Invalid(
                            "re-scale does not increase the scale or change the operation",
                        ));
                    }
                    if op == OP_DIV_DIV && scale < 3 {
                        return Err(DecodeFailure::Invalid("division twice below scale 3"));
                    }
                    let factor = POW10_I64[usize::from(scale - dec.scale)];
                    dec.op = op;
                    dec.scale = scale;
                    dec.m = dec.m.wrapping_mul(factor);
                    dec.delta = dec.delta.wrapping_mul(factor);
                    dec.shift = r.read_bits(5)? as u8;
                    let residual = read_plain_value_residual(r, dec.ops)? << dec.shift;
                    dec.update(dec.predict().wrapping_add(residual));
                    Ok(dec.value())
                }
                ESCAPE_RESHIFT => {
                    let shift = r.read_bits(5)? as u8;
                    if shift >= dec.shift {
                        return Err(DecodeFailure::Invalid(
                            "re-shift does not decrease the shift",
                        ));
                    }
                    dec.shift = shift;
                    let residual = read_plain_value_residual(r, dec.ops)? << dec.shift;
                    dec.update(dec.predict().wrapping_add(residual));
                    Ok(dec.value())
                }
                ESCAPE_TO_FLOAT => {
                    let bits = r.read_bits(64)?;
                    *mode = ValueMode::Float {
                        prev: bits,
                        lead: NO_WINDOW,
                        trail: 0,
                    };
                    Ok(f64::from_bits(bits))
                }
                _ => Err(DecodeFailure::Invalid("unknown escape")),
            }
        }
        ValueMode::Float { prev, lead, trail } => {
            if !r.read_bit()? {
                return Ok(f64::from_bits(*prev));
            }
            if r.read_bit()? {
                let new_lead = r.read_bits(5)? as u8;
                let sig = match r.read_bits(6)? as u8 {
                    0 => 64,
                    n => n,
                };
                if u32::from(new_lead) + u32::from(sig) > 64 {
                    return Err(DecodeFailure::Invalid("XOR window wider than 64 bits"));
                }
                *lead = new_lead;
                *trail = 64 - new_lead - sig;
            } else if *lead == NO_WINDOW {
                return Err(DecodeFailure::Invalid(
                    "XOR window reused before it was set",
                ));
            }
            let sig = 64 - u32::from(*lead) - u32::from(*trail);
            let xor = r.read_bits(sig)? << *trail;
            *prev ^= xor;
            Ok(f64::from_bits(*prev))
        }
    }
}

#[cfg(test)]
mod tests;
