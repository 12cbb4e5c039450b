//! The `prometheus` protobuf package: remote write 1.0 (`WriteRequest`) and
//! remote read (`ReadRequest`, `ReadResponse`, `ChunkedReadResponse`).
//!
//! Written by hand with `prost` derives from the field numbers of
//! Prometheus's `prompb/types.proto` and `prompb/remote.proto`. Field 2 of
//! `WriteRequest` is reserved upstream (Cortex used it) and is left out, so
//! prost skips it as an unknown field.
//!
//! ```
//! use ember_remote::prompb::{Label, Sample, TimeSeries, WriteRequest};
//! use prost::Message;
//!
//! let request = WriteRequest {
//!     timeseries: vec![TimeSeries {
//!         labels: vec![Label { name: "__name__".into(), value: "up".into() }],
//!         samples: vec![Sample { value: 1.0, timestamp: 1_000 }],
//!         ..Default::default()
//!     }],
//!     metadata: vec![],
//! };
//! let bytes = request.encode_to_vec();
//! assert_eq!(WriteRequest::decode(bytes.as_slice()).unwrap(), request);
//! ```

/// A remote write 1.0 request: series with their samples, and metadata per
/// metric family (not per series).
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    /// The series.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    /// Metadata of metric families, sent apart from the samples.
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

/// Metadata of one metric family.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricMetadata {
    /// The family's type ([`metric_metadata::MetricType`]).
    #[prost(enumeration = "metric_metadata::MetricType", tag = "1")]
    pub r#type: i32,
    /// The family name (`http_requests`, not `http_requests_total`).
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    /// HELP text.
    #[prost(string, tag = "4")]
    pub help: String,
    /// UNIT.
    #[prost(string, tag = "5")]
    pub unit: String,
}

/// Nested types of [`MetricMetadata`].
pub mod metric_metadata {
    /// The metric types Prometheus knows.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum MetricType {
        /// No type given.
        Unknown = 0,
        /// Counter.
        Counter = 1,
        /// Gauge.
        Gauge = 2,
        /// Histogram.
        Histogram = 3,
        /// Gauge histogram.
        Gaugehistogram = 4,
        /// Summary.
        Summary = 5,
        /// Info.
        Info = 6,
        /// State set.
        Stateset = 7,
    }
}

/// A float sample.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Sample {
    /// The value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// An exemplar attached to a series.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Exemplar {
    /// The exemplar's own labels (a trace id, for example); may be empty.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// The observed value.
    #[prost(double, tag = "2")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// A native histogram sample (integer or float counts).
///
/// Ember does not store native histograms yet; the message is here so that
/// requests carrying them decode, and the receiver can count and refuse
/// them with a clear error instead of failing to parse.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Histogram {
    /// The count of observations.
    #[prost(oneof = "histogram::Count", tags = "1, 2")]
    pub count: Option<histogram::Count>,
    /// Sum of observations.
    #[prost(double, tag = "3")]
    pub sum: f64,
    /// Bucket schema.
    #[prost(sint32, tag = "4")]
    pub schema: i32,
    /// Breadth of the zero bucket.
    #[prost(double, tag = "5")]
    pub zero_threshold: f64,
    /// Count in the zero bucket.
    #[prost(oneof = "histogram::ZeroCount", tags = "6, 7")]
    pub zero_count: Option<histogram::ZeroCount>,
    /// Negative bucket spans.
    #[prost(message, repeated, tag = "8")]
    pub negative_spans: Vec<BucketSpan>,
    /// Negative bucket count deltas (integer histograms).
    #[prost(sint64, repeated, tag = "9")]
    pub negative_deltas: Vec<i64>,
    /// Negative bucket counts (float histograms).
    #[prost(double, repeated, tag = "10")]
    pub negative_counts: Vec<f64>,
    /// Positive bucket spans.
    #[prost(message, repeated, tag = "11")]
    pub positive_spans: Vec<BucketSpan>,
    /// Positive bucket count deltas (integer histograms).
    #[prost(sint64, repeated, tag = "12")]
    pub positive_deltas: Vec<i64>,
    /// Positive bucket counts (float histograms).
    #[prost(double, repeated, tag = "13")]
    pub positive_counts: Vec<f64>,
    /// Counter-reset hint.
    #[prost(int32, tag = "14")]
    pub reset_hint: i32,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "15")]
    pub timestamp: i64,
    /// Custom bucket bounds (not for remote-write clients).
    #[prost(double, repeated, tag = "16")]
    pub custom_values: Vec<f64>,
}

/// Nested types of [`Histogram`].
pub mod histogram {
    /// The count of observations.
    #[derive(Clone, Copy, PartialEq, prost::Oneof)]
    pub enum Count {
        /// Integer histogram.
        #[prost(uint64, tag = "1")]
        CountInt(u64),
        /// Float histogram.
        #[prost(double, tag = "2")]
        CountFloat(f64),
    }

    /// The count in the zero bucket.
    #[derive(Clone, Copy, PartialEq, prost::Oneof)]
    pub enum ZeroCount {
        /// Integer histogram.
        #[prost(uint64, tag = "6")]
        ZeroCountInt(u64),
        /// Float histogram.
        #[prost(double, tag = "7")]
        ZeroCountFloat(f64),
    }
}

/// A run of consecutive buckets of a native histogram.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct BucketSpan {
    /// Gap to the previous span, or the first bucket's index.
    #[prost(sint32, tag = "1")]
    pub offset: i32,
    /// Number of consecutive buckets.
    #[prost(uint32, tag = "2")]
    pub length: u32,
}

/// A series: its labels and samples (remote write 1.0, remote read SAMPLES).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// The labels, sorted by name by well-behaved senders.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Float samples in timestamp order.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    /// Exemplars.
    #[prost(message, repeated, tag = "3")]
    pub exemplars: Vec<Exemplar>,
    /// Native histogram samples.
    #[prost(message, repeated, tag = "4")]
    pub histograms: Vec<Histogram>,
}

/// A label name and value.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Label {
    /// Label name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Label value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// A label set.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Labels {
    /// The labels.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
}

/// A label matcher of a remote read query.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct LabelMatcher {
    /// The operator ([`label_matcher::Type`]).
    #[prost(enumeration = "label_matcher::Type", tag = "1")]
    pub r#type: i32,
    /// Label name.
    #[prost(string, tag = "2")]
    pub name: String,
    /// Value or regular expression.
    #[prost(string, tag = "3")]
    pub value: String,
}

/// Nested types of [`LabelMatcher`].
pub mod label_matcher {
    /// The matcher operator.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum Type {
        /// `=`
        Eq = 0,
        /// `!=`
        Neq = 1,
        /// `=~`
        Re = 2,
        /// `!~`
        Nre = 3,
    }
}

/// What the query that caused a remote read is doing.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ReadHints {
    /// Query step in ms.
    #[prost(int64, tag = "1")]
    pub step_ms: i64,
    /// The surrounding function or aggregation.
    #[prost(string, tag = "2")]
    pub func: String,
    /// Start of the needed range, ms.
    #[prost(int64, tag = "3")]
    pub start_ms: i64,
    /// End of the needed range, ms.
    #[prost(int64, tag = "4")]
    pub end_ms: i64,
    /// Grouping labels of the aggregation.
    #[prost(string, repeated, tag = "5")]
    pub grouping: Vec<String>,
    /// Whether `grouping` is `by` (else `without`).
    #[prost(bool, tag = "6")]
    pub by: bool,
    /// Range of a range-vector selector in ms.
    #[prost(int64, tag = "7")]
    pub range_ms: i64,
}

/// A TSDB chunk of one series; the time range is inclusive.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Chunk {
    /// Timestamp of the first sample, ms.
    #[prost(int64, tag = "1")]
    pub min_time_ms: i64,
    /// Timestamp of the last sample, ms.
    #[prost(int64, tag = "2")]
    pub max_time_ms: i64,
    /// The encoding ([`chunk::Encoding`]); Ember sends `Xor` only.
    #[prost(enumeration = "chunk::Encoding", tag = "3")]
    pub r#type: i32,
    /// The encoded chunk, Prometheus's `chunkenc` format.
    #[prost(bytes = "vec", tag = "4")]
    pub data: Vec<u8>,
}

/// Nested types of [`Chunk`].
pub mod chunk {
    /// Chunk encodings, numbered as Prometheus's `chunkenc.Encoding`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum Encoding {
        /// Unknown.
        Unknown = 0,
        /// Gorilla XOR float chunk.
        Xor = 1,
        /// Integer native histogram chunk.
        Histogram = 2,
        /// Float native histogram chunk.
        FloatHistogram = 3,
        /// XOR with start timestamps.
        Xor2 = 4,
        /// Histogram with start timestamps.
        HistogramSt = 5,
        /// Float histogram with start timestamps.
        FloatHistogramSt = 6,
    }
}

/// One series as chunks (remote read STREAMED_XOR_CHUNKS).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ChunkedSeries {
    /// Sorted labels.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Chunks in start-time order.
    #[prost(message, repeated, tag = "2")]
    pub chunks: Vec<Chunk>,
}

/// A remote read request: one or more queries and the response types the
/// client accepts, in order of preference.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadRequest {
    /// The queries.
    #[prost(message, repeated, tag = "1")]
    pub queries: Vec<Query>,
    /// Acceptable response types ([`read_request::ResponseType`]), first
    /// preferred. Empty means SAMPLES.
    #[prost(enumeration = "read_request::ResponseType", repeated, tag = "2")]
    pub accepted_response_types: Vec<i32>,
}

/// Nested types of [`ReadRequest`].
pub mod read_request {
    /// How the server answers.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum ResponseType {
        /// One snappy-compressed [`super::ReadResponse`] with raw samples.
        Samples = 0,
        /// A stream of framed [`super::ChunkedReadResponse`] messages with
        /// XOR chunks.
        StreamedXorChunks = 1,
    }
}

/// The SAMPLES answer: one result per query, in request order.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadResponse {
    /// The results.
    #[prost(message, repeated, tag = "1")]
    pub results: Vec<QueryResult>,
}

/// One remote read query.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Query {
    /// Start of the range, ms, inclusive.
    #[prost(int64, tag = "1")]
    pub start_timestamp_ms: i64,
    /// End of the range, ms, inclusive.
    #[prost(int64, tag = "2")]
    pub end_timestamp_ms: i64,
    /// The series selector.
    #[prost(message, repeated, tag = "3")]
    pub matchers: Vec<LabelMatcher>,
    /// What the query is for.
    #[prost(message, optional, tag = "4")]
    pub hints: Option<ReadHints>,
}

/// The series of one query (SAMPLES).
#[derive(Clone, PartialEq, prost::Message)]
pub struct QueryResult {
    /// Series with samples in time order.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// One frame of a STREAMED_XOR_CHUNKS answer: whole series (or a time
/// slice of one) of one query.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ChunkedReadResponse {
    /// The series.
    #[prost(message, repeated, tag = "1")]
    pub chunked_series: Vec<ChunkedSeries>,
    /// Index of the query in [`ReadRequest::queries`].
    #[prost(int64, tag = "2")]
    pub query_index: i64,
}
