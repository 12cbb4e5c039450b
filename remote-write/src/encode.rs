//! Batches and their wire encoding: remote write 1.0 (`prometheus.WriteRequest`)
//! and 2.0 (`io.prometheus.write.v2.Request`), snappy block-compressed.
//!
//! The protobuf is written by hand with prost's encoding primitives rather
//! than by building the prost message structs: a batch's labels are shared
//! `Labels` values, and copying every name and value into owned `String`s
//! for each request would cost more than the encoding itself at a million
//! samples a second. The tests decode the output with `ember-remote`'s prost
//! messages, which are the reference for the field numbers.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use ember_model::labels::Labels;
use prost::encoding::{encode_varint, encoded_len_varint};

/// Which remote write protocol a queue speaks (`protobuf_message`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// Remote write 1.0, `prometheus.WriteRequest`.
    #[default]
    V1,
    /// Remote write 2.0, `io.prometheus.write.v2.Request`.
    V2,
}

impl Protocol {
    /// The `Content-Type` of a request body.
    pub fn content_type(self) -> &'static str {
        match self {
            Protocol::V1 => "application/x-protobuf",
            Protocol::V2 => "application/x-protobuf;proto=io.prometheus.write.v2.Request",
        }
    }

    /// The `X-Prometheus-Remote-Write-Version` header.
    pub fn version_header(self) -> &'static str {
        match self {
            Protocol::V1 => "0.1.0",
            Protocol::V2 => "2.0.0",
        }
    }
}

/// Metadata of a metric as logged in the WAL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The metric type, numbered as both protocols number it (0 unknown,
    /// 1 counter, 2 gauge, 3 histogram, 4 gauge histogram, 5 summary, 6
    /// info, 7 state set).
    pub metric_type: u8,
    /// Unit, possibly empty.
    pub unit: String,
    /// Help text, possibly empty.
    pub help: String,
}

/// A series as a queue sends it: labels after external labels and
/// `write_relabel_configs`, and its metadata when the WAL had some.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesEntry {
    /// The labels to send.
    pub labels: Labels,
    /// Metadata, when known.
    pub metadata: Option<Arc<Metadata>>,
    /// The labels as 1.0 `Label` fields, encoded on first use: a series is
    /// sent once per scrape for hours, and encoding its labels every time
    /// was a third of the sender's CPU.
    v1_labels: OnceLock<Box<[u8]>>,
}

impl SeriesEntry {
    /// An entry with `labels` and `metadata`.
    pub fn new(labels: Labels, metadata: Option<Arc<Metadata>>) -> Self {
        Self {
            labels,
            metadata,
            v1_labels: OnceLock::new(),
        }
    }

    fn v1_labels(&self) -> &[u8] {
        self.v1_labels.get_or_init(|| {
            let mut buf = Vec::new();
            for (name, value) in self.labels.iter() {
                let label = str_field_len(1, name) + str_field_len(2, value);
                len_prefixed(1, label, &mut buf);
                put_str_field(1, name, &mut buf);
                put_str_field(2, value, &mut buf);
            }
            buf.into_boxed_slice()
        })
    }
}

/// One sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Milliseconds since the epoch.
    pub t: i64,
    /// Value.
    pub v: f64,
}

/// One series of a batch with its samples, oldest first.
#[derive(Debug, Clone)]
pub struct BatchSeries {
    /// The series.
    pub series: Arc<SeriesEntry>,
    /// Its samples in this batch.
    pub samples: Vec<Sample>,
}

/// Metadata for one metric family, sent on its own by 1.0 queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyMetadata {
    /// The metric name.
    pub name: String,
    /// Type, unit and help.
    pub metadata: Metadata,
}

/// What a shard hands to a [`Destination`](crate::Destination): series with
/// samples, or (1.0 metadata sending) metadata alone. The wire body is
/// encoded at most once, on first use, so retries and destinations that do
/// not need it (plugins) pay nothing.
#[derive(Debug)]
pub struct Batch {
    /// Series with their samples.
    pub series: Vec<BatchSeries>,
    /// Metric metadata (1.0 metadata requests only).
    pub metadata: Vec<FamilyMetadata>,
    protocol: Protocol,
    samples: usize,
    payload: OnceLock<Vec<u8>>,
}

impl Batch {
    /// A batch for `protocol`.
    pub fn new(
        protocol: Protocol,
        series: Vec<BatchSeries>,
        metadata: Vec<FamilyMetadata>,
    ) -> Self {
        let samples = series.iter().map(|s| s.samples.len()).sum();
        Self {
            series,
            metadata,
            protocol,
            samples,
            payload: OnceLock::new(),
        }
    }

    /// The protocol the payload is encoded for.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Number of samples.
    pub fn sample_count(&self) -> usize {
        self.samples
    }

    /// Size of the body, if [`Batch::payload`] was asked for.
    pub fn payload_len(&self) -> Option<usize> {
        self.payload.get().map(Vec::len)
    }

    /// The request body: the protobuf message, snappy block-compressed.
    pub fn payload(&self) -> &[u8] {
        self.payload.get_or_init(|| {
            let mut raw = Vec::new();
            match self.protocol {
                Protocol::V1 => encode_v1(&self.series, &self.metadata, &mut raw),
                Protocol::V2 => encode_v2(&self.series, &mut raw),
            }
            snap::raw::Encoder::new()
                .compress_vec(&raw)
                .unwrap_or_default()
        })
    }
}

/// FNV-1a: symbol lookups hash short label strings, where SipHash's
/// setup cost dominates and DoS resistance does not matter (the strings
/// come from our own WAL).
#[derive(Debug, Clone, Copy, Default)]
struct BuildFnv;

#[derive(Debug)]
struct Fnv(u64);

impl std::hash::BuildHasher for BuildFnv {
    type Hasher = Fnv;
    fn build_hasher(&self) -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

const LEN: u64 = 2;
const VARINT: u64 = 0;
const FIXED64: u64 = 1;

fn key(field: u64, wire: u64, buf: &mut Vec<u8>) {
    encode_varint((field << 3) | wire, buf);
}

fn str_field_len(field: u64, s: &str) -> usize {
    if s.is_empty() {
        return 0;
    }
    encoded_len_varint(field << 3) + encoded_len_varint(s.len() as u64) + s.len()
}

fn put_str_field(field: u64, s: &str, buf: &mut Vec<u8>) {
    if s.is_empty() {
        return;
    }
    key(field, LEN, buf);
    encode_varint(s.len() as u64, buf);
    buf.extend_from_slice(s.as_bytes());
}

fn len_prefixed(field: u64, len: usize, buf: &mut Vec<u8>) {
    key(field, LEN, buf);
    encode_varint(len as u64, buf);
}

/// Sample message: value (1, double), timestamp (2, int64). Zero values are
/// written too; decoders treat an explicit default like an absent field.
fn sample_len(s: &Sample) -> usize {
    1 + 8 + 1 + encoded_len_varint(s.t as u64)
}

fn put_sample(s: &Sample, buf: &mut Vec<u8>) {
    key(1, FIXED64, buf);
    buf.extend_from_slice(&s.v.to_le_bytes());
    key(2, VARINT, buf);
    encode_varint(s.t as u64, buf);
}

/// `prometheus.WriteRequest`: timeseries (1) of labels (1) and samples (2);
/// metadata (3).
pub fn encode_v1(series: &[BatchSeries], metadata: &[FamilyMetadata], buf: &mut Vec<u8>) {
    for entry in series {
        let labels = entry.series.v1_labels();
        let mut ts_len = labels.len();
        for sample in &entry.samples {
            let len = sample_len(sample);
            ts_len += 1 + encoded_len_varint(len as u64) + len;
        }
        len_prefixed(1, ts_len, buf);
        buf.extend_from_slice(labels);
        for sample in &entry.samples {
            len_prefixed(2, sample_len(sample), buf);
            put_sample(sample, buf);
        }
    }
    for family in metadata {
        let m = &family.metadata;
        let mut len =
            str_field_len(2, &family.name) + str_field_len(4, &m.help) + str_field_len(5, &m.unit);
        if m.metric_type != 0 {
            len += 1 + encoded_len_varint(u64::from(m.metric_type));
        }
        len_prefixed(3, len, buf);
        if m.metric_type != 0 {
            key(1, VARINT, buf);
            encode_varint(u64::from(m.metric_type), buf);
        }
        put_str_field(2, &family.name, buf);
        put_str_field(4, &m.help, buf);
        put_str_field(5, &m.unit, buf);
    }
}

/// `io.prometheus.write.v2.Request`: symbols (4), the first one empty, and
/// timeseries (5) of labels_refs (1, packed), samples (2) and metadata (5:
/// type 1, help_ref 3, unit_ref 4).
pub fn encode_v2(series: &[BatchSeries], buf: &mut Vec<u8>) {
    let mut symbols: Vec<&str> = vec![""];
    let mut index: HashMap<&str, u32, BuildFnv> = HashMap::with_hasher(BuildFnv);
    index.insert("", 0);
    let mut intern = |s| -> u32 {
        *index.entry(s).or_insert_with(|| {
            symbols.push(s);
            (symbols.len() - 1) as u32
        })
    };
    let mut body = Vec::with_capacity(series.len() * 64);
    let mut refs = Vec::with_capacity(32);
    for entry in series {
        refs.clear();
        for (name, value) in entry.series.labels.iter() {
            refs.push(intern(name));
            refs.push(intern(value));
        }
        let refs_len: usize = refs.iter().map(|&r| encoded_len_varint(u64::from(r))).sum();
        let mut ts_len = 0;
        if !refs.is_empty() {
            ts_len += 1 + encoded_len_varint(refs_len as u64) + refs_len;
        }
        for sample in &entry.samples {
            let len = sample_len(sample);
            ts_len += 1 + encoded_len_varint(len as u64) + len;
        }
        let meta = entry.series.metadata.as_ref().map(|m| {
            let help = if m.help.is_empty() {
                0
            } else {
                intern(&m.help)
            };
            let unit = if m.unit.is_empty() {
                0
            } else {
                intern(&m.unit)
            };
            (u64::from(m.metric_type), u64::from(help), u64::from(unit))
        });
        let meta_len = meta.map_or(0, |(t, h, u)| {
            [(t), (h), (u)]
                .iter()
                .filter(|&&x| x != 0)
                .map(|&x| 1 + encoded_len_varint(x))
                .sum::<usize>()
        });
        if meta.is_some() {
            ts_len += 1 + encoded_len_varint(meta_len as u64) + meta_len;
        }
        len_prefixed(5, ts_len, &mut body);
        if !refs.is_empty() {
            len_prefixed(1, refs_len, &mut body);
            for &r in &refs {
                encode_varint(u64::from(r), &mut body);
            }
        }
        for sample in &entry.samples {
            len_prefixed(2, sample_len(sample), &mut body);
            put_sample(sample, &mut body);
        }
        if let Some((t, h, u)) = meta {
            len_prefixed(5, meta_len, &mut body);
            for (field, x) in [(1, t), (3, h), (4, u)] {
                if x != 0 {
                    key(field, VARINT, &mut body);
                    encode_varint(x, &mut body);
                }
            }
        }
    }
    for symbol in &symbols {
        // The empty symbol must be written: refs index into the list.
        key(4, LEN, buf);
        encode_varint(symbol.len() as u64, buf);
        buf.extend_from_slice(symbol.as_bytes());
    }
    buf.extend_from_slice(&body);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_remote::{prompb, writev2};
    use prost::Message;

    fn entry(pairs: &[(&str, &str)], metadata: Option<Metadata>) -> Arc<SeriesEntry> {
        Arc::new(SeriesEntry::new(
            Labels::new(pairs.iter().copied()).unwrap(),
            metadata.map(Arc::new),
        ))
    }

    fn sample_batch(protocol: Protocol) -> Batch {
        let up = entry(
            &[("__name__", "up"), ("job", "node"), ("instance", "a:1")],
            Some(Metadata {
                metric_type: 2,
                unit: String::new(),
                help: "Up.".into(),
            }),
        );
        let other = entry(&[("__name__", "x_seconds"), ("le", "")], None);
        Batch::new(
            protocol,
            vec![
                BatchSeries {
                    series: up,
                    samples: vec![Sample { t: 1_000, v: 1.0 }, Sample { t: 2_000, v: 0.0 }],
                },
                BatchSeries {
                    series: other,
                    samples: vec![Sample { t: -5, v: f64::NAN }],
                },
            ],
            vec![FamilyMetadata {
                name: "up".into(),
                metadata: Metadata {
                    metric_type: 2,
                    unit: "seconds".into(),
                    help: "Up.".into(),
                },
            }],
        )
    }

    fn decompress(batch: &Batch) -> Vec<u8> {
        snap::raw::Decoder::new()
            .decompress_vec(batch.payload())
            .unwrap()
    }

    #[test]
    fn v1_decodes_with_the_reference_messages() {
        let batch = sample_batch(Protocol::V1);
        assert_eq!(batch.sample_count(), 3);
        let request = prompb::WriteRequest::decode(decompress(&batch).as_slice()).unwrap();
        assert_eq!(request.timeseries.len(), 2);
        let labels: Vec<(String, String)> = request.timeseries[0]
            .labels
            .iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect();
        assert_eq!(
            labels,
            [
                ("__name__".into(), "up".into()),
                ("instance".into(), "a:1".into()),
                ("job".into(), "node".into())
            ]
        );
        let samples: Vec<(i64, f64)> = request.timeseries[0]
            .samples
            .iter()
            .map(|s| (s.timestamp, s.value))
            .collect();
        assert_eq!(samples, [(1_000, 1.0), (2_000, 0.0)]);
        assert_eq!(request.timeseries[1].samples[0].timestamp, -5);
        assert!(request.timeseries[1].samples[0].value.is_nan());
        // An empty label value is the same as no label.
        assert_eq!(request.timeseries[1].labels.len(), 2);
        assert_eq!(request.metadata.len(), 1);
        assert_eq!(request.metadata[0].metric_family_name, "up");
        assert_eq!(request.metadata[0].unit, "seconds");
        assert_eq!(request.metadata[0].help, "Up.");
        assert_eq!(request.metadata[0].r#type, 2);
    }

    #[test]
    fn v2_decodes_with_the_reference_messages() {
        let batch = sample_batch(Protocol::V2);
        let request = writev2::Request::decode(decompress(&batch).as_slice()).unwrap();
        assert_eq!(request.symbols[0], "");
        assert_eq!(request.timeseries.len(), 2);
        let resolve = |refs: &[u32]| -> Vec<(String, String)> {
            refs.chunks(2)
                .map(|p| {
                    (
                        request.symbols[p[0] as usize].clone(),
                        request.symbols[p[1] as usize].clone(),
                    )
                })
                .collect()
        };
        assert_eq!(
            resolve(&request.timeseries[0].labels_refs),
            [
                ("__name__".to_string(), "up".to_string()),
                ("instance".into(), "a:1".into()),
                ("job".into(), "node".into())
            ]
        );
        let first = &request.timeseries[0];
        assert_eq!(first.samples.len(), 2);
        assert_eq!(first.samples[1].timestamp, 2_000);
        let metadata = first.metadata.as_ref().unwrap();
        assert_eq!(metadata.r#type, 2);
        assert_eq!(request.symbols[metadata.help_ref as usize], "Up.");
        assert_eq!(metadata.unit_ref, 0);
        assert!(request.timeseries[1].metadata.is_none());
        // Symbols are unique.
        let mut unique = request.symbols.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), request.symbols.len());
    }
}
