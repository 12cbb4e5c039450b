//! WAL record codecs: series, samples, tombstones and metadata.
//!
//! The byte layouts are specified in `tsdb/docs/format/wal.md` ("Records")
//! and match Prometheus's record types 1, 2, 3 and 6. Encoders write into a
//! caller's buffer; decoders fill caller-owned vectors so that replay reuses
//! its allocations, and borrow strings from the record bytes.

/// A record's type, its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordType {
    /// Series definitions: a reference and its label pairs.
    Series,
    /// Float samples.
    Samples,
    /// Deleted intervals.
    Tombstones,
    /// Metric type, unit and help of series.
    Metadata,
    /// A type Ember does not decode (Prometheus's exemplars and native
    /// histograms, or anything newer); carries the type byte.
    Unknown(u8),
}

const SERIES: u8 = 1;
const SAMPLES: u8 = 2;
const TOMBSTONES: u8 = 3;
const METADATA: u8 = 6;

impl RecordType {
    /// The type of an encoded record; an empty record is `Unknown(0)`.
    pub fn of(record: &[u8]) -> RecordType {
        match record.first() {
            Some(&SERIES) => RecordType::Series,
            Some(&SAMPLES) => RecordType::Samples,
            Some(&TOMBSTONES) => RecordType::Tombstones,
            Some(&METADATA) => RecordType::Metadata,
            Some(&other) => RecordType::Unknown(other),
            None => RecordType::Unknown(0),
        }
    }

    fn byte(self) -> u8 {
        match self {
            RecordType::Series => SERIES,
            RecordType::Samples => SAMPLES,
            RecordType::Tombstones => TOMBSTONES,
            RecordType::Metadata => METADATA,
            RecordType::Unknown(byte) => byte,
        }
    }
}

/// The definition of a series: its head reference and label pairs.
///
/// Labels are borrowed name/value pairs in the caller's order (the head
/// passes its sorted label set); the WAL does not sort or validate them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefSeries<'a> {
    /// The head's reference for the series.
    pub series_ref: u64,
    /// Label name/value pairs.
    pub labels: &'a [(&'a str, &'a str)],
}

/// A series as decoded from a record, with strings borrowed from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedSeries<'r> {
    /// The head's reference for the series.
    pub series_ref: u64,
    /// Label name/value pairs in the order they were written.
    pub labels: Vec<(&'r str, &'r str)>,
}

/// One float sample of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefSample {
    /// The head's reference for the series.
    pub series_ref: u64,
    /// Timestamp in milliseconds.
    pub t: i64,
    /// Value; every bit pattern (NaN payloads included) is preserved.
    pub v: f64,
}

/// A deleted closed interval `[mint, maxt]` of one series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefTombstone {
    /// The head's reference for the series.
    pub series_ref: u64,
    /// First deleted timestamp.
    pub mint: i64,
    /// Last deleted timestamp.
    pub maxt: i64,
}

/// The metric type recorded with metadata, numbered as in Prometheus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MetricType {
    /// Untyped, or a type byte this version does not know.
    Unknown = 0,
    /// Counter.
    Counter = 1,
    /// Gauge.
    Gauge = 2,
    /// Histogram.
    Histogram = 3,
    /// Gauge histogram.
    GaugeHistogram = 4,
    /// Summary.
    Summary = 5,
    /// Info.
    Info = 6,
    /// State set.
    StateSet = 7,
}

impl MetricType {
    /// Decodes a type byte; unknown bytes become [`MetricType::Unknown`].
    pub fn from_byte(byte: u8) -> MetricType {
        match byte {
            1 => MetricType::Counter,
            2 => MetricType::Gauge,
            3 => MetricType::Histogram,
            4 => MetricType::GaugeHistogram,
            5 => MetricType::Summary,
            6 => MetricType::Info,
            7 => MetricType::StateSet,
            _ => MetricType::Unknown,
        }
    }
}

/// Metadata of one series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefMetadata<'a> {
    /// The head's reference for the series.
    pub series_ref: u64,
    /// The metric type.
    pub metric_type: MetricType,
    /// The unit, possibly empty.
    pub unit: &'a str,
    /// The help text, possibly empty.
    pub help: &'a str,
}

/// A record to log: one batch of one kind.
#[derive(Debug, Clone, Copy)]
pub enum Record<'a> {
    /// Series definitions.
    Series(&'a [RefSeries<'a>]),
    /// Samples.
    Samples(&'a [RefSample]),
    /// Tombstones.
    Tombstones(&'a [RefTombstone]),
    /// Metadata.
    Metadata(&'a [RefMetadata<'a>]),
}

impl Record<'_> {
    /// The record's type.
    pub fn record_type(&self) -> RecordType {
        match self {
            Record::Series(_) => RecordType::Series,
            Record::Samples(_) => RecordType::Samples,
            Record::Tombstones(_) => RecordType::Tombstones,
            Record::Metadata(_) => RecordType::Metadata,
        }
    }

    /// Appends the encoded record to `buf`.
    pub fn encode(&self, buf: &mut Vec<u8>) {
        buf.push(self.record_type().byte());
        match *self {
            Record::Series(series) => {
                for s in series {
                    buf.extend_from_slice(&s.series_ref.to_be_bytes());
                    put_uvarint(buf, s.labels.len() as u64);
                    for (name, value) in s.labels {
                        put_str(buf, name);
                        put_str(buf, value);
                    }
                }
            }
            Record::Samples(samples) => {
                let Some(first) = samples.first() else {
                    return;
                };
                buf.reserve(16 + samples.len() * 11);
                buf.extend_from_slice(&first.series_ref.to_be_bytes());
                buf.extend_from_slice(&first.t.to_be_bytes());
                for s in samples {
                    put_varint(buf, s.series_ref.wrapping_sub(first.series_ref) as i64);
                    put_varint(buf, s.t.wrapping_sub(first.t));
                    buf.extend_from_slice(&s.v.to_bits().to_be_bytes());
                }
            }
            Record::Tombstones(stones) => {
                for s in stones {
                    buf.extend_from_slice(&s.series_ref.to_be_bytes());
                    put_varint(buf, s.mint);
                    put_varint(buf, s.maxt);
                }
            }
            Record::Metadata(metadata) => {
                for m in metadata {
                    put_uvarint(buf, m.series_ref);
                    buf.push(m.metric_type as u8);
                    put_uvarint(buf, 2);
                    put_str(buf, "unit");
                    put_str(buf, m.unit);
                    put_str(buf, "help");
                    put_str(buf, m.help);
                }
            }
        }
    }
}

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The record has a different type than the decoder expects.
    #[error("expected a {expected:?} record, found type byte {found}")]
    WrongType {
        /// The type the decoder handles.
        expected: RecordType,
        /// The type byte found (0 for an empty record).
        found: u8,
    },
    /// The record ends inside a field.
    #[error("{record:?} record truncated at byte {offset}")]
    Truncated {
        /// The record's type.
        record: RecordType,
        /// Where the incomplete field starts.
        offset: usize,
    },
    /// A varint is longer than 64 bits.
    #[error("{record:?} record has an overlong varint at byte {offset}")]
    Varint {
        /// The record's type.
        record: RecordType,
        /// Where the varint starts.
        offset: usize,
    },
    /// A string is not UTF-8.
    #[error("{record:?} record has a string that is not UTF-8 at byte {offset}")]
    Utf8 {
        /// The record's type.
        record: RecordType,
        /// Where the string starts.
        offset: usize,
    },
}

/// Decodes a series record, appending to `out`.
///
/// # Errors
/// [`RecordError`] if the record is not a well-formed series record; `out`
/// then holds the series decoded before the damage.
pub fn decode_series<'r>(
    record: &'r [u8],
    out: &mut Vec<DecodedSeries<'r>>,
) -> Result<(), RecordError> {
    let mut d = Decoder::new(record, RecordType::Series)?;
    while !d.is_empty() {
        let series_ref = d.be_u64()?;
        let count = d.uvarint()?;
        // Each pair takes at least two bytes, which bounds a hostile count.
        let mut labels = Vec::with_capacity((count as usize).min(d.remaining() / 2));
        for _ in 0..count {
            labels.push((d.str()?, d.str()?));
        }
        out.push(DecodedSeries { series_ref, labels });
    }
    Ok(())
}

/// Decodes a samples record, appending to `out`.
///
/// # Errors
/// [`RecordError`] if the record is not a well-formed samples record.
pub fn decode_samples(record: &[u8], out: &mut Vec<RefSample>) -> Result<(), RecordError> {
    let mut d = Decoder::new(record, RecordType::Samples)?;
    if d.is_empty() {
        return Ok(());
    }
    let base_ref = d.be_u64()?;
    let base_t = d.be_u64()? as i64;
    // Each sample takes at least ten bytes.
    out.reserve(d.remaining() / 10);
    while !d.is_empty() {
        let series_ref = base_ref.wrapping_add(d.varint()? as u64);
        let t = base_t.wrapping_add(d.varint()?);
        let v = f64::from_bits(d.be_u64()?);
        out.push(RefSample { series_ref, t, v });
    }
    Ok(())
}

/// Decodes a tombstones record, appending to `out`.
///
/// # Errors
/// [`RecordError`] if the record is not a well-formed tombstones record.
pub fn decode_tombstones(record: &[u8], out: &mut Vec<RefTombstone>) -> Result<(), RecordError> {
    let mut d = Decoder::new(record, RecordType::Tombstones)?;
    while !d.is_empty() {
        let series_ref = d.be_u64()?;
        let mint = d.varint()?;
        let maxt = d.varint()?;
        out.push(RefTombstone {
            series_ref,
            mint,
            maxt,
        });
    }
    Ok(())
}

/// Decodes a metadata record, appending to `out`. Fields other than `unit`
/// and `help` are skipped, as Prometheus does.
///
/// # Errors
/// [`RecordError`] if the record is not a well-formed metadata record.
pub fn decode_metadata<'r>(
    record: &'r [u8],
    out: &mut Vec<RefMetadata<'r>>,
) -> Result<(), RecordError> {
    let mut d = Decoder::new(record, RecordType::Metadata)?;
    while !d.is_empty() {
        let series_ref = d.uvarint()?;
        let metric_type = MetricType::from_byte(d.byte()?);
        let fields = d.uvarint()?;
        let (mut unit, mut help) = ("", "");
        for _ in 0..fields {
            let name = d.str()?;
            let value = d.str()?;
            match name {
                "unit" => unit = value,
                "help" => help = value,
                _ => {}
            }
        }
        out.push(RefMetadata {
            series_ref,
            metric_type,
            unit,
            help,
        });
    }
    Ok(())
}

fn put_uvarint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push(value as u8 | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

fn put_varint(buf: &mut Vec<u8>, value: i64) {
    put_uvarint(buf, ((value << 1) ^ (value >> 63)) as u64);
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_uvarint(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

/// A cursor over a record's bytes after the type byte.
struct Decoder<'r> {
    bytes: &'r [u8],
    pos: usize,
    record: RecordType,
}

impl<'r> Decoder<'r> {
    fn new(bytes: &'r [u8], expected: RecordType) -> Result<Self, RecordError> {
        let found = RecordType::of(bytes);
        if found != expected {
            return Err(RecordError::WrongType {
                expected,
                found: found.byte(),
            });
        }
        Ok(Self {
            bytes,
            pos: 1,
            record: expected,
        })
    }

    fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn truncated(&self) -> RecordError {
        RecordError::Truncated {
            record: self.record,
            offset: self.pos,
        }
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'r [u8], RecordError> {
        let bytes = self
            .bytes
            .get(self.pos..self.pos.saturating_add(n))
            .ok_or_else(|| self.truncated())?;
        self.pos += n;
        Ok(bytes)
    }

    fn byte(&mut self) -> Result<u8, RecordError> {
        Ok(self.take(1)?[0])
    }

    #[inline]
    fn be_u64(&mut self) -> Result<u64, RecordError> {
        let mut array = [0u8; 8];
        array.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(array))
    }

    #[inline]
    fn uvarint(&mut self) -> Result<u64, RecordError> {
        let start = self.pos;
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&byte) = self.bytes.get(self.pos) else {
                return Err(RecordError::Truncated {
                    record: self.record,
                    offset: start,
                });
            };
            self.pos += 1;
            if shift == 63 && byte > 1 {
                break;
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(RecordError::Varint {
            record: self.record,
            offset: start,
        })
    }

    #[inline]
    fn varint(&mut self) -> Result<i64, RecordError> {
        let zigzag = self.uvarint()?;
        Ok(((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64))
    }

    fn str(&mut self) -> Result<&'r str, RecordError> {
        let len = self.uvarint()?;
        let start = self.pos;
        let bytes = self.take(usize::try_from(len).unwrap_or(usize::MAX))?;
        std::str::from_utf8(bytes).map_err(|_| RecordError::Utf8 {
            record: self.record,
            offset: start,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(record: Record<'_>) -> Vec<u8> {
        let mut buf = Vec::new();
        record.encode(&mut buf);
        buf
    }

    #[test]
    fn series_round_trip_and_prometheus_layout() {
        let labels = [("__name__", "up"), ("job", "node")];
        let series = [
            RefSeries {
                series_ref: 7,
                labels: &labels,
            },
            RefSeries {
                series_ref: 8,
                labels: &[],
            },
        ];
        let bytes = encode(Record::Series(&series));
        let mut expected = vec![1, 0, 0, 0, 0, 0, 0, 0, 7, 2, 8];
        expected.extend_from_slice(b"__name__");
        expected.extend_from_slice(&[2, b'u', b'p', 3, b'j', b'o', b'b', 4]);
        expected.extend_from_slice(b"node");
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 8, 0]);
        assert_eq!(bytes, expected);
        let mut out = Vec::new();
        decode_series(&bytes, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].series_ref, 7);
        assert_eq!(out[0].labels, labels);
        assert!(out[1].labels.is_empty());
    }

    #[test]
    fn samples_use_signed_deltas_against_the_first_sample() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let samples = [
            RefSample {
                series_ref: 10,
                t: 1000,
                v: 1.0,
            },
            RefSample {
                series_ref: 9,
                t: 999,
                v: stale,
            },
            RefSample {
                series_ref: u64::MAX,
                t: i64::MIN,
                v: -0.0,
            },
        ];
        let bytes = encode(Record::Samples(&samples));
        assert_eq!(
            &bytes[..17],
            &[2, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 3, 232]
        );
        // Second sample: ref delta -1 and t delta -1 are zigzag 1.
        assert_eq!(&bytes[27..29], &[1, 1]);
        let mut out = Vec::new();
        decode_samples(&bytes, &mut out).unwrap();
        assert_eq!(out.len(), 3);
        for (got, want) in out.iter().zip(&samples) {
            assert_eq!(got.series_ref, want.series_ref);
            assert_eq!(got.t, want.t);
            assert_eq!(got.v.to_bits(), want.v.to_bits());
        }
        assert_eq!(encode(Record::Samples(&[])), vec![2]);
        out.clear();
        decode_samples(&[2], &mut out).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn tombstones_and_metadata_round_trip() {
        let stones = [RefTombstone {
            series_ref: 3,
            mint: -5,
            maxt: 1 << 40,
        }];
        let bytes = encode(Record::Tombstones(&stones));
        let mut out = Vec::new();
        decode_tombstones(&bytes, &mut out).unwrap();
        assert_eq!(out, stones);

        let metadata = [RefMetadata {
            series_ref: 300,
            metric_type: MetricType::Counter,
            unit: "seconds",
            help: "Total CPU time ✓",
        }];
        let bytes = encode(Record::Metadata(&metadata));
        assert_eq!(&bytes[..5], &[6, 0xac, 0x02, 1, 2]);
        let mut out = Vec::new();
        decode_metadata(&bytes, &mut out).unwrap();
        assert_eq!(out, metadata);
    }

    #[test]
    fn malformed_records_are_errors() {
        let mut out = Vec::new();
        assert_eq!(
            decode_samples(&[1], &mut out),
            Err(RecordError::WrongType {
                expected: RecordType::Samples,
                found: 1
            })
        );
        assert!(matches!(
            decode_samples(&[2, 0, 0, 0], &mut out),
            Err(RecordError::Truncated { offset: 1, .. })
        ));
        let mut series = Vec::new();
        // A label count far larger than the record must not allocate it.
        assert!(
            decode_series(
                &[1, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0x0f],
                &mut series
            )
            .is_err()
        );
        assert!(matches!(
            decode_series(&[1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0xff, 0], &mut series),
            Err(RecordError::Utf8 { offset: 11, .. })
        ));
        let mut stones = Vec::new();
        assert!(matches!(
            decode_tombstones(
                &[
                    3, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                    0xff, 0xff, 0x01
                ],
                &mut stones
            ),
            Err(RecordError::Varint { offset: 9, .. })
        ));
        assert_eq!(RecordType::of(&[]), RecordType::Unknown(0));
        assert_eq!(RecordType::of(&[4]), RecordType::Unknown(4));
    }
}
