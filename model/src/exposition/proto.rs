//! The `io.prometheus.client` protobuf messages (the scrape format).
//!
//! Written by hand with `prost` derives; the field numbers and types follow
//! `io/prometheus/client/metrics.proto` as vendored by Prometheus (proto3
//! syntax, wire-compatible with the proto2 original that client libraries
//! send: prost accepts packed and unpacked repeated scalars alike).
//!
//! ```
//! use ember_model::exposition::proto::{Gauge, Metric, MetricFamily, MetricType};
//! use prost::Message;
//!
//! let family = MetricFamily {
//!     name: "up".into(),
//!     r#type: MetricType::Gauge as i32,
//!     metric: vec![Metric { gauge: Some(Gauge { value: 1.0 }), ..Default::default() }],
//!     ..Default::default()
//! };
//! let bytes = family.encode_length_delimited_to_vec();
//! assert_eq!(MetricFamily::decode_length_delimited(bytes.as_slice()).unwrap(), family);
//! ```

/// A label name and value.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct LabelPair {
    /// Label name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Label value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// The type of a [`MetricFamily`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum MetricType {
    /// Monotonic counter.
    Counter = 0,
    /// Gauge.
    Gauge = 1,
    /// Summary with quantiles.
    Summary = 2,
    /// No declared type.
    Untyped = 3,
    /// Histogram (classic buckets and/or native).
    Histogram = 4,
    /// Gauge histogram.
    GaugeHistogram = 5,
}

/// A gauge value.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Gauge {
    /// The value.
    #[prost(double, tag = "1")]
    pub value: f64,
}

/// A counter value, with an optional exemplar and start time.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Counter {
    /// The value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// An example observation.
    #[prost(message, optional, tag = "2")]
    pub exemplar: Option<Exemplar>,
    /// When the counter started (was last reset).
    #[prost(message, optional, tag = "3")]
    pub start_timestamp: Option<Timestamp>,
}

/// One quantile of a summary.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Quantile {
    /// The quantile, 0 to 1.
    #[prost(double, tag = "1")]
    pub quantile: f64,
    /// Its value.
    #[prost(double, tag = "2")]
    pub value: f64,
}

/// A summary.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    /// Number of observations.
    #[prost(uint64, tag = "1")]
    pub sample_count: u64,
    /// Sum of observations.
    #[prost(double, tag = "2")]
    pub sample_sum: f64,
    /// The quantiles.
    #[prost(message, repeated, tag = "3")]
    pub quantile: Vec<Quantile>,
    /// When the summary started.
    #[prost(message, optional, tag = "4")]
    pub start_timestamp: Option<Timestamp>,
}

/// A value of unknown type.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Untyped {
    /// The value.
    #[prost(double, tag = "1")]
    pub value: f64,
}

/// A histogram: classic cumulative buckets, native (sparse) buckets, or both.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Histogram {
    /// Number of observations (integer histograms).
    #[prost(uint64, tag = "1")]
    pub sample_count: u64,
    /// Number of observations for float histograms; wins when positive.
    #[prost(double, tag = "4")]
    pub sample_count_float: f64,
    /// Sum of observations.
    #[prost(double, tag = "2")]
    pub sample_sum: f64,
    /// Classic buckets, by increasing upper bound; `+Inf` may be omitted.
    #[prost(message, repeated, tag = "3")]
    pub bucket: Vec<Bucket>,
    /// When the histogram started.
    #[prost(message, optional, tag = "15")]
    pub start_timestamp: Option<Timestamp>,
    /// Native histogram bucket schema (resolution), -4..=8 today.
    #[prost(sint32, tag = "5")]
    pub schema: i32,
    /// Width of the zero bucket.
    #[prost(double, tag = "6")]
    pub zero_threshold: f64,
    /// Observations in the zero bucket (integer histograms).
    #[prost(uint64, tag = "7")]
    pub zero_count: u64,
    /// Observations in the zero bucket (float histograms); wins when positive.
    #[prost(double, tag = "8")]
    pub zero_count_float: f64,
    /// Spans of populated negative buckets.
    #[prost(message, repeated, tag = "9")]
    pub negative_span: Vec<BucketSpan>,
    /// Negative bucket counts as deltas (integer histograms).
    #[prost(sint64, repeated, tag = "10")]
    pub negative_delta: Vec<i64>,
    /// Negative bucket counts as absolute values (float histograms).
    #[prost(double, repeated, tag = "11")]
    pub negative_count: Vec<f64>,
    /// Spans of populated positive buckets.
    #[prost(message, repeated, tag = "12")]
    pub positive_span: Vec<BucketSpan>,
    /// Positive bucket counts as deltas (integer histograms).
    #[prost(sint64, repeated, tag = "13")]
    pub positive_delta: Vec<i64>,
    /// Positive bucket counts as absolute values (float histograms).
    #[prost(double, repeated, tag = "14")]
    pub positive_count: Vec<f64>,
    /// Exemplars of a native histogram (each with a timestamp).
    #[prost(message, repeated, tag = "16")]
    pub exemplars: Vec<Exemplar>,
}

impl Histogram {
    /// Whether this carries native buckets (any span, a zero bucket, or a
    /// no-op span marking an empty native histogram).
    pub fn is_native(&self) -> bool {
        !self.positive_span.is_empty()
            || !self.negative_span.is_empty()
            || self.zero_threshold > 0.0
            || self.zero_count > 0
            || self.zero_count_float > 0.0
    }
}

/// A classic histogram bucket.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Bucket {
    /// Observations at or below `upper_bound` (integer histograms).
    #[prost(uint64, tag = "1")]
    pub cumulative_count: u64,
    /// The same for float histograms; wins when positive.
    #[prost(double, tag = "4")]
    pub cumulative_count_float: f64,
    /// The inclusive upper bound.
    #[prost(double, tag = "2")]
    pub upper_bound: f64,
    /// An example observation in this bucket.
    #[prost(message, optional, tag = "3")]
    pub exemplar: Option<Exemplar>,
}

/// A run of consecutive native-histogram buckets.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct BucketSpan {
    /// Gap since the previous span (or the first bucket index).
    #[prost(sint32, tag = "1")]
    pub offset: i32,
    /// Number of buckets in the span.
    #[prost(uint32, tag = "2")]
    pub length: u32,
}

/// An example observation linked to a trace.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Exemplar {
    /// LabelPairs such as `trace_id`.
    #[prost(message, repeated, tag = "1")]
    pub label: Vec<LabelPair>,
    /// The observed value.
    #[prost(double, tag = "2")]
    pub value: f64,
    /// When it was observed.
    #[prost(message, optional, tag = "3")]
    pub timestamp: Option<Timestamp>,
}

/// One metric (label set) of a family, with the value for the family's type.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Metric {
    /// The labels, excluding the metric name.
    #[prost(message, repeated, tag = "1")]
    pub label: Vec<LabelPair>,
    /// Set for gauges.
    #[prost(message, optional, tag = "2")]
    pub gauge: Option<Gauge>,
    /// Set for counters.
    #[prost(message, optional, tag = "3")]
    pub counter: Option<Counter>,
    /// Set for summaries.
    #[prost(message, optional, tag = "4")]
    pub summary: Option<Summary>,
    /// Set for untyped metrics.
    #[prost(message, optional, tag = "5")]
    pub untyped: Option<Untyped>,
    /// Set for histograms and gauge histograms.
    #[prost(message, optional, tag = "7")]
    pub histogram: Option<Histogram>,
    /// Milliseconds since the epoch; 0 means none.
    #[prost(int64, tag = "6")]
    pub timestamp_ms: i64,
}

/// A metric family: name, metadata and its metrics.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricFamily {
    /// The family name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The docstring.
    #[prost(string, tag = "2")]
    pub help: String,
    /// The type, a [`MetricType`] value.
    #[prost(enumeration = "MetricType", tag = "3")]
    pub r#type: i32,
    /// The metrics.
    #[prost(message, repeated, tag = "4")]
    pub metric: Vec<Metric>,
    /// The unit, e.g. `seconds`.
    #[prost(string, tag = "5")]
    pub unit: String,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct Timestamp {
    /// Seconds since the epoch.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds within the second, 0..1e9.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl Timestamp {
    /// Milliseconds since the epoch (saturating).
    pub fn as_millis(&self) -> i64 {
        self.seconds
            .saturating_mul(1000)
            .saturating_add(i64::from(self.nanos) / 1_000_000)
    }
}
